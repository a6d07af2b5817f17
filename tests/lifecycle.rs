//! Behaviours 3, 4, 12 and 14, and name checks: connecting, binding, shutting down, and what
//! is left in the system.

use std::time::{Duration, Instant};

use shmrpc::Error;
use shmrpc_tests::*;

#[test]
fn connect_without_a_server_fails_at_once() {
    let name = unique_name("nobody-home");
    let start = Instant::now();
    let err = WorkClient::connect(&name).unwrap_err();
    assert!(matches!(err, Error::ServerNotRunning { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_millis(50));
    assert!(err.to_string().contains(&name), "{err}");
}

#[test]
fn a_second_bind_of_a_live_name_is_already_running() {
    let name = unique_name("twice");
    let _first = WorkServer::bind(&name, WorkImpl::default()).unwrap();
    match WorkServer::bind(&name, WorkImpl::default()) {
        Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("{other:?}"),
    }
    // Also when the live server is another process.
    let other = unique_name("twice-remote");
    let server = Peer::start(&["server", "work", &other]);
    match WorkServer::bind(&other, WorkImpl::default()) {
        Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, server.pid()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bind_takes_over_what_a_killed_server_left() {
    let name = unique_name("leftover");
    let mut dead = Peer::start(&["server", "work", &name]);
    dead.kill();
    assert_eq!(
        leftovers(&name),
        vec![format!("shmrpc.{name}")],
        "a killed server leaves its object"
    );
    // The leftover is not a live server.
    assert!(matches!(
        WorkClient::connect(&name),
        Err(Error::ServerNotRunning { .. })
    ));
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    assert_eq!(WorkClient::connect(&name).unwrap().add(2, 2).unwrap(), 4);
    handle.shutdown().unwrap();
    assert!(leftovers(&name).is_empty());
}

#[test]
fn shutdown_is_quick_and_leaves_nothing() {
    let name = unique_name("shutdown");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 2).unwrap(), 3);
    let start = Instant::now();
    handle.shutdown().unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "took {:?}",
        start.elapsed()
    );
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
    assert!(matches!(
        client.add(1, 2),
        Err(Error::ServerNotRunning { .. })
    ));
    assert!(matches!(
        WorkClient::connect(&name),
        Err(Error::ServerNotRunning { .. })
    ));
}

#[test]
fn shutdown_does_not_wait_for_a_long_method_and_its_caller_gets_the_answer() {
    let name = unique_name("shutdown-busy");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    let caller = std::thread::spawn(move || client.sleep(500, 77));
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    handle.shutdown().unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "took {:?}",
        start.elapsed()
    );
    assert!(leftovers(&name).is_empty());
    assert_eq!(caller.join().unwrap().unwrap(), 77);
}

#[test]
fn dropping_the_handle_shuts_down() {
    let name = unique_name("drop-handle");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    drop(handle);
    assert!(leftovers(&name).is_empty());
    assert!(matches!(
        WorkClient::connect(&name),
        Err(Error::ServerNotRunning { .. })
    ));
}

#[test]
fn dropping_a_server_that_never_served_removes_the_name() {
    let name = unique_name("drop-server");
    let server = WorkServer::bind(&name, WorkImpl::default()).unwrap();
    assert_eq!(server.name(), name);
    assert_eq!(leftovers(&name).len(), 1);
    drop(server);
    assert!(leftovers(&name).is_empty());
}

#[test]
fn run_serves_on_the_calling_thread() {
    let name = unique_name("run");
    let server = WorkServer::bind(&name, WorkImpl::default()).unwrap();
    std::thread::spawn(move || server.run());
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(20, 22).unwrap(), 42);
    // `run` serves for ever; this process ends with it, so tidy up as the next bind would.
    std::fs::remove_file(format!("/dev/shm/shmrpc.{name}")).unwrap();
}

#[test]
fn the_same_client_carries_on_with_a_new_server() {
    let name = unique_name("restart");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    handle.shutdown().unwrap();
    for _ in 0..3 {
        assert!(matches!(
            client.add(1, 1),
            Err(Error::ServerNotRunning { .. })
        ));
    }
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    assert_eq!(client.add(2, 2).unwrap(), 4);
    assert_eq!(
        client.served().unwrap(),
        1,
        "the call went to the new server"
    );
    handle.shutdown().unwrap();
}

#[test]
fn bad_names_are_refused_before_anything_is_created() {
    let long = "x".repeat(65);
    for bad in ["", long.as_str(), "a/b", "../etc", "sp ace", "ü", "a~b"] {
        match WorkClient::connect(bad) {
            Err(Error::InvalidName { name, .. }) => assert_eq!(name, bad),
            other => panic!("connect {bad:?}: {other:?}"),
        }
        match WorkServer::bind(bad, WorkImpl::default()) {
            Err(e @ Error::InvalidName { .. }) => {
                assert!(e.to_string().contains("A-Z a-z 0-9"), "{e}")
            }
            other => panic!("bind {bad:?}: {other:?}"),
        }
    }
    let longest = "y".repeat(64);
    let handle = WorkServer::bind(&longest, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    assert_eq!(WorkClient::connect(&longest).unwrap().add(1, 1).unwrap(), 2);
    handle.shutdown().unwrap();
}
