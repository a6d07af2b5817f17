//! The pattern of the article shmrpc descends from: the first instance of a program becomes the
//! server, later instances become its clients. Start it in several terminals:
//!
//! ```text
//! cargo run --example monitor                      # serves, prints who reports
//! cargo run --example monitor                      # reports a heartbeat every 200 ms
//! ```
//!
//! Kill the first instance (even with `kill -9`): one of the others takes over as the monitor,
//! the rest report to it. Options: `--name <service>`, `--seconds <n>` (stop after n seconds).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, Error, shm_service};

/// What instances tell the monitor.
#[shm_service]
pub trait Monitor {
    /// Records a heartbeat of process `pid`; returns how many heartbeats the monitor has seen.
    fn heartbeat(&self, pid: u32, seq: u64) -> u64;
}

/// The monitor's state: heartbeats per process.
#[derive(Debug, Default)]
struct Board {
    beats: Mutex<BTreeMap<u32, u64>>,
}

impl Monitor for Board {
    fn heartbeat(&self, pid: u32, _seq: u64) -> u64 {
        let mut beats = self.beats.lock().unwrap();
        *beats.entry(pid).or_default() += 1;
        beats.values().sum()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let name = arg("--name").unwrap_or_else(|| "monitor".to_owned());
    let seconds = arg("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let end = Instant::now().checked_add(Duration::from_secs(seconds));
    match run(&name, end) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn over(end: Option<Instant>) -> bool {
    end.is_some_and(|end| Instant::now() >= end)
}

fn run(name: &str, end: Option<Instant>) -> Result<(), Error> {
    let me = std::process::id();
    while !over(end) {
        match MonitorServer::bind(name, Board::default()) {
            Ok(server) => return serve(server, end),
            Err(Error::AlreadyRunning { pid, .. }) => {
                println!("[{me}] monitor `{name}` is process {pid}: reporting to it");
                report(name, end)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn serve(server: MonitorServer<Board>, end: Option<Instant>) -> Result<(), Error> {
    let me = std::process::id();
    println!("[{me}] I am the monitor of `{}`", server.name());
    let handle = server.spawn()?;
    // Report what arrives, through a client of our own.
    let client = MonitorClient::connect(handle.name())?;
    let mut seq = 0;
    while !over(end) {
        std::thread::sleep(Duration::from_secs(1));
        seq += 1;
        let total = client.heartbeat(me, seq)?;
        println!("[{me}] {total} heartbeats so far");
    }
    handle.shutdown()
}

/// Sends heartbeats until the end, or until the monitor goes away (then the caller tries to
/// become the monitor).
fn report(name: &str, end: Option<Instant>) -> Result<(), Error> {
    let me = std::process::id();
    let client = match MonitorClient::connect_with(
        name,
        ClientOptions::default().timeout(Duration::from_secs(1)),
    ) {
        Ok(client) => client,
        Err(Error::ServerNotRunning { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    for seq in 1.. {
        if over(end) {
            break;
        }
        match client.heartbeat(me, seq) {
            Ok(total) => println!("[{me}] heartbeat {seq} delivered; the monitor has {total}"),
            Err(e @ (Error::ServerNotRunning { .. } | Error::ServerDied { .. })) => {
                println!("[{me}] the monitor went away ({e}); trying to take over");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
