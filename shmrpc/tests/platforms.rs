//! What works on every platform shmrpc builds for, run on each: on Linux with `cargo test`, on
//! Windows under Wine (`cargo test --target x86_64-pc-windows-gnu -p shmrpc -p shmrpc-cli --features shmrpc/fault-injection`).
//!
//! A service defined with the macro, its types crossing through the remote seam with an
//! in-process transport (the data layer, interfaces, errors and panics, exactly as over shared
//! memory), and the local transport between threads and between processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shmrpc::remote::{Failure, RemoteClient, RemoteServer, Service, Transport};
use shmrpc::{Error, ServerOptions, ShmData, Wire, shm_service};

#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Stats {
    pub mean: f64,
    pub max: f64,
    pub count: u32,
    pub _pad: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(u32)]
pub enum MathError {
    DivideByZero = 1,
    Overflow = 2,
}

#[derive(Clone, Debug, PartialEq, Wire)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
}

#[shm_service]
pub trait Everything {
    fn add(&self, a: i64, b: i64) -> i64;
    fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    fn stats(&self, samples: [f64; 32], n: u32) -> Stats;
    fn find(&self, key: u64) -> Option<u64>;
    fn upper(&self, text: &str) -> String;
    fn entries(&self, keys: Vec<String>) -> Vec<Entry>;
    fn sum(&self, values: &[f64]) -> f64;
    fn boom(&self, what: String);
    fn nap(&self, ms: u32) -> u32;
}

struct Impl;

impl Everything for Impl {
    fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
    fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        match b {
            0 => Err(MathError::DivideByZero),
            _ => a.checked_div(b).ok_or(MathError::Overflow),
        }
    }
    fn stats(&self, samples: [f64; 32], n: u32) -> Stats {
        let s = &samples[..n as usize];
        Stats {
            mean: s.iter().sum::<f64>() / f64::from(n),
            max: s.iter().copied().fold(f64::MIN, f64::max),
            count: n,
            _pad: 0,
        }
    }
    fn find(&self, key: u64) -> Option<u64> {
        (key == 42).then_some(7)
    }
    fn upper(&self, text: &str) -> String {
        text.to_uppercase()
    }
    fn entries(&self, keys: Vec<String>) -> Vec<Entry> {
        keys.into_iter()
            .map(|key| Entry {
                value: key.bytes().rev().collect(),
                key,
            })
            .collect()
    }
    fn sum(&self, values: &[f64]) -> f64 {
        values.iter().sum()
    }
    fn boom(&self, what: String) {
        panic!("{what}")
    }
    fn nap(&self, ms: u32) -> u32 {
        std::thread::sleep(Duration::from_millis(ms.into()));
        ms
    }
}

/// The seam without a network: each request goes straight to the service, on this thread.
struct InProcess(Arc<Service>);

impl Transport for InProcess {
    fn round_trip(&self, request: Vec<u8>, _deadline: Instant) -> Result<Vec<u8>, Failure> {
        Ok(self.0.handle(&request, "in-process"))
    }
}

fn in_process() -> EverythingClient {
    let service =
        <EverythingServer<Impl> as RemoteServer>::remote_service(Impl, &ServerOptions::default())
            .unwrap();
    EverythingClient::with_transport(
        "in-process",
        Arc::new(InProcess(Arc::new(service))),
        Duration::from_secs(5),
    )
}

#[test]
fn every_kind_of_value_errors_and_panics_cross_the_seam() {
    let c = in_process();
    assert_eq!(c.add(40, 2).unwrap(), 42);
    assert_eq!(c.div(7, 2).unwrap(), Ok(3));
    assert_eq!(c.div(7, 0).unwrap(), Err(MathError::DivideByZero));
    assert_eq!(c.div(i64::MIN, -1).unwrap(), Err(MathError::Overflow));
    let mut samples = [0.0; 32];
    samples[..3].copy_from_slice(&[1.0, 5.0, 3.0]);
    assert_eq!(
        c.stats(samples, 3).unwrap(),
        Stats {
            mean: 3.0,
            max: 5.0,
            count: 3,
            _pad: 0
        }
    );
    assert_eq!(c.find(42).unwrap(), Some(7));
    assert_eq!(c.find(1).unwrap(), None);
    assert_eq!(c.upper("grüße").unwrap(), "GRÜSSE");
    assert_eq!(
        c.entries(vec!["ab".into(), String::new()]).unwrap(),
        vec![
            Entry {
                key: "ab".into(),
                value: b"ba".to_vec()
            },
            Entry {
                key: String::new(),
                value: vec![]
            }
        ]
    );
    let big: Vec<f64> = (0..100_000).map(f64::from).collect();
    assert_eq!(c.sum(&big).unwrap(), 4_999_950_000.0);
    match c.boom("on purpose".into()) {
        Err(Error::HandlerPanicked { message, .. }) => assert_eq!(message, "on purpose"),
        other => panic!("{other:?}"),
    }
    // The service goes on after the panic.
    assert_eq!(c.add(1, 1).unwrap(), 2);
}

