//! The demo: one calculator server and four client processes calling it as fast as they can.
//!
//! ```text
//! cargo run --release --example demo [-- --seconds 5 --clients 4]
//! ```
//!
//! Each second it prints the calls per second of all clients together and the median (p50) and
//! 99th-percentile (p99) round trip. Then it stops the clients, shuts the server down, checks
//! that its name is free again, and exits 0.
//!
//! The program runs itself again as each client (`demo --client <name>`), so the calls really
//! cross processes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shmrpc_examples::{CalculatorClient, CalculatorServer, MyCalc};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--client") => client(&args[1]),
        _ => demo(flag(&args, "--seconds", 5), flag(&args, "--clients", 4)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(default)
}

/// Latency histogram: 8 buckets per power of two of nanoseconds (about 9% resolution).
#[derive(Clone)]
struct Histogram([u64; 64 * 8]);

impl Histogram {
    fn new() -> Self {
        Histogram([0; 64 * 8])
    }

    fn bucket(ns: u64) -> usize {
        let ns = ns.max(1);
        let log = 63 - ns.leading_zeros() as usize;
        let sub = if log >= 3 {
            ((ns >> (log - 3)) & 7) as usize
        } else {
            0
        };
        log * 8 + sub
    }

    /// The smallest latency in a bucket.
    fn value(bucket: usize) -> u64 {
        let (log, sub) = (bucket / 8, bucket % 8);
        if log >= 3 {
            (8 + sub as u64) << (log - 3)
        } else {
            1 << log
        }
    }

    fn record(&mut self, ns: u64) {
        self.0[Self::bucket(ns)] += 1;
    }

    fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    fn percentile(&self, p: f64) -> Duration {
        let target = (self.count() as f64 * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Duration::from_nanos(Self::value(bucket));
            }
        }
        Duration::ZERO
    }

    fn merge(&mut self, line: &str) {
        for item in line.split_whitespace() {
            if let Some((b, n)) = item.split_once(':')
                && let (Ok(b), Ok(n)) = (b.parse::<usize>(), n.parse::<u64>())
                && b < self.0.len()
            {
                self.0[b] += n;
            }
        }
    }

    fn to_line(&self) -> String {
        let items: Vec<String> = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| format!("{b}:{n}"))
            .collect();
        items.join(" ")
    }
}

fn demo(seconds: usize, clients: usize) -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("shmrpc-demo-{}", std::process::id());
    let handle = CalculatorServer::bind(&name, MyCalc::default())?.spawn()?;
    println!("server `{name}` up; starting {clients} client processes for {seconds} s\n");

    let window = Arc::new(Mutex::new(Histogram::new()));
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..clients {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--client", &name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let window = window.clone();
        readers.push(std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                window.lock().unwrap().merge(&line);
            }
        }));
        children.push(child);
    }

    let mut total = Histogram::new();
    let start = Instant::now();
    for second in 1..=seconds {
        let until = start + Duration::from_secs(second as u64);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        let h = std::mem::replace(&mut *window.lock().unwrap(), Histogram::new());
        println!(
            "{second:>3} s  {:>12} calls/s   p50 {:>9.2?}   p99 {:>9.2?}",
            group(h.count()),
            h.percentile(0.50),
            h.percentile(0.99)
        );
        for (b, n) in h.0.iter().enumerate() {
            total.0[b] += n;
        }
    }

    // Closing a client's stdin tells it to stop.
    for child in &mut children {
        drop(child.stdin.take());
    }
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a client process failed: {status}").into());
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    let stopping = Instant::now();
    handle.shutdown()?;
    let stopped = stopping.elapsed();
    // The name is free again: a new server can take it at once.
    let free = CalculatorServer::bind(&name, MyCalc::default()).is_ok();
    println!(
        "\n{} calls in {seconds} s from {clients} processes: p50 {:.2?}, p99 {:.2?}",
        group(total.count()),
        total.percentile(0.50),
        total.percentile(0.99)
    );
    println!(
        "server shut down in {stopped:.2?}; its name is free: {}",
        if free { "yes" } else { "no" }
    );
    if !free {
        return Err("the server's name is still taken after shutdown".into());
    }
    Ok(())
}

/// 1234567 -> "1,234,567"
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A client process: calls `add` in a loop, checking every answer, and reports a latency
/// histogram on stdout every 100 ms until its stdin closes.
fn client(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = CalculatorClient::connect(name)?;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_line(&mut String::new());
        watcher.store(true, Ordering::Relaxed);
    });
    let mut out = std::io::stdout().lock();
    let mut h = Histogram::new();
    let mut last_report = Instant::now();
    let mut i: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let sum = client.add(i, 1)?;
        h.record(t.elapsed().as_nanos() as u64);
        if sum != i + 1 {
            return Err(format!("wrong answer: add({i}, 1) = {sum}").into());
        }
        i += 1;
        if i % 256 == 0 && last_report.elapsed() >= Duration::from_millis(100) {
            writeln!(out, "{}", h.to_line())?;
            out.flush()?;
            h = Histogram::new();
            last_report = Instant::now();
        }
    }
    writeln!(out, "{}", h.to_line())?;
    Ok(())
}
