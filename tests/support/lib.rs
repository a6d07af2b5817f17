//! What the behaviour tests share: the services they call, the `peer` program that plays server
//! or client in another process, and helpers to start, watch and kill processes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmrpc::{ShmData, shm_service};

/// A struct with every kind of field.
#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Mixed {
    pub wide: u128,
    pub signed: i64,
    pub float: f64,
    pub chars: [char; 2],
    pub small: i16,
    pub byte: u8,
    pub flag: bool,
    pub kind: Kind,
    pub _pad: u8,
    pub nested: Inner,
    pub _tail: [u8; 14],
}

/// A nested struct.
#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Inner {
    pub a: u16,
    pub b: i8,
    pub c: u8,
}

/// A one-byte enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(u8)]
pub enum Kind {
    First = 1,
    Second = 7,
}

/// A four-byte enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(u32)]
pub enum Fault {
    Odd = 1,
    Big = 2,
}

/// A wrapper struct.
#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(transparent)]
pub struct Meters(pub f32);

/// A tuple struct.
#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Pair(pub u32, pub u32);

/// One method per allowed type: each returns its arguments, changed in a way the caller checks.
#[shm_service]
pub trait Types {
    fn u8s(&self, a: u8, b: u8) -> u8;
    fn u16s(&self, a: u16) -> u16;
    fn u32s(&self, a: u32) -> u32;
    fn u64s(&self, a: u64) -> u64;
    fn u128s(&self, a: u128) -> u128;
    fn i8s(&self, a: i8) -> i8;
    fn i16s(&self, a: i16) -> i16;
    fn i32s(&self, a: i32) -> i32;
    fn i64s(&self, a: i64) -> i64;
    fn i128s(&self, a: i128) -> i128;
    fn f32s(&self, a: f32) -> f32;
    fn f64s(&self, a: f64) -> f64;
    fn bools(&self, a: bool) -> bool;
    fn chars(&self, a: char) -> char;
    fn arrays(&self, a: [u16; 5], b: [[i8; 2]; 3]) -> [u16; 5];
    fn bytes(&self, a: [u8; 4096]) -> [u8; 4096];
    fn mixed(&self, a: Mixed) -> Mixed;
    /// Arguments of different alignments back to back.
    fn packed(&self, a: u8, b: u64, c: u16, d: u128, e: bool) -> u128;
    fn kinds(&self, a: Kind) -> Kind;
    fn meters(&self, a: Meters) -> Meters;
    fn pairs(&self, a: Pair) -> Pair;
    fn results(&self, a: u32) -> Result<u32, Fault>;
    fn options(&self, a: u64) -> Option<Mixed>;
    fn unit(&self);
    fn unit_args(&self, a: u32, b: char);
}

/// The server side of [`Types`].
#[derive(Debug, Default)]
pub struct TypesImpl {
    pub units: AtomicU64,
}

impl Types for TypesImpl {
    fn u8s(&self, a: u8, b: u8) -> u8 {
        a.wrapping_add(b)
    }
    fn u16s(&self, a: u16) -> u16 {
        !a
    }
    fn u32s(&self, a: u32) -> u32 {
        !a
    }
    fn u64s(&self, a: u64) -> u64 {
        !a
    }
    fn u128s(&self, a: u128) -> u128 {
        !a
    }
    fn i8s(&self, a: i8) -> i8 {
        a.wrapping_neg()
    }
    fn i16s(&self, a: i16) -> i16 {
        a.wrapping_neg()
    }
    fn i32s(&self, a: i32) -> i32 {
        a.wrapping_neg()
    }
    fn i64s(&self, a: i64) -> i64 {
        a.wrapping_neg()
    }
    fn i128s(&self, a: i128) -> i128 {
        a.wrapping_neg()
    }
    fn f32s(&self, a: f32) -> f32 {
        -a
    }
    fn f64s(&self, a: f64) -> f64 {
        -a
    }
    fn bools(&self, a: bool) -> bool {
        !a
    }
    fn chars(&self, a: char) -> char {
        char::from_u32(a as u32 + 1).unwrap_or('?')
    }
    fn arrays(&self, a: [u16; 5], b: [[i8; 2]; 3]) -> [u16; 5] {
        let mut out = a;
        out.reverse();
        out[0] = out[0].wrapping_add(
            b.iter()
                .flatten()
                .fold(0u16, |acc, &x| acc.wrapping_add(x as u16)),
        );
        out
    }
    fn bytes(&self, a: [u8; 4096]) -> [u8; 4096] {
        a.map(|b| b ^ 0xFF)
    }
    fn mixed(&self, a: Mixed) -> Mixed {
        changed(a)
    }
    fn packed(&self, a: u8, b: u64, c: u16, d: u128, e: bool) -> u128 {
        (a as u128) ^ (b as u128) << 8 ^ (c as u128) << 72 ^ d ^ (e as u128) << 127
    }
    fn kinds(&self, a: Kind) -> Kind {
        match a {
            Kind::First => Kind::Second,
            Kind::Second => Kind::First,
        }
    }
    fn meters(&self, a: Meters) -> Meters {
        Meters(a.0 * 2.0)
    }
    fn pairs(&self, a: Pair) -> Pair {
        Pair(a.1, a.0)
    }
    fn results(&self, a: u32) -> Result<u32, Fault> {
        match a {
            a if a > 1000 => Err(Fault::Big),
            a if a % 2 == 1 => Err(Fault::Odd),
            a => Ok(a / 2),
        }
    }
    fn options(&self, a: u64) -> Option<Mixed> {
        (a != 0).then(|| sample_mixed(a))
    }
    fn unit(&self) {
        self.units.fetch_add(1, Ordering::Relaxed);
    }
    fn unit_args(&self, a: u32, b: char) {
        self.units.fetch_add(a as u64 + b as u64, Ordering::Relaxed);
    }
}

