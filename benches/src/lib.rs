//! What the benchmark needs: the echo service, the other processes (the benchmark runs itself
//! again in a role chosen by an environment variable), one transport per way of making a round
//! trip, and a latency histogram.
//!
//! Every transport moves the same payload both ways: 8 bytes, 1 KiB, 64 KiB or 1 MiB.

#![allow(missing_debug_implementations)] // benchmark plumbing, not an API

pub mod asyncs;
pub mod floor;
#[cfg(feature = "peers")]
pub mod iceoryx;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, Replied, Reply, ServerOptions, WaitStrategy, shm_service};

/// The benchmarked service: each method returns its argument's bytes.
#[shm_service]
pub trait Echo {
    /// The allocation-free forms: the method writes the bytes straight back into the slot, and
    /// the client receives them into a buffer it reuses (`echo_into`).
    fn echo(&self, x: &[u8], reply: Reply<'_, Vec<u8>>) -> Replied;
    /// The allocating forms: the method builds a vector, the client gets a new one each call.
    fn echo_vec(&self, x: &[u8]) -> Vec<u8>;
}

struct EchoImpl;

/// `black_box`: the server looks at each argument as a real method would.
impl Echo for EchoImpl {
    fn echo(&self, x: &[u8], reply: Reply<'_, Vec<u8>>) -> Replied {
        reply.send_slice(std::hint::black_box(x))
    }
    fn echo_vec(&self, x: &[u8]) -> Vec<u8> {
        std::hint::black_box(x).to_vec()
    }
}

/// How many bytes go each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    B8,
    K1,
    K64,
    M1,
}

impl Payload {
    pub const ALL: [Payload; 4] = [Payload::B8, Payload::K1, Payload::K64, Payload::M1];

    pub fn bytes(self) -> usize {
        match self {
            Payload::B8 => 8,
            Payload::K1 => 1024,
            Payload::K64 => 65536,
            Payload::M1 => 1 << 20,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Payload::B8 => "8 B",
            Payload::K1 => "1 KiB",
            Payload::K64 => "64 KiB",
            Payload::M1 => "1 MiB",
        }
    }

    fn parse(s: &str) -> Payload {
        Payload::ALL
            .into_iter()
            .find(|p| p.bytes().to_string() == s)
            .unwrap_or(Payload::K64)
    }
}

/// A way of waiting, by name.
pub fn strategy_name(w: WaitStrategy) -> &'static str {
    match w {
        WaitStrategy::SpinOnly => "spin",
        WaitStrategy::ParkOnly => "park",
        _ => "adaptive",
    }
}

fn strategy(name: &str) -> WaitStrategy {
    match name {
        "spin" => WaitStrategy::SpinOnly,
        "park" => WaitStrategy::ParkOnly,
        _ => WaitStrategy::Adaptive,
    }
}

/// Where a process of the benchmark may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpus {
    /// The measuring process: CPU 0.
    Measuring,
    /// The other process of a measured pair (echo servers): CPU 1.
    Peer,
    /// Anywhere.
    All,
}

/// Pins this process (its threads to come) to `cpus`, unless `SHMRPC_BENCH_PIN=0` or the
/// machine has a single CPU. Without pinning, the kernel sometimes puts both processes of a
/// sleeping pair on one CPU (a wake-up then costs a context switch, ~4 µs on our VM) and
/// sometimes on two (an inter-processor wake-up of an idle virtual CPU, ~40 µs): each transport
/// would land in one mode or the other by chance, and ratios between them would mean nothing.
pub fn pin(cpus: Cpus) {
    // Not `available_parallelism`, which counts only the CPUs this process may already use.
    let n = online_cpus();
    if n < 2 || std::env::var("SHMRPC_BENCH_PIN").is_ok_and(|v| v == "0") {
        return;
    }
    let mut set = rustix::thread::CpuSet::new();
    match cpus {
        Cpus::Measuring => set.set(0),
        Cpus::Peer => set.set(1),
        Cpus::All => (0..n.min(rustix::thread::CpuSet::MAX_CPU)).for_each(|c| set.set(c)),
    }
    if let Err(e) = rustix::thread::sched_setaffinity(None, &set) {
        eprintln!("benchmark: cannot pin to {cpus:?} ({e}); measuring unpinned");
    }
}

