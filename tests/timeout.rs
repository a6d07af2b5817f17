//! Behaviour 7: a call that times out returns `Timeout` within its timeout plus 50 ms, and its
//! late response is never delivered to any later call.

use std::time::{Duration, Instant};

use shmrpc::ClientOptions;
use shmrpc_tests::*;

#[test]
fn a_slow_call_times_out_in_time_and_later_calls_get_their_own_answers() {
    let name = unique_name("timeout");
    let _server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_millis(200)),
    )
    .unwrap();

    let start = Instant::now();
    let err = client.sleep(700, 1).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, shmrpc::Error::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(250),
        "took {took:?}"
    );

    // Another process calls while the server is still in the slow call: it waits its turn and
    // gets its own answer, not the late one (token 1).
    let mut other = Peer::spawn(
        std::process::Command::new(peer_program()).args(["sleep", &name, "10", "2", "5000"]),
    );
    // This client, with a longer timeout, also gets its own answer.
    let patient = WorkClient::connect(&name).unwrap();
    assert_eq!(patient.sleep(10, 3).unwrap(), 3);
    let line = other.line();
    assert!(line.starts_with("ok 2 "), "{line}");
    // And the timed-out client itself works again, with its own answers.
    for token in 10..20 {
        assert_eq!(client.sleep(1, token).unwrap(), token);
    }
}

#[test]
fn a_call_waiting_for_the_lock_is_bounded_by_its_timeout() {
    let name = unique_name("lock-timeout");
    let _server = Peer::start(&["server", "work", &name]);
    let mut slow = Peer::spawn(
        std::process::Command::new(peer_program()).args(["sleep", &name, "600", "1", "5000"]),
    );
    std::thread::sleep(Duration::from_millis(100));
    let client = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let start = Instant::now();
    let err = client.add(1, 2).unwrap_err();
    assert!(matches!(err, shmrpc::Error::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_millis(150),
        "took {:?}",
        start.elapsed()
    );
    assert!(slow.line().starts_with("ok 1 "));
}

#[test]
fn a_timed_out_request_the_server_never_took_is_withdrawn() {
    let name = unique_name("withdraw");
    let _server = Peer::start(&["server", "work", &name]);
    let slow = std::thread::spawn({
        let name = name.clone();
        move || WorkClient::connect(&name).unwrap().sleep(400, 1).unwrap()
    });
    std::thread::sleep(Duration::from_millis(50));
    // This request waits behind the slow one for the lock; then its caller gives up.
    let quick = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_millis(100)),
    )
    .unwrap();
    assert!(matches!(
        quick.add(1, 1),
        Err(shmrpc::Error::Timeout { .. })
    ));
    assert_eq!(slow.join().unwrap(), 1);
    let client = WorkClient::connect(&name).unwrap();
    // The slow call was served, and the withdrawn one never ran.
    assert_eq!(client.served().unwrap(), 1);
}

#[test]
fn a_call_sent_again_to_a_new_server_still_ends_by_its_deadline() {
    // The call waits untaken behind a slow one; its server dies; a new server holds the name but
    // does not serve yet. Sending the call again there must not start a new timeout.
    let name = unique_name("resend");
    let mut first = Peer::start(&["server", "work", &name]);
    let _busy = Peer::spawn(
        std::process::Command::new(peer_program()).args(["sleep", &name, "5000", "0", "10000"]),
    );
    std::thread::sleep(Duration::from_millis(100));
    let mut victim = Peer::spawn(
        std::process::Command::new(peer_program()).args(["sleep", &name, "1", "7", "300"]),
    );
    std::thread::sleep(Duration::from_millis(250));
    victim.signal("STOP");
    first.kill();
    let bound_not_serving = WorkServer::bind(&name, WorkImpl::default()).unwrap();
    victim.signal("CONT");
    let line = victim.line();
    drop(bound_not_serving);
    let took: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(line.starts_with("Timeout ") && took < 350, "{line}");
}

/// A request for the server's counters that times out (the server stopped) gives its
/// connection up: the late answer is never read as the answer to a later request.
#[test]
fn a_late_answer_to_a_timed_out_stats_request_is_never_read_as_a_later_ones() {
    let name = unique_name("late-stats");
    let server = Peer::start(&["server", "work", &name]);
    let service = shmrpc::inspect::Service::connect(
        &name,
        ClientOptions::default().timeout(Duration::from_millis(100)),
    )
    .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    server.signal("STOP");
    let stopped = service.stats();
    assert!(
        matches!(stopped, Err(shmrpc::Error::Timeout { .. })),
        "{stopped:?}"
    );
    server.signal("CONT");
    // The stopped server's late answer (no `add` served yet) comes in the old connection.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(client.add(2, 3).unwrap(), 5);
    let stats = service.stats().unwrap();
    let adds = stats.methods.iter().find(|m| m.name == "add").unwrap();
    assert_eq!(adds.calls, 1, "fresh counters, not the late answer's");
}
