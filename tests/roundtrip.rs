//! Behaviour 1: every method works between two separate processes, for every allowed type.

use shmrpc_tests::*;

#[test]
fn every_type_round_trips_to_a_server_in_another_process() {
    let name = unique_name("types-remote-server");
    let _server = Peer::start(&["server", "types", &name]);
    let client = TypesClient::connect(&name).expect("connect");
    check_all_types(&client).expect("every answer as sent");
}

#[test]
fn every_type_round_trips_from_a_client_in_another_process() {
    let name = unique_name("types-remote-client");
    let handle = TypesServer::bind(&name, TypesImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let mut client = Peer::spawn(std::process::Command::new(peer_program()).args(["types", &name]));
    assert_eq!(client.line(), "ok");
    handle.shutdown().unwrap();
}
