//! The other process of the behaviour tests: a server or a client of the test services, honest
//! or hostile.
//!
//! ```text
//! peer server <work|types|big|store|data|work-extra> <name> [wait=<adaptive|spin|park>] [spin=<us>] [workers=<n>]
//!             [allow=any] [allow-uid=<uid>] [allow-gid=<gid>]
//!     binds, prints `ready`, serves until stdin closes (then shuts down, prints `stopped`)
//! peer server-fork <name> <libc|raw>
//!     binds `work`, serves, then forks (through libc, or with a raw fork system call that runs
//!     no atfork handler); the child sleeps for ever. Prints `ready <child pid>`
//! peer raw-call <name> <tag> <hex bytes>
//!     one request written by hand; prints `status=<n> <reply as text>`
//! peer server-hog <name>
//!     serves `work`, whose `sleep(ms, 4242)` holds every free descriptor while it sleeps
//! peer server-signals <name> <run|spawn>
//!     binds `work` (2 workers) with `stop_on_signals`, prints `ready`, serves with `run()` or
//!     `spawn()` and `ServerHandle::wait()`; prints `returned` when that returns
//! peer server-daemon <name>
//!     binds `work`, forks; the child tries to serve it and prints what `spawn` said
//! peer echo <name> <client-id> <threads> <calls>
//!     each thread makes <calls> echo calls with unique values; prints `ok <n>` or the problem
//! peer types <name>          calls every method of Types and checks the answers
//! peer idle <name>           connects, makes one call, prints `ready`, then waits on stdin
//! peer connect <name> [trust=<uid>]
//!     prints `ok` or `<ErrorKind> <message>` of connecting and calling `add`
//! peer connect-narrow <name> as `connect`, with a client built from `Work` whose `add` takes i32
//! peer whoami <name>         prints `caller <pid> <uid> <gid>` as the server saw this process
//! peer sleep <name> <ms> <token> <timeout-ms>
//!     one call; prints `ok <value> <elapsed-ms>` or `<ErrorKind> <elapsed-ms>`
//! peer loop <name> <client-id> <timeout-ms>
//!     prints `ready`, then echo calls until killed; prints `crossed ...` and exits 3 on a
//!     crossed answer
//! peer share <name> <ms>
//!     connects, prints `ready`, waits for a line on stdin, then calls `add` in a loop for <ms>
//!     milliseconds and prints `calls=<n>`
//! peer churn <name> <client-id> <timeout-ms>
//!     echo calls until stdin closes, through server deaths and restarts, then prints
//!     `ok=<n> died=<n> notrunning=<n> timeout=<n> other=<n> crossed=<n>` (and the first
//!     unexpected error, if any)
//! peer nofd <name> <client-id> <calls>
//!     connects, calls, then fills its descriptor table and makes <calls> echo calls; prints
//!     `ok <n>` or the problem
//! peer fork-client <name> <calls>
//!     connects, calls, then forks; parent and child each make <calls> echo calls through the
//!     same client object at once; prints `ok parent=<n> child=<n>` or the problem
//! peer many <name> <n>       connects <n> clients, calls once on each, prints `ready`, waits
//! peer hog-connections <name>
//!     connects until refused, prints `held <n> <ErrorKind> <message>`, holds them until stdin
//!     closes
//! peer slow <name> <ms>      prints `ready`, then calls sleep(<ms>) in a loop until stdin closes
//! peer squat <address>      binds and listens on the abstract socket <address>, prints `ready`
//! peer peek <pid>
//!     tries to open every /proc/<pid>/fd/* and /proc/<pid>/map_files/*; prints
//!     `opened=<n> tried=<n> memfds=<n> `
//! peer syscalls <name> <calls>
//!     connects (spin-only), warms up, then makes <calls> calls under a seccomp filter that traps
//!     every system call but `write`, `sched_yield` and what exiting needs; prints
//!     `ready`, then `syscalls=<n> [<number>, ...]` (the numbers of the first few trapped)
//! peer hostile <name> <truncate|grow|mprotect|garbage|punch|kicks|bell|fds|stop>
//!     connects by hand and attacks its own slot (see `hostile`); prints `attacking`, keeps on
//!     until stdin closes, prints `done <n>`
//! ```

use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, ServerOptions, WaitStrategy};
use shmrpc_tests::*;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            println!("error {e}");
            ExitCode::from(2)
        }
    }
}

fn opt<'a>(args: &[&'a str], key: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
}

fn wait_strategy(args: &[&str]) -> WaitStrategy {
    match opt(args, "wait") {
        Some("spin") => WaitStrategy::SpinOnly,
        Some("park") => WaitStrategy::ParkOnly,
        _ => WaitStrategy::Adaptive,
    }
}

