//! Ten kill/restart cycles of the server under load from four client processes: every call
//! either succeeds with its own answer or fails with ServerDied / ServerNotRunning; none hangs,
//! and the clients carry on with each new server by themselves.

use std::process::Command;
use std::time::Duration;

use shmrpc_tests::*;

#[test]
fn ten_server_kill_restart_cycles_under_load() {
    let name = unique_name("restarts");
    let mut server = Peer::start(&["server", "work", &name]);
    let mut clients: Vec<Peer> = (0..4)
        .map(|id| {
            let mut peer = Peer::spawn(Command::new(peer_program()).args([
                "churn",
                &name,
                &(id + 1).to_string(),
                "2000",
            ]));
            peer.expect_line("ready");
            peer
        })
        .collect();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        server.kill();
        std::thread::sleep(Duration::from_millis(100));
        server = Peer::start(&["server", "work", &name]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let served_last = WorkClient::connect(&name).unwrap().served().unwrap();
    assert!(served_last > 0, "the clients came back to the last server");
    for (i, client) in clients.iter_mut().enumerate() {
        drop(client.child.stdin.take());
        let summary = client.line();
        eprintln!("client {i}: {summary}");
        let count = |key: &str| -> u64 {
            summary
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
                .unwrap()
        };
        assert!(count("ok") > 0, "{summary}");
        assert!(count("died") + count("notrunning") > 0, "{summary}");
        assert_eq!(
            (count("timeout"), count("other"), count("crossed")),
            (0, 0, 0),
            "{summary}"
        );
        assert_eq!(client.wait(Duration::from_secs(2)), Some(0));
    }
    drop(server);
    assert!(leftovers(&name).is_empty());
}
