//! The 8 B round trip of shmrpc against the floor it is built on, on any platform: a bare
//! ping-pong of two threads spinning on one atomic word. shmrpc's server and client are
//! threads of one process too, both spinning (`WaitStrategy::SpinOnly`), so the two differ only
//! by what shmrpc does per call. Passes alternate; each pass times batches of round trips and
//! keeps the median batch.
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

/// The floor: a request word and an answer word, each thread spinning on the other's.
fn bare(batches: usize) -> Duration {
    let request = Arc::new(AtomicU64::new(0));
    let answer = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let (request, answer, stop) = (request.clone(), answer.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = request.load(Ordering::Acquire);
                if r != seen {
                    seen = r;
                    answer.store(r, Ordering::Release);
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let mut seq = 0u64;
    let took = median_per_trip(batches, |x| {
        seq += 1;
        request.store(seq, Ordering::Release);
        while answer.load(Ordering::Acquire) != seq {
            std::hint::spin_loop();
        }
        black_box(x);
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
    // Warm up both.
    median_per_trip(10, call);
    let took = median_per_trip(batches, call);
    drop(client);
    server.shutdown().unwrap();
    took
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (passes, batches) = if quick { (3, 50) } else { (7, 200) };
    bare(10);
    let mut floor = Vec::new();
    let mut calls = Vec::new();
    for pass in 0..passes {
        floor.push(bare(batches));
        calls.push(shmrpc_pass(pass, batches));
    }
    floor.sort();
    calls.sort();
    let (f, c) = (floor[passes / 2], calls[passes / 2]);
    println!("8 B round trip, threads of one process, both spinning ({passes} alternating passes)");
    println!("  bare spinning ping-pong: {f:?}");
    println!("  shmrpc call:             {c:?}");
    println!(
        "  ratio: {:.2}x",
        c.as_nanos() as f64 / f.as_nanos().max(1) as f64
    );
}