fn server_options(args: &[&str]) -> ServerOptions {
    let mut options = ServerOptions::default().wait(wait_strategy(args));
    if let Some(us) = opt(args, "spin") {
        options = options.spin_budget(Duration::from_micros(us.parse().expect("spin=<us>")));
    }
    if let Some(n) = opt(args, "workers") {
        options = options.workers(n.parse().expect("workers=<n>"));
    }
    if opt(args, "allow") == Some("any") {
        options = options.allow_any_user();
    }
    if let Some(uid) = opt(args, "allow-uid") {
        options = options.allow_uid(uid.parse().expect("allow-uid=<uid>"));
    }
    if let Some(gid) = opt(args, "allow-gid") {
        options = options.allow_gid(gid.parse().expect("allow-gid=<gid>"));
    }
    if let Some(bytes) = opt(args, "max-message") {
        options = options.max_message(bytes.parse().expect("max-message=<bytes>"));
    }
    options
}

fn wait_for_stdin_to_close() {
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
}

fn run(args: &[&str]) -> Result<ExitCode, shmrpc::Error> {
    match args {
        ["server", service, name, rest @ ..] => {
            let options = server_options(rest);
            let handle = match *service {
                "work" => WorkServer::bind_with(name, WorkImpl::default(), options)?.spawn()?,
                "types" => TypesServer::bind_with(name, TypesImpl::default(), options)?.spawn()?,
                "big" => BigServer::bind_with(name, BigImpl, options)?.spawn()?,
                "store" => StoreServer::bind_with(name, StoreImpl::default(), options)?.spawn()?,
                "data" => DataServer::bind_with(name, DataImpl, options)?.spawn()?,
                "work-extra" => {
                    use shmrpc_tests::other_versions::extra_method::{NewWork, WorkServer};
                    WorkServer::bind_with(name, NewWork::default(), options)?.spawn()?
                }
                other => panic!("unknown service {other}"),
            };
            println!("ready");
            // Serve until the test closes stdin (or kills us).
            wait_for_stdin_to_close();
            handle.shutdown()?;
            println!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        ["raw-call", name, tag, hex] => hostile::raw_call(name, tag.parse().expect("tag"), hex),
        ["server-hog", name] => {
            // `sleep(ms, 4242)` holds every free descriptor of the server while it sleeps.
            let options = ServerOptions::default().workers(2);
            let handle = WorkServer::bind_with(name, HogWork::default(), options)?.spawn()?;
            println!("ready");
            wait_for_stdin_to_close();
            handle.shutdown()?;
            Ok(ExitCode::SUCCESS)
        }
        ["server-signals", name, how] => {
            let options = ServerOptions::default().workers(2).stop_on_signals();
            let server = WorkServer::bind_with(name, WorkImpl::default(), options)?;
            if *how == "run" {
                println!("ready");
                server.run()?;
            } else {
                let handle = server.spawn()?;
                println!("ready");
                handle.wait()?;
            }
            println!("returned");
            Ok(ExitCode::SUCCESS)
        }
        ["server-daemon", name] => {
            // Binds, then forks as a daemon does (the parent waits for the child's word); the
            // child tries to serve what its parent bound.
            let server = WorkServer::bind(name, WorkImpl::default())?;
            // SAFETY: the child only calls shmrpc and prints, then exits.
            let child = unsafe { libc::fork() };
            if child == 0 {
                match server.spawn() {
                    Ok(_) => println!("spawn in the child: ok"),
                    Err(e) => println!("spawn in the child: error {e}"),
                }
                // SAFETY: ends the child at once.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            Ok(ExitCode::SUCCESS)
        }
        ["server-fork", name, how] => {
            let handle = WorkServer::bind(name, WorkImpl::default())?.spawn()?;
            // The variadic system call's arguments, as wide as it reads them.
            const ZERO: libc::c_long = 0;
            let child = match *how {
                // SAFETY: the child only sleeps (pause is async-signal-safe).
                "libc" => unsafe { libc::fork() },
                // SAFETY: as above; a raw fork (clone with only the exit signal, the same on
                // every architecture) runs no atfork handler, as a program calling clone(2)
                // itself would.
                "raw" => unsafe {
                    libc::syscall(
                        libc::SYS_clone,
                        libc::c_long::from(libc::SIGCHLD),
                        ZERO,
                        ZERO,
                        ZERO,
                        ZERO,
                    ) as libc::pid_t
                },
                other => panic!("fork how? {other}"),
            };
            if child == 0 {
                loop {
                    // SAFETY: async-signal-safe; the child does nothing else.
                    unsafe { libc::pause() };
                }
            }
            println!("ready {child}");
            wait_for_stdin_to_close();
            handle.shutdown()?;
            Ok(ExitCode::SUCCESS)
        }
        ["server-fork-later", name] => {
            // Binds, forks once a client is connected (the child, which only sleeps, holds a
            // copy of that connection's socket), shuts down when stdin closes, and lives on for
            // 3 s: what the client then sees comes from the connection, not from a death.
            let handle = WorkServer::bind(name, WorkImpl::default())?.spawn()?;
            println!("ready");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).expect("read stdin");
            // SAFETY: the child only sleeps (pause is async-signal-safe).
            let child = unsafe { libc::fork() };
            if child == 0 {
                loop {
                    // SAFETY: async-signal-safe; the child does nothing else.
                    unsafe { libc::pause() };
                }
            }
            println!("forked {child}");
            wait_for_stdin_to_close();
            handle.shutdown()?;
            println!("shut");
            std::thread::sleep(std::time::Duration::from_secs(3));
            // SAFETY: plain kill of our own child.
            unsafe { libc::kill(child, libc::SIGKILL) };
            Ok(ExitCode::SUCCESS)
        }
        ["echo", name, id, threads, calls] => {
            let client = WorkClient::connect(name)?;
            let (id, threads, calls): (u32, u32, u64) = (
                id.parse().unwrap(),
                threads.parse().unwrap(),
                calls.parse().unwrap(),
            );
            let problems: Vec<String> = std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|t| {
                        let client = &client;
                        s.spawn(move || echo_calls(client, id, t, calls).err())
                    })
                    .collect();
                workers
                    .into_iter()
                    .filter_map(|w| w.join().unwrap())
                    .collect()
            });
            if problems.is_empty() {
                println!("ok {}", u64::from(threads) * calls);
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{}", problems.join("; "));
                Ok(ExitCode::from(1))
            }
        }
        ["types", name] => {
            let client = TypesClient::connect(name)?;
            match check_all_types(&client) {
                Ok(()) => println!("ok"),
                Err(e) => println!("mismatch {e}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ["idle", name] => {
            // Calls in a tight loop first, so that the server watches its slot: the server must
            // still stop spinning once the calls stop.
            let client = WorkClient::connect(name)?;
            for i in 0..20_000 {
                client.add(i, 2)?;
            }
            println!("ready");
            wait_for_stdin_to_close();
            Ok(ExitCode::SUCCESS)
        }
        ["connect", name, rest @ ..] => {
            let mut options = ClientOptions::default();
            if let Some(uid) = opt(rest, "trust") {
                options = options.trust_uid(uid.parse().unwrap());
            }
            match WorkClient::connect_with(name, options).and_then(|c| c.add(40, 2)) {
                Ok(42) => println!("ok"),
                Ok(other) => println!("wrong {other}"),
                Err(e) => println!("{} {e}", kind(&e)),
            }
            Ok(ExitCode::SUCCESS)
        }
        ["connect-narrow", name] => {
            use shmrpc_tests::other_versions::narrow_add::WorkClient;
            match WorkClient::connect(name).and_then(|c| c.add(40, 2)) {
                Ok(v) => println!("ok {v}"),
                Err(e) => println!("{} {e}", kind(&e)),
            }
            Ok(ExitCode::SUCCESS)
        }
        ["syscalls", name, calls] => {
            let client = WorkClient::connect_with(
                name,
                ClientOptions::default().wait(WaitStrategy::SpinOnly),
            )?;
            for i in 0..1_000 {
                client.add(i, 1)?;
            }
            let calls: i64 = calls.parse().unwrap();
            // Nothing may allocate once system calls are trapped (malloc may need one): print
            // now, so that stdout's buffer exists.
            println!("ready");
            syscalls::trap();
            for i in 0..calls {
                client.add(i, 1)?;
            }
            let (n, first) = syscalls::trapped();
            println!("syscalls={n} {:?}", &first[..n.min(first.len())]);
            Ok(ExitCode::SUCCESS)
        }
        ["whoami", name] => {
            let [pid, uid, gid] = WorkClient::connect(name)?.caller()?;
            println!("caller {pid} {uid} {gid}");
            Ok(ExitCode::SUCCESS)
        }
        ["sleep", name, ms, token, timeout] => {
            let options =
                ClientOptions::default().timeout(Duration::from_millis(timeout.parse().unwrap()));
            let client = WorkClient::connect_with(name, options)?;
            let start = Instant::now();
            let result = client.sleep(ms.parse().unwrap(), token.parse().unwrap());
            let ms = start.elapsed().as_millis();
            match result {
                Ok(v) => println!("ok {v} {ms}"),
                Err(e) => println!("{} {ms}", kind(&e)),
            }
            Ok(ExitCode::SUCCESS)
        }
        ["loop", name, id, timeout] => {
            let options =
                ClientOptions::default().timeout(Duration::from_millis(timeout.parse().unwrap()));
            let client = WorkClient::connect_with(name, options)?;
            let id: u32 = id.parse().unwrap();
            println!("ready");
            for seq in 0.. {
                if let Ok(r) = client.echo(id, 0, seq)
                    && (r.client, r.seq) != (id, seq)
                {
                    println!("crossed: sent {id}/{seq}, got {r:?}");
                    return Ok(ExitCode::from(3));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ["churn", name, id, timeout] => churn(name, id, timeout),
        ["share", name, ms] => {
            let client = WorkClient::connect(name)?;
            println!("ready");
            // Start together: on the test's word.
            let _ = std::io::stdin().read_line(&mut String::new());
            let until = Instant::now() + Duration::from_millis(ms.parse().unwrap());
            let mut calls = 0u64;
            while Instant::now() < until {
                client.add(1, 2)?;
                calls += 1;
            }
            println!("calls={calls}");
            Ok(ExitCode::SUCCESS)
        }
        ["nofd", name, id, calls] => {
            let client = WorkClient::connect(name)?;
            client.add(1, 1)?;
            let filled = fill_descriptor_table();
            let result = echo_calls(&client, id.parse().unwrap(), 0, calls.parse().unwrap());
            match result {
                Ok(n) => println!("ok {n} (with {filled} descriptors more, the table full)"),
                Err(problem) => println!("{problem}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        ["fork-client", name, calls] => fork_client(name, calls.parse().unwrap()),
        ["many", name, n] => {
            raise_fd_limit();
            let clients: Vec<WorkClient> = (0..n.parse::<usize>().unwrap())
                .map(|_| WorkClient::connect(name))
                .collect::<Result<_, _>>()?;
            for c in &clients {
                c.add(1, 1)?;
            }
            println!("ready");
            wait_for_stdin_to_close();
            Ok(ExitCode::SUCCESS)
        }
        ["hog-connections", name] => {
            // Connects until the server refuses, and holds what it got until stdin closes.
            raise_fd_limit();
            let mut held = Vec::new();
            let refusal = loop {
                match WorkClient::connect(name) {
                    Ok(client) => held.push(client),
                    Err(e) => break e,
                }
            };
            println!("held {} {} {refusal}", held.len(), kind(&refusal));
            wait_for_stdin_to_close();
            Ok(ExitCode::SUCCESS)
        }
        ["slow", name, ms] => {
            let client = WorkClient::connect(name)?;
            let ms: u32 = ms.parse().unwrap();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let watcher = stop.clone();
            std::thread::spawn(move || {
                wait_for_stdin_to_close();
                watcher.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            println!("ready");
            let mut calls = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                client.sleep(ms, calls)?;
                calls += 1;
            }
            println!("calls={calls}");
            Ok(ExitCode::SUCCESS)
        }
        ["hostile", name, attack] => hostile::attack(name, attack),
        ["squat", address] => {
            // A plain socket under someone else's service name: accepts, says nothing.
            use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
            let fd = rustix::net::socket_with(
                AddressFamily::UNIX,
                SocketType::SEQPACKET,
                SocketFlags::CLOEXEC,
                None,
            )
            .unwrap();
            let addr = SocketAddrUnix::new_abstract_name(address.as_bytes()).unwrap();
            rustix::net::bind(&fd, &addr).unwrap();
            rustix::net::listen(&fd, 16).unwrap();
            println!("ready");
            let mut held = Vec::new();
            while let Ok(conn) = rustix::net::accept(&fd) {
                held.push(conn);
            }
            Ok(ExitCode::SUCCESS)
        }
        ["peek", pid] => {
            let (mut tried, mut opened, mut memfds) = (0, 0, 0);
            for dir in ["fd", "map_files"] {
                let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/{dir}")) else {
                    continue;
                };
                for entry in entries.flatten() {
                    tried += 1;
                    let target = std::fs::read_link(entry.path()).unwrap_or_default();
                    if dir == "fd" && target.to_string_lossy().contains("memfd:") {
                        memfds += 1;
                    }
                    if std::fs::File::open(entry.path()).is_ok() {
                        opened += 1;
                    }
                }
            }
            println!("opened={opened} tried={tried} memfds={memfds} ");
            Ok(ExitCode::SUCCESS)
        }
        ["review-signals", name, how] => review::signals(name, how),
        ["review-async-fork", name] => review::async_fork(name),
        _ => panic!("usage: see the top of tests/support/peer.rs; got {args:?}"),
    }
}

/// `calls` echo calls with unique values; the number made, or the first problem.
fn echo_calls(client: &WorkClient, id: u32, thread: u32, calls: u64) -> Result<u64, String> {
    for seq in 0..calls {
        let seq = seq * 1_000_003 + u64::from(thread);
        match client.echo(id, thread, seq) {
            Ok(r) if (r.client, r.thread, r.seq) == (id, thread, seq) => {}
            Ok(r) => return Err(format!("crossed: sent {id}/{thread}/{seq}, got {r:?}")),
            Err(e) => return Err(format!("failed: {e}")),
        }
    }
    Ok(calls)
}

fn churn(name: &str, id: &str, timeout: &str) -> Result<ExitCode, shmrpc::Error> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let watcher = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_line(&mut String::new());
        watcher.store(true, Ordering::Relaxed);
    });
    let options = ClientOptions::default().timeout(Duration::from_millis(timeout.parse().unwrap()));
    let id: u32 = id.parse().unwrap();
    let client = loop {
        match WorkClient::connect_with(name, options.clone()) {
            Ok(client) => break client,
            Err(_) if !stop.load(Ordering::Relaxed) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e),
        }
    };
    println!("ready");
    let mut counts = [0u64; 6];
    let mut first_other = None;
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        match client.echo(id, 0, seq) {
            Ok(r) if (r.client, r.seq) == (id, seq) => counts[0] += 1,
            Ok(_) => counts[5] += 1,
            Err(shmrpc::Error::ServerDied { .. }) => counts[1] += 1,
            Err(shmrpc::Error::ServerNotRunning { .. }) => {
                counts[2] += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(shmrpc::Error::Timeout { .. }) => counts[3] += 1,
            Err(e) => {
                counts[4] += 1;
                first_other.get_or_insert(e.to_string());
            }
        }
    }
    let [ok, died, notrunning, timeout, other, crossed] = counts;
    println!(
        "ok={ok} died={died} notrunning={notrunning} timeout={timeout} other={other} crossed={crossed} {}",
        first_other.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens `/dev/null` until the process has no free descriptor; how many it opened.
fn fill_descriptor_table() -> usize {
    let mut held = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        held.push(file);
    }
    let n = held.len();
    std::mem::forget(held);
    n
}

fn raise_fd_limit() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

fn fork_client(name: &str, calls: u64) -> Result<ExitCode, shmrpc::Error> {
    let client = WorkClient::connect(name)?;
    client.add(1, 1)?;
    // A thread of the parent calls in a loop across the fork: the child inherits its slot in
    // the middle of a call.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let outcome = std::thread::scope(|s| {
        let background = s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                echo_calls(&client, 7, 1, 1)?;
                n += 1;
            }
            Ok::<u64, String>(n)
        });
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: the child runs only this thread's code, which calls through shmrpc (which
        // must not touch what the parent's threads hold) and then exits.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let code = match echo_calls(&client, 8, 2, calls) {
                Ok(_) => 0,
                Err(problem) => {
                    println!("child: {problem}");
                    1
                }
            };
            // SAFETY: ends the child at once, without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let parent = echo_calls(&client, 9, 3, calls);
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let background = background.join().unwrap();
        (parent, background, status)
    });
    match outcome {
        (Ok(parent), Ok(background), 0) => {
            println!("ok parent={parent} child={calls} background={background}");
            Ok(ExitCode::SUCCESS)
        }
        (parent, background, status) => {
            println!("problem parent={parent:?} background={background:?} child status={status}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Counts this process's system calls from some point on: a seccomp filter turns each into a
/// `SIGSYS` (the call itself fails with `ENOSYS`), whose handler counts it.
#[cfg(target_arch = "x86_64")]
mod syscalls {
    use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

    static COUNT: AtomicUsize = AtomicUsize::new(0);
    static FIRST: [AtomicI32; 8] = [const { AtomicI32::new(-1) }; 8];

    extern "C" fn on_sigsys(
        _: libc::c_int,
        info: *mut libc::siginfo_t,
        context: *mut libc::c_void,
    ) {
        // For SIGSYS the kernel's siginfo holds, after the 16-byte header, the calling address
        // (8 bytes) and then the system call's number (`si_syscall`).
        // SAFETY: the kernel passes a valid siginfo of at least 128 bytes.
        let nr = unsafe { info.cast::<u8>().add(24).cast::<i32>().read() };
        // The trapped call returns what rax holds when the handler returns: make it ENOSYS.
        // SAFETY: with SA_SIGINFO, `context` is the interrupted thread's ucontext.
        unsafe {
            let context = &mut *context.cast::<libc::ucontext_t>();
            context.uc_mcontext.gregs[libc::REG_RAX as usize] = -i64::from(libc::ENOSYS);
        }
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = FIRST.get(n) {
            slot.store(nr, Ordering::Relaxed);
        }
    }

    /// From now on, every system call of this process but `write`, `sched_yield` (a long spin
    /// yields now and then), `rt_sigreturn` and the exits is trapped and counted.
    pub fn trap() {
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        const ALLOW: u32 = 0x7fff_0000;
        const TRAP: u32 = 0x0003_0000;
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let allowed = [
            libc::SYS_rt_sigreturn,
            libc::SYS_write,
            libc::SYS_sched_yield,
            libc::SYS_exit,
            libc::SYS_exit_group,
        ];
        let mut program = vec![
            op(LD_W_ABS, 0, 0, 4), // arch
            op(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            op(RET_K, 0, 0, ALLOW),
            op(LD_W_ABS, 0, 0, 0), // system call number
        ];
        for (i, nr) in allowed.iter().enumerate() {
            // Jump to the final ALLOW over the remaining tests and the TRAP.
            let over = (allowed.len() - i) as u8;
            program.push(op(JEQ_K, over, 0, *nr as u32));
        }
        program.push(op(RET_K, 0, 0, TRAP));
        program.push(op(RET_K, 0, 0, ALLOW));
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_mut_ptr(),
        };
        // SAFETY: a zeroed sigaction is valid; the handler has the SA_SIGINFO signature and only
        // touches atomics.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigsys as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            assert_eq!(
                libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()),
                0
            );
        }
        // SAFETY: plain prctl calls; `fprog` points at `program`, alive across the call (the
        // kernel copies the filter).
        unsafe {
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
            assert_eq!(
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const libc::sock_fprog
                ),
                0
            );
        }
    }

    /// How many system calls were trapped, and the numbers of the first few (allocates
    /// nothing).
    pub fn trapped() -> (usize, [i32; 8]) {
        let n = COUNT.load(Ordering::Relaxed);
        (n, std::array::from_fn(|i| FIRST[i].load(Ordering::Relaxed)))
    }
}

