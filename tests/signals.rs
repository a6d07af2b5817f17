//! `ServerOptions::stop_on_signals`: SIGINT and SIGTERM stop a server gracefully (the call in
//! progress finishes, the name is freed, `run()` and `ServerHandle::wait()` return); a second
//! signal while it stops ends the process at once; without the option a signal kills the
//! process as it always did.

use std::time::{Duration, Instant};

use shmrpc::Error;
use shmrpc_tests::*;

/// Starts a server that stops on signals, makes a 300 ms call, signals the server 50 ms into
/// it: the call gets its answer, the server returns and exits 0, and the name is free.
fn stops_gracefully(how: &str, signal: &str) {
    let name = unique_name(&format!("signals-{how}"));
    let mut server = Peer::start(&["server-signals", &name, how]);
    let client = WorkClient::connect(&name).unwrap();
    let (answer, signalled) = std::thread::scope(|s| {
        let call = s.spawn(|| client.sleep(300, 7));
        std::thread::sleep(Duration::from_millis(50));
        server.signal(signal);
        let signalled = Instant::now();
        (call.join().unwrap(), signalled)
    });
    assert_eq!(answer.unwrap(), 7, "the call in progress finishes");
    assert_eq!(server.line(), "returned");
    assert_eq!(server.wait(Duration::from_millis(500)), Some(0));
    // The rest of the 300 ms call, then the stop: a few milliseconds.
    let stopped = signalled.elapsed();
    assert!(
        stopped < Duration::from_millis(300),
        "stopped {stopped:?} after the signal"
    );
    let err = WorkClient::connect(&name).unwrap_err();
    assert!(matches!(err, Error::ServerNotRunning { .. }), "{err:?}");
    // The name can be bound again at once.
    let _again = Peer::start(&["server", "work", &name]);
}

#[test]
fn sigint_stops_a_running_server_after_the_call_in_progress() {
    stops_gracefully("run", "INT");
}

#[test]
fn sigterm_stops_a_spawned_server_and_its_handle_wait_returns() {
    stops_gracefully("spawn", "TERM");
}

#[test]
fn a_stopped_server_takes_no_new_call() {
    let name = unique_name("signals-new");
    let mut server = Peer::start(&["server-signals", &name, "run"]);
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 2).unwrap(), 3);
    server.signal("INT");
    assert_eq!(server.line(), "returned");
    let err = client.add(1, 2).unwrap_err();
    assert!(matches!(err, Error::ServerNotRunning { .. }), "{err:?}");
}

#[test]
fn a_second_signal_while_stopping_ends_the_process_at_once() {
    let name = unique_name("signals-twice");
    let mut server = Peer::start(&["server-signals", &name, "run"]);
    let client = WorkClient::connect(&name).unwrap();
    std::thread::scope(|s| {
        let call = s.spawn(|| client.sleep(2000, 1));
        std::thread::sleep(Duration::from_millis(50));
        server.signal("INT");
        std::thread::sleep(Duration::from_millis(50));
        let second = Instant::now();
        server.signal("INT");
        // Killed by the signal, as it would have been without shmrpc.
        assert_eq!(server.killed_by(Duration::from_millis(500)), Some(2));
        assert!(second.elapsed() < Duration::from_millis(100));
        let err = call.join().unwrap().unwrap_err();
        assert!(matches!(err, Error::ServerDied { .. }), "{err:?}");
    });
}

#[test]
fn without_the_option_a_signal_kills_the_server_as_always() {
    let name = unique_name("signals-off");
    let mut server = Peer::start(&["server", "work", &name]);
    server.signal("INT");
    assert_eq!(server.killed_by(Duration::from_millis(500)), Some(2));
}
