//! The 8 B round trip of shmrpc against the floor it is built on, on any platform: a bare
//! ping-pong of two threads spinning, laid out as the main benchmark's spin floor
//! (`benches/src/floor.rs`): the request word, the response word and the payload each on a
//! 128-byte line pair of its own, the payload copied in and out on each side. shmrpc's server
//! and client are threads of one process too, both spinning (`WaitStrategy::SpinOnly`), so the
//! two differ only by what shmrpc does per call. Also timed, as in the main benchmark: the
//! ping-pong with each word followed by its payload ("one line"), the fewest cache lines a
//! request and a response can move. Passes alternate; each pass times batches of round trips
//! and keeps the median batch.
//!
//! Until 2026-12-01 the floor here was two words that the allocator placed, in one cache line
//! or in two as it happened: a floor that moved from run to run.
//!
//! The shmrpc server lives for its own passes only: a server that only spins spins while idle
//! too, and a third spinning thread on a machine of two CPUs moves the floor's threads about
//! (its round trip then took anything from 28 ns to 320 ns on one virtual machine).
//!
//! `cargo bench -p shmrpc-portable-bench` (Linux), or under Wine:
//! `cargo bench --target x86_64-pc-windows-gnu -p shmrpc-portable-bench`.
//! `-- --quick` for a short run.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, ServerOptions, WaitStrategy, shm_service};

#[shm_service]
pub trait Echo {
    fn echo(&self, x: u64) -> u64;
}

struct EchoImpl;

impl Echo for EchoImpl {
    fn echo(&self, x: u64) -> u64 {
        x
    }
}

const BATCH: u32 = 1_000;

/// Times `batches` batches of `BATCH` round trips; the median batch, per round trip.
fn median_per_trip(batches: usize, mut trip: impl FnMut(u64)) -> Duration {
    let mut times: Vec<Duration> = (0..batches)
        .map(|b| {
            let start = Instant::now();
            for i in 0..u64::from(BATCH) {
                trip(b as u64 * u64::from(BATCH) + i);
            }
            start.elapsed() / BATCH
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// A cache-line pair: a word, then (in the one-line layout) its payload.
#[derive(Default)]
#[repr(C, align(128))]
struct Line {
    word: AtomicU64,
    payload: AtomicU64,
}

/// The floor's shared memory: the request line, the response line, and the payload's line
/// (both ways) of the slot layout.
#[derive(Default)]
struct Floor {
    request: Line,
    response: Line,
    data: Line,
}

impl Floor {
    /// Where the request's and the response's payloads go.
    fn payloads(&self, one_line: bool) -> (&AtomicU64, &AtomicU64) {
        if one_line {
            (&self.request.payload, &self.response.payload)
        } else {
            (&self.data.payload, &self.data.payload)
        }
    }
}

/// The floor: each thread spins on the other's word, and copies the 8 B payload out and in.
fn bare(batches: usize, one_line: bool) -> Duration {
    let floor = Arc::new(Floor::default());
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (floor, stop) = (floor.clone(), stop.clone());
        std::thread::spawn(move || {
            let (request, response) = floor.payloads(one_line);
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = floor.request.word.load(Ordering::Acquire);
                if r != seen {
                    seen = r;
                    response.store(request.load(Ordering::Relaxed), Ordering::Relaxed);
                    floor.response.word.store(r, Ordering::Release);
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let (request, response) = floor.payloads(one_line);
    let mut seq = 0u64;
    let took = median_per_trip(batches, |x| {
        seq += 1;
        request.store(x, Ordering::Relaxed);
        floor.request.word.store(seq, Ordering::Release);
        while floor.response.word.load(Ordering::Acquire) != seq {
            std::hint::spin_loop();
        }
        assert_eq!(black_box(response.load(Ordering::Relaxed)), x);
    });
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    took
}

/// One pass of shmrpc calls, with a server of its own that ends with the pass.
fn shmrpc_pass(pass: usize, batches: usize) -> Duration {
    let name = format!("bench-spin-ratio-{}-{pass}", std::process::id());
    let server = EchoServer::bind_with(
        &name,
        EchoImpl,
        ServerOptions::default().wait(WaitStrategy::SpinOnly),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let client =
        EchoClient::connect_with(&name, ClientOptions::default().wait(WaitStrategy::SpinOnly))
            .unwrap();
    let call = |x| assert_eq!(client.echo(black_box(x)).unwrap(), x);
    // Warm up the server and the client.
    median_per_trip(10, call);
    let took = median_per_trip(batches, call);
    drop(client);
    server.shutdown().unwrap();
    took
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (passes, batches) = if quick { (3, 50) } else { (7, 200) };
    bare(10, false);
    let (mut floor, mut one_line, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    for pass in 0..passes {
        floor.push(bare(batches, false));
        one_line.push(bare(batches, true));
        calls.push(shmrpc_pass(pass, batches));
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[passes / 2]
    };
    let (f, l, c) = (median(floor), median(one_line), median(calls));
    let ratio = |floor: Duration| c.as_nanos() as f64 / floor.as_nanos().max(1) as f64;
    println!("8 B round trip, threads of one process, both spinning ({passes} alternating passes)");
    println!("  spin floor:              {f:?}");
    println!("  spin floor, one line:    {l:?}");
    println!("  shmrpc call:             {c:?}");
    println!("  ratio: {:.2}x the spin floor", ratio(f));
    println!("         {:.2}x the one-line floor", ratio(l));
}
