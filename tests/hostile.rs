//! Behaviour 2 of the connections issue, behaviour 9 of the contract: a client that attacks
//! the only shared memory it can reach, its own slot, costs the others nothing. The attacker
//! (`peer hostile`) connects by hand and truncates or grows its slot (the seals refuse), punches
//! holes in it, `mprotect`s it, writes garbage into it and publishes garbage requests, floods
//! the server with kicks for slots it does not have, makes its end of the wake-up socket
//! blocking and never reads it, sends the server a descriptor whose last close would block for
//! an hour, or stops (`SIGSTOP`) with a request in flight. Meanwhile three honest clients call in a loop: none sees an error or another's
//! answer, and the server lives on.

use std::process::Command;
use std::time::Duration;

use shmrpc_tests::*;

fn churn(name: &str, id: u32) -> Peer {
    let mut peer =
        Peer::spawn(Command::new(peer_program()).args(["churn", name, &id.to_string(), "1000"]));
    peer.expect_line("ready");
    peer
}

/// Closes the peer's stdin; its summary line, after checking it exited normally (no panic).
fn finish(mut peer: Peer) -> String {
    drop(peer.child.stdin.take());
    let summary = peer.line();
    assert_eq!(peer.wait(Duration::from_secs(5)), Some(0), "{summary}");
    summary
}

fn count(summary: &str, key: &str) -> u64 {
    summary
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {summary}"))
}

#[test]
fn every_attack_on_its_own_slot_costs_the_other_clients_nothing() {
    for attack in [
        "truncate", "grow", "punch", "mprotect", "garbage", "kicks", "bell", "fds", "stop",
    ] {
        let name = unique_name(attack);
        let mut server = Peer::start(&["server", "work", &name]);
        let clients: Vec<Peer> = (1..=3).map(|id| churn(&name, id)).collect();
        let mut attacker =
            Peer::spawn(Command::new(peer_program()).args(["hostile", &name, attack]));
        attacker.expect_line("attacking");
        std::thread::sleep(Duration::from_millis(800));
        for (i, client) in clients.into_iter().enumerate() {
            let summary = finish(client);
            eprintln!("{attack}: client {i}: {summary}");
            assert!(count(&summary, "ok") > 0, "{attack}: {summary}");
            for bad in ["died", "notrunning", "timeout", "other", "crossed"] {
                assert_eq!(count(&summary, bad), 0, "{attack}: {summary}");
            }
        }
        assert!(server.running(), "{attack}: the server died");
        // A new client is served as usual, and the server is still the same process.
        let client = WorkClient::connect(&name).unwrap();
        assert_eq!(client.echo(1, 2, 3).unwrap().server_pid, server.pid());
        attacker.kill();
        drop(server);
        assert!(leftovers(&name).is_empty(), "{attack}");
    }
}

#[test]
fn another_user_cannot_open_any_connections_slot() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("peek");
    let server = Peer::start(&["server", "work", &name, "allow=any"]);
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    // The server keeps no descriptor of any slot (only the mapping): even its own user finds
    // none in /proc/<server>/fd.
    let mut root =
        Peer::spawn(Command::new(peer_program()).args(["peek", &server.pid().to_string()]));
    let line = root.line();
    assert!(line.ends_with(" memfds=0"), "{line}");
    // Another user can open nothing of the server's: no descriptor, no mapping.
    let mut nobody = Peer::spawn(&mut peer_as(NOBODY, &["peek", &server.pid().to_string()]));
    let line = nobody.line();
    assert!(line.starts_with("opened=0 "), "{line}");
}
