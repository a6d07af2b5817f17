//! The same traits across processes over zenoh, loopback only: every session listens on, or
//! connects to, `tcp/127.0.0.1:<port>` and nothing else (no multicast scouting).
//!
//! Each test starts its server as another process: this test binary again, running only the
//! `peer` test with `SHMRPC_ZENOH_PEER` set. The client's session listens; the server's connects
//! to it, so that a restarted server is back at once.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, Error, ServerOptions, shm_service};
use shmrpc_examples::kv::{CacheClient, CacheServer, MemoryCache};
use shmrpc_examples::{CalculatorClient, CalculatorServer, MathError, MyCalc};
use shmrpc_zenoh::{ConnectRemote, ServeRemote};
use zenoh::{Session, Wait};

/// A service for what the examples' do not do: run long, panic, tell who called.
#[shm_service]
pub trait Probe {
    fn sleep(&self, ms: u32, token: u64) -> u64;
    fn boom(&self, code: u32) -> u32;
    fn caller(&self) -> String;
    fn echo(&self, data: &[u8]) -> Vec<u8>;
    fn grow(&self, n: u32) -> Vec<u8>;
    fn shout(&self, n: u32) -> u32;
}

struct ProbeImpl;

impl Probe for ProbeImpl {
    fn sleep(&self, ms: u32, token: u64) -> u64 {
        std::thread::sleep(Duration::from_millis(ms.into()));
        token
    }
    fn boom(&self, code: u32) -> u32 {
        panic!("boom {code}");
    }
    fn caller(&self) -> String {
        shmrpc::remote::remote_caller()
            .map(|c| c.to_string())
            .unwrap_or_default()
    }
    fn echo(&self, data: &[u8]) -> Vec<u8> {
        data.to_vec()
    }
    fn grow(&self, n: u32) -> Vec<u8> {
        vec![9; n as usize]
    }
    fn shout(&self, n: u32) -> u32 {
        // One byte, then two-byte characters: a cut at an even length falls inside one.
        panic!("x{}", "é".repeat(n as usize));
    }
}

/// Another build of the calculator's trait: `add` over `i32`, and a method the server lacks.
mod other {
    use shmrpc::shm_service;

    #[shm_service]
    #[allow(dead_code)] // only its client is used
    pub trait Calculator {
        fn add(&self, a: i32, b: i32) -> i32;
        fn find(&self, key: u64) -> Option<u64>;
        fn square(&self, x: i64) -> i64;
    }
}

const PEER: &str = "SHMRPC_ZENOH_PEER";

/// Not a test: the server process of the others (does nothing unless started as one).
#[test]
fn peer() {
    let Ok(role) = std::env::var(PEER) else {
        return;
    };
    let args: Vec<&str> = role.split(' ').collect();
    let [connect, prefix] = args[..] else {
        panic!("bad peer role {role:?}");
    };
    let session = zenoh::open(shmrpc_zenoh::config(&[], &[connect]).unwrap())
        .wait()
        .unwrap();
    let calc =
        CalculatorServer::serve_remote(&session, &format!("{prefix}/calc"), MyCalc::default())
            .unwrap();
    let kv = CacheServer::serve_remote(&session, &format!("{prefix}/kv"), MemoryCache::default())
        .unwrap();
    let probe = ProbeServer::serve_remote_with(
        &session,
        &format!("{prefix}/probe"),
        ProbeImpl,
        ServerOptions::default().workers(4).max_message(1 << 20),
    )
    .unwrap();
    println!("ready {}", session.zid());
    // A line: stop serving (gracefully), and say so; then wait for the end of the input.
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 && line.trim() == "stop" {
        drop((calc, kv, probe));
        println!("stopped");
        let _ = std::io::stdin().read_line(&mut line);
    }
    std::process::exit(0);
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "shmrpc-test/{}/{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The client side: a session listening on a port of its own.
struct Local {
    session: Session,
    endpoint: String,
}

impl Local {
    fn new() -> Self {
        let endpoint = format!("tcp/127.0.0.1:{}", free_port());
        let session = zenoh::open(shmrpc_zenoh::config(&[&endpoint], &[]).unwrap())
            .wait()
            .unwrap();
        Local { session, endpoint }
    }

    /// A server process connected to this session, serving under `prefix`.
    fn server(&self, prefix: &str) -> Server {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "peer", "--nocapture", "--test-threads=1"])
            .env(PEER, format!("{} {prefix}", self.endpoint))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Killed and waited for on drop, however this ends.
        let mut server = Server {
            child,
            zid: String::new(),
            out: None,
        };
        let out = lines(server.child.stdout.take().unwrap());
        loop {
            let line = next_line(&out);
            // The test harness prints `test peer ... ` before it.
            if let Some((_, zid)) = line.trim().split_once("ready ") {
                server.zid = zid.to_owned();
                server.out = Some(out);
                return server;
            }
        }
    }

    /// Connects once the server's token reached this session.
    fn connect<C: ConnectRemote>(&self, key: &str, options: ClientOptions) -> C {
        let start = Instant::now();
        loop {
            match C::connect_remote_with(&self.session, key, options.clone()) {
                Ok(client) => return client,
                Err(Error::ServerNotRunning { .. })
                    if start.elapsed() < Duration::from_secs(10) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("connecting to {key}: {e}"),
            }
        }
    }
}

