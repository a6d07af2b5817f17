//! Behaviour 11: by default only the server's user can connect; `.mode(0o666)` lets anyone.
//! Runs the client as user `nobody` through `setpriv`, so it needs root; elsewhere it says so
//! and passes.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use shmrpc_tests::*;

const NOBODY: &str = "65534";

fn can_switch_users() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && setpriv) {
        eprintln!("skipped: switching users needs root and setpriv");
    }
    root && setpriv
}

/// Runs `peer connect <name>` as another user; its one-line verdict.
fn connect_as_nobody(name: &str) -> String {
    let mut peer = Peer::spawn(
        Command::new("setpriv")
            .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups", "--"])
            .arg(peer_program())
            .args(["connect", name]),
    );
    peer.line()
}

fn mode_of(name: &str) -> u32 {
    std::fs::metadata(format!("/dev/shm/shmrpc.{name}"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn another_user_is_refused_by_default() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("private");
    let _server = Peer::start(&["server", "work", &name]);
    assert_eq!(mode_of(&name), 0o600);
    let verdict = connect_as_nobody(&name);
    assert!(verdict.starts_with("PermissionDenied "), "{verdict}");
    assert!(
        verdict.contains("mode(0o666)"),
        "the message says what to do: {verdict}"
    );
}

#[test]
fn mode_666_lets_another_user_call() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("public");
    let _server = Peer::start(&["server", "work", &name, "mode=0o666"]);
    assert_eq!(mode_of(&name), 0o666);
    assert_eq!(connect_as_nobody(&name), "ok");
}

#[test]
fn the_mode_is_exact_whatever_the_umask() {
    let name = unique_name("umask");
    let mut server = Peer::spawn(Command::new("sh").arg("-c").arg(format!(
        "umask 077; exec {} server work {name} mode=0o660",
        peer_program().display()
    )));
    server.expect_line("ready");
    assert_eq!(mode_of(&name), 0o660);
}