/// A client that speaks the protocol by hand and attacks its own slot.
mod hostile {
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::os::fd::AsFd;

    use shmrpc::__private::testing::{RawConnection, kick, raw_connect};

    pub(super) fn attack(name: &str, attack: &str) -> Result<ExitCode, shmrpc::Error> {
        let raw = raw_connect(name)?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = stop.clone();
        std::thread::spawn(move || {
            super::wait_for_stdin_to_close();
            watcher.store(true, Ordering::Relaxed);
        });
        // SAFETY: a fresh shared mapping of the slot; this process only ever accesses it
        // through raw pointers with volatile writes (it is the attacker: anything goes, but
        // only in its own memory).
        let map = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                raw.slot_len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &raw.memfd,
                0,
            )
        }
        .expect("map the slot")
        .cast::<u8>();
        println!("attacking");
        let mut rounds = 0u64;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        while !stop.load(Ordering::Relaxed) {
            rounds += 1;
            match attack {
                // Sealed: these must fail, and change nothing.
                "truncate" => assert!(rustix::fs::ftruncate(&raw.memfd, 64).is_err()),
                "grow" => assert!(rustix::fs::ftruncate(&raw.memfd, 1 << 30).is_err()),
                "punch" => {
                    let _ = rustix::fs::fallocate(
                        &raw.memfd,
                        rustix::fs::FallocateFlags::PUNCH_HOLE
                            | rustix::fs::FallocateFlags::KEEP_SIZE,
                        0,
                        raw.slot_len as u64,
                    );
                    publish(&raw, map, random(), random() as u32, 64);
                }
                "mprotect" => {
                    // SAFETY: the attacker's own mapping.
                    let _ = unsafe {
                        rustix::mm::mprotect(
                            map.cast(),
                            raw.slot_len,
                            if rounds.is_multiple_of(2) {
                                rustix::mm::MprotectFlags::empty()
                            } else {
                                rustix::mm::MprotectFlags::READ | rustix::mm::MprotectFlags::WRITE
                            },
                        )
                    };
                    if !rounds.is_multiple_of(2) {
                        publish(&raw, map, random(), random() as u32, 8);
                    }
                }
                "garbage" => {
                    for _ in 0..64 {
                        let at = (random() as usize % (raw.slot_len - 8)) & !7;
                        // SAFETY: within the attacker's mapping, 8-aligned.
                        unsafe { map.add(at).cast::<u64>().write_volatile(random()) };
                    }
                    publish(&raw, map, random(), random() as u32, random() as u32);
                }
                "kicks" => {
                    publish(&raw, map, random(), random() as u32, 16);
                    for index in [0, 1, 63, u32::MAX] {
                        let _ = rustix::net::send(
                            &raw.socket,
                            &kick(index, random()),
                            rustix::net::SendFlags::DONTWAIT,
                        );
                    }
                }
                "bell" => {
                    // Its end of the wake-up socket made blocking and never read, the sleeper
                    // bit set on every call: the server rings a full queue for ever.
                    if rounds == 1 {
                        rustix::fs::fcntl_setfl(&raw.bell, rustix::fs::OFlags::empty()).unwrap();
                    }
                    // SAFETY: within the attacker's mapping, 4-aligned.
                    unsafe {
                        let bell = map.add(raw.bell_word).cast::<u32>();
                        bell.write_volatile(bell.read_volatile() | 1);
                    }
                    publish(&raw, map, random(), random() as u32, 8);
                }
                "fds" => {
                    // A descriptor with a kick: a TCP socket lingering over unsent data, whose
                    // last close would block for an hour. The kernel refuses it (Linux 6.16),
                    // or the server closes it on a thread of its own.
                    if rounds == 1 {
                        let tcp = lingering_tcp_socket();
                        let _ = send_with_descriptor(&raw.socket, &kick(0, 1), tcp.as_fd());
                    }
                }
                "stop" => {
                    // Mid-call: a request published, then frozen (the test resumes nothing).
                    publish(&raw, map, random(), 0, 0);
                    // SAFETY: stops this process; no memory effects.
                    unsafe { libc::raise(libc::SIGSTOP) };
                }
                other => panic!("unknown attack {other}"),
            }
            std::thread::yield_now();
        }
        println!("done {rounds}");
        let _ = &raw.bell;
        Ok(ExitCode::SUCCESS)
    }

    /// A TCP socket connected to a listener that never reads, its send buffer full, lingering
    /// an hour on close.
    fn lingering_tcp_socket() -> std::net::TcpStream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let chunk = [0u8; 65536];
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(300) {
            if std::io::Write::write(&mut &tcp, &chunk).is_err() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 3600,
        };
        // SAFETY: passes a live `linger` and its size.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&tcp),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        // The listener goes, the connection stays (never read).
        std::mem::forget(listener);
        tcp
    }

    fn send_with_descriptor(
        socket: &std::os::fd::OwnedFd,
        bytes: &[u8],
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> std::io::Result<usize> {
        use std::mem::MaybeUninit;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        let fds = [fd];
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
        Ok(rustix::net::sendmsg(
            socket,
            &[std::io::IoSlice::new(bytes)],
            &mut control,
            rustix::net::SendFlags::DONTWAIT,
        )?)
    }

    /// One request of the given bytes for method `tag`, written by hand; prints `status=<n>
    /// <reply as text>` (0 ok, 1 refused, 2 panicked, 4 too large).
    pub(super) fn raw_call(name: &str, tag: u32, hex: &str) -> Result<ExitCode, shmrpc::Error> {
        let raw = raw_connect(name)?;
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex bytes"))
            .collect();
        // SAFETY: as in `attack`.
        let map = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                raw.slot_len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &raw.memfd,
                0,
            )
        }
        .expect("map the slot")
        .cast::<u8>();
        // SAFETY: offsets within this process's own mapping, naturally aligned where typed;
        // only this process and the server touch it.
        unsafe {
            for (i, b) in bytes.iter().enumerate() {
                map.add(raw.payload + i).write_volatile(*b);
            }
            map.add(raw.request + 16).cast::<u32>().write_volatile(tag);
            map.add(raw.request + 20)
                .cast::<u32>()
                .write_volatile(bytes.len() as u32);
            std::sync::atomic::fence(Ordering::Release);
            map.add(raw.request).cast::<u64>().write_volatile(1);
        }
        let _ = rustix::net::send(&raw.socket, &kick(0, 1), rustix::net::SendFlags::DONTWAIT);
        let start = std::time::Instant::now();
        // SAFETY: as above.
        while unsafe { map.add(raw.response).cast::<u64>().read_volatile() } != 1 {
            assert!(start.elapsed().as_secs() < 5, "no answer");
            std::thread::yield_now();
        }
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: as above.
        let (status, text) = unsafe {
            let status = map.add(raw.response + 8).cast::<u32>().read_volatile();
            let len = map.add(raw.response + 12).cast::<u32>().read_volatile() as usize;
            let text: Vec<u8> = (0..len.min(4096))
                .map(|i| map.add(raw.response + 32 + i).read_volatile())
                .collect();
            (status, text)
        };
        println!("status={status} {}", String::from_utf8_lossy(&text));
        Ok(ExitCode::SUCCESS)
    }

    /// Writes a request header (method, length) and publishes sequence number `seq`, then
    /// kicks.
    fn publish(raw: &RawConnection, map: *mut u8, seq: u64, method: u32, len: u32) {
        // SAFETY: offsets within the attacker's mapping, naturally aligned.
        unsafe {
            map.add(raw.request + 16)
                .cast::<u32>()
                .write_volatile(method % 8);
            map.add(raw.request + 20).cast::<u32>().write_volatile(len);
            map.add(raw.request).cast::<u64>().write_volatile(seq);
        }
        let _ = rustix::net::send(&raw.socket, &kick(0, seq), rustix::net::SendFlags::DONTWAIT);
    }
}

