//! Behaviour 10, and interfaces that grow: methods are matched by name and signature, not by
//! position. A client works with a server whose trait has more methods; a call to a method the
//! server lacks, or has with another signature, fails with `InterfaceMismatch` naming it, at
//! once and without running anything, while the other methods work. Another trait is refused at
//! `connect`, and so is any difference with `ClientOptions::exact_interface()`.

use std::process::Command;
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, Error};
use shmrpc_tests::other_versions::{extra_method, narrow_add, renamed_trait, reordered_struct};
use shmrpc_tests::*;

fn mismatch<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(e @ Error::InterfaceMismatch { .. }) => e.to_string(),
        other => panic!("expected InterfaceMismatch, got {other:?}"),
    }
}

/// A call that must fail with `InterfaceMismatch` at once, without reaching the server.
fn refused_at_once<T: std::fmt::Debug>(call: impl FnOnce() -> Result<T, Error>) -> String {
    let start = Instant::now();
    let message = mismatch(call());
    assert!(
        start.elapsed() < Duration::from_millis(20),
        "refused in {:?}",
        start.elapsed()
    );
    message
}

#[test]
fn an_old_client_works_with_a_server_that_has_a_method_more() {
    // The server's `Work` has `reset` inserted in the middle: every later method moved.
    let name = unique_name("grown");
    let _server = Peer::start(&["server", "work-extra", &name]);
    let old = WorkClient::connect(&name).unwrap();
    // `add` of the new server subtracts 1000 more: the call reached it under its new position.
    assert_eq!(old.add(2, 3).unwrap(), 5 - 1000);
    assert_eq!(old.echo(1, 2, 3).unwrap().seq, 3);
    assert_eq!(old.sleep(0, 77).unwrap(), 77);
    let served = old.served().unwrap();
    // A new client sees the new method.
    let new = extra_method::WorkClient::connect(&name).unwrap();
    assert_eq!(new.reset().unwrap(), served);
}

#[test]
fn a_new_client_of_an_old_server_is_refused_only_the_new_method() {
    let name = unique_name("old-server");
    let _server = Peer::start(&["server", "work", &name]);
    let new = extra_method::WorkClient::connect(&name).unwrap();
    let message = refused_at_once(|| new.reset());
    assert!(message.contains(&format!("`{name}`")), "{message}");
    assert!(
        message.contains("method `reset`: the server has no method `reset` (this client expects `reset() -> u64`); nothing ran"),
        "{message}"
    );
    // The others work, and nothing reached the server.
    assert_eq!(new.add(40, 2).unwrap(), 42);
    assert_eq!(new.served().unwrap(), 1);
}

#[test]
fn a_method_whose_signature_changed_is_refused_and_the_others_work() {
    let name = unique_name("changed");
    let _server = Peer::start(&["server", "work", &name]);

    let narrow = narrow_add::WorkClient::connect(&name).unwrap();
    let message = refused_at_once(|| narrow.add(1, 2));
    assert!(
        message.contains(
            "method `add`: the server has `add(i64, i64) -> i64`, this client expects `add(i32, i32) -> i32`; nothing ran"
        ),
        "{message}"
    );
    assert_eq!(narrow.sleep(0, 5).unwrap(), 5);

    // A struct with two fields swapped: same size and types, another layout.
    let reordered = reordered_struct::WorkClient::connect(&name).unwrap();
    let message = refused_at_once(|| reordered.echo(1, 2, 3));
    assert!(
        message.contains("server has `struct Tagged (24 bytes) { client: u32 @0, thread: u32 @4"),
        "{message}"
    );
    assert!(
        message.contains(
            "this client expects `struct Tagged (24 bytes) { thread: u32 @0, client: u32 @4"
        ),
        "{message}"
    );
    // Nothing that was refused ran: `served` counts `add`, `echo` and `sleep`, and only the
    // `sleep` above and this `add` ran.
    assert_eq!(reordered.add(1, 2).unwrap(), 3);
    assert_eq!(reordered.served().unwrap(), 2);
}

#[test]
fn a_changed_field_of_a_struct_holding_text_refuses_the_methods_using_it() {
    let name = unique_name("wider");
    let _server = Peer::start(&["server", "data", &name]);
    let client = shmrpc_tests::other_versions::wider_entry::DataClient::connect(&name).unwrap();
    let message = refused_at_once(|| client.entries(vec![]));
    assert!(
        message.contains("server has `record Entry { key: String, value: Vec<u8>, ttl: u32"),
        "{message}"
    );
    assert!(
        message
            .contains("this client expects `record Entry { key: String, value: Vec<u8>, ttl: u64"),
        "{message}"
    );
    assert_eq!(client.echo(b"ok").unwrap(), b"ok");
}

#[test]
fn another_trait_is_refused_at_connect() {
    let name = unique_name("other-trait");
    let _server = Peer::start(&["server", "work", &name]);
    let message = mismatch(renamed_trait::LabourClient::connect(&name));
    assert!(
        message.contains("the server serves trait `Work`, this client was built for `Labour`"),
        "{message}"
    );
    assert!(message.contains(&format!("`{name}`")), "{message}");
}

#[test]
fn an_exact_client_refuses_any_difference_at_connect() {
    let name = unique_name("exact");
    let _server = Peer::start(&["server", "work", &name]);
    let exact = || ClientOptions::default().exact_interface();

    let message = mismatch(narrow_add::WorkClient::connect_with(&name, exact()));
    assert!(
        message.contains(
            "server has `add(i64, i64) -> i64`, this client expects `add(i32, i32) -> i32` (method #3)"
        ),
        "{message}"
    );
    let message = mismatch(extra_method::WorkClient::connect_with(&name, exact()));
    assert!(
        message.contains("server has `boom(u32) -> u32` (method #2)")
            || message.contains("this client expects `reset() -> u64` (method #2)"),
        "{message}"
    );
    let message = mismatch(reordered_struct::WorkClient::connect_with(&name, exact()));
    assert!(
        message.contains(
            "this client expects `struct Tagged (24 bytes) { thread: u32 @0, client: u32 @4"
        ),
        "{message}"
    );
    // The same definition connects, exact or not.
    let same = WorkClient::connect_with(&name, exact()).unwrap();
    assert_eq!(same.add(1, 2).unwrap(), 3);
}

#[test]
fn a_client_process_of_another_definition_calls_what_matches() {
    let name = unique_name("mismatch-remote");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let mut client = Peer::spawn(Command::new(peer_program()).args(["connect-narrow", &name]));
    let line = client.line();
    assert!(
        line.starts_with("InterfaceMismatch ") && line.contains("add(i32, i32) -> i32"),
        "{line}"
    );
    handle.shutdown().unwrap();
}
