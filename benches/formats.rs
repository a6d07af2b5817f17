//! Why shmrpc writes its own wire format rather than using a serde format crate: the same
//! messages encoded and decoded by shmrpc's format and by postcard (serde), in private memory.
//!
//! ```text
//! cargo bench -p shmrpc-benches --bench formats
//! ```
//!
//! Each case encodes a message into a reused buffer and decodes it as the server's method
//! would receive it (borrowed where the format can lend), the median of many runs. What this
//! leaves out favours postcard: shmrpc writes requests straight into the slot and reads large
//! replies straight out of it, where a serde format needs a private buffer on each side (one
//! more copy of the message each way).

use std::hint::black_box;
use std::time::{Duration, Instant};

use shmrpc::__private::{Reader, Writer, put_str};
use shmrpc::Wire;

/// The median time of `f`, over batches of runs for `budget`.
fn median(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..10 {
        f();
    }
    let mut batch = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        if start.elapsed() > Duration::from_micros(200) {
            break;
        }
        batch *= 2;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed() / batch);
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn row(case: &str, ours: Duration, postcard: Duration) {
    println!(
        "| {case} | {} | {} | {:.2}× |",
        fmt(ours),
        fmt(postcard),
        postcard.as_secs_f64() / ours.as_secs_f64()
    );
}

fn main() {
    let budget = Duration::from_millis(400);
    let mut buf = Vec::with_capacity(2 << 20);
    let mut pbuf = vec![0u8; 2 << 20];
    println!(
        "| message (encode, then decode as the method receives it) | shmrpc | postcard 1 | postcard / shmrpc |"
    );
    println!("|---|---|---|---|");

    // A key and 1 MiB of bytes: both formats lend the bytes.
    let key = "photos/2026/11/30/cat.jpg";
    let value = vec![0xABu8; 1 << 20];
    let ours = median(budget, || {
        let mut w = Writer::buf(&mut buf);
        put_str(&mut w, key);
        value.encode(&mut w);
        let mut r = Reader::new(&buf);
        let k = r.str().unwrap();
        let v = r.seq::<u8>().unwrap();
        black_box((k, &*v));
    });
    let theirs = median(budget, || {
        let used = postcard::to_slice(&(key, serde_bytes::Bytes::new(&value)), &mut pbuf)
            .unwrap()
            .len();
        let (k, v): (&str, &serde_bytes::Bytes) = postcard::from_bytes(&pbuf[..used]).unwrap();
        black_box((k, v));
    });
    row("`&str` key + `&[u8]` of 1 MiB", ours, theirs);

    // 100,000 numbers: shmrpc lends `&[f64]` out of the (aligned) message; postcard builds a
    // vector, value by value.
    let reals: Vec<f64> = (0..100_000).map(|i| i as f64 * 0.5).collect();
    let ours = median(budget, || {
        let mut w = Writer::buf(&mut buf);
        reals.encode(&mut w);
        let mut r = Reader::new(&buf);
        let v = r.seq::<f64>().unwrap();
        black_box(&*v);
    });
    let theirs = median(budget, || {
        let used = postcard::to_slice(&reals, &mut pbuf).unwrap().len();
        let v: Vec<f64> = postcard::from_bytes(&pbuf[..used]).unwrap();
        black_box(v);
    });
    row("`&[f64]` of 100,000", ours, theirs);

    // 1,000 short strings, owned on both sides.
    let words: Vec<String> = (0..1000).map(|i| format!("word-{i}")).collect();
    let ours = median(budget, || {
        let mut w = Writer::buf(&mut buf);
        words.encode(&mut w);
        let v = <Vec<String>>::decode(&mut Reader::new(&buf)).unwrap();
        black_box(v);
    });
    let theirs = median(budget, || {
        let used = postcard::to_slice(&words, &mut pbuf).unwrap().len();
        let v: Vec<String> = postcard::from_bytes(&pbuf[..used]).unwrap();
        black_box(v);
    });
    row("`Vec<String>` of 1,000 short strings", ours, theirs);

    // Two integers: the common small call.
    let ours = median(budget, || {
        let mut w = Writer::buf(&mut buf);
        black_box(2i64).encode(&mut w);
        black_box(3i64).encode(&mut w);
        let mut r = Reader::new(&buf);
        black_box((i64::decode(&mut r).unwrap(), i64::decode(&mut r).unwrap()));
    });
    let theirs = median(budget, || {
        let used = postcard::to_slice(&(black_box(2i64), black_box(3i64)), &mut pbuf)
            .unwrap()
            .len();
        let v: (i64, i64) = postcard::from_bytes(&pbuf[..used]).unwrap();
        black_box(v);
    });
    row("two `i64`", ours, theirs);
}
