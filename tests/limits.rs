//! Running out: a server or a client without a free file descriptor, a connection at its slot
//! limit. Each is told what happened, and works again once the shortage is over.

use std::process::Command;
use std::time::Duration;

use shmrpc::{ClientOptions, Error};
use shmrpc_tests::*;

#[test]
fn a_server_out_of_descriptors_refuses_new_clients_with_the_reason_and_recovers() {
    let name = unique_name("server-emfile");
    // Room for the server's own descriptors and a few connections.
    let mut server = Peer::spawn(
        Command::new("prlimit")
            .arg("--nofile=40:40")
            .arg(peer_program())
            .args(["server", "work", &name]),
    );
    server.expect_line("ready");
    let quick = ClientOptions::default().timeout(Duration::from_millis(500));
    let mut clients = Vec::new();
    let refusal = loop {
        match WorkClient::connect_with(&name, quick.clone()) {
            Ok(client) => clients.push(client),
            Err(e) => break e,
        }
        assert!(
            clients.len() < 40,
            "the server took more connections than it has room for"
        );
    };
    assert!(
        matches!(refusal, Error::Io { .. }) && refusal.to_string().contains("file descriptors"),
        "{refusal}"
    );
    for client in &clients {
        assert_eq!(client.add(1, 1).unwrap(), 2);
    }
    drop(clients);
    std::thread::sleep(Duration::from_millis(100));
    let client = WorkClient::connect_with(&name, quick).unwrap();
    assert_eq!(client.add(2, 2).unwrap(), 4);
}

#[test]
fn a_server_out_of_descriptors_for_a_moment_goes_on_accepting_after() {
    let name = unique_name("server-hog");
    let _server = Peer::start(&["server-hog", &name]);
    let hog = WorkClient::connect(&name).unwrap();
    let quick = ClientOptions::default().timeout(Duration::from_millis(300));
    std::thread::scope(|s| {
        let held = s.spawn(|| hog.sleep(500, 4242));
        std::thread::sleep(Duration::from_millis(200));
        // The server's table is full: it cannot even accept, yet the client is told why.
        let err = WorkClient::connect_with(&name, quick.clone()).unwrap_err();
        assert!(err.to_string().contains("file descriptors"), "{err}");
        assert!(held.join().unwrap().unwrap() > 0);
    });
    let client = WorkClient::connect_with(&name, quick).unwrap();
    assert_eq!(client.add(1, 2).unwrap(), 3);
    assert_eq!(hog.add(2, 2).unwrap(), 4);
}

#[test]
fn a_client_out_of_descriptors_while_opening_a_slot_recovers() {
    let name = unique_name("client-emfile");
    let _server = Peer::start(&["server", "work", &name, "workers=4"]);
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    let client = &client;
    std::thread::scope(|s| {
        // Holds the first slot: the next call needs a new one.
        let busy = s.spawn(move || client.sleep(1000, 1));
        std::thread::sleep(Duration::from_millis(100));
        let mut held = Vec::new();
        while let Ok(file) = std::fs::File::open("/dev/null") {
            held.push(file);
        }
        let during = s.spawn(move || client.add(2, 2)).join().unwrap();
        drop(held);
        let err = during.unwrap_err();
        assert!(err.to_string().contains("file descriptors"), "{err}");
        for i in 0..5 {
            let r = s.spawn(move || client.add(i, 1)).join().unwrap();
            assert_eq!(r.unwrap(), i + 1);
        }
        // The call that held the slot when the connection was given up ends one way or the
        // other, never with another call's answer.
        let _ = busy.join().unwrap();
    });
}