struct Server {
    child: Child,
    zid: String,
    out: Option<mpsc::Receiver<String>>,
}

/// A peer's output, line by line, read on a thread of its own: a test waits for a line with a
/// deadline, and fails (instead of hanging) when a peer falls silent.
fn lines(out: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The peer's next line; panics if it exited or printed nothing for a minute.
fn next_line(out: &mpsc::Receiver<String>) -> String {
    match out.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => line,
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the server exited"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the server printed nothing for 60 s"),
    }
}

impl Server {
    /// Stops serving gracefully (the process stays); returns once it did.
    fn stop(&mut self) {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"stop\n")
            .unwrap();
        let line = next_line(self.out.as_ref().unwrap());
        assert_eq!(line.trim(), "stopped");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"\n");
        }
        self.kill();
    }
}

#[test]
fn the_calculator_and_the_store_work_across_processes_every_method() {
    let local = Local::new();
    let prefix = prefix();
    let _server = local.server(&prefix);
    let calc: CalculatorClient = local.connect(&format!("{prefix}/calc"), ClientOptions::default());
    assert_eq!(calc.add(2, 3).unwrap(), 5);
    assert_eq!(calc.div(7, 2).unwrap(), Ok(3));
    assert_eq!(calc.div(1, 0).unwrap(), Err(MathError::DivideByZero));
    assert_eq!(calc.div(i64::MIN, -1).unwrap(), Err(MathError::Overflow));
    let mut samples = [0.0; 32];
    samples[..4].copy_from_slice(&[1.0, 2.0, 3.0, 6.0]);
    let stats = calc.stats(samples, 4).unwrap();
    assert_eq!((stats.mean, stats.max, stats.count), (3.0, 6.0, 4));
    assert_eq!(calc.find(3).unwrap(), None);
    assert_eq!(calc.find(4).unwrap(), Some(8));
    calc.reset().unwrap();

    let kv: CacheClient = local.connect(&format!("{prefix}/kv"), ClientOptions::default());
    assert_eq!(kv.get("a").unwrap(), None);
    kv.put("a/1", b"one").unwrap().unwrap();
    kv.put("a/2", &[7; 100_000]).unwrap().unwrap();
    kv.put("b", b"").unwrap().unwrap();
    assert!(kv.put("", b"x").unwrap().unwrap_err().contains("keys are"));
    assert_eq!(kv.get("a/1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(kv.get("a/2").unwrap().unwrap(), vec![7; 100_000]);
    assert_eq!(kv.keys("a/".into()).unwrap(), ["a/1", "a/2"]);
    assert!(kv.remove("a/1").unwrap());
    assert!(!kv.remove("a/1").unwrap());
    assert_eq!(kv.keys(String::new()).unwrap(), ["a/2", "b"]);
}

#[test]
fn a_method_learns_the_zenoh_id_of_its_caller_and_panics_are_reported() {
    let local = Local::new();
    let prefix = prefix();
    let server = local.server(&prefix);
    let probe: ProbeClient = local.connect(&format!("{prefix}/probe"), ClientOptions::default());
    assert_eq!(probe.caller().unwrap(), local.session.zid().to_string());
    assert_ne!(probe.caller().unwrap(), server.zid);
    match probe.boom(7) {
        Err(Error::HandlerPanicked { message, .. }) => assert!(message.contains("boom 7")),
        other => panic!("{other:?}"),
    }
    assert_eq!(probe.echo(b"still here").unwrap(), b"still here");
    // Over the server's max_message (1 MiB, which its liveliness token tells): refused by the
    // client, nothing sent.
    match probe.echo(&vec![1; 2 << 20]) {
        Err(Error::TooLarge {
            size,
            limit,
            response: false,
            ..
        }) => assert!(size > 2 << 20 && limit == 1 << 20, "{size} {limit}"),
        other => panic!("{other:?}"),
    }
    // A result over it: the method ran, its result was dropped, and the sizes are told.
    match probe.grow(3 << 20) {
        Err(Error::TooLarge {
            size,
            limit,
            response: true,
            ..
        }) => assert!(size >= 3 << 20 && limit == 1 << 20, "{size} {limit}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(probe.grow(1000).unwrap(), vec![9; 1000]);
    // Exactly max_message each way (a length padded to 32 bytes, so that the bytes start on a
    // cache line of a slot, then the bytes): sent and answered.
    let exact = vec![5; (1 << 20) - 32];
    assert_eq!(probe.echo(&exact).unwrap(), exact);
}

#[test]
fn no_server_is_server_not_running_at_once() {
    let local = Local::new();
    let start = Instant::now();
    match CalculatorClient::connect_remote(&local.session, &format!("{}/calc", prefix())) {
        Err(Error::ServerNotRunning { detail, .. }) => assert!(detail.contains("liveliness")),
        other => panic!("{other:?}"),
    }
    // Nothing answers on an unconnected session: the look-up ends at once.
    assert!(
        start.elapsed() < Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
    // A key with a wildcard names no one service.
    assert!(matches!(
        CalculatorClient::connect_remote(&local.session, "shmrpc/*"),
        Err(Error::Io { .. })
    ));
}

#[test]
fn a_slow_call_times_out_at_its_deadline_and_the_client_goes_on() {
    let local = Local::new();
    let prefix = prefix();
    let _server = local.server(&prefix);
    let probe: ProbeClient = local.connect(
        &format!("{prefix}/probe"),
        ClientOptions::default().timeout(Duration::from_millis(200)),
    );
    let start = Instant::now();
    assert!(matches!(probe.sleep(2_000, 1), Err(Error::Timeout { .. })));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(400),
        "{took:?}"
    );
    assert_eq!(probe.sleep(0, 2).unwrap(), 2);
}

#[test]
fn a_server_killed_mid_call_is_server_died_and_a_restarted_one_serves_the_same_client() {
    let local = Local::new();
    let prefix = prefix();
    let mut server = local.server(&prefix);
    let probe: ProbeClient = local.connect(
        &format!("{prefix}/probe"),
        ClientOptions::default().timeout(Duration::from_secs(10)),
    );
    assert_eq!(probe.sleep(0, 1).unwrap(), 1);
    let (result, killed_at) = std::thread::scope(|s| {
        let call = s.spawn(|| {
            let r = probe.sleep(5_000, 2);
            (r, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(200));
        let killed = Instant::now();
        server.kill();
        let (r, at) = call.join().unwrap();
        (r, at - killed)
    });
    assert!(
        matches!(result, Err(Error::ServerDied { .. })),
        "{result:?}"
    );
    assert!(killed_at < Duration::from_millis(50), "{killed_at:?}");
    // No server now: once its liveliness token's removal arrives (milliseconds), a call fails
    // at once. A call begun before that fails as the one in flight did (if the removal comes
    // while it waits, it waits up to the half second a late answer is given, then fails).
    let start = Instant::now();
    loop {
        let began = start.elapsed();
        match probe.sleep(0, 3) {
            Err(Error::ServerNotRunning { .. }) => break,
            Err(Error::ServerDied { .. }) if began < Duration::from_millis(100) => {}
            other => panic!("{other:?}: a call begun {began:?} after the first"),
        }
    }
    let start = Instant::now();
    assert!(matches!(
        probe.sleep(0, 3),
        Err(Error::ServerNotRunning { .. })
    ));
    assert!(
        start.elapsed() < Duration::from_millis(5),
        "{:?}",
        start.elapsed()
    );
    // A new server process: the same client carries on.
    let _new = local.server(&prefix);
    let start = Instant::now();
    loop {
        match probe.sleep(0, 4) {
            Ok(4) => break,
            Err(Error::ServerNotRunning { .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn another_build_of_the_trait_is_refused_per_method() {
    let local = Local::new();
    let prefix = prefix();
    let _server = local.server(&prefix);
    let other: other::CalculatorClient =
        local.connect(&format!("{prefix}/calc"), ClientOptions::default());
    // Same name and types: served, whatever the other methods.
    assert_eq!(other.find(1).unwrap(), None);
    match other.add(1, 2) {
        Err(Error::InterfaceMismatch { difference, .. }) => {
            assert!(difference.contains("add(i64, i64) -> i64"), "{difference}");
        }
        r => panic!("{r:?}"),
    }
    match other.square(3) {
        Err(Error::InterfaceMismatch { difference, .. }) => {
            assert!(difference.contains("no method `square`"), "{difference}");
        }
        r => panic!("{r:?}"),
    }
}

/// Sends raw bytes as a request; the response's status and text.
fn raw(session: &Session, key: &str, request: Vec<u8>) -> (u32, String) {
    let replies = session
        .get(key)
        .payload(request)
        .timeout(Duration::from_secs(5))
        .wait()
        .unwrap();
    let reply = replies.recv().unwrap();
    let bytes = reply.result().unwrap().payload().to_bytes().into_owned();
    assert_eq!(&bytes[..8], b"shmrpcA\x02");
    let status = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    (status, String::from_utf8_lossy(&bytes[12..]).into_owned())
}

fn request(fingerprint: u128, hash: u64, tag: u32, name: &str, args: &[u8]) -> Vec<u8> {
    let mut r = b"shmrpcQ\x02".to_vec();
    r.extend_from_slice(&fingerprint.to_le_bytes());
    r.extend_from_slice(&hash.to_le_bytes());
    r.extend_from_slice(&tag.to_le_bytes());
    r.extend_from_slice(&(name.len() as u32).to_le_bytes());
    r.extend_from_slice(name.as_bytes());
    r.extend_from_slice(args);
    r
}

#[test]
fn hostile_bytes_are_refused_and_the_server_serves_on() {
    let local = Local::new();
    let prefix = prefix();
    let _server = local.server(&prefix);
    let kv_key = format!("{prefix}/kv");
    let kv: CacheClient = local.connect(&kv_key, ClientOptions::default());
    kv.put("k", b"v").unwrap().unwrap();
    let s = &local.session;
    const BAD: u32 = 1;
    const NO_METHOD: u32 = 4;
    for (what, bytes, status, says) in [
        ("empty", vec![], BAD, "shorter than its header"),
        ("not shmrpc", vec![b'x'; 64], BAD, "not a shmrpc request"),
        (
            "another version",
            {
                let mut r = request(0, 0, 0, "get", &[]);
                r[7] = 9;
                r
            },
            BAD,
            "another version",
        ),
        (
            "a name past the end",
            {
                let mut r = request(0, 0, 0, "get", &[]);
                r[36..40].copy_from_slice(&200u32.to_le_bytes());
                r
            },
            BAD,
            "shorter than its method name",
        ),
        (
            "a name of 4 GiB",
            {
                let mut r = request(0, 0, 0, "get", &[]);
                r[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
                r
            },
            BAD,
            "too long",
        ),
        (
            "a header and no name",
            request(0, 0, 0, "get", &[])[..40].to_vec(),
            BAD,
            "shorter than its method name",
        ),
        (
            "a name of 1,025 bytes",
            request(0, 0, 0, &"n".repeat(1025), &[]),
            BAD,
            "too long",
        ),
        (
            "a name of 1,024 bytes (the longest)",
            request(0, 0, 0, &"n".repeat(1024), &[]),
            NO_METHOD,
            "no method `nnnn",
        ),
        (
            "wrong fingerprint and hash",
            request(1, 2, 0, "get", &[]),
            NO_METHOD,
            "other types",
        ),
        (
            "no such method",
            request(1, 2, 0, "drop_all", &[]),
            NO_METHOD,
            "no method `drop_all`",
        ),
    ] {
        let (got, text) = raw(s, &kv_key, bytes);
        assert_eq!(got, status, "{what}: {text}");
        assert!(text.contains(says), "{what}: {text}");
    }
    // Arguments that do not decode: the header of a real request for `get` (captured as any
    // peer could capture it), then a string length of 4 GiB, a cut string, no string at all.
    let header = captured_header(s, &prefix);
    for args in [
        &u32::MAX.to_le_bytes()[..],
        &[1, 0, 0, 0][..],
        &[5, 0, 0, 0, b'a'][..],
        &[][..],
    ] {
        let mut bytes = header.clone();
        bytes.extend_from_slice(args);
        let (got, text) = raw(s, &kv_key, bytes);
        assert_eq!(got, BAD, "{args:?}: {text}");
    }
    let mut good = header;
    good.extend_from_slice(&[1, 0, 0, 0, b'k']);
    assert_eq!(raw(s, &kv_key, good).0, 0, "the captured header is right");
    // Requests over the server's max_message (the probe's: 1 MiB) sent anyway, as a hostile
    // peer would: refused before any worker sees the bytes, or by the worker, unread.
    let probe_key = format!("{prefix}/probe");
    let _probe: ProbeClient = local.connect(&probe_key, ClientOptions::default());
    // Up to max_message + 4 KiB of query (here exactly that) is queued for a worker, which
    // refuses it unread; a longer one is refused at once, on zenoh's thread ("nothing ran").
    let header = request(0, 0, 0, "echo", &[]).len();
    for (len, at_once) in [
        ((1 << 20) + 100, false),
        ((1 << 20) + 4096 - header, false),
        ((1 << 20) + 4096 - header + 1, true),
        (3 << 20, true),
    ] {
        let (got, text) = raw(s, &probe_key, request(0, 0, 0, "echo", &vec![0; len]));
        assert_eq!(got, BAD, "{len}: {text}");
        assert!(text.contains("max_message"), "{len}: {text}");
        assert_eq!(text.contains("nothing ran"), at_once, "{len}: {text}");
    }
    // The server is alive and its data intact.
    assert_eq!(kv.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_graceful_stop_answers_the_call_in_flight_then_no_server() {
    let local = Local::new();
    let prefix = prefix();
    let mut server = local.server(&prefix);
    let probe: ProbeClient = local.connect(&format!("{prefix}/probe"), ClientOptions::default());
    std::thread::scope(|s| {
        let call = s.spawn(|| probe.sleep(300, 5));
        std::thread::sleep(Duration::from_millis(100));
        server.stop();
        assert_eq!(call.join().unwrap().unwrap(), 5);
    });
    let start = Instant::now();
    loop {
        match probe.sleep(0, 6) {
            Err(Error::ServerNotRunning { .. }) => break,
            Err(Error::ServerDied { .. }) if start.elapsed() < Duration::from_millis(600) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn options_that_concern_local_processes_are_refused() {
    let local = Local::new();
    for (options, says) in [
        (ServerOptions::default().allow_any_user(), "allow_uid"),
        (ServerOptions::default().allow_uid(1000), "allow_uid"),
        (
            ServerOptions::default().stop_on_signals(),
            "stop_on_signals",
        ),
        (ServerOptions::default().workers(0), "workers(0)"),
        (ServerOptions::default().max_message(10), "max_message"),
    ] {
        match ProbeServer::serve_remote_with(&local.session, &prefix(), ProbeImpl, options) {
            Err(e @ Error::Io { .. }) => assert!(format!("{e:?}").contains(says), "{e:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn clients_stay_unwind_safe_and_shareable() {
    fn check<T: Send + Sync + std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    check::<CalculatorClient>();
    check::<ProbeClient>();
}

/// The header (everything before the arguments) of a store client's request for `get`: the
/// client is pointed at a key where this session pretends to serve (a liveliness token and a
/// queryable that keeps what it receives and never answers).
fn captured_header(session: &Session, prefix: &str) -> Vec<u8> {
    let spy = format!("{prefix}/spy");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let _queryable = {
        let seen = seen.clone();
        session
            .declare_queryable(&spy)
            .callback(move |q| {
                *seen.lock().unwrap() = q.payload().unwrap().to_bytes().into_owned();
            })
            .wait()
            .unwrap()
    };
    let _token = session
        .liveliness()
        .declare_token(format!("{spy}/_shmrpc_live/spy"))
        .wait()
        .unwrap();
    let client = CacheClient::connect_remote_with(
        session,
        &spy,
        ClientOptions::default().timeout(Duration::from_millis(300)),
    )
    .unwrap();
    // The spy lets the query go unanswered: to the client, a server that went away.
    assert!(matches!(client.get("k"), Err(Error::ServerDied { .. })));
    let request = seen.lock().unwrap().clone();
    assert!(request.len() > 45, "{request:?}");
    // The arguments of get("k"): a length and one byte.
    request[..request.len() - 5].to_vec()
}

#[test]
fn inside_a_current_thread_runtime_calls_fail_with_a_reason_rather_than_panic() {
    let local = Local::new();
    let prefix = prefix();
    let _server = local.server(&prefix);
    let probe: ProbeClient = local.connect(&format!("{prefix}/probe"), ClientOptions::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        match probe.sleep(0, 1) {
            Err(e @ Error::Io { .. }) => assert!(format!("{e:?}").contains("current-thread")),
            other => panic!("{other:?}"),
        }
        match ProbeClient::connect_remote(&local.session, &format!("{prefix}/probe")) {
            Err(e @ Error::Io { .. }) => assert!(format!("{e:?}").contains("current-thread")),
            other => panic!("{other:?}"),
        }
        assert!(shmrpc_zenoh::open(&[], &[]).is_err());
    });
    // Outside it, the same client works.
    assert_eq!(probe.sleep(0, 2).unwrap(), 2);
}

/// The seam without zenoh: a transport that hands each request straight to a service in this
/// process, on the calling thread.
struct InProcess(std::sync::Arc<shmrpc::remote::Service>);

impl shmrpc::remote::Transport for InProcess {
    fn round_trip(
        &self,
        request: Vec<u8>,
        _deadline: Instant,
    ) -> Result<Vec<u8>, shmrpc::remote::Failure> {
        Ok(self.0.handle(&request, "in-process"))
    }
}

fn in_process<S: shmrpc::remote::RemoteServer, C: shmrpc::remote::RemoteClient>(
    service: S::Service,
    options: &ServerOptions,
) -> C {
    let service = S::remote_service(service, options).unwrap();
    C::with_transport(
        "in-process",
        std::sync::Arc::new(InProcess(std::sync::Arc::new(service))),
        Duration::from_secs(1),
    )
}

/// A service whose method calls another through the seam, on the same thread.
#[shm_service]
pub trait Outer {
    fn via(&self, n: u32) -> u64;
}

struct OuterImpl(ProbeClient);

impl Outer for OuterImpl {
    fn via(&self, n: u32) -> u64 {
        self.0.grow(n).unwrap().len() as u64
    }
}

#[test]
fn the_seam_carries_calls_without_zenoh_and_a_method_may_call_through_it() {
    let service = <ProbeServer<ProbeImpl> as shmrpc::remote::RemoteServer>::remote_service(
        ProbeImpl,
        &ServerOptions::default().workers(3).max_message(4096),
    )
    .unwrap();
    assert_eq!(service.interface_name(), "Probe");
    assert!(
        service.description().contains("grow"),
        "{}",
        service.description()
    );
    assert_eq!((service.workers(), service.max_message()), (3, 4096));
    let probe: ProbeClient = in_process::<ProbeServer<ProbeImpl>, _>(
        ProbeImpl,
        &ServerOptions::default().max_message(4096),
    );
    assert_eq!(probe.echo(b"abc").unwrap(), b"abc");
    assert_eq!(probe.caller().unwrap(), "in-process");
    // This transport does not know the server's limit: the request goes out, and the server
    // refuses it.
    match probe.echo(&[0; 8192]) {
        Err(Error::BadRequest { reason, .. }) => assert!(reason.contains("max_message")),
        other => panic!("{other:?}"),
    }
    // Exactly max_message (a length padded to 32 bytes, then the bytes) each way is taken; a
    // byte more is not.
    let exact = vec![5; 4096 - 32];
    assert_eq!(probe.echo(&exact).unwrap(), exact);
    assert!(matches!(
        probe.echo(&[5; 4096 - 31]),
        Err(Error::BadRequest { .. })
    ));
    // A panic message longer than max_message is cut, on a character's boundary.
    let small: ProbeClient = in_process::<ProbeServer<ProbeImpl>, _>(
        ProbeImpl,
        &ServerOptions::default().max_message(256),
    );
    match small.shout(301) {
        Err(Error::HandlerPanicked { message, .. }) => {
            assert_eq!(message.len(), 255);
            assert!(message.starts_with('x') && message[1..].chars().all(|c| c == 'é'));
        }
        other => panic!("{other:?}"),
    }
    // A method that calls another service in process: the server's per-thread state is not
    // held across the method.
    let outer: OuterClient =
        in_process::<OuterServer<OuterImpl>, _>(OuterImpl(probe), &ServerOptions::default());
    assert_eq!(outer.via(100).unwrap(), 100);
}

/// A hostile server: answers every request with the same bytes.
struct Answers(Vec<u8>);

impl shmrpc::remote::Transport for Answers {
    fn round_trip(
        &self,
        _request: Vec<u8>,
        _deadline: Instant,
    ) -> Result<Vec<u8>, shmrpc::remote::Failure> {
        Ok(self.0.clone())
    }
}

#[test]
fn a_hostile_servers_answers_are_corrupted_never_a_panic_or_a_wrong_value() {
    use shmrpc::remote::RemoteClient;
    let response = |status: u32, body: &[u8]| {
        let mut r = b"shmrpcA\x02".to_vec();
        r.extend_from_slice(&status.to_le_bytes());
        r.extend_from_slice(body);
        r
    };
    for (what, bytes) in [
        ("empty", vec![]),
        ("short", b"shmrpcA".to_vec()),
        ("another magic", {
            let mut r = response(0, &[]);
            r[7] = 2;
            r
        }),
        ("an unknown status", response(99, b"?")),
        ("a too-large answer cut short", response(3, &[1, 2, 3])),
        ("a result cut short", response(0, &[5, 0, 0, 0, 1])),
        (
            "a result with bytes after it",
            response(0, &[1, 0, 0, 0, 7, 8]),
        ),
    ] {
        let client = ProbeClient::with_transport(
            "hostile",
            std::sync::Arc::new(Answers(bytes)),
            Duration::from_secs(1),
        );
        match client.echo(b"x") {
            Err(Error::Corrupted { .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

static SERVING: std::sync::Mutex<Option<shmrpc_zenoh::RemoteServing>> = std::sync::Mutex::new(None);

/// A service whose method stops its own server.
#[shm_service]
pub trait Quit {
    fn quit(&self) -> u32;
}

struct QuitImpl;

impl Quit for QuitImpl {
    fn quit(&self) -> u32 {
        drop(SERVING.lock().unwrap().take());
        7
    }
}

#[test]
fn stopping_a_server_in_this_process_waits_for_its_methods_and_leaves_no_thread() {
    // Both sessions in this process: the server's listens, the client's connects to it.
    let endpoint = format!("tcp/127.0.0.1:{}", free_port());
    let server_session = shmrpc_zenoh::open(&[&endpoint], &[]).unwrap();
    let client_session = shmrpc_zenoh::open(&[], &[&endpoint]).unwrap();
    let local = Local {
        session: client_session,
        endpoint,
    };
    for graceful in [true, false] {
        let key = format!("{}/probe", prefix());
        let serving = ProbeServer::serve_remote_with(
            &server_session,
            &key,
            ProbeImpl,
            ServerOptions::default().workers(3),
        )
        .unwrap();
        assert_eq!(serving.key(), key);
        // Each worker names itself once it runs.
        let start = Instant::now();
        while threads_named("shmrpc-zenoh") < 3 {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "the workers did not start"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(threads_named("shmrpc-zenoh"), 3);
        let probe: ProbeClient = local.connect(&key, ClientOptions::default());
        std::thread::scope(|s| {
            let call = s.spawn(|| probe.sleep(300, 9));
            std::thread::sleep(Duration::from_millis(100));
            let start = Instant::now();
            if graceful {
                serving.shutdown();
            } else {
                drop(serving);
            }
            // It waited for the method, whose answer went out.
            assert!(
                start.elapsed() >= Duration::from_millis(150),
                "{:?}",
                start.elapsed()
            );
            assert_eq!(call.join().unwrap().unwrap(), 9);
        });
        assert_eq!(threads_named("shmrpc-zenoh"), 0);
    }
    // A method may stop its own server: it returns, and its answer goes out.
    let key = format!("{}/quit", prefix());
    *SERVING.lock().unwrap() = Some(
        QuitServer::serve_remote_with(
            &server_session,
            &key,
            QuitImpl,
            ServerOptions::default().workers(2),
        )
        .unwrap(),
    );
    let quit: QuitClient = local.connect(&key, ClientOptions::default());
    assert_eq!(quit.quit().unwrap(), 7);
    let start = Instant::now();
    while threads_named("shmrpc-zenoh") > 0 {
        assert!(start.elapsed() < Duration::from_secs(1), "a worker is left");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A server that lets its liveliness token go 50 ms into a call, then answers 100 ms later
/// (`answer`), or never (holding the query, so that zenoh does not end it either).
#[test]
fn after_a_servers_token_goes_an_answer_on_its_way_is_taken_and_silence_is_server_died() {
    use shmrpc::remote::RemoteServer;
    use std::sync::{Arc, Mutex};
    let endpoint = format!("tcp/127.0.0.1:{}", free_port());
    let server_session = shmrpc_zenoh::open(&[&endpoint], &[]).unwrap();
    let local = Local {
        session: shmrpc_zenoh::open(&[], &[&endpoint]).unwrap(),
        endpoint,
    };
    let service = Arc::new(
        <ProbeServer<ProbeImpl> as RemoteServer>::remote_service(
            ProbeImpl,
            &ServerOptions::default(),
        )
        .unwrap(),
    );
    let held = Arc::new(Mutex::new(Vec::new()));
    for answer in [true, false] {
        let key = format!("{}/odd", prefix());
        // Declared (below) after the queryable, as a server does: a client that sees the token
        // reaches the queryable.
        let token = Arc::new(Mutex::new(None::<zenoh::liveliness::LivelinessToken>));
        let _queryable = {
            let (service, token, held) = (service.clone(), token.clone(), held.clone());
            server_session
                .declare_queryable(&key)
                .callback(move |query| {
                    let (service, token, held) = (service.clone(), token.clone(), held.clone());
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(50));
                        if let Some(token) = token.lock().unwrap().take() {
                            token.undeclare().wait().unwrap();
                        }
                        if answer {
                            std::thread::sleep(Duration::from_millis(100));
                            let request = query.payload().unwrap().to_bytes().into_owned();
                            let response = service.handle(&request, "odd");
                            query
                                .reply(query.key_expr().clone(), response)
                                .wait()
                                .unwrap();
                        } else {
                            held.lock().unwrap().push(query);
                        }
                    });
                })
                .wait()
                .unwrap()
        };
        *token.lock().unwrap() = Some(
            server_session
                .liveliness()
                .declare_token(format!("{key}/_shmrpc_live/odd-1-0-65536"))
                .wait()
                .unwrap(),
        );
        let probe: ProbeClient = local.connect(
            &key,
            ClientOptions::default().timeout(Duration::from_secs(5)),
        );
        let start = Instant::now();
        let result = probe.sleep(0, 3);
        let took = start.elapsed();
        if answer {
            assert_eq!(result.unwrap(), 3);
        } else {
            assert!(
                matches!(result, Err(Error::ServerDied { .. })),
                "{result:?}"
            );
            // The grace after the token went (500 ms), not the call's 5 s.
            assert!(
                took >= Duration::from_millis(500) && took < Duration::from_millis(1500),
                "{took:?}"
            );
        }
    }
}
