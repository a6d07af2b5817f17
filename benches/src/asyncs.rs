//! The async client against the blocking one and against a tokio Unix-socket ping-pong, all
//! under a tokio runtime, all moving 8 bytes each way to an echo process.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, WaitStrategy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use crate::{EchoAsyncClient, Histogram, Peer, role, start_server};

/// Which tokio runtime a measurement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

pub fn runtime(flavor: Flavor) -> Runtime {
    match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(1);
            b
        }
    }
    .enable_all()
    .build()
    .unwrap()
}

/// An async client of its own echo server process.
pub struct AsyncShmrpc {
    client: EchoAsyncClient,
    request: Vec<u8>,
    reply: Vec<u8>,
    _server: Peer,
}

impl AsyncShmrpc {
    pub fn start(rt: &Runtime, wait: WaitStrategy) -> Self {
        let name = format!(
            "bench-async-{}-{}",
            std::process::id(),
            crate::strategy_name(wait)
        );
        let server = start_server(&name, WaitStrategy::Adaptive);
        let options = ClientOptions::default().wait(wait);
        let client = rt
            .block_on(EchoAsyncClient::connect_with(&name, options))
            .unwrap();
        AsyncShmrpc {
            client,
            request: vec![7; 8],
            reply: Vec::with_capacity(8),
            _server: server,
        }
    }

    pub async fn round_trip(&mut self) {
        self.client
            .echo_into(&self.request, &mut self.reply)
            .await
            .unwrap();
        assert_eq!(self.reply.len(), 8);
    }
}

/// A tokio Unix socket to an echo process.
pub struct TokioSocket {
    stream: tokio::net::UnixStream,
    buf: [u8; 8],
    _echo: Peer,
}

impl TokioSocket {
    pub fn start(rt: &Runtime) -> Self {
        let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let theirs_out = theirs.try_clone().unwrap();
        let echo = role("stream-echo 8")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)))
            .spawn()
            .unwrap();
        mine.set_nonblocking(true).unwrap();
        let stream = {
            let _rt = rt.enter();
            tokio::net::UnixStream::from_std(mine).unwrap()
        };
        TokioSocket {
            stream,
            buf: [3; 8],
            _echo: Peer(echo),
        }
    }

    pub async fn round_trip(&mut self) {
        self.stream.write_all(&self.buf).await.unwrap();
        self.stream.read_exact(&mut self.buf).await.unwrap();
    }
}

/// Back-to-back async calls for `time` (after a warm-up of a fifth of it), in one task.
pub async fn closed_loop<T>(
    t: &mut T,
    time: Duration,
    mut call: impl AsyncFnMut(&mut T),
) -> Histogram {
    let warm = Instant::now();
    while warm.elapsed() < time / 5 {
        call(t).await;
    }
    let mut h = Histogram::default();
    let start = Instant::now();
    let mut last = start;
    while last.duration_since(start) < time {
        call(t).await;
        let now = Instant::now();
        h.record(now - last);
        last = now;
    }
    h
}

/// `calls` calls of each of the three `gap` apart, taking turns call by call (so that every one
/// sees the same machine: a host's noise changes within milliseconds), the task asleep in the
/// runtime between them. Each contender thus rests `3 * gap` between two of its own calls.
pub async fn sporadic_interleaved<A, B, C>(
    (a, b, c): (&mut A, &mut B, &mut C),
    calls: usize,
    gap: Duration,
    (mut call_a, mut call_b, mut call_c): (
        impl AsyncFnMut(&mut A),
        impl AsyncFnMut(&mut B),
        impl AsyncFnMut(&mut C),
    ),
) -> [Histogram; 3] {
    let mut h: [Histogram; 3] = Default::default();
    for _ in 0..calls {
        tokio::time::sleep(gap).await;
        let start = Instant::now();
        call_a(a).await;
        h[0].record(start.elapsed());
        tokio::time::sleep(gap).await;
        let start = Instant::now();
        call_b(b).await;
        h[1].record(start.elapsed());
        tokio::time::sleep(gap).await;
        let start = Instant::now();
        call_c(c).await;
        h[2].record(start.elapsed());
    }
    h
}
