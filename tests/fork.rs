//! Behaviour 4 of the connections issue: `fork` without exec, in a server or in a client with
//! an open connection: no hang and no crossed answer; a name held only by a dead server's
//! forked child is reported as such.

use std::process::Command;
use std::time::{Duration, Instant};

use shmrpc::Error;
use shmrpc_tests::*;

const BOUND: Duration = Duration::from_millis(250);

/// A server that forked a child which sleeps for ever; the child's pid.
fn forking_server(name: &str, how: &str) -> (Peer, u32) {
    let mut server = Peer::spawn(Command::new(peer_program()).args(["server-fork", name, how]));
    let line = server.line();
    let child = line
        .strip_prefix("ready ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("server-fork said {line:?}"));
    (server, child)
}

fn kill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// Kills the server while a client waits on a 500 ms call; that call's error and how long it
/// took to come.
fn kill_mid_call(server: &mut Peer, client: &WorkClient) -> (Error, Duration) {
    std::thread::scope(|s| {
        let call = s.spawn(|| {
            let r = client.sleep(500, 1);
            (r, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(100));
        let killed = Instant::now();
        server.kill();
        let (result, done) = call.join().unwrap();
        (result.unwrap_err(), done.duration_since(killed))
    })
}

#[test]
fn a_server_that_forked_gives_its_name_up_when_it_dies() {
    let name = unique_name("server-fork");
    let (mut server, child) = forking_server(&name, "libc");
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 2).unwrap(), 3);
    // The child holds copies of the server's connections, so the socket does not close when
    // the server dies; the server's pidfd tells the client at once.
    let (err, took) = kill_mid_call(&mut server, &client);
    eprintln!("server with a forked child killed mid-call: {err:?} after {took:?}");
    assert!(matches!(err, Error::ServerDied { .. }), "{err}");
    assert!(took < BOUND, "{took:?}");
    // The child gave the listening socket up when it was forked: the name is free at once.
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    assert_eq!(client.echo(1, 2, 3).unwrap().server_pid, std::process::id());
    handle.shutdown().unwrap();
    kill(child);
}

#[test]
fn a_name_held_only_by_a_dead_servers_forked_child_is_reported_as_such() {
    // A raw fork system call runs no atfork handler (a program calling clone(2) itself): the
    // child keeps the listening socket, and with it the name.
    let name = unique_name("raw-fork");
    let (mut server, child) = forking_server(&name, "raw");
    let server_pid = server.pid();
    let client = WorkClient::connect(&name).unwrap();
    let (err, took) = kill_mid_call(&mut server, &client);
    assert!(matches!(err, Error::ServerDied { .. }), "{err}");
    assert!(took < BOUND, "{took:?}");

    let start = Instant::now();
    match WorkClient::connect(&name) {
        Err(e @ Error::ServerNotRunning { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&format!("pid {server_pid}")), "{message}");
            assert!(message.contains("forked"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() < BOUND,
        "connect hung: {:?}",
        start.elapsed()
    );
    assert!(matches!(
        client.add(1, 1),
        Err(Error::ServerNotRunning { .. })
    ));
    match WorkServer::bind(&name, WorkImpl::default()) {
        Err(e @ Error::NameTaken { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&format!("pid {server_pid}")), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Once the child is gone, so is the name.
    kill(child);
    let start = Instant::now();
    let handle = loop {
        match WorkServer::bind(&name, WorkImpl::default()) {
            Ok(server) => break server.spawn().unwrap(),
            Err(_) if start.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(client.add(2, 2).unwrap(), 4);
    handle.shutdown().unwrap();
}

#[test]
fn a_client_that_forks_mid_call_gets_no_crossed_answer_and_no_hang() {
    let name = unique_name("client-fork");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    for _ in 0..5 {
        let mut client =
            Peer::spawn(Command::new(peer_program()).args(["fork-client", &name, "2000"]));
        let line = client.line();
        assert!(line.starts_with("ok parent=2000 child=2000 "), "{line}");
        assert_eq!(client.wait(Duration::from_secs(10)), Some(0));
    }
}
