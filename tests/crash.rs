//! Behaviours 5, 6 and 14 of the contract: processes killed (SIGKILL) or stopped (SIGSTOP) at
//! every named step of the protocol. The victim kills itself at the step through the test-only fault hook
//! (`SHMRPC_FAULT`, compiled in by this crate's `fault-injection` feature).
//!
//! Bounds asserted are the contract's (250 ms); the protocol is designed to meet them with a
//! tenth of that to spare, and each test prints what it measured.

use std::process::Command;
use std::time::{Duration, Instant};

use shmrpc::__private::FaultStep;
use shmrpc::{ClientOptions, Error};
use shmrpc_tests::*;

const BOUND: Duration = Duration::from_millis(250);
const SIGKILL: i32 = 9;

fn client_steps() -> impl Iterator<Item = FaultStep> {
    FaultStep::ALL.into_iter().filter(|s| s.is_client())
}

fn server_steps() -> impl Iterator<Item = FaultStep> {
    FaultStep::ALL.into_iter().filter(|s| !s.is_client())
}

/// A client process that makes one `sleep(ms)` call and kills itself at `step`.
fn victim(name: &str, step: FaultStep, ms: u32, action: &str) -> Peer {
    Peer::spawn(
        Command::new(peer_program())
            .args(["sleep", name, &ms.to_string(), "666", "5000"])
            .env("SHMRPC_FAULT", format!("{}:{action}", step.name())),
    )
}

#[test]
fn a_client_killed_at_any_step_costs_the_others_at_most_the_rest_of_its_call_plus_250ms() {
    const VICTIM_CALL: u32 = 100;
    for step in client_steps() {
        let name = unique_name(step.name());
        let server = Peer::start(&["server", "work", &name]);
        let checker = WorkClient::connect(&name).unwrap();
        let mut victim = victim(&name, step, VICTIM_CALL, "kill");
        assert_eq!(
            victim.killed_by(Duration::from_secs(5)),
            Some(SIGKILL),
            "{}: the victim did not die",
            step.name()
        );
        // With one worker, the checker's call may wait for what is left of the victim's call
        // (the server runs a request it took); then it is served at once.
        let start = Instant::now();
        let token = 1000 + step as u64;
        assert_eq!(checker.sleep(1, token).unwrap(), token, "{}", step.name());
        let took = start.elapsed();
        eprintln!(
            "client killed at {:<22} next call took {took:?}",
            step.name()
        );
        assert!(
            took < Duration::from_millis(VICTIM_CALL.into()) + BOUND,
            "{}: {took:?}",
            step.name()
        );
        for i in 0..20 {
            assert_eq!(checker.add(i, 1).unwrap(), i + 1);
        }
        drop(server);
        assert!(
            leftovers(&name).is_empty(),
            "{}: {:?}",
            step.name(),
            leftovers(&name)
        );
    }
}

#[test]
fn a_client_killed_mid_call_costs_nothing_with_more_than_one_worker() {
    let name = unique_name("killed-workers");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let checker = WorkClient::connect(&name).unwrap();
    let mut victim = victim(&name, FaultStep::ClientPublished, 2000, "kill");
    assert_eq!(victim.killed_by(Duration::from_secs(5)), Some(SIGKILL));
    // The victim's 2 s call runs on one worker; the checker's calls go to the other.
    let start = Instant::now();
    for i in 0..100 {
        assert_eq!(checker.add(i, 1).unwrap(), i + 1);
    }
    assert!(start.elapsed() < BOUND, "{:?}", start.elapsed());
}

#[test]
fn a_client_stopped_at_any_step_costs_the_others_nothing() {
    for step in client_steps() {
        let name = unique_name(&format!("stopped-{}", step.name()));
        let _server = Peer::start(&["server", "work", &name]);
        let mut victim = victim(&name, step, 1, "stop");
        // Stopped (SIGSTOP), alive: the others must not wait for it at all.
        std::thread::sleep(Duration::from_millis(100));
        let client = WorkClient::connect_with(
            &name,
            ClientOptions::default().timeout(Duration::from_millis(200)),
        )
        .unwrap();
        let start = Instant::now();
        for i in 0..100 {
            assert_eq!(client.add(i, 1).unwrap(), i + 1, "{}", step.name());
        }
        eprintln!(
            "client stopped at {:<22} 100 calls of another took {:?}",
            step.name(),
            start.elapsed()
        );
        assert!(
            start.elapsed() < BOUND,
            "{}: {:?}",
            step.name(),
            start.elapsed()
        );
        victim.kill();
    }
}