/// A `Mixed` derived from a number.
pub fn sample_mixed(seed: u64) -> Mixed {
    Mixed {
        wide: u128::MAX - seed as u128,
        signed: -(seed as i64),
        float: seed as f64 / 3.0,
        chars: ['ß', char::from_u32(0x1F600).unwrap()],
        small: -12345,
        byte: seed as u8,
        flag: seed.is_multiple_of(2),
        kind: if seed.is_multiple_of(3) {
            Kind::First
        } else {
            Kind::Second
        },
        _pad: 0,
        nested: Inner {
            a: 65535,
            b: -128,
            c: 255,
        },
        _tail: [0; 14],
    }
}

/// What the `mixed` method does to its argument.
pub fn changed(a: Mixed) -> Mixed {
    Mixed {
        wide: !a.wide,
        signed: -a.signed,
        flag: !a.flag,
        ..a
    }
}

/// Answers tagged with the caller's values, so that a crossed answer is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(C)]
pub struct Tagged {
    pub client: u32,
    pub thread: u32,
    pub seq: u64,
    pub server_pid: u32,
    pub _pad: u32,
}

/// The service behaviour tests drive.
#[shm_service]
pub trait Work {
    /// Returns the values it was given, plus the server's pid.
    fn echo(&self, client: u32, thread: u32, seq: u64) -> Tagged;
    /// Sleeps `ms` milliseconds, then returns `token`.
    fn sleep(&self, ms: u32, token: u64) -> u64;
    /// Panics with a message that contains `code` (with `u32::MAX`: `"x"` and then 40,000
    /// `"é"`, a message longer than the slot, which must be cut at a character boundary).
    fn boom(&self, code: u32) -> u32;
    /// `a + b`.
    fn add(&self, a: i64, b: i64) -> i64;
    /// How many calls this server has served.
    fn served(&self) -> u64;
    /// The caller as the server sees it: pid, uid, gid (`u32::MAX` each outside a call, which
    /// would be a bug).
    fn caller(&self) -> [u32; 3];
}

/// The server side of [`Work`].
#[derive(Debug, Default)]
pub struct WorkImpl {
    served: AtomicU64,
}

impl Work for WorkImpl {
    fn echo(&self, client: u32, thread: u32, seq: u64) -> Tagged {
        self.served.fetch_add(1, Ordering::Relaxed);
        Tagged {
            client,
            thread,
            seq,
            server_pid: std::process::id(),
            _pad: 0,
        }
    }
    fn sleep(&self, ms: u32, token: u64) -> u64 {
        self.served.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(ms.into()));
        token
    }
    fn boom(&self, code: u32) -> u32 {
        if code == u32::MAX {
            std::panic::panic_any(format!("x{}", "é".repeat(40_000)));
        }
        panic!("boom {code}");
    }
    fn add(&self, a: i64, b: i64) -> i64 {
        self.served.fetch_add(1, Ordering::Relaxed);
        a.wrapping_add(b)
    }
    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
    fn caller(&self) -> [u32; 3] {
        shmrpc::Caller::current().map_or([u32::MAX; 3], |c| [c.pid(), c.uid(), c.gid()])
    }
}