/// `Work` whose `sleep(ms, 4242)` opens `/dev/null` until the descriptor table is full, sleeps,
/// then closes them all: a busy application that runs the server out of descriptors for a
/// moment.
#[derive(Debug, Default)]
struct HogWork(WorkImpl);

impl Work for HogWork {
    fn echo(&self, client: u32, thread: u32, seq: u64) -> Tagged {
        self.0.echo(client, thread, seq)
    }
    fn sleep(&self, ms: u32, token: u64) -> u64 {
        if token != 4242 {
            return self.0.sleep(ms, token);
        }
        let mut held = Vec::new();
        while let Ok(file) = std::fs::File::open("/dev/null") {
            held.push(file);
        }
        std::thread::sleep(Duration::from_millis(ms.into()));
        held.len() as u64
    }
    fn boom(&self, code: u32) -> u32 {
        self.0.boom(code)
    }
    fn add(&self, a: i64, b: i64) -> i64 {
        self.0.add(a, b)
    }
    fn served(&self) -> u64 {
        self.0.served()
    }
    fn caller(&self) -> [u32; 3] {
        self.0.caller()
    }
}

/// Modes added by the review (tests/async_attacks.rs).
mod review {
    use std::future::Future;
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Duration;

    use shmrpc::{ClientOptions, ServerOptions, WaitStrategy};
    use shmrpc_tests::*;

