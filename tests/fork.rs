//! Behaviour 4 of the connections issue: `fork` without exec, in a server or in a client with
//! an open connection: no hang and no crossed answer; a name held only by a dead server's
//! forked child is reported as such.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, Error, ServerOptions};
use shmrpc_tests::*;

const BOUND: Duration = Duration::from_millis(250);

/// A server that forked a child which sleeps for ever; the child.
fn forking_server(name: &str, how: &str) -> (Peer, Forked) {
    let mut server = Peer::spawn(Command::new(peer_program()).args(["server-fork", name, how]));
    let line = server.line();
    let child = line
        .strip_prefix("ready ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("server-fork said {line:?}"));
    (server, Forked(child))
}

/// A peer's forked child: killed when the test is done with it, or when the test fails before.
struct Forked(u32);

impl Forked {
    /// Kills it now (once: its pid may be reused after).
    fn kill(self) {
        drop(self);
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.0.to_string()])
            .status();
    }
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
    child.kill();
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
            assert!(
                start.elapsed() < BOUND,
                "connect hung: {:?}",
                start.elapsed()
            );
            // The command the message gives names the child.
            let command = message
                .split('`')
                .find(|part| part.starts_with("ss "))
                .unwrap_or_else(|| panic!("no command to find the holder: {message}"));
            let words: Vec<&str> = command.split_whitespace().collect();
            let out = Command::new(words[0]).args(&words[1..]).output().unwrap();
            let shown = String::from_utf8_lossy(&out.stdout);
            assert!(
                shown.contains(&format!("pid={},", child.0)),
                "{command}: {shown}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.add(1, 1),
        Err(Error::ServerNotRunning { .. })
    ));
    match WorkServer::bind(&name, WorkImpl::default()) {
        Err(e @ Error::NameTaken { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&format!("pid {server_pid}")), "{message}");
            assert!(message.contains("`ss -xlp src @"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Once the child is gone, so is the name.
    child.kill();
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

/// The pid of the child `ForkingWork::add(777, _)` forked.
static FORKED: AtomicU32 = AtomicU32::new(0);

/// `Work` whose `add(777, _)` forks, and the child returns from the method as the parent does
/// (a method that forgot to exec or `_exit` in the child).
#[derive(Debug, Default)]
struct ForkingWork(WorkImpl);

impl Work for ForkingWork {
    fn echo(&self, client: u32, thread: u32, seq: u64) -> Tagged {
        self.0.echo(client, thread, seq)
    }
    fn sleep(&self, ms: u32, token: u64) -> u64 {
        self.0.sleep(ms, token)
    }
    fn boom(&self, code: u32) -> u32 {
        self.0.boom(code)
    }
    fn add(&self, a: i64, b: i64) -> i64 {
        if a == 777 {
            // SAFETY: the child returns into shmrpc, which must end it before it touches
            // anything of its parent's.
            let pid = unsafe { libc::fork() };
            if pid > 0 {
                FORKED.store(pid as u32, Ordering::SeqCst);
            }
            return i64::from(pid);
        }
        self.0.add(a, b)
    }
    fn served(&self) -> u64 {
        self.0.served()
    }
    fn caller(&self) -> [u32; 3] {
        self.0.caller()
    }
}

#[test]
fn a_child_forked_in_a_method_that_returns_into_the_server_answers_nothing() {
    let name = unique_name("method-fork");
    let handle = WorkServer::bind_with(
        &name,
        ForkingWork::default(),
        ServerOptions::default().workers(2),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    // The caller gets the parent's answer (the child's pid), never the child's (0).
    let answer = client.add(777, 0).unwrap();
    let child = FORKED.load(Ordering::SeqCst);
    assert_eq!(answer, i64::from(child));
    // The child left at once: it is a zombie (nobody reaps it) or gone, never serving.
    std::thread::sleep(Duration::from_millis(50));
    let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.contains(") Z "),
        "the forked child still runs: {state}"
    );
    let me = std::process::id();
    let mut peers: Vec<Peer> = (0..2)
        .map(|i| {
            Peer::spawn(Command::new(peer_program()).args([
                "echo",
                &name,
                &(100 + i).to_string(),
                "2",
                "2000",
            ]))
        })
        .collect();
    for seq in 0..2000 {
        let r = client.echo(1, 0, seq).unwrap();
        assert_eq!((r.client, r.seq, r.server_pid), (1, seq, me));
    }
    for peer in &mut peers {
        assert_eq!(peer.line(), "ok 4000");
    }
    // And new clients are welcomed as before.
    assert_eq!(WorkClient::connect(&name).unwrap().add(1, 2).unwrap(), 3);
    handle.shutdown().unwrap();
}

#[test]
fn a_server_bound_before_a_fork_cannot_serve_in_the_child() {
    let name = unique_name("daemon");
    let mut parent = Peer::spawn(Command::new(peer_program()).args(["server-daemon", &name]));
    let line = parent.line();
    assert!(
        line.starts_with("spawn in the child: error ") && line.contains("bind after forking"),
        "{line}"
    );
}

/// A server that shuts down while a child it forked holds copies of its connections' sockets:
/// its clients still learn at once that it is gone (it shuts their connections down, which a
/// close alone would not do while the child holds a copy), though the server process lives on.
#[test]
fn a_server_shut_down_while_its_forked_child_lives_ends_its_connections() {
    let name = unique_name("fork-later");
    let mut server = Peer::spawn(Command::new(peer_program()).args(["server-fork-later", &name]));
    server.expect_line("ready");
    let client = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_secs(2)),
    )
    .unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    server.send_line("fork");
    let child = Forked(
        server
            .line()
            .strip_prefix("forked ")
            .and_then(|pid| pid.parse().ok())
            .expect("forked <pid>"),
    );
    server.close_stdin();
    server.expect_line("shut");
    let start = Instant::now();
    let result = client.add(2, 2);
    let took = start.elapsed();
    child.kill();
    assert!(
        matches!(result, Err(Error::ServerNotRunning { .. })) && took < Duration::from_millis(250),
        "{result:?} after {took:?}"
    );
}

/// A service whose method forks, and whose child sends a result through its copy of the
/// method's `Reply` while the parent holds its own answer, written but not yet published.
#[shmrpc::shm_service]
pub trait Forker {
    fn fork_and_reply(
        &self,
        parent_waits_ms: u32,
        reply: shmrpc::Reply<'_, u64>,
    ) -> shmrpc::Replied;
}

struct ForkerImpl;

/// The pid of the child `ForkerImpl::fork_and_reply` forked last (its own: tests of this file
/// run in parallel).
static REPLY_FORKED: AtomicU32 = AtomicU32::new(0);

impl Forker for ForkerImpl {
    fn fork_and_reply(
        &self,
        parent_waits_ms: u32,
        reply: shmrpc::Reply<'_, u64>,
    ) -> shmrpc::Replied {
        // SAFETY: the child only sleeps, then sends through shmrpc, which must end it before it
        // writes anything into the slot.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            std::thread::sleep(Duration::from_millis(u64::from(parent_waits_ms) / 20));
            return reply.send(&0);
        }
        REPLY_FORKED.store(pid as u32, Ordering::SeqCst);
        let sent = reply.send(&(pid as u64));
        // The child sends meanwhile: if it could write, the caller would read its 0.
        std::thread::sleep(Duration::from_millis(parent_waits_ms.into()));
        sent
    }
}

#[test]
fn a_forked_child_cannot_write_a_result_into_the_slot() {
    let name = unique_name("reply-fork");
    let handle = ForkerServer::bind(&name, ForkerImpl)
        .unwrap()
        .spawn()
        .unwrap();
    let client = ForkerClient::connect(&name).unwrap();
    for _ in 0..3 {
        // The child sends 10 ms in, the parent publishes 200 ms in.
        let answer = client.fork_and_reply(200).unwrap();
        let child = REPLY_FORKED.load(Ordering::SeqCst);
        let _killed_if_this_fails = Forked(child);
        assert_eq!(
            answer,
            u64::from(child),
            "the forked child's result reached the caller"
        );
        // And it ended there (a zombie: nobody reaps it), however slowly it was scheduled.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if state.is_empty() || state.contains(") Z ") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the forked child still runs: {state}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    handle.shutdown().unwrap();
}