/// How many CPUs the machine has online (CPUs 0 to n-1 as far as pinning goes).
pub fn online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| {
            s.trim()
                .split([',', '-'])
                .filter_map(|n| n.parse::<usize>().ok())
                .max()
        })
        .map_or(1, |last| last + 1)
}

/// The environment variable that gives a re-executed benchmark its role.
pub const ROLE: &str = "SHMRPC_BENCH_ROLE";

/// If this process was started in a role, plays it and exits.
pub fn play_role_if_any() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let args: Vec<&str> = role.split_whitespace().collect();
    // The other side of a measured pair runs on a core of its own; client processes of the
    // many-clients pass run wherever the kernel puts them.
    pin(if args.first() == Some(&"load") {
        Cpus::All
    } else {
        Cpus::Peer
    });
    match args.as_slice() {
        ["server", name, wait] => {
            let options = ServerOptions::default().wait(strategy(wait));
            let handle = EchoServer::bind_with(name, EchoImpl, options)
                .unwrap()
                .spawn()
                .unwrap();
            println!("ready");
            let _ = std::io::stdin().read_line(&mut String::new());
            handle.shutdown().unwrap();
        }
        ["spin-echo", size, line] => floor_echo(size.parse().unwrap(), false, *line == "one-line"),
        ["futex-echo", size, line] => floor_echo(size.parse().unwrap(), true, *line == "one-line"),
        ["stream-echo", size] => stream_echo(size.parse().unwrap()),
        ["load", name, payload, wait] => load(name, Payload::parse(payload), strategy(wait)),
        ["idle", name, n] => idle_clients(name, n.parse().unwrap()),
        #[cfg(feature = "peers")]
        ["iceoryx-server", name, size] => iceoryx::serve(name, size.parse().unwrap()),
        other => panic!("unknown benchmark role {other:?}"),
    }
    std::process::exit(0);
}

/// One request/response round trip, and what it costs to set up and tear down.
pub trait Transport {
    fn round_trip(&mut self);
    /// The other process, frozen (SIGSTOP) while other transports are measured: several of them
    /// spin for ever.
    fn peer_pid(&self) -> Option<u32>;
}