/// A live server is among the services `shmrpc list` finds (on Linux in the socket table, on
/// Windows among the named pipes), with its interface and counters; gone once it shut down.
#[test]
fn a_live_server_is_listed_and_described() {
    use shmrpc::inspect::{Service, services};
    let name = format!("platforms-listed-{}", std::process::id());
    let server = EverythingServer::bind(&name, Impl)
        .unwrap()
        .spawn()
        .unwrap();
    let found = services().unwrap();
    assert!(found.contains(&name), "{name} not in {found:?}");
    let service = Service::connect(&name, shmrpc::ClientOptions::default()).unwrap();
    assert_eq!(service.interface().name, "Everything");
    assert_eq!(service.stats().unwrap().pid, std::process::id());
    drop(service);
    server.shutdown().unwrap();
    let found = services().unwrap();
    assert!(!found.contains(&name), "{name} still in {found:?}");
}

/// Tells which server answered.
#[shm_service]
pub trait Which {
    fn which(&self) -> u32;
}

struct Numbered(u32);

impl Which for Numbered {
    fn which(&self) -> u32 {
        self.0
    }
}

/// Names that differ only by case or by trailing dots are different services, each served by
/// its own server and listed as itself. Windows compares pipe names without regard to case
/// and drops trailing dots from paths: before shmrpc encoded its object names, these four
/// shared one pipe there (both servers bound under Wine, and each name's clients reached
/// either server), and a client of `FOLD` reached the server of `fold`.
#[test]
fn names_that_differ_only_by_case_or_dots_are_different_services() {
    use shmrpc::inspect::services;
    let p = std::process::id();
    let names = [
        format!("Fold{p}"),
        format!("fold{p}"),
        format!("fold{p}."),
        format!("fold{p}.."),
    ];
    let servers: Vec<_> = (0..)
        .zip(&names)
        .map(|(i, name)| {
            WhichServer::bind(name, Numbered(i))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, name) in (0..).zip(&names) {
        for _ in 0..4 {
            let client = WhichClient::connect(name).unwrap();
            assert_eq!(client.which().unwrap(), i, "a client of {name}");
        }
    }
    let listed = services().unwrap();
    for name in &names {
        assert!(listed.contains(name), "{name} not in {listed:?}");
    }
    // Names nobody serves reach nobody.
    for name in [
        format!("FOLD{p}"),
        format!("fold{p}..."),
        format!("fOld{p}"),
    ] {
        match WhichClient::connect(&name) {
            Err(Error::ServerNotRunning { .. }) => {}
            Ok(client) => panic!("{name} reached server {:?}", client.which()),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    for server in servers {
        server.shutdown().unwrap();
    }
}

/// The local transport: a server and a client in this process (the behaviour suite, in
/// `tests/`, runs them in processes of their own on Linux).
#[test]
fn the_local_transport_serves_calls() {
    let name = format!("platforms-{}", std::process::id());
    let server = EverythingServer::bind(&name, Impl)
        .unwrap()
        .spawn()
        .unwrap();
    let client = EverythingClient::connect(&name).unwrap();
    assert_eq!(client.upper("shm").unwrap(), "SHM");
    assert_eq!(client.div(7, 0).unwrap(), Err(MathError::DivideByZero));
    let big: Vec<f64> = (0..100_000).map(f64::from).collect();
    assert_eq!(client.sum(&big).unwrap(), 4_999_950_000.0);
    match client.boom("on purpose".into()) {
        Err(Error::HandlerPanicked { message, .. }) => assert_eq!(message, "on purpose"),
        other => panic!("{other:?}"),
    }
    // Threads of one client call in parallel, each on a slot of its own.
    std::thread::scope(|s| {
        for t in 0..4i64 {
            let client = &client;
            s.spawn(move || {
                for i in 0..200 {
                    assert_eq!(client.add(t, i).unwrap(), t + i);
                }
            });
        }
    });
    // A second server cannot take the name.
    assert!(matches!(
        EverythingServer::bind(&name, Impl),
        Err(Error::AlreadyRunning { .. })
    ));
    server.shutdown().unwrap();
    match client.add(1, 1) {
        Err(Error::ServerNotRunning { .. }) => {}
        other => panic!("after the shutdown: {other:?}"),
    }
    // The name is free again.
    let again = EverythingServer::bind(&name, Impl)
        .unwrap()
        .spawn()
        .unwrap();
    assert_eq!(client.add(2, 2).unwrap(), 4);
    again.shutdown().unwrap();
}

/// Set in a copy of this test program that serves `name` for the test below.
const SERVE: &str = "SHMRPC_PLATFORMS_SERVE";

/// The server's side of the test below: serves until killed.
#[test]
fn serve_for_another_process() {
    let Ok(name) = std::env::var(SERVE) else {
        return;
    };
    let server = EverythingServer::bind(&name, Impl).unwrap();
    println!("ready");
    server.run().unwrap();
}

/// Another process of this test program: killed and reaped when dropped, so that a failed test
/// leaves nothing running.
struct Other(std::process::Child);

impl std::ops::Deref for Other {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Other {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Other {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(name: &str) -> Other {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "serve_for_another_process", "--nocapture"])
        .env(SERVE, name)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim_end() != "ready" {
        line.clear();
        assert_ne!(
            out.read_line(&mut line).unwrap(),
            0,
            "the server ended early"
        );
    }
    Other(child)
}

#[test]
fn a_server_in_another_process_serves_dies_mid_call_and_is_replaced() {
    if std::env::var_os(SERVE).is_some() || std::env::var_os(CALL).is_some() {
        return;
    }
    let name = format!("platforms-x-{}", std::process::id());
    let mut server = start_server(&name);
    let client = EverythingClient::connect(&name).unwrap();
    assert_eq!(client.upper("across").unwrap(), "ACROSS");
    assert_eq!(client.nap(1).unwrap(), 1);
    // Killed while it runs a method: the call fails at once, as `ServerDied`.
    std::thread::scope(|s| {
        let call = s.spawn(|| {
            let start = Instant::now();
            (client.nap(5_000), start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        let killed = Instant::now();
        server.kill().unwrap();
        let (result, took) = call.join().unwrap();
        let after_kill = killed.elapsed();
        assert!(
            matches!(result, Err(Error::ServerDied { .. })),
            "{result:?}"
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
        eprintln!("ServerDied {after_kill:?} after the kill");
        assert!(after_kill < Duration::from_millis(250), "{after_kill:?}");
    });
    let _ = server.wait();
    assert!(matches!(
        client.add(1, 2),
        Err(Error::ServerNotRunning { .. })
    ));
    // A new server under the name: the same client uses it.
    let mut again = start_server(&name);
    assert_eq!(client.add(1, 2).unwrap(), 3);
    again.kill().unwrap();
    let _ = again.wait();
}

/// Runs a future to its end on this thread (the test needs no executor crate).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    // Far beyond any call here: a lost wake-up fails the test instead of hanging it.
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let left = give_up.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "a future was never woken");
        std::thread::park_timeout(left);
    }
}

#[test]
fn async_calls_sleep_wake_and_time_out() {
    let name = format!("platforms-async-{}", std::process::id());
    let server = EverythingServer::bind(&name, Impl)
        .unwrap()
        .spawn()
        .unwrap();
    block_on(async {
        let client = EverythingAsyncClient::connect(&name).await.unwrap();
        assert_eq!(client.upper("async").await.unwrap(), "ASYNC");
        // Long enough to sleep (past the spin budget), then woken by the answer.
        assert_eq!(client.nap(30).await.unwrap(), 30);
        let quick = EverythingAsyncClient::connect_with(
            &name,
            shmrpc::ClientOptions::default().timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap();
        let start = Instant::now();
        match quick.nap(500).await {
            Err(Error::Timeout { .. }) => {}
            other => panic!("{other:?}"),
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_millis(300), "{took:?}");
    });
    server.shutdown().unwrap();
}

#[test]
fn a_call_times_out_at_its_deadline_and_its_late_answer_is_never_delivered() {
    let name = format!("platforms-timeout-{}", std::process::id());
    let server = EverythingServer::bind_with(&name, Impl, ServerOptions::default().workers(2))
        .unwrap()
        .spawn()
        .unwrap();
    let client = EverythingClient::connect_with(
        &name,
        shmrpc::ClientOptions::default()
            .timeout(Duration::from_millis(100))
            .max_slots(1),
    )
    .unwrap();
    let start = Instant::now();
    match client.nap(300) {
        Err(Error::Timeout { .. }) => {}
        other => panic!("{other:?}"),
    }
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_millis(250), "{took:?}");
    // The one slot waits for the late answer, then carries the next call's own.
    let give_up = Instant::now() + Duration::from_secs(10);
    let next = loop {
        match client.add(20, 22) {
            Err(Error::Timeout { .. }) if Instant::now() < give_up => continue,
            other => break other,
        }
    };
    assert_eq!(next.unwrap(), 42);
    server.shutdown().unwrap();
}

/// Set in a copy of this test program that calls `name` and is killed mid-call.
const CALL: &str = "SHMRPC_PLATFORMS_CALL";

/// The client's side of the test below: calls a long method, says so, and waits in it.
#[test]
fn call_for_another_process() {
    let Ok(name) = std::env::var(CALL) else {
        return;
    };
    let client = EverythingClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    println!("calling");
    let _ = client.nap(10_000);
}

#[test]
fn a_client_killed_mid_call_costs_the_others_nothing() {
    use std::io::BufRead;
    if std::env::var_os(CALL).is_some() || std::env::var_os(SERVE).is_some() {
        return;
    }
    let name = format!("platforms-victim-{}", std::process::id());
    let server = EverythingServer::bind_with(&name, Impl, ServerOptions::default().workers(2))
        .unwrap()
        .spawn()
        .unwrap();
    let mut victim = Other(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "call_for_another_process", "--nocapture"])
            .env(CALL, &name)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(victim.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim_end() != "calling" {
        line.clear();
        assert_ne!(
            out.read_line(&mut line).unwrap(),
            0,
            "the client ended early"
        );
    }
    std::thread::sleep(Duration::from_millis(50));
    victim.kill().unwrap();
    let _ = victim.wait();
    // The other worker serves the others at once, and the server goes on.
    let client = EverythingClient::connect(&name).unwrap();
    let start = Instant::now();
    for i in 0..100 {
        assert_eq!(client.add(i, 1).unwrap(), i + 1);
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    server.shutdown().unwrap();
}

/// The same trait, grown by a method (inserted mid-trait), in another build.
mod grown {
    // Only its client is used: the server is the older build's.
    #[allow(dead_code)]
    #[shmrpc::shm_service]
    pub trait Everything {
        fn add(&self, a: i64, b: i64) -> i64;
        fn mul(&self, a: i64, b: i64) -> i64;
        fn upper(&self, text: &str) -> String;
    }
}

#[test]
fn a_client_of_a_grown_interface_gets_interface_mismatch_for_the_new_method_only() {
    let name = format!("platforms-grown-{}", std::process::id());
    let server = EverythingServer::bind(&name, Impl)
        .unwrap()
        .spawn()
        .unwrap();
    let client = grown::EverythingClient::connect(&name).unwrap();
    assert_eq!(client.add(2, 3).unwrap(), 5);
    assert_eq!(client.upper("old").unwrap(), "OLD");
    match client.mul(2, 3) {
        Err(Error::InterfaceMismatch { difference, .. }) => {
            assert!(difference.contains("mul"), "{difference}");
        }
        other => panic!("{other:?}"),
    }
    // An exact client refuses the server at connect.
    assert!(matches!(
        grown::EverythingClient::connect_with(
            &name,
            shmrpc::ClientOptions::default().exact_interface()
        ),
        Err(Error::InterfaceMismatch { .. })
    ));
    server.shutdown().unwrap();
}

/// Behaviour 9: a client that writes garbage all over its own slot, publishes garbage requests
/// (any method, any length, any sequence number) and kicks slots it does not have costs the
/// other clients nothing, and the server (in another process) lives on. Needs the test-only
/// `fault-injection` feature for the raw connection (`--features fault-injection`).
#[cfg(feature = "fault-injection")]
#[test]
fn garbage_in_a_clients_own_slot_costs_the_others_nothing() {
    use shmrpc::__private::testing::raw_connect;
    if std::env::var_os(SERVE).is_some() || std::env::var_os(CALL).is_some() {
        return;
    }
    let name = format!("platforms-garbage-{}", std::process::id());
    let mut server = start_server(&name);
    let honest = EverythingClient::connect(&name).unwrap();
    let raw = raw_connect(&name).unwrap();
    let slot = raw.map().unwrap();
    // xorshift64: the same garbage on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..300 {
        for _ in 0..64 {
            let at = (random() as usize % (slot.len() - 8)) & !7;
            slot.write_u64(at, random());
        }
        raw.publish(&slot, random(), random() as u32 % 16, random() as u32);
        for index in [1, 63, u32::MAX] {
            raw.kick(index, random());
        }
        assert_eq!(honest.add(round, 1).unwrap(), round + 1, "round {round}");
        if round % 50 == 0 {
            assert_eq!(honest.upper("still").unwrap(), "STILL");
        }
    }
    assert!(server.try_wait().unwrap().is_none(), "the server died");
    let fresh = EverythingClient::connect(&name).unwrap();
    assert_eq!(fresh.upper("after").unwrap(), "AFTER");
    server.kill().unwrap();
    let _ = server.wait();
}

// Not here, and why:
// - A server of another user refused by its clients (`PermissionDenied`), and the access
//   rules: Wine gives every process one user (the same SID, whatever the Unix user), so no
//   other user exists there. On Linux, `tests/permissions.rs` runs them as real other users.
// - Truncating, growing, punching holes in or `mprotect`ing a slot, descriptors sent to the
//   server, a stopped (`SIGSTOP`) client: Linux-only attacks (a section cannot be resized on
//   Windows), in `tests/hostile.rs`.
