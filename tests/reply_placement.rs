//! Review attacks on reply placement (replies over 256 bytes written over the request area),
//! late answers of timed-out calls, and TooLarge results. Servers run in a child process (this
//! executable run again with `REVIEW_ROLE` set).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmrpc::{ClientOptions, Error, Replied, Reply, ServerOptions};
use shmrpc_tests::*;

#[shmrpc::shm_service]
pub trait Place {
    fn ping(&self) -> u64;
    /// Sleeps `us` microseconds, then returns `data`.
    fn echo_slow(&self, us: u32, data: Vec<u8>) -> Vec<u8>;
    /// Sleeps `us` microseconds, then sends `data` through a `Reply`.
    fn echo_slow_sent(&self, us: u32, data: &[u8], reply: Reply<'_, Vec<u8>>) -> Replied;
    /// `n` pattern bytes.
    fn bytes(&self, n: u64) -> Vec<u8>;
    fn bytes_sent(&self, n: u64, reply: Reply<'_, Vec<u8>>) -> Replied;
    fn bytes_send(&self, n: u64, reply: Reply<'_, Vec<u8>>) -> Replied;
    fn text(&self, n: u64) -> String;
    fn text_sent(&self, n: u64, reply: Reply<'_, String>) -> Replied;
    /// Sleeps, then returns `n` bytes (or panics if n == 0).
    fn slow_bytes(&self, us: u32, n: u64) -> Vec<u8>;
}

pub fn pattern(n: u64) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(31) ^ n) as u8).collect()
}

pub fn text_pattern(n: u64) -> String {
    (0..n)
        .map(|i| (b'a' + ((i + n) % 26) as u8) as char)
        .collect()
}

struct PlaceImpl;

impl Place for PlaceImpl {
    fn ping(&self) -> u64 {
        42
    }
    fn echo_slow(&self, us: u32, data: Vec<u8>) -> Vec<u8> {
        std::thread::sleep(Duration::from_micros(us.into()));
        data
    }
    fn echo_slow_sent(&self, us: u32, data: &[u8], reply: Reply<'_, Vec<u8>>) -> Replied {
        std::thread::sleep(Duration::from_micros(us.into()));
        reply.send_slice(data)
    }
    fn bytes(&self, n: u64) -> Vec<u8> {
        pattern(n)
    }
    fn bytes_sent(&self, n: u64, reply: Reply<'_, Vec<u8>>) -> Replied {
        reply.send_slice(&pattern(n))
    }
    fn bytes_send(&self, n: u64, reply: Reply<'_, Vec<u8>>) -> Replied {
        reply.send(&pattern(n))
    }
    fn text(&self, n: u64) -> String {
        text_pattern(n)
    }
    fn text_sent(&self, n: u64, reply: Reply<'_, String>) -> Replied {
        reply.send_str(&text_pattern(n))
    }
    fn slow_bytes(&self, us: u32, n: u64) -> Vec<u8> {
        std::thread::sleep(Duration::from_micros(us.into()));
        assert!(n != 0, "asked to panic");
        pattern(n)
    }
}

fn role_env() -> Option<String> {
    std::env::var("REVIEW_ROLE").ok()
}

/// Not a test: the body of the server child when `REVIEW_ROLE` is set.
#[test]
fn role() {
    let Some(role) = role_env() else { return };
    let args: Vec<&str> = role.split_whitespace().collect();
    match args.as_slice() {
        ["place", name, workers, max] => {
            let options = ServerOptions::default()
                .workers(workers.parse().unwrap())
                .max_message(max.parse().unwrap());
            let handle = PlaceServer::bind_with(name, PlaceImpl, options)
                .unwrap()
                .spawn()
                .unwrap();
            println!("\nready");
            for line in std::io::BufRead::lines(std::io::stdin().lock()) {
                if line.is_err() {
                    break;
                }
            }
            handle.shutdown().unwrap();
        }
        other => panic!("unknown role {other:?}"),
    }
}

fn start_server(name: &str, workers: usize, max: usize) -> Peer {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "role", "--nocapture", "--test-threads=1"])
        .env("REVIEW_ROLE", format!("place {name} {workers} {max}"))
        // The methods that panic on purpose answer at once: a backtrace printed under
        // RUST_BACKTRACE=1 takes a debug build a few hundred milliseconds, and the server's
        // panic output is noise here.
        .env("RUST_BACKTRACE", "0")
        .stderr(Stdio::null());
    let mut peer = Peer::spawn(&mut command);
    peer.skip_to_line("ready");
    peer
}