/// Freezes (`false`) or thaws (`true`) a transport's other process.
pub fn set_running(t: &dyn Transport, running: bool) {
    if let Some(pid) = t
        .peer_pid()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let signal = if running {
            rustix::process::Signal::CONT
        } else {
            rustix::process::Signal::STOP
        };
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// A child process that is killed when dropped.
pub(crate) struct Peer(Child);

impl Drop for Peer {
    /// Closes stdin (a server then shuts down cleanly and removes its name), waits a moment, kills.
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn role(role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current exe"));
    c.env(ROLE, role);
    c
}

/// shmrpc: an echo server process, this process as its client.
pub struct Shmrpc {
    client: EchoClient,
    /// The allocating forms (`echo_vec`), or the allocation-free ones (`echo` / `echo_into`).
    allocating: bool,
    request: Vec<u8>,
    reply: Vec<u8>,
    _server: Option<Peer>,
}

impl Shmrpc {
    pub fn start(payload: Payload, wait: WaitStrategy) -> Self {
        Self::start_with(payload, wait, false)
    }

    /// As `start`, calling the allocating forms.
    pub fn allocating(payload: Payload) -> Self {
        Self::start_with(payload, WaitStrategy::Adaptive, true)
    }

    fn start_with(payload: Payload, wait: WaitStrategy, allocating: bool) -> Self {
        let name = format!(
            "bench-{}-{}-{}",
            std::process::id(),
            strategy_name(wait),
            allocating
        );
        let server = start_server(&name, wait);
        let client = EchoClient::connect_with(&name, ClientOptions::default().wait(wait)).unwrap();
        Self::new(client, payload, allocating, Some(server))
    }

    fn new(client: EchoClient, payload: Payload, allocating: bool, server: Option<Peer>) -> Self {
        Shmrpc {
            client,
            allocating,
            request: vec![7; payload.bytes()],
            reply: Vec::with_capacity(payload.bytes()),
            _server: server,
        }
    }
}

pub(crate) fn start_server(name: &str, wait: WaitStrategy) -> Peer {
    let mut child = role(&format!("server {name} {}", strategy_name(wait)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    Peer(child)
}

impl Transport for Shmrpc {
    fn peer_pid(&self) -> Option<u32> {
        self._server.as_ref().map(|p| p.0.id())
    }

    fn round_trip(&mut self) {
        if self.allocating {
            let reply = self.client.echo_vec(&self.request).unwrap();
            assert_eq!(reply.len(), self.request.len());
            std::hint::black_box(reply);
        } else {
            self.client
                .echo_into(&self.request, &mut self.reply)
                .unwrap();
            assert_eq!(self.reply.len(), self.request.len());
        }
    }
}

/// The floor: request and response words in a shared page, spinning (or sleeping on a futex)
/// on both sides, the payload copied in and out.
pub struct Floor {
    page: floor::SharedPage,
    seq: u64,
    buf: Vec<u8>,
    futex: bool,
    _echo: Peer,
}

impl Floor {
    /// `one_line`: each word with its payload in one cache line (else a request/response slot).
    pub fn start(payload: Payload, futex: bool, one_line: bool) -> Self {
        let size = payload.bytes();
        let page = floor::SharedPage::create(size, one_line).unwrap();
        let fd: OwnedFd = page.fd().try_clone_to_owned().unwrap();
        let kind = if futex { "futex-echo" } else { "spin-echo" };
        let line = if one_line { "one-line" } else { "slot" };
        let echo = role(&format!("{kind} {size} {line}"))
            .stdin(Stdio::from(fd))
            .spawn()
            .unwrap();
        Floor {
            page,
            seq: 0,
            buf: vec![5; size],
            futex,
            _echo: Peer(echo),
        }
    }
}

impl Transport for Floor {
    fn peer_pid(&self) -> Option<u32> {
        Some(self._echo.0.id())
    }

    fn round_trip(&mut self) {
        self.seq += 1;
        self.page.write(false, &self.buf);
        self.page.request().store(self.seq, Ordering::Release);
        if self.futex {
            rustix::thread::futex::wake(
                self.page.futex(self.page.request()),
                rustix::thread::futex::Flags::empty(),
                1,
            )
            .unwrap();
        }
        loop {
            let r = self.page.response().load(Ordering::Acquire);
            if r == self.seq {
                break;
            }
            if self.futex {
                let _ = rustix::thread::futex::wait(
                    self.page.futex(self.page.response()),
                    rustix::thread::futex::Flags::empty(),
                    r as u32,
                    None,
                );
            } else {
                std::hint::spin_loop();
            }
        }
        self.page.read(true, &mut self.buf);
    }
}

fn floor_echo(size: usize, futex: bool, one_line: bool) {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    let page = floor::SharedPage::open(fd, size, one_line).unwrap();
    let mut buf = vec![0; size];
    let mut last = 0;
    loop {
        let q = page.request().load(Ordering::Acquire);
        if q == last {
            if futex {
                let _ = rustix::thread::futex::wait(
                    page.futex(page.request()),
                    rustix::thread::futex::Flags::empty(),
                    q as u32,
                    None,
                );
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        last = q;
        page.read(false, &mut buf);
        page.write(true, &buf);
        page.response().store(q, Ordering::Release);
        if futex {
            rustix::thread::futex::wake(
                page.futex(page.response()),
                rustix::thread::futex::Flags::empty(),
                1,
            )
            .unwrap();
        }
    }
}

/// A byte stream to an echo process: a Unix socket, or a pair of pipes.
pub struct Stream {
    to: Box<dyn Write + Send>,
    from: Box<dyn Read + Send>,
    buf: Vec<u8>,
    _echo: Peer,
}

impl Stream {
    pub fn unix_socket(payload: Payload) -> Self {
        let size = payload.bytes();
        let (mine, theirs) = UnixStream::pair().unwrap();
        let theirs_out = theirs.try_clone().unwrap();
        let echo = role(&format!("stream-echo {size}"))
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)))
            .spawn()
            .unwrap();
        let from = mine.try_clone().unwrap();
        Stream {
            to: Box::new(mine),
            from: Box::new(from),
            buf: vec![3; size],
            _echo: Peer(echo),
        }
    }

    pub fn pipe(payload: Payload) -> Self {
        let size = payload.bytes();
        let mut echo = role(&format!("stream-echo {size}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let to: ChildStdin = echo.stdin.take().unwrap();
        let from: ChildStdout = echo.stdout.take().unwrap();
        Stream {
            to: Box::new(to),
            from: Box::new(from),
            buf: vec![3; size],
            _echo: Peer(echo),
        }
    }
}

impl Transport for Stream {
    fn peer_pid(&self) -> Option<u32> {
        Some(self._echo.0.id())
    }

    fn round_trip(&mut self) {
        self.to.write_all(&self.buf).unwrap();
        self.from.read_exact(&mut self.buf).unwrap();
    }
}

fn stream_echo(size: usize) {
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let mut buf = vec![0; size];
    while input.read_exact(&mut buf).is_ok() {
        if output
            .write_all(&buf)
            .and_then(|()| output.flush())
            .is_err()
        {
            break;
        }
    }
}

/// Latencies, 16 buckets per power of two of nanoseconds (about 4% resolution).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; 64 * 16],
        }
    }
}

impl Histogram {
    fn bucket(ns: u64) -> usize {
        let ns = ns.max(1);
        let log = 63 - ns.leading_zeros() as usize;
        let sub = if log >= 4 {
            ((ns >> (log - 4)) & 15) as usize
        } else {
            0
        };
        log * 16 + sub
    }

    fn value(bucket: usize) -> u64 {
        let (log, sub) = (bucket / 16, bucket % 16);
        if log >= 4 {
            (16 + sub as u64) << (log - 4)
        } else {
            1 << log
        }
    }

    pub fn record(&mut self, d: Duration) {
        self.counts[Self::bucket(d.as_nanos() as u64)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        let target = (self.count() as f64 * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Duration::from_nanos(Self::value(bucket));
            }
        }
        Duration::ZERO
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    fn to_line(&self) -> String {
        let items: Vec<String> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| format!("{b}:{n}"))
            .collect();
        items.join(" ")
    }

    fn from_line(line: &str) -> Histogram {
        let mut h = Histogram::default();
        for item in line.split_whitespace() {
            if let Some((b, n)) = item.split_once(':') {
                h.counts[b.parse::<usize>().unwrap()] += n.parse::<u64>().unwrap();
            }
        }
        h
    }
}

/// A load-generating client process: calls until its stdin closes, then reports its histogram.
fn load(name: &str, payload: Payload, wait: WaitStrategy) {
    let client = EchoClient::connect_with(name, ClientOptions::default().wait(wait)).unwrap();
    let mut t = Shmrpc::new(client, payload, false, None);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_line(&mut String::new());
        flag.store(true, Ordering::Relaxed);
    });
    println!("ready");
    let mut h = Histogram::default();
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        t.round_trip();
        let now = Instant::now();
        h.record(now - last);
        last = now;
    }
    println!("{}", h.to_line());
}

