//! The `tracing` feature: a span per call on both sides with the service, the method, the
//! sequence number, the duration and the outcome; events for failed calls, reconnects,
//! refusals and dead peers. Everything is captured by one subscriber (the server runs in this
//! process, on its own threads, so that its spans land there too).

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shmrpc::{ClientOptions, Error};
use shmrpc_tests::*;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was logged since the last look, as lines.
    fn take(&self) -> Vec<String> {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn capture() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    captured
}

fn find<'a>(lines: &'a [String], all: &[&str]) -> Option<&'a String> {
    lines.iter().find(|l| all.iter().all(|w| l.contains(w)))
}

/// Waits (up to 2 s) for a line with all of `all` among `lines` and what is logged meanwhile:
/// a server logs on threads of its own, and closes a call's span after its answer is out.
#[track_caller]
fn expect(captured: &Captured, lines: &mut Vec<String>, all: &[&str]) {
    for _ in 0..200 {
        if find(lines, all).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
        lines.extend(captured.take());
    }
    panic!("no line with all of {all:?} in:\n{}", lines.join("\n"));
}

/// One test: the subscriber is global to this process.
#[test]
fn calls_refusals_dead_servers_and_reconnects_are_traced() {
    let captured = capture();
    let me = std::process::id().to_string();

    // Calls, on both sides.
    let name = unique_name("traced");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(2, 3).unwrap(), 5);
    assert_eq!(client.add(2, 3).unwrap(), 5);
    let service = format!("service=\"{name}\"");
    let mut lines = captured.take();
    expect(
        &captured,
        &mut lines,
        &[
            "shmrpc.call",
            &service,
            "method=\"add\"",
            "seq=2",
            "outcome=\"ok\"",
            "micros=",
        ],
    );
    expect(
        &captured,
        &mut lines,
        &[
            "shmrpc.serve",
            &service,
            "method=\"add\"",
            "seq=2",
            &format!("caller_pid={me}"),
            "outcome=\"ok\"",
        ],
    );

    // A panic: the client's outcome and warning, the server's outcome.
    assert!(client.boom(1).is_err());
    let mut lines = captured.take();
    expect(
        &captured,
        &mut lines,
        &["WARN", "shmrpc call failed", "HandlerPanicked"],
    );
    expect(
        &captured,
        &mut lines,
        &[
            "shmrpc.call",
            "method=\"boom\"",
            "outcome=\"HandlerPanicked\"",
        ],
    );
    expect(
        &captured,
        &mut lines,
        &["shmrpc.serve", "method=\"boom\"", "outcome=\"Panicked\""],
    );

    // An async call is traced as a blocking one is.
    futures::executor::block_on(async {
        let client = WorkAsyncClient::connect(&name).await.unwrap();
        assert_eq!(client.add(1, 1).await.unwrap(), 2);
    });
    // Its client closed its connection: the server says so (on a thread of its own, maybe
    // before this thread looks, maybe after).
    let disconnected = ["shmrpc client disconnected", &format!("client_pid={me}")];
    let mut lines = captured.take();
    expect(
        &captured,
        &mut lines,
        &["shmrpc.call", "method=\"add\"", "seq=1", "outcome=\"ok\""],
    );
    expect(&captured, &mut lines, &disconnected);

    // A request the server refuses, from a hand-written client in another process.
    let out = Command::new(peer_program())
        .args(["raw-call", &name, "3", "01"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("status="));
    let mut lines = captured.take();
    expect(
        &captured,
        &mut lines,
        &["WARN", "shmrpc server refused", &service],
    );
    expect(
        &captured,
        &mut lines,
        &["shmrpc.serve", "outcome=\"BadRequest\""],
    );
    handle.shutdown().unwrap();

    // A server that dies during a call, and its successor.
    let name = unique_name("traced-dies");
    let mut server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_secs(2)),
    )
    .unwrap();
    std::thread::scope(|s| {
        let call = s.spawn(|| client.sleep(1000, 1));
        std::thread::sleep(Duration::from_millis(100));
        server.kill();
        assert!(matches!(
            call.join().unwrap(),
            Err(Error::ServerDied { .. })
        ));
    });
    let mut lines = captured.take();
    expect(
        &captured,
        &mut lines,
        &["WARN", "shmrpc call failed", "died during call `sleep`"],
    );
    expect(
        &captured,
        &mut lines,
        &["shmrpc.call", "method=\"sleep\"", "outcome=\"ServerDied\""],
    );
    let _again = Peer::start(&["server", "work", &name]);
    assert_eq!(client.add(1, 2).unwrap(), 3);
    let mut lines = captured.take();
    expect(
        &captured,
        &mut lines,
        &[
            "INFO",
            "shmrpc client connected again",
            &format!("service=\"{name}\""),
        ],
    );
}
