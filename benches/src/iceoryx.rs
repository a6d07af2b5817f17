//! iceoryx2's request-response, busy-polled on both sides (its fastest mode), as the peer to
//! compare with. Only built with the `peers` feature.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use iceoryx2::port::client::Client;
use iceoryx2::prelude::*;

use crate::{Payload, Peer, Transport, role};

struct Ice<const N: usize> {
    client: Client<ipc::Service, [u8; N], (), [u8; N], ()>,
    buf: Box<[u8; N]>,
    _node: Node<ipc::Service>,
    _server: Peer,
}

/// Starts an iceoryx2 echo server process and connects to it.
pub fn start(payload: Payload) -> Box<dyn Transport> {
    match payload {
        Payload::B8 => Box::new(Ice::<8>::start()),
        Payload::K1 => Box::new(Ice::<1024>::start()),
        Payload::K64 => Box::new(Ice::<65536>::start()),
        Payload::M1 => Box::new(Ice::<{ 1 << 20 }>::start()),
    }
}

fn service_name<const N: usize>() -> String {
    format!("shmrpc-bench/{}/{N}", std::process::id())
}

impl<const N: usize> Ice<N> {
    fn start() -> Self {
        let name = service_name::<N>();
        let mut server = role(&format!("iceoryx-server {name} {N}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let node = NodeBuilder::new().create::<ipc::Service>().unwrap();
        let service = node
            .service_builder(&name.as_str().try_into().unwrap())
            .request_response::<[u8; N], [u8; N]>()
            .open_or_create()
            .unwrap();
        let client = service.client_builder().create().unwrap();
        Ice {
            client,
            buf: Box::new([4; N]),
            _node: node,
            _server: Peer(server),
        }
    }
}

impl<const N: usize> Transport for Ice<N> {
    fn peer_pid(&self) -> Option<u32> {
        Some(self._server.0.id())
    }

    fn round_trip(&mut self) {
        let pending = self.client.send_copy(*self.buf).unwrap();
        loop {
            if let Some(response) = pending.receive().unwrap() {
                *self.buf = *response;
                return;
            }
            std::hint::spin_loop();
        }
    }
}

/// The echo server process.
pub fn serve(name: &str, size: usize) {
    match size {
        8 => serve_n::<8>(name),
        1024 => serve_n::<1024>(name),
        65536 => serve_n::<65536>(name),
        _ => serve_n::<{ 1 << 20 }>(name),
    }
}

fn serve_n<const N: usize>(name: &str) {
    let node = NodeBuilder::new().create::<ipc::Service>().unwrap();
    let service = node
        .service_builder(&name.try_into().unwrap())
        .request_response::<[u8; N], [u8; N]>()
        .open_or_create()
        .unwrap();
    let server = service.server_builder().create().unwrap();
    // Exit cleanly (iceoryx2 removes its resources) when the benchmark closes our stdin.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_line(&mut String::new());
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    println!("ready");
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match server.receive().unwrap() {
            Some(request) => {
                let response = request.loan_uninit().unwrap().write_payload(*request);
                response.send().unwrap();
            }
            None => std::hint::spin_loop(),
        }
    }
}