#[test]
fn a_server_killed_at_any_step_fails_the_call_within_250ms_and_a_new_server_takes_over() {
    for step in server_steps() {
        let name = unique_name(step.name());
        let mut server = Peer::start_with(
            &["server", "work", &name],
            &[("SHMRPC_FAULT", &format!("{}:kill", step.name()))],
        );
        let start = Instant::now();
        let (result, client) = match WorkClient::connect(&name) {
            // Killed as it welcomed this client: connecting says so.
            Err(e) => (Err(e), None),
            Ok(client) => (client.sleep(20, 5), Some(client)),
        };
        let took = start.elapsed();
        eprintln!(
            "server killed at {:<22} the call ended in {took:?}: {:?}",
            step.name(),
            result.as_ref().map_err(kind)
        );
        match step {
            // Killed after it published the answer: the call has its answer.
            FaultStep::ServerWroteResponse => assert_eq!(result.unwrap(), 5),
            // Killed before it took the request: the request never ran, and no server holds
            // the name, so the call says so (a new server, had one bound, would have run it).
            FaultStep::ServerAccepted | FaultStep::ServerSawRequest => assert!(
                matches!(result, Err(Error::ServerNotRunning { .. })),
                "{}: {result:?}",
                step.name()
            ),
            _ => assert!(
                matches!(result, Err(Error::ServerDied { .. })),
                "{}: {result:?}",
                step.name()
            ),
        }
        assert!(
            took < Duration::from_millis(20) + BOUND,
            "{}: {took:?}",
            step.name()
        );
        assert_eq!(server.killed_by(Duration::from_secs(1)), Some(SIGKILL));
        assert!(
            leftovers(&name).is_empty(),
            "{}: a killed server left {:?}",
            step.name(),
            leftovers(&name)
        );
        let Some(client) = client else { continue };
        // Until a server binds the name again, calls fail at once with ServerNotRunning.
        for _ in 0..3 {
            let start = Instant::now();
            assert!(matches!(
                client.add(1, 2),
                Err(Error::ServerNotRunning { .. })
            ));
            assert!(start.elapsed() < BOUND);
        }
        // A new server takes the name at once; the same client object works again.
        let new = Peer::start(&["server", "work", &name]);
        assert_eq!(client.add(1, 2).unwrap(), 3);
        assert_eq!(client.echo(1, 2, 3).unwrap().server_pid, new.pid());
        drop(new);
        assert!(leftovers(&name).is_empty());
    }
}

#[test]
fn a_server_killed_while_idle_makes_the_next_call_server_not_running() {
    let name = unique_name("idle-kill");
    let mut server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    server.kill();
    let start = Instant::now();
    let err = client.add(1, 1).unwrap_err();
    assert!(matches!(err, Error::ServerNotRunning { .. }), "{err}");
    assert!(start.elapsed() < BOUND, "{:?}", start.elapsed());
    let _new = Peer::start(&["server", "work", &name]);
    assert_eq!(client.add(2, 2).unwrap(), 4);
}

#[test]
fn a_stopped_server_gives_timeout_not_server_died() {
    let name = unique_name("stopped-server");
    let server = Peer::start_with(
        &["server", "work", &name],
        &[("SHMRPC_FAULT", "server-took-request:stop")],
    );
    let client = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let start = Instant::now();
    let err = client.sleep(1, 1).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_millis(350));
    // Resumed, it finishes the old call (whose answer nobody takes) and serves again.
    server.signal("CONT");
    let patient = WorkClient::connect(&name).unwrap();
    assert_eq!(patient.sleep(1, 2).unwrap(), 2);
    assert_eq!(client.sleep(1, 3).unwrap(), 3);
}

#[test]
fn a_big_slot_carries_64_kib_arguments() {
    let name = unique_name("big");
    let _server = Peer::start(&["server", "big", &name]);
    let client = BigClient::connect(&name).unwrap();
    let data: [u8; 65536] = std::array::from_fn(|i| (i % 251) as u8);
    assert_eq!(
        client.sum(data).unwrap(),
        data.iter().map(|&b| u64::from(b)).sum::<u64>()
    );
}

#[test]
fn withdrawn_requests_never_run_even_if_the_server_stalls_while_reading_them() {
    // The server stops (SIGSTOP) right after reading the first request's number, before taking
    // it. Both callers time out and withdraw their requests; the second request's bytes are in
    // the slot when the server resumes. Neither request may run.
    let name = unique_name("stale-take");
    let server = Peer::start_with(
        &["server", "work", &name],
        &[("SHMRPC_FAULT", "server-saw-request:stop")],
    );
    let quick = ClientOptions::default().timeout(Duration::from_millis(100));
    let first = WorkClient::connect_with(&name, quick.clone()).unwrap();
    let second = WorkClient::connect_with(&name, quick.clone()).unwrap();
    assert!(matches!(first.add(1, 1), Err(Error::Timeout { .. })));
    assert!(matches!(second.echo(2, 2, 2), Err(Error::Timeout { .. })));
    // A stopped server cannot welcome a new client either: connecting times out.
    match WorkClient::connect_with(&name, quick) {
        Err(Error::Timeout { method, .. }) => assert_eq!(method, "connect"),
        other => panic!("{other:?}"),
    }
    server.signal("CONT");
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.served().unwrap(), 0, "a withdrawn request ran");
    assert_eq!(client.add(20, 22).unwrap(), 42);
}

