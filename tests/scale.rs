//! Behaviour 8 of the connections issue: a thousand connected, idle clients cost an idle
//! server no CPU, and a calling client's p50 no more than 1.2 times what it is with no other
//! client connected. Also measures the memory a connection costs (printed; the README quotes
//! it).

use std::process::Command;
use std::time::{Duration, Instant};

use shmrpc_tests::*;

const IDLE_CLIENTS: usize = 1000;

/// p50 of `calls` calls, after a warm-up.
fn p50(client: &WorkClient, calls: usize) -> Duration {
    for i in 0..1000 {
        client.add(i, 1).unwrap();
    }
    let mut times: Vec<Duration> = (0..calls)
        .map(|i| {
            let start = Instant::now();
            client.add(i as i64, 1).unwrap();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[calls / 2]
}

/// Resident plus shared memory of a process, in KiB (`/proc/<pid>/status`: VmRSS counts the
/// mapped pages of its slots).
fn memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    field("VmRSS:")
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A process holding `IDLE_CLIENTS` connected, idle clients.
fn crowd(name: &str) -> Peer {
    let mut crowd =
        Peer::spawn(Command::new(peer_program()).args(["many", name, &IDLE_CLIENTS.to_string()]));
    crowd.expect_line("ready");
    crowd
}

#[test]
fn a_thousand_idle_clients_cost_no_cpu_and_do_not_slow_a_call_down() {
    // Rounds without and with the crowd, in turn, each compared with the round just before it
    // (on a shared VM the speed of a call drifts by a fifth over seconds, and both sides of a
    // pair see the same machine); the median of the pairs' ratios counts.
    const ROUNDS: usize = 9;
    let name = unique_name("scale");
    let server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect(&name).unwrap();
    let (mut alone, mut crowded) = (Vec::new(), Vec::new());
    let (mut per_connection_kib, mut per_connection_fds) = (0.0, 0.0);
    let mut last_crowd = None;
    for round in 0..ROUNDS {
        drop(last_crowd.take());
        alone.push(p50(&client, 5_000));
        let (memory, fds) = (memory_kib(server.pid()), open_fds(server.pid()));
        let crowd = crowd(&name);
        crowded.push(p50(&client, 5_000));
        if round == 0 {
            per_connection_kib = (memory_kib(server.pid()) - memory) as f64 / IDLE_CLIENTS as f64;
            per_connection_fds = (open_fds(server.pid()) - fds) as f64 / IDLE_CLIENTS as f64;
        }
        last_crowd = Some(crowd);
    }
    let crowd = last_crowd.expect("a crowd");
    let mut ratios: Vec<f64> = alone
        .iter()
        .zip(&crowded)
        .map(|(alone, crowded)| crowded.as_nanos() as f64 / alone.as_nanos() as f64)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ROUNDS / 2];
    eprintln!(
        "p50 with 1 client {alone:?}, with {IDLE_CLIENTS} more connected {crowded:?} (median \
         ratio {ratio:.2}); the server's memory grows by {per_connection_kib:.1} KiB and \
         {per_connection_fds:.1} descriptors per connection"
    );
    assert!(ratio <= 1.2, "{ratio:.2}x");
    drop(client);
    // Once nobody calls, the server stops spinning: then it, and the idle clients, use no CPU.
    std::thread::sleep(Duration::from_millis(100));
    let before = (cpu_ticks(server.pid()), cpu_ticks(crowd.pid()));
    std::thread::sleep(Duration::from_millis(1500));
    let after = (cpu_ticks(server.pid()), cpu_ticks(crowd.pid()));
    assert_eq!(after.0 - before.0, 0, "the idle server used CPU");
    assert_eq!(after.1 - before.1, 0, "the idle clients used CPU");
}

fn mappings(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |m| m.lines().count())
}

/// Connections that end, by a clean exit or by `SIGKILL`, leave nothing in the server: its
/// descriptors come back to what they were, and so do its mappings (give or take a few that the
/// allocator may add for its threads' arenas; a connection that was not let go of would leave
/// one per slot).
#[test]
fn connections_that_end_leave_nothing_in_the_server() {
    const CROWD: usize = 200;
    let name = unique_name("leave-nothing");
    let server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect(&name).unwrap();
    client.add(1, 1).unwrap();
    let (fds, maps) = (open_fds(server.pid()), mappings(server.pid()));
    let gone = || open_fds(server.pid()) == fds && mappings(server.pid()) <= maps + 8;
    for kill in [false, true] {
        let mut crowd =
            Peer::spawn(Command::new(peer_program()).args(["many", &name, &CROWD.to_string()]));
        crowd.expect_line("ready");
        assert!(open_fds(server.pid()) >= fds + CROWD);
        if kill {
            crowd.kill();
        }
        drop(crowd);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            gone(),
            "killed: {kill}: the server had {fds} descriptors and {maps} mappings before the \
             crowd, {} and {} after it",
            open_fds(server.pid()),
            mappings(server.pid())
        );
        // The server still serves.
        assert_eq!(client.add(2, 2).unwrap(), 4);
    }
}
