//! The other process of the behaviour tests: a server or a client of the test services.
//!
//! ```text
//! peer server <work|types|big> <name> [mode=<octal>] [wait=<adaptive|spin|park>]
//!     binds, prints `ready`, serves until stdin closes (then shuts down, prints `stopped`)
//! peer echo <name> <client-id> <threads> <calls>
//!     each thread makes <calls> echo calls with unique values; prints `ok <n>` or the problem
//! peer types <name>          calls every method of Types and checks the answers
//! peer idle <name>           connects, makes one call, prints `ready`, then waits on stdin
//! peer connect <name>        prints `ok` or the error kind of connecting
//! peer connect-narrow <name> as `connect`, with a client built from `Work` whose `add` takes i32
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

fn run(args: &[&str]) -> Result<ExitCode, shmrpc::Error> {
    match args {
        ["server", service, name, rest @ ..] => {
            let mut options = ServerOptions::default().wait(wait_strategy(rest));
            if let Some(mode) = opt(rest, "mode") {
                options = options.mode(
                    u32::from_str_radix(mode.trim_start_matches("0o"), 8).expect("octal mode"),
                );
            }
            let handle = match *service {
                "work" => WorkServer::bind_with(name, WorkImpl::default(), options)?.spawn()?,
                "types" => TypesServer::bind_with(name, TypesImpl::default(), options)?.spawn()?,
                "big" => BigServer::bind_with(name, BigImpl, options)?.spawn()?,
                other => panic!("unknown service {other}"),
            };
            println!("ready");
            // Serve until the test closes stdin (or kills us).
            for line in std::io::stdin().lock().lines() {
                if line.is_err() {
                    break;
                }
            }
            handle.shutdown()?;
            println!("stopped");
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
                        s.spawn(move || {
                            for seq in 0..calls {
                                let seq = seq * 1_000_003 + u64::from(t);
                                match client.echo(id, t, seq) {
                                    Ok(r) if (r.client, r.thread, r.seq) == (id, t, seq) => {}
                                    Ok(r) => {
                                        return Some(format!(
                                            "crossed: sent {id}/{t}/{seq}, got {r:?}"
                                        ));
                                    }
                                    Err(e) => return Some(format!("failed: {e}")),
                                }
                            }
                            None
                        })
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
            let client = WorkClient::connect(name)?;
            client.add(1, 2)?;
            println!("ready");
            for line in std::io::stdin().lock().lines() {
                if line.is_err() {
                    break;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ["connect", name] => {
            match WorkClient::connect(name).and_then(|c| c.add(40, 2)) {
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
        ["churn", name, id, timeout] => {
            use std::sync::atomic::{AtomicBool, Ordering};
            let stop = std::sync::Arc::new(AtomicBool::new(false));
            let watcher = stop.clone();
            std::thread::spawn(move || {
                let _ = std::io::stdin().read_line(&mut String::new());
                watcher.store(true, Ordering::Relaxed);
            });
            let options =
                ClientOptions::default().timeout(Duration::from_millis(timeout.parse().unwrap()));
            let id: u32 = id.parse().unwrap();
            let client = loop {
                match WorkClient::connect_with(name, options.clone()) {
                    Ok(client) => break client,
                    Err(_) if !stop.load(Ordering::Relaxed) => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
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
        _ => panic!("usage: see the top of tests/support/peer.rs; got {args:?}"),
    }
}