#[test]
fn a_timeout_of_two_milliseconds_still_notices_a_dead_server() {
    let name = unique_name("short-timeout");
    let mut server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_millis(2)),
    )
    .unwrap();
    // A 2 ms deadline may pass before a loaded machine runs the server at all: a timeout is a
    // right answer then, any other error is not.
    let add = |a: i64, b: i64| {
        let start = Instant::now();
        loop {
            match client.add(a, b) {
                Err(Error::Timeout { .. }) if start.elapsed() < Duration::from_secs(10) => {}
                other => break other,
            }
        }
    };
    assert_eq!(add(1, 1).unwrap(), 2);
    server.kill();
    for _ in 0..3 {
        let err = client.add(1, 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::ServerNotRunning { .. } | Error::ServerDied { .. }
            ),
            "{err}"
        );
    }
    // The same client carries on with a new server.
    let _new = Peer::start(&["server", "work", &name]);
    assert_eq!(add(2, 2).unwrap(), 4);
}

#[test]
fn a_client_whose_every_slot_waits_for_a_late_answer_recovers_from_a_server_kill() {
    for slots in [1, 4] {
        let name = unique_name("abandoned");
        let mut server = Peer::start(&["server", "work", &name, &format!("workers={slots}")]);
        let client = WorkClient::connect_with(
            &name,
            ClientOptions::default()
                .timeout(Duration::from_millis(100))
                .max_slots(slots),
        )
        .unwrap();
        // Every slot holds a call the server took, then gave up on: each rests until its
        // answer, which a dead server never sends.
        std::thread::scope(|s| {
            for t in 0..slots {
                let client = &client;
                s.spawn(move || {
                    let e = client.sleep(60_000, t as u64).unwrap_err();
                    assert!(matches!(e, Error::Timeout { .. }), "{e}");
                });
            }
        });
        server.kill();
        let start = Instant::now();
        let err = client.add(1, 2).unwrap_err();
        assert!(matches!(err, Error::ServerNotRunning { .. }), "{err}");
        assert!(start.elapsed() < BOUND, "{:?}", start.elapsed());
        let _new = Peer::start(&["server", "work", &name]);
        assert_eq!(client.add(1, 2).unwrap(), 3, "{slots} slots");
    }
}

/// A call's deadline of a few milliseconds does not make `connect` fail on a loaded machine:
/// `connect` gives a server that holds the name at least `CONNECT_PATIENCE` to answer, and
/// reports a stopped one as `Timeout` after exactly that, saying how long it waited.
#[test]
fn connect_gives_a_slow_server_at_least_its_patience_whatever_the_call_timeout() {
    let name = unique_name("connect-patience");
    let server = Peer::start(&["server", "work", &name]);
    let pid = server.pid() as libc::pid_t;
    let quick = ClientOptions::default().timeout(Duration::from_millis(2));
    // Stopped for 20 ms (a fifth of the patience): the client connects once it runs again.
    // SAFETY: `pid` is our own child, which we have not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    wait_stopped(server.pid());
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    });
    let start = Instant::now();
    let client = WorkClient::connect_with(&name, quick.clone()).expect("connect while stopped");
    let took = start.elapsed();
    resume.join().unwrap();
    assert!(
        took >= Duration::from_millis(20),
        "connected to a stopped server: {took:?}"
    );
    assert_eq!(client.add(1, 2).unwrap(), 3);
    // Stopped for good: `Timeout` once the patience is over, not before, and soon after.
    server.signal("STOP");
    let start = Instant::now();
    let err = WorkClient::connect_with(&name, quick).unwrap_err();
    let took = start.elapsed();
    eprintln!("a stopped server: {err} after {took:?}");
    match &err {
        Error::Timeout {
            method, timeout, ..
        } => {
            assert_eq!(*method, "connect");
            assert_eq!(*timeout, shmrpc::CONNECT_PATIENCE);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("100ms"), "{err}");
    assert!(took >= shmrpc::CONNECT_PATIENCE, "{took:?}");
    assert!(took < shmrpc::CONNECT_PATIENCE + BOUND, "{took:?}");
    // A connected client's calls keep their own deadline: 2 ms, not the patience.
    let start = Instant::now();
    let err = client.add(2, 2).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < shmrpc::CONNECT_PATIENCE,
        "{:?}",
        start.elapsed()
    );
    server.signal("CONT");
}
