//! Behaviour 9: whatever bytes another process writes into the shared memory, the server neither
//! crashes nor misbehaves, and serves correctly again within 1 s once the writing stops. Clients
//! may see errors meanwhile, never a panic.
//!
//! The writer here is this test process, writing through the object's file (`pwrite` reaches
//! the same pages the peers have mapped).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::time::{Duration, Instant};

use shmrpc::ClientOptions;
use shmrpc_tests::*;

/// Offsets of protocol version 3 for the `Work` service (1024-byte slot, so 1152-byte exec and
/// done regions; see shmrpc/src/layout.rs).
const LOCK: u64 = 256;
const TAKEN: u64 = 384;
const EXEC_BELL: u64 = 512;
const DONE_BELL: u64 = 640;
const REQ_SEQ: u64 = 768;
const WITHDRAWN: u64 = REQ_SEQ + 8;
const RESP_SEQ: u64 = REQ_SEQ + 1152;
const DESCRIPTION: u64 = RESP_SEQ + 1152;

fn object(name: &str) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm/shmrpc.{name}"))
        .unwrap()
}

/// Calls with fresh clients until one call succeeds; how long that took.
fn time_to_recover(name: &str, within: Duration) -> Duration {
    let start = Instant::now();
    let options = ClientOptions::default().timeout(Duration::from_millis(200));
    let mut last = String::new();
    while start.elapsed() < within {
        match WorkClient::connect_with(name, options.clone()).and_then(|c| c.add(20, 22)) {
            Ok(42) => return start.elapsed(),
            Ok(other) => last = format!("wrong answer {other}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no recovery within {within:?}; last: {last}");
}

fn churn(name: &str, id: u32) -> Peer {
    let mut peer =
        Peer::spawn(Command::new(peer_program()).args(["churn", name, &id.to_string(), "300"]));
    peer.expect_line("ready");
    peer
}

/// Closes the peer's stdin; its summary line, after checking it exited normally (no panic).
fn finish(mut peer: Peer) -> String {
    drop(peer.child.stdin.take());
    let summary = peer.line();
    assert_eq!(
        peer.wait(Duration::from_secs(5)),
        Some(0),
        "client ended badly: {summary}"
    );
    summary
}

#[test]
fn random_bytes_anywhere_for_seconds_then_service_resumes_within_1s() {
    let name = unique_name("garbage");
    let mut server = Peer::start(&["server", "work", &name]);
    let clients: Vec<Peer> = (1..=3).map(|id| churn(&name, id)).collect();
    let file = object(&name);
    let len = file.metadata().unwrap().len();
    let mut rng = Rng::new(0xbad5eed);
    let mut chunk = [0u8; 64];
    let (start, mut writes) = (Instant::now(), 0u64);
    while start.elapsed() < Duration::from_secs(3) {
        let n = 1 + rng.below(chunk.len() as u64) as usize;
        let at = rng.below(len - n as u64);
        rng.fill(&mut chunk[..n]);
        file.write_at(&chunk[..n], at).unwrap();
        writes += 1;
        if writes % 64 == 0 {
            // Give the clients room to call into the damage too.
            std::thread::yield_now();
        }
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died from garbage"
    );
    let took = time_to_recover(&name, Duration::from_secs(1));
    eprintln!("{writes} random writes in 3 s; service back {took:?} after they stopped");
    for client in clients {
        eprintln!("during garbage: {}", finish(client));
    }
    // After the writing: every answer correct again, for every client.
    let clients: Vec<Peer> = (4..=6).map(|id| churn(&name, id)).collect();
    std::thread::sleep(Duration::from_millis(500));
    for client in clients {
        let summary = finish(client);
        assert!(
            summary.starts_with("ok=")
                && summary.contains(" died=0 notrunning=0 timeout=0 other=0 crossed=0"),
            "{summary}"
        );
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server is alive"
    );
    drop(server);
    assert!(leftovers(&name).is_empty());
}

#[test]
fn each_control_word_written_over_is_repaired_or_ignored() {
    control_words_written_over("adaptive");
}

#[test]
fn a_server_that_only_spins_repairs_too() {
    control_words_written_over("spin");
}

fn control_words_written_over(wait: &str) {
    let name = unique_name(&format!("targeted-{wait}"));
    let server = Peer::start(&["server", "work", &name, &format!("wait={wait}")]);
    let file = object(&name);
    let header_len = 72;
    let damage: &[(&str, u64, &[u8])] = &[
        (
            "lock held by a pid that does not exist",
            LOCK,
            &0x3fff_fff0u64.to_le_bytes(),
        ),
        (
            "lock held by the server's pid with a wrong start time",
            LOCK,
            &(u64::from(server.pid()) | 0xdead_0000_0000_0000).to_le_bytes(),
        ),
        ("lock word all ones", LOCK, &u64::MAX.to_le_bytes()),
        (
            "lock held by init, with no start time",
            LOCK,
            &1u64.to_le_bytes(),
        ),
        (
            "a request nobody sent",
            REQ_SEQ,
            &0x5151_5151u64.to_le_bytes(),
        ),
        (
            "the last request withdrawn after the fact",
            WITHDRAWN,
            &u64::MAX.to_le_bytes(),
        ),
        (
            "the taken sequence number scribbled",
            TAKEN,
            &0x7777u64.to_le_bytes(),
        ),
        (
            "exec doorbell scribbled",
            EXEC_BELL,
            &0xffff_fffeu32.to_le_bytes(),
        ),
        (
            "done doorbell scribbled",
            DONE_BELL,
            &0x1234_5679u32.to_le_bytes(),
        ),
        (
            "response sequence scribbled",
            RESP_SEQ,
            &u64::MAX.to_le_bytes(),
        ),
        ("header zeroed", 0, &[0; 72][..header_len]),
        ("description zeroed", DESCRIPTION, &[0; 64]),
    ];
    for (what, at, bytes) in damage {
        file.write_at(bytes, *at).unwrap();
        let took = time_to_recover(&name, Duration::from_secs(1));
        eprintln!("[{wait}] {what:<56} service back in {took:?}");
    }
    let client = WorkClient::connect(&name).unwrap();
    for i in 0..100 {
        assert_eq!(client.echo(7, 7, i).unwrap().seq, i);
    }
}