/// A request payload that names its thread and iteration, of `len` bytes.
fn tagged(thread: u64, i: u64, len: usize) -> Vec<u8> {
    let salt = (thread << 20) ^ i;
    let mut v: Vec<u8> = (0..len as u64)
        .map(|k| (k.wrapping_mul(31) ^ salt ^ (salt >> 8)) as u8)
        .collect();
    if len >= 16 {
        v[..8].copy_from_slice(&thread.to_le_bytes());
        v[8..16].copy_from_slice(&i.to_le_bytes());
    }
    v
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    timeout: AtomicU64,
    wrong: AtomicU64,
    other: AtomicU64,
}

fn storm(
    name: &str,
    threads: u64,
    iters: u64,
    timeout_ms: u64,
    max_slots: Option<usize>,
) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let mut options = ClientOptions::default().timeout(Duration::from_millis(timeout_ms));
    if let Some(n) = max_slots {
        options = options.max_slots(n);
    }
    let client = Arc::new(PlaceClient::connect_with(name, options).unwrap());
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (client, tally) = (client.clone(), tally.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(t * 7919 + 1);
                let mut out = Vec::new();
                for i in 0..iters {
                    // Lengths on both sides of 256 and of 4096; delays on both sides of the timeout.
                    let len = match rng.below(4) {
                        0 => 200 + rng.below(120) as usize,
                        1 => 257 + rng.below(4000) as usize,
                        2 => 4000 + rng.below(200) as usize,
                        _ => 4097 + rng.below(60000) as usize,
                    };
                    let us = match rng.below(3) {
                        0 => 0,
                        1 => rng.below(timeout_ms * 1000 * 2) as u32,
                        _ => (timeout_ms * 1000) as u32 + rng.below(300) as u32,
                    };
                    let data = tagged(t, i, len);
                    let result = match rng.below(4) {
                        0 => client.echo_slow(us, data.clone()),
                        1 => client.echo_slow_sent(us, &data),
                        2 => client
                            .echo_slow_into(us, data.clone(), &mut out)
                            .map(|()| out.clone()),
                        _ => client
                            .echo_slow_sent_into(us, &data, &mut out)
                            .map(|()| out.clone()),
                    };
                    match result {
                        Ok(got) if got == data => tally.ok.fetch_add(1, Ordering::Relaxed),
                        Ok(got) => {
                            eprintln!(
                                "CROSSED: thread {t} call {i} len {len}: got {} bytes, head {:?}",
                                got.len(),
                                &got[..got.len().min(16)]
                            );
                            tally.wrong.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(Error::Timeout { .. }) => tally.timeout.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("ERROR: thread {t} call {i} len {len}: {e}");
                            tally.other.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    // And an immediate fast call, whose answer must be its own.
                    let quick = tagged(t, i | 1 << 40, 300 + (i as usize % 5000));
                    match client.echo_slow(0, quick.clone()) {
                        Ok(got) if got == quick => tally.ok.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => {
                            eprintln!("CROSSED (quick): thread {t} call {i}");
                            tally.wrong.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(Error::Timeout { .. }) => tally.timeout.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("ERROR (quick): thread {t} call {i}: {e}");
                            tally.other.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a client thread panicked");
    }
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    eprintln!(
        "storm {threads}x{iters} timeout {timeout_ms} ms slots {max_slots:?}: ok {} timeout {} wrong {} other {}",
        l(&tally.ok),
        l(&tally.timeout),
        l(&tally.wrong),
        l(&tally.other)
    );
    // The client still works: a ping gets its answer (a deadline of a few milliseconds may
    // pass on a loaded machine, so a timeout is tried again; any other error is a failure).
    let start = std::time::Instant::now();
    loop {
        match client.ping() {
            Ok(v) => break assert_eq!(v, 42),
            Err(Error::Timeout { .. }) if start.elapsed() < Duration::from_secs(10) => {}
            Err(e) => panic!("after the storm: {e}"),
        }
    }
    tally
}

/// Q1: late answers over the request never cross into a later call.
#[test]
fn late_large_answers_never_cross_later_calls() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("place-late");
    let _server = start_server(&name, 4, 1 << 20);
    let tally = storm(&name, 8, 150, 2, None);
    assert_eq!(tally.wrong.load(Ordering::Relaxed), 0);
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
    assert!(
        tally.timeout.load(Ordering::Relaxed) > 0,
        "no call timed out: the attack did nothing"
    );
}

/// Q1: one slot shared by every thread: the abandoned slot must be waited for, not reused.
#[test]
fn late_large_answers_on_a_single_slot() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("place-one");
    let _server = start_server(&name, 2, 1 << 20);
    let tally = storm(&name, 4, 100, 2, Some(1));
    assert_eq!(tally.wrong.load(Ordering::Relaxed), 0);
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
}

/// Q1: the same with a single server worker (late answers queue behind each other).
#[test]
fn late_large_answers_one_worker() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("place-w1");
    let _server = start_server(&name, 1, 1 << 20);
    let tally = storm(&name, 6, 100, 1, None);
    assert_eq!(tally.wrong.load(Ordering::Relaxed), 0);
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
}

/// Q3: results around `max_message`, every way of sending them; the server goes on.
#[test]
fn results_at_and_over_max_message() {
    if role_env().is_some() {
        return;
    }
    for max in [300usize, 4096, 4097, 65536] {
        let name = unique_name("place-max");
        let _server = start_server(&name, 2, max);
        let client = PlaceClient::connect(&name).unwrap();
        let mut summary = Vec::new();
        for way in 0..8 {
            let mut last_ok = None;
            let mut first_too_large = None;
            let lo = max.saturating_sub(80) as u64;
            for n in lo..=(max as u64 + 8) {
                let check = |r: Result<(), Error>, ok: bool| -> bool {
                    match r {
                        Ok(()) => {
                            assert!(ok, "max {max} way {way} n {n}: wrong content");
                            true
                        }
                        Err(Error::TooLarge {
                            size,
                            limit,
                            response: true,
                            ..
                        }) => {
                            assert_eq!(limit, max as u64, "way {way} n {n}");
                            assert!(size > max as u64, "way {way} n {n}: size {size} <= {max}");
                            false
                        }
                        Err(e) => panic!("max {max} way {way} n {n}: {e}"),
                    }
                };
                let mut vout = vec![9u8; 3];
                let mut sout = String::from("zz");
                let fits = match way {
                    0 => {
                        let r = client.bytes(n);
                        let ok = r.as_ref().is_ok_and(|v| *v == pattern(n));
                        check(r.map(drop), ok)
                    }
                    1 => {
                        let r = client.bytes_sent(n);
                        let ok = r.as_ref().is_ok_and(|v| *v == pattern(n));
                        check(r.map(drop), ok)
                    }
                    2 => {
                        let r = client.bytes_send(n);
                        let ok = r.as_ref().is_ok_and(|v| *v == pattern(n));
                        check(r.map(drop), ok)
                    }
                    3 => {
                        let r = client.text(n);
                        let ok = r.as_ref().is_ok_and(|v| *v == text_pattern(n));
                        check(r.map(drop), ok)
                    }
                    4 => {
                        let r = client.text_sent(n);
                        let ok = r.as_ref().is_ok_and(|v| *v == text_pattern(n));
                        check(r.map(drop), ok)
                    }
                    5 => {
                        let r = client.bytes_into(n, &mut vout);
                        let ok = vout == pattern(n);
                        check(r, ok)
                    }
                    6 => {
                        let r = client.bytes_sent_into(n, &mut vout);
                        let ok = vout == pattern(n);
                        check(r, ok)
                    }
                    _ => {
                        let r = client.text_sent_into(n, &mut sout);
                        let ok = sout == text_pattern(n);
                        check(r, ok)
                    }
                };
                if fits {
                    assert!(
                        first_too_large.is_none(),
                        "max {max} way {way}: {n} fits after a TooLarge"
                    );
                    last_ok = Some(n);
                } else if first_too_large.is_none() {
                    first_too_large = Some(n);
                }
                assert_eq!(client.ping().unwrap(), 42);
            }
            summary.push((way, last_ok, first_too_large));
        }
        eprintln!("max {max}: (way, largest n that fits, first n too large) {summary:?}");
    }
}

/// Q3/Q4: a timed-out call whose late answer is TooLarge, or a panic, frees its slot.
#[test]
fn late_too_large_and_panics_free_the_slot() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("place-latetl");
    let _server = start_server(&name, 2, 4096);
    let client = PlaceClient::connect_with(
        &name,
        ClientOptions::default()
            .timeout(Duration::from_millis(5))
            .max_slots(1),
    )
    .unwrap();
    for round in 0..40u64 {
        let n = match round % 3 {
            0 => 5000,
            1 => 0,
            _ => 3000,
        };
        let r = client.slow_bytes(20_000, n);
        assert!(
            matches!(r, Err(Error::Timeout { .. })),
            "round {round}: {r:?}"
        );
        // The next call waits for the slot; with a long enough timeout it gets its own answer.
        let mut ok = false;
        for _ in 0..20 {
            match client.bytes(300 + round) {
                Ok(v) => {
                    assert_eq!(v, pattern(300 + round), "round {round}");
                    ok = true;
                    break;
                }
                Err(Error::Timeout { .. }) => std::thread::sleep(Duration::from_millis(3)),
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert!(ok, "round {round}: the slot never came back");
    }
}
