//! Behaviours 3, 4, 12 and 14 of the contract, behaviour 5 of the connections issue, and name
//! checks: connecting, binding, shutting down, and what is left in the system.

use std::time::{Duration, Instant};

use std::process::Command;

use shmrpc::{ClientOptions, Error, ServerOptions, WaitStrategy};
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
fn a_killed_server_leaves_nothing_and_the_next_bind_succeeds_at_once() {
    let name = unique_name("leftover");
    let mut dead = Peer::start(&["server", "work", &name]);
    assert_eq!(leftovers(&name), vec![format!("@shmrpc/u0/{name}")]);
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    assert_eq!(slot_mappings(), 1);
    dead.kill();
    assert!(
        leftovers(&name).is_empty(),
        "a killed server leaves its socket: {:?}",
        leftovers(&name)
    );
    // The client lets go of the dead server's slot once it notices.
    assert!(matches!(
        client.add(1, 1),
        Err(Error::ServerNotRunning { .. })
    ));
    assert_eq!(slot_mappings(), 0, "the dead server's slot is still mapped");
    assert!(matches!(
        WorkClient::connect(&name),
        Err(Error::ServerNotRunning { .. })
    ));
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    assert_eq!(client.add(2, 2).unwrap(), 4);
    handle.shutdown().unwrap();
    assert!(leftovers(&name).is_empty());
}

#[test]
fn already_running_names_the_live_winner_of_every_bind_race() {
    // Two processes bind the same name at once, 100 times: one wins, and the other's
    // AlreadyRunning names the winner's pid, never a dead or unknown one.
    for round in 0..100 {
        let name = unique_name(&format!("race{round}"));
        let mut a = Peer::spawn(Command::new(peer_program()).args(["server", "work", &name]));
        let mut b = Peer::spawn(Command::new(peer_program()).args(["server", "work", &name]));
        let (la, lb) = (a.line(), b.line());
        let (winner, loser_line) = match (la.as_str(), lb.as_str()) {
            ("ready", other) => (a.pid(), other.to_owned()),
            (other, "ready") => (b.pid(), other.to_owned()),
            _ => panic!("round {round}: {la:?} / {lb:?}"),
        };
        assert!(
            loser_line.starts_with("error ")
                && loser_line.contains(&format!("a live server (pid {winner}, uid 0)")),
            "round {round}: winner {winner}, loser said {loser_line:?}"
        );
    }
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
    assert_eq!(leftovers_once_spawns_exec(&name), Vec::<String>::new());
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
    assert_eq!(leftovers_once_spawns_exec(&name), Vec::<String>::new());
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
    assert_eq!(leftovers_once_spawns_exec(&name), Vec::<String>::new());
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
    assert_eq!(leftovers_once_spawns_exec(&name), Vec::<String>::new());
    WorkServer::bind(&name, WorkImpl::default()).unwrap();
}

/// A child started at the moment a server is dropped holds a copy of its listening socket until
/// its `exec`, so the name stays taken, and the socket's credentials name this process. A bind
/// by this process waits for the copy to go; it does not report this process as the live holder.
#[test]
fn a_name_held_by_a_childs_copy_is_bound_again_once_the_copy_goes() {
    let name = unique_name("copy-held");
    let server = WorkServer::bind(&name, WorkImpl::default()).unwrap();
    let child = hold_copies_of_descriptors(Duration::from_millis(50));
    drop(server);
    assert_eq!(leftovers(&name).len(), 1, "the child's copy holds the name");
    let again = WorkServer::bind(&name, WorkImpl::default());
    reap(child);
    let again = again.expect("a bind once the child's copy is gone");
    // And this process's live server is reported as such.
    match WorkServer::bind(&name, WorkImpl::default()) {
        Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("{other:?}"),
    }
    drop(again);

    // A copy that outlives the bind's patience: a clear error naming the cause, then the name
    // binds once the copy is gone.
    let server = WorkServer::bind(&name, WorkImpl::default()).unwrap();
    let child = hold_copies_of_descriptors(Duration::from_millis(600));
    drop(server);
    let err = WorkServer::bind(&name, WorkImpl::default()).unwrap_err();
    assert!(matches!(err, Error::NameTaken { .. }), "{err:?}");
    assert!(err.to_string().contains("a process it started"), "{err}");
    reap(child);
    WorkServer::bind(&name, WorkImpl::default()).expect("a bind once the copy is gone");
}