/// A service with a big fixed-size argument.
#[shm_service]
pub trait Big {
    /// Sums the bytes.
    fn sum(&self, data: [u8; 65536]) -> u64;
}

/// The server side of [`Big`].
#[derive(Debug, Default)]
pub struct BigImpl;

impl Big for BigImpl {
    fn sum(&self, data: [u8; 65536]) -> u64 {
        data.iter().map(|&b| u64::from(b)).sum()
    }
}

/// The key-value store of the contract.
#[shm_service]
pub trait Store {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn put(&self, key: &str, value: &[u8]) -> Result<(), String>;
    fn keys(&self, prefix: String) -> Vec<String>;
    fn sum(&self, values: &[f64]) -> f64;
}

/// The server side of [`Store`]: refuses empty keys.
#[derive(Debug, Default)]
pub struct StoreImpl {
    map: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

impl Store for StoreImpl {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.map.lock().unwrap().get(key).cloned()
    }
    fn put(&self, key: &str, value: &[u8]) -> Result<(), String> {
        if key.is_empty() {
            return Err("an empty key".into());
        }
        self.map
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn keys(&self, prefix: String) -> Vec<String> {
        let map = self.map.lock().unwrap();
        map.keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect()
    }
    fn sum(&self, values: &[f64]) -> f64 {
        values.iter().sum()
    }
}

/// 16 MiB.
pub const HUGE: usize = 16 << 20;

/// Every kind of variable-size value, and big ones.
#[shm_service]
pub trait Data {
    /// Returns `data`.
    fn echo(&self, data: &[u8]) -> Vec<u8>;
    /// `borrowed` then `owned`.
    fn concat(&self, borrowed: &str, owned: String) -> String;
    /// The words in reverse order.
    fn reverse(&self, words: Vec<String>) -> Vec<String>;
    /// `Ok` with one `Tagged` per pair of `ids` and `seqs`, `Err` if their lengths differ.
    fn zip(&self, ids: &[u32], seqs: Vec<u64>) -> Result<Vec<Tagged>, String>;
    /// `v` with every byte plus one.
    fn bump(&self, v: Option<Vec<u8>>) -> Option<Vec<u8>>;
    /// `n` bytes, `i as u8` each.
    fn fill(&self, n: u64) -> Vec<u8>;
    /// 16 MiB, byte `i` is `seed + i as u8`.
    fn huge(&self, seed: u8) -> Box<[u8; HUGE]>;
    /// The sum of the bytes of a 16 MiB value.
    fn weigh(&self, value: Box<[u8; HUGE]>) -> u64;
    /// The sum of the `seq`s.
    fn seqs(&self, items: &[Tagged]) -> u64;
    /// How many are `true`.
    fn count(&self, flags: &[bool]) -> u32;
    /// How far apart the two slices are in the server's memory: lent out of one copy of the
    /// request, `b` is where the request has it.
    fn lent(&self, a: &[u64], b: &[u64]) -> u64;
    /// Returns `data`, written by the method straight into the slot.
    fn echo_sent(&self, data: &[u8], reply: shmrpc::Reply<'_, Vec<u8>>) -> shmrpc::Replied;
    /// `"hello, <name>"`, written by the method straight into the slot.
    fn greet(&self, name: &str, reply: shmrpc::Reply<'_, String>) -> shmrpc::Replied;
    /// A `Tagged` with `seq`, sent whole.
    fn tag(&self, seq: u64, reply: shmrpc::Reply<'_, Tagged>) -> shmrpc::Replied;
    /// The entries with `ttl` doubled, or an error if a key is empty.
    fn entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>, String>;
    /// What the change does, as a change: `Put` becomes `Remove` of its key and so on.
    fn undo(&self, change: Change) -> Change;
}

/// A struct holding text and bytes.
#[derive(Clone, Debug, PartialEq, shmrpc::Wire)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub ttl: u32,
    pub tags: Vec<String>,
    pub owner: Option<Tagged>,
}

/// An enum with data.
#[derive(Clone, Debug, PartialEq, shmrpc::Wire)]
pub enum Change {
    Put(Entry),
    Remove { key: String },
    Clear,
}

/// [`Data`] as a client that never heard of `Reply` sees it: the same interface.
pub mod plain_data {
    #[shmrpc::shm_service]
    pub trait Data {
        fn echo(&self, data: &[u8]) -> Vec<u8>;
        fn concat(&self, borrowed: &str, owned: String) -> String;
        fn reverse(&self, words: Vec<String>) -> Vec<String>;
        fn zip(&self, ids: &[u32], seqs: Vec<u64>) -> Result<Vec<crate::Tagged>, String>;
        fn bump(&self, v: Option<Vec<u8>>) -> Option<Vec<u8>>;
        fn fill(&self, n: u64) -> Vec<u8>;
        fn huge(&self, seed: u8) -> Box<[u8; crate::HUGE]>;
        fn weigh(&self, value: Box<[u8; crate::HUGE]>) -> u64;
        fn seqs(&self, items: &[crate::Tagged]) -> u64;
        fn count(&self, flags: &[bool]) -> u32;
        fn lent(&self, a: &[u64], b: &[u64]) -> u64;
        fn echo_sent(&self, data: Vec<u8>) -> Vec<u8>;
        fn greet(&self, name: String) -> String;
        fn tag(&self, seq: u64) -> crate::Tagged;
        fn entries(&self, entries: Vec<crate::Entry>) -> Result<Vec<crate::Entry>, String>;
        fn undo(&self, change: crate::Change) -> crate::Change;
    }
}

/// The server side of [`Data`].
#[derive(Debug, Default)]
pub struct DataImpl;

impl Data for DataImpl {
    fn echo(&self, data: &[u8]) -> Vec<u8> {
        data.to_vec()
    }
    fn concat(&self, borrowed: &str, owned: String) -> String {
        format!("{borrowed}{owned}")
    }
    fn reverse(&self, mut words: Vec<String>) -> Vec<String> {
        words.reverse();
        words
    }
    fn zip(&self, ids: &[u32], seqs: Vec<u64>) -> Result<Vec<Tagged>, String> {
        if ids.len() != seqs.len() {
            return Err(format!("{} ids but {} seqs", ids.len(), seqs.len()));
        }
        Ok(ids
            .iter()
            .zip(seqs)
            .map(|(&client, seq)| Tagged {
                client,
                thread: 0,
                seq,
                server_pid: std::process::id(),
                _pad: 0,
            })
            .collect())
    }
    fn bump(&self, v: Option<Vec<u8>>) -> Option<Vec<u8>> {
        v.map(|v| v.into_iter().map(|b| b.wrapping_add(1)).collect())
    }
    fn fill(&self, n: u64) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }
    fn huge(&self, seed: u8) -> Box<[u8; HUGE]> {
        let v: Vec<u8> = (0..HUGE).map(|i| seed.wrapping_add(i as u8)).collect();
        v.into_boxed_slice().try_into().unwrap()
    }
    fn weigh(&self, value: Box<[u8; HUGE]>) -> u64 {
        value.iter().map(|&b| u64::from(b)).sum()
    }
    fn seqs(&self, items: &[Tagged]) -> u64 {
        items.iter().map(|t| t.seq).sum()
    }
    fn count(&self, flags: &[bool]) -> u32 {
        flags.iter().filter(|&&f| f).count() as u32
    }
    fn echo_sent(&self, data: &[u8], reply: shmrpc::Reply<'_, Vec<u8>>) -> shmrpc::Replied {
        reply.send_slice(data)
    }
    fn greet(&self, name: &str, reply: shmrpc::Reply<'_, String>) -> shmrpc::Replied {
        reply.send(&format!("hello, {name}"))
    }
    fn tag(&self, seq: u64, reply: shmrpc::Reply<'_, Tagged>) -> shmrpc::Replied {
        reply.send(&Tagged {
            client: 0,
            thread: 0,
            seq,
            server_pid: std::process::id(),
            _pad: 0,
        })
    }
    fn entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>, String> {
        entries
            .into_iter()
            .map(|mut e| {
                if e.key.is_empty() {
                    return Err("an empty key".to_owned());
                }
                e.ttl *= 2;
                Ok(e)
            })
            .collect()
    }
    fn undo(&self, change: Change) -> Change {
        match change {
            Change::Put(e) => Change::Remove { key: e.key },
            Change::Remove { key } => Change::Put(Entry {
                key,
                value: vec![],
                ttl: 0,
                tags: vec![],
                owner: None,
            }),
            Change::Clear => Change::Clear,
        }
    }
    fn lent(&self, a: &[u64], b: &[u64]) -> u64 {
        (b.as_ptr() as u64).wrapping_sub(a.as_ptr() as u64)
    }
}

/// A service name no other test uses: `<what>-<pid>-<n>`.
pub fn unique_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What the system holds for service `name`: a socket holding its name (a listening socket in
/// `/proc/net/unix` under `@shmrpc/<user or public>/<name>`; accepted connections show the
/// same path but hold no name) and any file in `/dev/shm` naming it.
pub fn leftovers(name: &str) -> Vec<String> {
    /// `__SO_ACCEPTCON`, in the Flags column: a listening socket.
    const LISTENING: &str = "00010000";
    let mut found: Vec<String> = std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(3) == Some(&LISTENING)).then(|| fields.get(7).copied())?
        })
        .filter(|path| {
            path.strip_prefix("@shmrpc/")
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(_, service)| service == name)
        })
        .map(str::to_owned)
        .collect();
    if let Ok(dir) = std::fs::read_dir("/dev/shm") {
        found.extend(
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|f| f.contains(name)),
        );
    }
    found
}

