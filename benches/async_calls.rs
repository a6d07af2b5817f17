//! The async client (`XxxAsyncClient`) under tokio, 8 bytes each way:
//!
//! - when the answer comes within the spin (back-to-back calls): its p50 against the blocking
//!   client's (goal: ≤ 2×);
//! - when it must wait (calls 1 ms apart, the task asleep in the runtime between them, the
//!   server asleep too): its p50 against a tokio Unix-socket ping-pong's (goal: ≤ 1.2×).
//!
//! On a current-thread and a multi-thread runtime, in interleaved rounds so that every row sees
//! the same machine; the calls that must wait take turns call by call (a shared host's wake-up
//! latency changes within milliseconds). Prints the table and writes it to `benches/results/async.md`.

use std::fmt::Write as _;
use std::time::Duration;

use shmrpc::WaitStrategy;
use shmrpc_benches::asyncs::{self, AsyncShmrpc, Flavor, TokioSocket};
use shmrpc_benches::*;

const ROUNDS: usize = 6;
const SLICE: Duration = Duration::from_millis(300);
const SPORADIC_CALLS: usize = 150;
const GAP: Duration = Duration::from_millis(1);

struct Rows {
    flavor: Flavor,
    blocking: Histogram,
    async_spin: Histogram,
    async_wait: Histogram,
    async_park_wait: Histogram,
    socket_wait: Histogram,
    socket_loop: Histogram,
}

fn pass(flavor: Flavor) -> Rows {
    let rt = asyncs::runtime(flavor);
    let mut blocking = Shmrpc::start(Payload::B8, WaitStrategy::Adaptive);
    let mut adaptive = AsyncShmrpc::start(&rt, WaitStrategy::Adaptive);
    let mut park = AsyncShmrpc::start(&rt, WaitStrategy::ParkOnly);
    let mut socket = TokioSocket::start(&rt);
    let mut rows = Rows {
        flavor,
        blocking: Histogram::default(),
        async_spin: Histogram::default(),
        async_wait: Histogram::default(),
        async_park_wait: Histogram::default(),
        socket_wait: Histogram::default(),
        socket_loop: Histogram::default(),
    };
    for _ in 0..ROUNDS {
        rows.blocking.merge(&measure(&mut blocking, SLICE));
        rt.block_on(async {
            let call = async |t: &mut AsyncShmrpc| t.round_trip().await;
            let sock = async |t: &mut TokioSocket| t.round_trip().await;
            rows.async_spin
                .merge(&asyncs::closed_loop(&mut adaptive, SLICE, call).await);
            rows.socket_loop
                .merge(&asyncs::closed_loop(&mut socket, SLICE, sock).await);
            let [adaptive_wait, park_wait, socket_wait] = asyncs::sporadic_interleaved(
                (&mut adaptive, &mut park, &mut socket),
                SPORADIC_CALLS,
                GAP,
                (call, call, sock),
            )
            .await;
            rows.async_wait.merge(&adaptive_wait);
            rows.async_park_wait.merge(&park_wait);
            rows.socket_wait.merge(&socket_wait);
        });
    }
    rows
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

fn table(passes: &[Rows]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| runtime | what | p50 | p99 | ratio (p50) |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for rows in passes {
        let flavor = match rows.flavor {
            Flavor::CurrentThread => "current-thread",
            Flavor::MultiThread => "multi-thread",
        };
        let p50 = |h: &Histogram| h.percentile(0.5).as_nanos() as f64;
        let mut row = |what: &str, h: &Histogram, ratio: String| {
            let _ = writeln!(
                out,
                "| {flavor} | {what} | {} | {} | {ratio} |",
                fmt(h.percentile(0.5)),
                fmt(h.percentile(0.99))
            );
        };
        let to_blocking = |h: &Histogram| format!("{:.2}× blocking", p50(h) / p50(&rows.blocking));
        let to_socket =
            |h: &Histogram| format!("{:.2}× tokio socket", p50(h) / p50(&rows.socket_wait));
        row(
            "back to back: blocking client (no runtime)",
            &rows.blocking,
            "1.00× blocking".into(),
        );
        row(
            "back to back: async client",
            &rows.async_spin,
            to_blocking(&rows.async_spin),
        );
        row(
            "back to back: tokio Unix socket",
            &rows.socket_loop,
            to_blocking(&rows.socket_loop),
        );
        row(
            "1 ms apart: async client, adaptive",
            &rows.async_wait,
            to_socket(&rows.async_wait),
        );
        row(
            "1 ms apart: async client, park-only",
            &rows.async_park_wait,
            to_socket(&rows.async_park_wait),
        );
        row(
            "1 ms apart: tokio Unix socket",
            &rows.socket_wait,
            "1.00× tokio socket".into(),
        );
    }
    out
}

fn main() {
    play_role_if_any();
    pin(Cpus::Measuring);
    let passes = [pass(Flavor::CurrentThread), pass(Flavor::MultiThread)];
    let table = table(&passes);
    println!("{table}");
    if std::env::var("SHMRPC_BENCH_QUICK").is_err() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/results/async.md");
        let text = format!(
            "# Async calls under tokio (8 B each way)\n\nMeasured by `cargo bench -p shmrpc-benches \
             --bench async_calls`: {ROUNDS} interleaved rounds; back to back for {SLICE:?} per \
             round, 1 ms apart for {SPORADIC_CALLS} calls of each per round, the three \
             taking turns call by call.\n\n{table}"
        );
        std::fs::write(path, text).unwrap();
    }
}