/// `n` connected clients that never call, until stdin closes.
fn idle_clients(name: &str, n: usize) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    let clients: Vec<EchoClient> = (0..n).map(|_| EchoClient::connect(name).unwrap()).collect();
    println!("ready");
    let _ = std::io::stdin().read_line(&mut String::new());
    drop(clients);
}

/// An echo server (adaptive) with `extra` other processes' worth of idle connections around.
pub struct Crowd {
    pub name: String,
    _server: Peer,
    idle: Option<Peer>,
}

impl Crowd {
    pub fn start() -> Self {
        let name = format!("bench-crowd-{}", std::process::id());
        let server = start_server(&name, WaitStrategy::Adaptive);
        Crowd {
            name,
            _server: server,
            idle: None,
        }
    }

    /// Connects `n` idle clients (in another process), or lets them all go (`0`).
    /// Then waits 100 ms, for the server to be done with the connections that came or went:
    /// what is measured next is a steady state.
    pub fn idle(&mut self, n: usize) {
        self.idle = None;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(100));
            return;
        }
        let mut child = role(&format!("idle {} {n}", self.name))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        self.idle = Some(Peer(child));
        std::thread::sleep(Duration::from_millis(100));
    }

    /// A client of the crowded server, as a transport.
    pub fn client(&self) -> Shmrpc {
        Shmrpc::new(
            EchoClient::connect(&self.name).unwrap(),
            Payload::B8,
            false,
            None,
        )
    }

    /// Times `connect` (socket, handshake, checks, slot mapping), `n` times.
    pub fn connects(&self, n: usize) -> Histogram {
        let mut h = Histogram::default();
        for _ in 0..n {
            let start = Instant::now();
            let client = EchoClient::connect(&self.name).unwrap();
            h.record(start.elapsed());
            drop(client);
        }
        h
    }
}

