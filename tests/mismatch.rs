//! Behaviour 10: a client built from a different trait definition gets `InterfaceMismatch` at
//! `connect`, with a message that names the service and the first difference.

use std::process::Command;

use shmrpc::Error;
use shmrpc_tests::other_versions::{extra_method, narrow_add, renamed_trait, reordered_struct};
use shmrpc_tests::*;

fn difference(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(e @ Error::InterfaceMismatch { .. }) => e.to_string(),
        other => panic!("expected InterfaceMismatch, got {other:?}"),
    }
}

#[test]
fn a_client_of_another_definition_is_told_what_differs() {
    let name = unique_name("mismatch");
    let _server = Peer::start(&["server", "work", &name]);

    let message = difference(narrow_add::WorkClient::connect(&name));
    assert!(message.contains(&format!("`{name}`")), "{message}");
    assert!(
        message.contains(
            "server has `add(i64, i64) -> i64`, this client expects `add(i32, i32) -> i32`"
        ),
        "{message}"
    );
    assert!(message.contains("same trait definition"), "{message}");

    let message = difference(extra_method::WorkClient::connect(&name));
    assert!(
        message.contains("this client expects `reset() -> ()` (method #6), which the server lacks"),
        "{message}"
    );

    let message = difference(reordered_struct::WorkClient::connect(&name));
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

    let message = difference(renamed_trait::LabourClient::connect(&name));
    assert!(
        message.contains("the server serves trait `Work`, this client was built for `Labour`"),
        "{message}"
    );

    // The right definition connects, of course.
    assert_eq!(WorkClient::connect(&name).unwrap().add(1, 2).unwrap(), 3);
}

#[test]
fn a_client_process_of_another_definition_is_refused_too() {
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