/// [`leftovers`] once the name of a server of this process is free: waits (up to 1 s) for the
/// children other test threads are starting at that moment. Each holds a copy of every
/// descriptor of this process, the listening socket too, from its `clone` to its `exec`.
pub fn leftovers_once_spawns_exec(name: &str) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let found = leftovers(name);
        if found.is_empty() || start.elapsed() > std::time::Duration::from_secs(1) {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Starts a child that holds a copy of every descriptor of this process for `hold`, then exits,
/// as a child being spawned does until its `exec`. A raw `clone`, so that the fork handlers
/// (which give a server's listening sockets up in a forked child) do not run. Returns its pid.
pub fn hold_copies_of_descriptors(hold: std::time::Duration) -> libc::pid_t {
    let micros = hold.as_micros() as libc::useconds_t;
    // SAFETY: a clone without CLONE_VM copies the address space as fork does; the child calls
    // only usleep and _exit (async-signal-safe), never returning into Rust code.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: see above.
        unsafe {
            libc::usleep(micros);
            libc::_exit(0);
        }
    }
    assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
    pid as libc::pid_t
}

/// Waits for child `pid` to exit.
pub fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a live integer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// Shared-memory slots and sockets this process holds (mappings of shmrpc memfds, open socket
/// descriptors), for checking that nothing is left.
pub fn slot_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("memfd:shmrpc-slot"))
        .count()
}