#[test]
fn run_serves_on_the_calling_thread() {
    let name = unique_name("run");
    let server = WorkServer::bind(&name, WorkImpl::default()).unwrap();
    std::thread::spawn(move || server.run());
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(20, 22).unwrap(), 42);
}

#[test]
fn run_with_several_workers_serves_on_this_thread_and_others() {
    let name = unique_name("run-workers");
    let server = WorkServer::bind_with(
        &name,
        WorkImpl::default(),
        ServerOptions::default().workers(3),
    )
    .unwrap();
    std::thread::spawn(move || server.run());
    let client = WorkClient::connect(&name).unwrap();
    let start = Instant::now();
    std::thread::scope(|s| {
        for token in 0..3 {
            let client = &client;
            s.spawn(move || assert_eq!(client.sleep(200, token).unwrap(), token));
        }
    });
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "three 200 ms calls on three workers took {:?}",
        start.elapsed()
    );
}

#[test]
fn zero_workers_is_a_clear_error() {
    let err = WorkServer::bind_with(
        &unique_name("zero"),
        WorkImpl::default(),
        ServerOptions::default().workers(0),
    )
    .unwrap_err();
    assert!(err.to_string().contains("workers(1)"), "{err}");
}

#[test]
fn connect_can_wait_for_a_server_to_bind() {
    let name = unique_name("late");
    let started = Instant::now();
    let binder = {
        let name = name.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            WorkServer::bind(&name, WorkImpl::default())
                .unwrap()
                .spawn()
                .unwrap()
        })
    };
    let client = WorkClient::connect_with(
        &name,
        ClientOptions::default().wait_for_server(Duration::from_secs(5)),
    )
    .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_millis(400),
        "{waited:?}"
    );
    assert_eq!(client.add(1, 1).unwrap(), 2);
    binder.join().unwrap().shutdown().unwrap();
    // And gives up at its bound, with the usual error.
    let start = Instant::now();
    let err = WorkClient::connect_with(
        &unique_name("never"),
        ClientOptions::default().wait_for_server(Duration::from_millis(100)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ServerNotRunning { .. }), "{err}");
    assert!(
        (Duration::from_millis(100)..Duration::from_millis(200)).contains(&start.elapsed()),
        "{:?}",
        start.elapsed()
    );
    // The longest timeout and spin budget are options like any other.
    let err = WorkClient::connect_with(
        &unique_name("never"),
        ClientOptions::default()
            .timeout(Duration::MAX)
            .spin_budget(Duration::MAX)
            .wait_for_server(Duration::from_millis(10)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ServerNotRunning { .. }), "{err}");
    let name = unique_name("longest");
    let handle = WorkServer::bind_with(
        &name,
        WorkImpl::default(),
        ServerOptions::default().spin_budget(Duration::MAX),
    )
    .unwrap()
    .spawn()
    .unwrap();
    for wait in [
        WaitStrategy::Adaptive,
        WaitStrategy::SpinOnly,
        WaitStrategy::ParkOnly,
    ] {
        let longest = ClientOptions::default()
            .timeout(Duration::MAX)
            .spin_budget(Duration::MAX)
            .wait(wait)
            .wait_for_server(Duration::from_millis(10));
        let client = WorkClient::connect_with(&name, longest).unwrap();
        assert_eq!(client.add(1, 2).unwrap(), 3);
        assert_eq!(client.sleep(5, 9).unwrap(), 9);
    }
    handle.shutdown().unwrap();
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