/// Runs `t` for `calls` calls, `gap` apart (sporadic calls: both sides go to sleep between them).
pub fn measure_sporadic(t: &mut dyn Transport, calls: usize, gap: Duration) -> Histogram {
    let mut h = Histogram::default();
    for _ in 0..calls {
        std::thread::sleep(gap);
        let start = Instant::now();
        t.round_trip();
        h.record(start.elapsed());
    }
    h
}

/// Throughput and latency of `clients` processes calling one server for `time`.
pub fn many_clients(
    clients: usize,
    payload: Payload,
    wait: WaitStrategy,
    time: Duration,
) -> (f64, Histogram) {
    let name = format!("bench-many-{}-{clients}", std::process::id());
    let _server = start_server(&name, wait);
    let mut loaders: Vec<Child> = (0..clients)
        .map(|_| {
            role(&format!(
                "load {name} {} {}",
                payload.bytes(),
                strategy_name(wait)
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut outputs: Vec<BufReader<ChildStdout>> = loaders
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for out in &mut outputs {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let start = Instant::now();
    std::thread::sleep(time);
    for c in &mut loaders {
        drop(c.stdin.take());
    }
    let elapsed = start.elapsed();
    let mut total = Histogram::default();
    for (out, mut child) in outputs.into_iter().zip(loaders) {
        let mut line = String::new();
        BufReader::new(out.into_inner())
            .read_line(&mut line)
            .unwrap();
        total.merge(&Histogram::from_line(&line));
        child.wait().unwrap();
    }
    (total.count() as f64 / elapsed.as_secs_f64(), total)
}

/// Runs `t` in a closed loop for `time` after a warm-up; its latency histogram.
pub fn measure(t: &mut dyn Transport, time: Duration) -> Histogram {
    let warm = Instant::now();
    while warm.elapsed() < time / 5 {
        t.round_trip();
    }
    let mut h = Histogram::default();
    let start = Instant::now();
    let mut last = start;
    while last.duration_since(start) < time {
        t.round_trip();
        let now = Instant::now();
        h.record(now - last);
        last = now;
    }
    h
}
