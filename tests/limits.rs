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
    // Refused by the server's budget (or, had it misjudged, for want of descriptors).
    assert!(
        matches!(refusal, Error::Io { .. }) && refusal.to_string().contains("limit"),
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
    // On a connection of its own: its calls take none of `client`'s slots.
    let observer = WorkClient::connect(&name).unwrap();
    let client = &client;
    std::thread::scope(|s| {
        // Holds the first slot: the next call needs a new one. Its request is published (so
        // the slot is held) once the server has begun serving it.
        let busy = s.spawn(move || client.sleep(1000, 1));
        let began = std::time::Instant::now();
        while observer.served().unwrap() < 2 {
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "the long call never began"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
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

#[test]
fn another_user_cannot_take_more_than_half_of_what_a_server_can_hold() {
    if !can_switch_users() {
        return;
    }
    let name = unique_name("budget");
    let mut server = Peer::spawn(
        Command::new("prlimit")
            .arg("--nofile=256:256")
            .arg(peer_program())
            .args(["server", "work", &name, "allow=any"]),
    );
    server.expect_line("ready");
    let mut hog = Peer::spawn(&mut peer_as(NOBODY, &["hog-connections", &name]));
    let line = hog.line();
    assert!(
        line.starts_with("held ") && line.contains("Io ") && line.contains("user 65534 holds half"),
        "{line}"
    );
    // The server's own user still gets in, and calls.
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 2).unwrap(), 3);
}

#[test]
fn a_server_whose_queue_is_full_makes_connect_wait_not_fail() {
    // A flood of connections (another user's, perhaps) fills the queue of a server that is
    // stopped for the moment: connect waits for room until its timeout, rather than reporting
    // that no server runs.
    let name = unique_name("flood");
    let server = Peer::start(&["server", "work", &name]);
    server.signal("STOP");
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    let address = format!("shmrpc/u0/{name}");
    let mut queued = Vec::new();
    loop {
        let socket = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::SEQPACKET,
            rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        let to = rustix::net::SocketAddrUnix::new_abstract_name(address.as_bytes()).unwrap();
        match rustix::net::connect(&socket, &to) {
            Ok(()) => queued.push(socket),
            Err(rustix::io::Errno::AGAIN) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(queued.len() < 100_000);
    }
    let start = std::time::Instant::now();
    let err = WorkClient::connect_with(
        &name,
        ClientOptions::default().timeout(Duration::from_millis(200)),
    )
    .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(400),
        "{took:?}"
    );
    drop(queued);
    server.signal("CONT");
    assert_eq!(WorkClient::connect(&name).unwrap().add(1, 1).unwrap(), 2);
}
