//! Behaviour 6 of the connections issue, behaviour 11 of the contract: who may connect, whom a
//! client trusts, and what each side sees of the other. Other users are real: `setpriv` runs
//! the peer as uid 65534 (so these tests need root; elsewhere they say so and pass).

use std::process::Command;

use shmrpc::Error;
use shmrpc_tests::*;

/// Runs `peer <args>` as uid 65534; its first line.
fn as_nobody(args: &[&str]) -> String {
    Peer::spawn(&mut peer_as(NOBODY, args)).line()
}

#[test]
fn by_default_another_user_does_not_even_find_the_service() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("private");
    let _server = Peer::start(&["server", "work", &name]);
    let verdict = as_nobody(&["connect", &name]);
    assert!(verdict.starts_with("ServerNotRunning "), "{verdict}");
}

#[test]
fn a_user_allowed_by_no_rule_is_refused_at_connect_naming_the_rule() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("refused");
    let _server = Peer::start(&["server", "work", &name, "allow-uid=1234", "allow-gid=4321"]);
    let verdict = as_nobody(&["connect", &name]);
    assert!(verdict.starts_with("PermissionDenied "), "{verdict}");
    for words in [
        "uid 65534",
        "its own user (uid 0), uids [1234], members of groups [4321]",
        "allow_uid(65534)",
    ] {
        assert!(verdict.contains(words), "{verdict} lacks {words:?}");
    }
}

#[test]
fn allow_any_user_lets_another_user_call_and_the_method_sees_who_called() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("public");
    let _server = Peer::start(&["server", "work", &name, "allow=any"]);
    assert_eq!(as_nobody(&["connect", &name]), "ok");
    let mut peer = Peer::spawn(&mut peer_as(NOBODY, &["whoami", &name]));
    let line = peer.line();
    // `setpriv` execs the peer: same pid.
    assert_eq!(line, format!("caller {} 65534 65534", peer.pid()));
    // And this process, as the server sees it.
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.caller().unwrap(), [std::process::id(), 0, 0]);
}

#[test]
fn caller_is_none_outside_a_call() {
    assert_eq!(shmrpc::Caller::current(), None);
}

#[test]
fn allow_uid_and_allow_gid_admit_those_users() {
    if !can_switch_users() {
        return;
    }
    for rule in ["allow-uid=65534", "allow-gid=65534"] {
        let name = unique_name("rule");
        let _server = Peer::start(&["server", "work", &name, rule]);
        assert_eq!(as_nobody(&["connect", &name]), "ok", "{rule}");
    }
}

#[test]
fn a_server_of_another_user_under_the_name_is_refused_unless_trusted() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("impostor");
    let mut impostor = Peer::spawn(&mut peer_as(
        NOBODY,
        &["server", "work", &name, "allow=any"],
    ));
    impostor.expect_line("ready");
    match WorkClient::connect(&name) {
        Err(e @ Error::PermissionDenied { .. }) => {
            let message = e.to_string();
            assert!(message.contains("runs as uid 65534"), "{message}");
            assert!(message.contains("trust_uid(65534)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let mut trusting =
        Peer::spawn(Command::new(peer_program()).args(["connect", &name, "trust=65534"]));
    assert_eq!(trusting.line(), "ok");
}

#[test]
fn a_squatter_on_a_users_name_is_refused_by_its_clients_and_named_to_its_server() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("squat");
    // Not an shmrpc server at all: a socket taken under this user's name first.
    let mut squatter = Peer::spawn(&mut peer_as(
        NOBODY,
        &["squat", &format!("shmrpc/u0/{name}")],
    ));
    squatter.expect_line("ready");
    match WorkClient::connect(&name) {
        Err(e @ Error::PermissionDenied { .. }) => {
            assert!(e.to_string().contains("runs as uid 65534"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match WorkServer::bind(&name, WorkImpl::default()) {
        Err(e @ Error::AlreadyRunning { pid, uid, .. }) => {
            assert_eq!((pid, uid), (squatter.pid(), NOBODY));
            assert!(e.to_string().contains("another user"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_users_may_both_run_a_service_of_the_same_name() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("both");
    let mine = Peer::start(&["server", "work", &name]);
    let mut theirs = Peer::spawn(&mut peer_as(NOBODY, &["server", "work", &name]));
    theirs.expect_line("ready");
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.echo(1, 1, 1).unwrap().server_pid, mine.pid());
    assert_eq!(as_nobody(&["connect", &name]), "ok");
    let mut whoami = Peer::spawn(&mut peer_as(NOBODY, &["whoami", &name]));
    assert!(whoami.line().contains(" 65534 65534"));
}