/// Waits until every thread of process `pid` has stopped. `SIGSTOP` takes a while: the thread
/// the kernel picks has to run to begin the stop, and the others go on until they are told to,
/// long enough on a loaded machine to answer a few calls.
pub fn wait_stopped(pid: u32) {
    let start = std::time::Instant::now();
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
        let running = tasks.flatten().any(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // The state follows the command's closing parenthesis.
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('T' | 't')) | None)
        });
        if !running {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "process {pid} did not stop"
        );
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// The `peer` program: next to the test executable's `deps` folder.
pub fn peer_program() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    dir.join("peer")
}

/// How long a peer may stay silent when a test waits for its next line: far beyond any step
/// here (the slowest prints within a few seconds on a loaded machine), so that a peer that
/// never answers fails its test instead of hanging the suite.
pub const SILENCE: Duration = Duration::from_secs(60);

/// A child process in a process group of its own: the group (the peer and whatever it
/// forked) is killed (SIGKILL) and the peer reaped when dropped.
#[derive(Debug)]
pub struct Peer {
    pub child: Child,
    /// Its output, a line at a time, read by a thread of its own so that waiting for a line
    /// can have a deadline.
    lines: std::sync::mpsc::Receiver<String>,
    /// Whether `child` has been waited for (its pid, and so its group's id, may be reused).
    reaped: bool,
}

impl Peer {
    /// Runs `peer` with `args`, waiting until it prints `ready`.
    pub fn start(args: &[&str]) -> Peer {
        Self::start_with(args, &[])
    }

