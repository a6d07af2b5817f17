//! A kill storm: 40 busy client processes killed at random moments, replaced as they die,
//! while a checker calls for 6 s (and through 60 kills at least) with a 2 s timeout. The checker sees zero errors and zero
//! crossed answers; so do the survivors.

use std::process::Command;
use std::time::{Duration, Instant};

use shmrpc::ClientOptions;
use shmrpc_tests::*;

const CLIENTS: usize = 40;

fn busy_client(name: &str, id: usize) -> Peer {
    let mut peer = Peer::spawn(Command::new(peer_program()).args([
        "loop",
        name,
        &(id + 1).to_string(),
        "2000",
    ]));
    peer.expect_line("ready");
    peer
}

#[test]
fn a_kill_storm_costs_the_checker_nothing() {
    let name = unique_name("storm");
    let server = Peer::start(&["server", "work", &name]);
    let mut clients: Vec<Peer> = (0..CLIENTS).map(|id| busy_client(&name, id)).collect();
    let checker = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_secs(2)),
    )
    .unwrap();

    let mut rng = Rng::new(0x5eed);
    let (mut calls, mut kills, mut slowest) = (0u64, 0u32, Duration::ZERO);
    let start = Instant::now();
    let mut next_kill = start;
    // At least 6 s and at least 60 kills: on a loaded machine starting the replacements is
    // slow, and the storm must not get calmer for it.
    while start.elapsed() < Duration::from_secs(6) || kills < 60 {
        if Instant::now() >= next_kill {
            let victim = rng.below(CLIENTS as u64) as usize;
            clients[victim].kill();
            clients[victim] = busy_client(&name, victim);
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(rng.below(40));
        }
        let t = Instant::now();
        let r = checker
            .echo(0, 0, calls)
            .unwrap_or_else(|e| panic!("checker call {calls} failed: {e}"));
        assert_eq!((r.client, r.seq), (0, calls), "crossed answer");
        slowest = slowest.max(t.elapsed());
        calls += 1;
    }
    eprintln!("{calls} checker calls, {kills} clients killed, slowest checker call {slowest:?}");
    for mut client in clients {
        client.kill();
        let rest = client.rest();
        assert!(!rest.contains("crossed"), "{rest}");
    }
    drop(server);
    assert!(leftovers(&name).is_empty());
}
