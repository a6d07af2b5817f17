//! Behaviour 3 of the connections issue: no live caller is ever taken over. A client with no
//! free file descriptor, or in another pid or time namespace, still gets its own answers while
//! others call at once. Every connection has a slot of its own, so there is nothing to take
//! over; these check that nothing else depends on what such a client cannot do.

use std::process::Command;

use shmrpc_tests::*;

fn unshare_available(flags: &[&str]) -> bool {
    let ok = Command::new("unshare")
        .args(flags)
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: unshare {flags:?} is not available here (needs root)");
    }
    ok
}

fn echo_peer(command: &mut Command, name: &str, id: u32) -> Peer {
    Peer::spawn(
        command
            .arg(peer_program())
            .args(["echo", name, &id.to_string(), "2", "1000"]),
    )
}

#[test]
fn a_client_without_a_free_descriptor_gets_its_own_answers() {
    let name = unique_name("nofd");
    let _server = Peer::start(&["server", "work", &name]);
    let mut starved = Peer::spawn(Command::new(peer_program()).args(["nofd", &name, "1", "1000"]));
    let mut other = echo_peer(&mut Command::new("env"), &name, 2);
    let line = starved.line();
    assert!(line.starts_with("ok 1000 "), "{line}");
    assert_eq!(other.line(), "ok 2000");
}

#[test]
fn clients_in_other_pid_and_time_namespaces_get_their_own_answers() {
    let flags = ["--pid", "--fork", "--time"];
    if !unshare_available(&flags) {
        return;
    }
    let name = unique_name("ns");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let mut unshare = Command::new("unshare");
    unshare.args(flags).arg("--");
    let mut elsewhere = echo_peer(&mut unshare, &name, 1);
    let mut here = echo_peer(&mut Command::new("env"), &name, 2);
    let client = WorkClient::connect(&name).unwrap();
    for seq in 0..1000 {
        let r = client.echo(3, 0, seq).unwrap();
        assert_eq!((r.client, r.seq), (3, seq));
    }
    assert_eq!(elsewhere.line(), "ok 2000");
    assert_eq!(here.line(), "ok 2000");
    // The server sees the namespaced client's real pid, not its pid 1.
    let mut unshare = Command::new("unshare");
    unshare
        .args(flags)
        .arg("--")
        .arg(peer_program())
        .args(["whoami", &name]);
    let line = Peer::spawn(&mut unshare).line();
    let pid: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(pid > 1, "{line}");
}

#[test]
fn a_client_in_another_network_namespace_does_not_find_the_service() {
    // Abstract socket names are per network namespace: a known limit, stated in the README.
    if !unshare_available(&["--net"]) {
        return;
    }
    let name = unique_name("netns");
    let _server = Peer::start(&["server", "work", &name]);
    let line = Peer::spawn(
        Command::new("unshare")
            .args(["--net", "--"])
            .arg(peer_program())
            .args(["connect", &name]),
    )
    .line();
    assert!(line.starts_with("ServerNotRunning "), "{line}");
}