    /// As [`Peer::start`], with extra environment variables.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Peer {
        let mut peer = Self::spawn(
            Command::new(peer_program())
                .args(args)
                .envs(env.iter().copied()),
        );
        peer.expect_line("ready");
        peer
    }

    /// Runs `command` with piped stdin/stdout, not waiting for anything.
    pub fn spawn(command: &mut Command) -> Peer {
        use std::os::unix::process::CommandExt as _;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start the peer program");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut line = Vec::new();
            // Lines as they come, also those that are not UTF-8 (lossily).
            while stdout.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line).into_owned();
                line.clear();
                if send.send(text).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            lines,
            reaped: false,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads lines until one equals `expected`; panics if output ends first.
    pub fn expect_line(&mut self, expected: &str) {
        let line = self.line();
        assert_eq!(
            line,
            expected,
            "peer {} said {line:?}, expected {expected:?}",
            self.pid()
        );
    }

    /// The next line of output, without its newline; empty at end of output. Panics if the
    /// peer says nothing for [`SILENCE`].
    pub fn line(&mut self) -> String {
        self.next_line().unwrap_or_default()
    }

    /// The next line of output, without its newline; `None` at end of output. Panics if the
    /// peer says nothing for [`SILENCE`].
    fn next_line(&mut self) -> Option<String> {
        use std::sync::mpsc::RecvTimeoutError;
        match self.lines.recv_timeout(SILENCE) {
            Ok(line) => Some(line.trim_end().to_owned()),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!(
                "peer {} printed nothing for {SILENCE:?} and did not end",
                self.pid()
            ),
        }
    }

    /// Reads lines until one equals `wanted`, skipping others; panics if output ends first.
    pub fn skip_to_line(&mut self, wanted: &str) {
        while let Some(line) = self.next_line() {
            if line == wanted {
                return;
            }
        }
        panic!(
            "peer {} ended its output before it said {wanted:?}",
            self.pid()
        );
    }

    /// All output until the peer's output ends (it must be ending: killed or exiting).
    pub fn rest(&mut self) -> String {
        let mut rest = String::new();
        loop {
            match self.lines.recv_timeout(SILENCE) {
                Ok(line) => {
                    rest.push_str(&line);
                    rest.push('\n');
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return rest,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("peer {}'s output did not end", self.pid())
                }
            }
        }
    }

    /// Whether the process is still running (it is reaped if not).
    pub fn running(&mut self) -> bool {
        match self.child.try_wait().expect("try_wait") {
            Some(_) => {
                self.reaped = true;
                false
            }
            None => true,
        }
    }

    /// Writes `line` and a newline to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to the peer");
        stdin.flush().expect("flush to the peer");
    }

    /// Closes the process's stdin (peers take that as "stop").
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Sends SIGKILL to the process (not to what it forked: dropping the peer does that) and
    /// reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Whether the process has ended, without reaping it (so that its pid, and the id of the
    /// group it leads, stay its own).
    fn ended(&self) -> bool {
        // SAFETY: `info` is a plain C struct written by the kernel; WNOWAIT leaves the child
        // to be reaped by `Child::wait`.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                self.pid(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            ) == 0
                && info.si_pid() != 0
        }
    }

    /// Waits for the process to end, at most `limit`; the signal that killed it, if any.
    pub fn killed_by(&mut self, limit: Duration) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.reaped = true;
                return status.signal();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// Sends `signal` (a name such as `STOP` or `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{signal} {}", self.pid());
        if signal == "STOP" {
            wait_stopped(self.pid());
        }
    }

    /// Waits for the process to exit by itself, at most `limit`; its exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.reaped = true;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for Peer {
    /// Closes the peer's stdin (a server then shuts down cleanly and removes its name), gives it
    /// a moment, then kills it and whatever it forked (its process group), and reaps it.
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if self.reaped {
            return;
        }
        let end = Instant::now() + Duration::from_millis(300);
        while !self.ended() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: not reaped yet, so the pid is still this child's and so is the group it
        // leads; a signal touches no memory of ours.
        unsafe { libc::kill(-(self.pid() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The user the tests switch to, with `setpriv`.
pub const NOBODY: u32 = 65534;

/// Whether this process may run others as another user (root, and `setpriv` installed); says
/// so when not, so that a skipped test is visible.
pub fn can_switch_users() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && setpriv) {
        eprintln!("skipped: switching users needs root and setpriv");
    }
    root && setpriv
}

/// A `peer` command run as user `uid` (and group `uid`, no supplementary groups).
pub fn peer_as(uid: u32, args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid",
            &uid.to_string(),
            "--regid",
            &uid.to_string(),
            "--clear-groups",
            "--",
        ])
        .arg(peer_program())
        .args(args);
    command
}

/// CPU time a process has used so far, in clock ticks (user + system), from `/proc`.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    // Fields 14 and 15 (utime, stime), counted from 1, are 11 and 12 after the state field.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The kind of an error, as a word: `Timeout`, `ServerDied`, ...
pub fn kind(e: &shmrpc::Error) -> &'static str {
    use shmrpc::Error::*;
    match e {
        ServerNotRunning { .. } => "ServerNotRunning",
        Timeout { .. } => "Timeout",
        ServerDied { .. } => "ServerDied",
        AlreadyRunning { .. } => "AlreadyRunning",
        InterfaceMismatch { .. } => "InterfaceMismatch",
        PermissionDenied { .. } => "PermissionDenied",
        InvalidName { .. } => "InvalidName",
        NameTaken { .. } => "NameTaken",
        BadRequest { .. } => "BadRequest",
        HandlerPanicked { .. } => "HandlerPanicked",
        Corrupted { .. } => "Corrupted",
        TooLarge { .. } => "TooLarge",
        Io { .. } => "Io",
        _ => "Other",
    }
}