    struct Unpark(std::thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// A minimal executor with no reactor of its own: the call's wake-ups come from shmrpc's
    /// own thread.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    static HANDLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    extern "C" fn own_handler(_: libc::c_int) {
        HANDLED.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// `shutdown`: a server that stops on signals, shut down by hand; then the process lives on
    /// for 2 s (prints `alive`). `ignored`: the same in a process that ignores SIGINT and
    /// SIGTERM. `own`: the same in a process that handles them itself (prints `handled` when its
    /// handler ran). `two`: two servers (`name` and `name-b`) that stop on signals; prints
    /// `returned a` / `returned b` as each handle's wait returns.
    pub fn signals(name: &str, how: &str) -> Result<ExitCode, shmrpc::Error> {
        let options = || ServerOptions::default().workers(1).stop_on_signals();
        match how {
            "two" => {
                let a = WorkServer::bind_with(name, WorkImpl::default(), options())?.spawn()?;
                let b_name = format!("{name}-b");
                let b = WorkServer::bind_with(&b_name, WorkImpl::default(), options())?.spawn()?;
                println!("ready");
                let tb = std::thread::spawn(move || b.wait());
                a.wait()?;
                println!("returned a");
                tb.join().unwrap()?;
                println!("returned b");
                Ok(ExitCode::SUCCESS)
            }
            _ => {
                if how == "ignored" {
                    // SAFETY: plain signal dispositions, before any other thread runs.
                    unsafe {
                        libc::signal(libc::SIGINT, libc::SIG_IGN);
                        libc::signal(libc::SIGTERM, libc::SIG_IGN);
                    }
                } else if how == "own" {
                    let handler = own_handler as extern "C" fn(libc::c_int) as libc::sighandler_t;
                    // SAFETY: the handler only stores to an atomic.
                    unsafe {
                        libc::signal(libc::SIGINT, handler);
                        libc::signal(libc::SIGTERM, handler);
                    }
                }
                let handle =
                    WorkServer::bind_with(name, WorkImpl::default(), options())?.spawn()?;
                println!("ready");
                handle.shutdown()?;
                println!("shut");
                let end = std::time::Instant::now() + Duration::from_secs(2);
                while std::time::Instant::now() < end {
                    if HANDLED.load(std::sync::atomic::Ordering::SeqCst) {
                        println!("handled");
                        return Ok(ExitCode::SUCCESS);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                println!("alive");
                Ok(ExitCode::SUCCESS)
            }
        }
    }

    /// Async calls (that sleep, so shmrpc's wake-up thread runs), then a fork: the child makes
    /// async calls of its own. Prints `child ok` or `child <problem>`, then `parent ok`.
    pub fn async_fork(name: &str) -> Result<ExitCode, shmrpc::Error> {
        let options = ClientOptions::default()
            .wait(WaitStrategy::ParkOnly)
            .timeout(Duration::from_secs(2));
        println!("ready");
        let client = block_on(WorkAsyncClient::connect_with(name, options))?;
        for i in 0..20 {
            assert_eq!(block_on(client.sleep(1, i))?, i);
        }
        // SAFETY: the child calls through shmrpc, prints and exits.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let outcome = (|| {
                for i in 0..20u64 {
                    let v = block_on(client.sleep(1, 100 + i)).map_err(|e| e.to_string())?;
                    if v != 100 + i {
                        return Err(format!("crossed {v}"));
                    }
                }
                Ok::<(), String>(())
            })();
            match outcome {
                Ok(()) => println!("child ok"),
                Err(e) => println!("child {e}"),
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        for i in 0..20 {
            assert_eq!(block_on(client.sleep(1, i))?, i);
        }
        println!("parent ok");
        Ok(ExitCode::SUCCESS)
    }
}