/// Calls every method of [`Types`] with values that exercise each type's edges, and checks
/// each answer. Used in both directions (server in the test, client in `peer`, and the reverse).
pub fn check_all_types(c: &TypesClient) -> Result<(), String> {
    fn same<T: PartialEq + std::fmt::Debug>(
        what: &str,
        got: Result<T, shmrpc::Error>,
        want: T,
    ) -> Result<(), String> {
        match got {
            Ok(got) if got == want => Ok(()),
            Ok(got) => Err(format!("{what}: got {got:?}, want {want:?}")),
            Err(e) => Err(format!("{what}: {e}")),
        }
    }
    same("u8", c.u8s(250, 10), 4)?;
    same("u16", c.u16s(0x1234), !0x1234)?;
    same("u32", c.u32s(u32::MAX), 0)?;
    same("u64", c.u64s(1 << 63), !(1 << 63))?;
    same("u128", c.u128s(u128::MAX - 5), 5)?;
    same("i8", c.i8s(i8::MIN), i8::MIN)?;
    same("i16", c.i16s(-300), 300)?;
    same("i32", c.i32s(i32::MAX), -i32::MAX)?;
    same("i64", c.i64s(-1), 1)?;
    same("i128", c.i128s(i128::MIN + 1), i128::MAX)?;
    same("f32", c.f32s(1.5), -1.5)?;
    same("f64", c.f64s(f64::MIN_POSITIVE), -f64::MIN_POSITIVE)?;
    let nan = c.f64s(f64::NAN).map_err(|e| e.to_string())?;
    if !nan.is_nan() {
        return Err(format!("f64 NaN came back as {nan}"));
    }
    same("bool", c.bools(true), false)?;
    same("bool", c.bools(false), true)?;
    same("char", c.chars('a'), 'b')?;
    same("char", c.chars('\u{10FFFE}'), '\u{10FFFF}')?;
    same(
        "arrays",
        c.arrays([1, 2, 3, 4, 5], [[1, 2], [3, -4], [5, 6]]),
        [5 + 13, 4, 3, 2, 1],
    )?;
    let bytes: [u8; 4096] = std::array::from_fn(|i| (i * 7) as u8);
    same("bytes", c.bytes(bytes), bytes.map(|b| b ^ 0xFF))?;
    for seed in [0, 1, 2, 3, 255, u64::MAX] {
        same(
            "mixed",
            c.mixed(sample_mixed(seed)),
            changed(sample_mixed(seed)),
        )?;
    }
    let want = TypesImpl::default().packed(0xAB, u64::MAX - 1, 0xBEEF, 1 << 100, true);
    same(
        "packed",
        c.packed(0xAB, u64::MAX - 1, 0xBEEF, 1 << 100, true),
        want,
    )?;
    same("enum", c.kinds(Kind::First), Kind::Second)?;
    same("enum", c.kinds(Kind::Second), Kind::First)?;
    same("transparent", c.meters(Meters(2.5)), Meters(5.0))?;
    same("tuple struct", c.pairs(Pair(1, 2)), Pair(2, 1))?;
    same("Result Ok", c.results(10), Ok(5))?;
    same("Result Err", c.results(3), Err(Fault::Odd))?;
    same("Result Err", c.results(5000), Err(Fault::Big))?;
    same("Option Some", c.options(42), Some(sample_mixed(42)))?;
    same("Option None", c.options(0), None)?;
    same("unit", c.unit(), ())?;
    same("unit args", c.unit_args(7, 'x'), ())?;
    Ok(())
}

/// A small deterministic random number generator (xorshift64*), for tests.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn fill(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            *b = self.next_u64() as u8;
        }
    }
}

/// Other definitions of the test services, as a client built from an older or newer version of
/// the trait would have them.
pub mod other_versions {
    use shmrpc::{ShmData, shm_service};

    /// `Work` with `add` taking `i32`s.
    pub mod narrow_add {
        #[super::shm_service]
        pub trait Work {
            fn echo(&self, client: u32, thread: u32, seq: u64) -> crate::Tagged;
            fn sleep(&self, ms: u32, token: u64) -> u64;
            fn boom(&self, code: u32) -> u32;
            fn add(&self, a: i32, b: i32) -> i32;
            fn served(&self) -> u64;
            fn caller(&self) -> [u32; 3];
        }
    }

    /// `Work` with a method more, in the middle: every method after it has another position.
    pub mod extra_method {
        #[super::shm_service]
        pub trait Work {
            fn echo(&self, client: u32, thread: u32, seq: u64) -> crate::Tagged;
            fn sleep(&self, ms: u32, token: u64) -> u64;
            fn reset(&self) -> u64;
            fn boom(&self, code: u32) -> u32;
            fn add(&self, a: i64, b: i64) -> i64;
            fn served(&self) -> u64;
            fn caller(&self) -> [u32; 3];
        }

        /// `Work` of this version: `add` subtracts 1000 more, so a test sees which server ran
        /// it; `reset` returns how many calls it served before.
        #[derive(Debug, Default)]
        pub struct NewWork(crate::WorkImpl);

        impl Work for NewWork {
            fn echo(&self, client: u32, thread: u32, seq: u64) -> crate::Tagged {
                crate::Work::echo(&self.0, client, thread, seq)
            }
            fn sleep(&self, ms: u32, token: u64) -> u64 {
                crate::Work::sleep(&self.0, ms, token)
            }
            fn reset(&self) -> u64 {
                crate::Work::served(&self.0)
            }
            fn boom(&self, code: u32) -> u32 {
                crate::Work::boom(&self.0, code)
            }
            fn add(&self, a: i64, b: i64) -> i64 {
                crate::Work::add(&self.0, a, b) - 1000
            }
            fn served(&self) -> u64 {
                crate::Work::served(&self.0)
            }
            fn caller(&self) -> [u32; 3] {
                crate::Work::caller(&self.0)
            }
        }
    }

    /// `Tagged` with two fields swapped: same size, same types, different layout.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
    #[repr(C)]
    pub struct Tagged {
        pub thread: u32,
        pub client: u32,
        pub seq: u64,
        pub server_pid: u32,
        pub _pad: u32,
    }

    /// `Work` whose `echo` returns the reordered `Tagged`.
    pub mod reordered_struct {
        #[super::shm_service]
        pub trait Work {
            fn echo(&self, client: u32, thread: u32, seq: u64) -> super::Tagged;
            fn sleep(&self, ms: u32, token: u64) -> u64;
            fn boom(&self, code: u32) -> u32;
            fn add(&self, a: i64, b: i64) -> i64;
            fn served(&self) -> u64;
            fn caller(&self) -> [u32; 3];
        }
    }

    /// `Entry` whose `ttl` is a `u64`, and `Data` using it.
    pub mod wider_entry {
        #[derive(Clone, Debug, PartialEq, shmrpc::Wire)]
        pub struct Entry {
            pub key: String,
            pub value: Vec<u8>,
            pub ttl: u64,
            pub tags: Vec<String>,
            pub owner: Option<crate::Tagged>,
        }

        #[shmrpc::shm_service]
        pub trait Data {
            fn echo(&self, data: &[u8]) -> Vec<u8>;
            fn entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>, String>;
        }
    }

    /// The same methods under another trait name.
    pub mod renamed_trait {
        #[super::shm_service]
        pub trait Labour {
            fn echo(&self, client: u32, thread: u32, seq: u64) -> crate::Tagged;
            fn sleep(&self, ms: u32, token: u64) -> u64;
            fn boom(&self, code: u32) -> u32;
            fn add(&self, a: i64, b: i64) -> i64;
            fn served(&self) -> u64;
            fn caller(&self) -> [u32; 3];
        }
    }
}

/// Ends the test process if the test holding it is not done within its limit: a call that
/// hangs (a broken deadline) then fails in minutes, naming the test, instead of holding CI
/// until its timeout. Dropping it (the test ending, or panicking) calls it off.
#[derive(Debug)]
pub struct Watchdog {
    done: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

/// A [`Watchdog`] for the calling test.
pub fn watchdog(limit: Duration) -> Watchdog {
    let name = std::thread::current().name().unwrap_or("a test").to_owned();
    let done = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let watched = done.clone();
    std::thread::spawn(move || {
        let (lock, called_off) = &*watched;
        let done = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = called_off
            .wait_timeout_while(done, limit, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        if !*done {
            // Straight to the process's stderr: the test harness captures `eprintln!` of the
            // threads a test spawns, and an abort loses what it captured.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "{name}: still running after {limit:?}, a hang; ending the test process"
            );
            std::process::abort();
        }
    });
    Watchdog { done }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, called_off) = &*self.done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        called_off.notify_all();
    }
}
