//! The watcher thread: everything that arrives on the server's sockets.
//!
//! It sleeps in `epoll` until a client connects, sends a message, closes its connection or
//! dies (its pidfd becomes readable), or the server stops. Connections are its own: workers see
//! only slots. Every message is validated; a client that sends anything a well-behaved client
//! never sends (descriptors, an unknown message, a message too long) loses its connection and
//! costs nobody else anything.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::access;
use super::slot::ServerSlot;
use crate::protocol::messages::{MAX_CLIENT_MESSAGE, Message, RefusedCode};
use crate::sys::{Poller, ProcessHandle, Ready, Stream};
use crate::{Caller, MutexExt, fault};

/// Most connections one server keeps; more are refused.
const MAX_CONNECTIONS: usize = 16 * 1024;
/// Most slots one connection may open.
pub(crate) const MAX_SLOTS: usize = 64;
/// Most messages read from one connection per wake-up, so that a chatty client cannot keep the
/// watcher from the others.
const MESSAGES_PER_TURN: usize = 64;
/// Most connections accepted per wake-up.
const ACCEPTS_PER_TURN: usize = 64;

/// Tokens of the poller: the bell, the listeners, then two per connection.
const BELL: u64 = 0;
const LISTENER: u64 = 1;
const FIRST_CONNECTION: u64 = 8;

/// One client's connection.
struct Connection {
    stream: Stream,
    process: Option<ProcessHandle>,
    caller: Caller,
    slots: Vec<Arc<ServerSlot>>,
}

struct Watcher<'a> {
    shared: &'a Shared,
    poller: Poller,
    connections: HashMap<u64, Connection>,
    next_id: u64,
}

/// The body of the watcher thread: runs until the server stops and its workers are done.
pub(crate) fn run(shared: &Shared) {
    let poller = match Poller::new() {
        Ok(poller) => poller,
        Err(e) => {
            // Without a poller no client can be welcomed: serve nobody, and say why.
            eprintln!(
                "shmrpc: the server of `{}` cannot watch its sockets ({e}); stopping it",
                shared.name.as_str()
            );
            shared.begin_stop();
            return;
        }
    };
    let mut watcher = Watcher {
        shared,
        poller,
        connections: HashMap::new(),
        next_id: FIRST_CONNECTION,
    };
    watcher.watch();
}

impl Watcher<'_> {
    fn watch(&mut self) {
        let shared = self.shared;
        let _ = self.poller.add(shared.watcher_bell.fd(), BELL);
        for (i, listener) in shared.listeners.lock_anyway().iter().enumerate() {
            let _ = self.poller.add(listener.fd(), LISTENER + i as u64);
        }
        let mut ready = Vec::new();
        loop {
            if let Err(e) = self.poller.wait(&mut ready, None) {
                eprintln!(
                    "shmrpc: the server of `{}` cannot wait on its sockets ({e}); stopping it",
                    shared.name.as_str()
                );
                shared.begin_stop();
            }
            for event in &ready {
                self.handle(*event);
            }
            if shared.stopping() && self.wind_down() {
                return;
            }
        }
    }

    fn handle(&mut self, event: Ready) {
        match event.token {
            BELL => self.shared.watcher_bell.drain(),
            token if token < FIRST_CONNECTION => self.accept((token - LISTENER) as usize),
            token => {
                let id = token / 2;
                if token % 2 == 1 || event.hangup {
                    // The client's process exited, or it closed its end.
                    self.close(id);
                } else {
                    self.read(id);
                }
            }
        }
    }

    /// After the stop: closes every connection none of whose slots a worker is serving; once no
    /// worker runs, closes the rest. Whether the watcher is done.
    fn wind_down(&mut self) -> bool {
        let all = self.shared.workers_running.load(Ordering::Acquire) == 0;
        let idle: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| all || c.slots.iter().all(|s| !s.claimed.load(Ordering::SeqCst)))
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.close(id);
        }
        all
    }

    fn accept(&mut self, index: usize) {
        for _ in 0..ACCEPTS_PER_TURN {
            let stream = {
                let listeners = self.shared.listeners.lock_anyway();
                let Some(listener) = listeners.get(index) else {
                    return;
                };
                match listener.accept() {
                    Ok(Some(stream)) => stream,
                    Ok(None) => return,
                    Err(e) => {
                        // Out of descriptors, most likely: the connection waits in the queue;
                        // say so once per wake-up rather than spin on it.
                        eprintln!(
                            "shmrpc: the server of `{}` cannot accept a connection: {e}",
                            self.shared.name.as_str()
                        );
                        return;
                    }
                }
            };
            if self.shared.stopping() {
                return;
            }
            self.welcome(stream);
        }
    }

    /// Checks who connected, and gives an admitted client its first slot.
    fn welcome(&mut self, stream: Stream) {
        let shared = self.shared;
        let Ok(peer) = stream.peer_credentials() else {
            return;
        };
        fault::point(fault::Step::ServerAccepted);
        let groups = if shared.options.access.gids.is_empty() {
            Vec::new()
        } else {
            stream.peer_groups().unwrap_or_default()
        };
        let access = &shared.options.access;
        if !access::admits(access, shared.uid, &peer, &groups) {
            refuse(
                &stream,
                RefusedCode::Permission,
                access::refusal(access, shared.uid, &peer),
            );
            return;
        }
        if self.connections.len() >= MAX_CONNECTIONS {
            refuse(
                &stream,
                RefusedCode::Limit,
                format!("the server has {MAX_CONNECTIONS} connections, as many as it takes"),
            );
            return;
        }
        let process = match stream.peer_process(peer.pid) {
            Ok(process) => Some(process),
            // Gone already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => None,
        };
        let caller = Caller::new(peer.pid, peer.uid, peer.gid);
        let (slot, memfd) = match ServerSlot::create(shared.geometry, 0, caller) {
            Ok(created) => created,
            Err(e) => {
                refuse(
                    &stream,
                    RefusedCode::Limit,
                    format!("the server could not create shared memory for it: {e}"),
                );
                return;
            }
        };
        let welcome = Message::Welcome {
            fingerprint: shared.fingerprint,
            capacity: shared.geometry.capacity as u32,
            slot_len: shared.geometry.total_len() as u64,
            max_slots: MAX_SLOTS as u32,
        };
        if stream
            .send(&welcome.encode(), &[memfd.as_fd(), slot.waker.fd()])
            .is_err()
        {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if self.poller.add(stream.fd(), 2 * id).is_err() {
            return;
        }
        if let Some(process) = &process {
            let _ = self.poller.add(process.fd(), 2 * id + 1);
        }
        self.connections.insert(
            id,
            Connection {
                stream,
                process,
                caller,
                slots: vec![Arc::new(slot)],
            },
        );
    }

    /// Reads what a client sent.
    fn read(&mut self, id: u64) {
        let mut buf = [0u8; MAX_CLIENT_MESSAGE];
        let mut fds = Vec::new();
        for _ in 0..MESSAGES_PER_TURN {
            let Some(connection) = self.connections.get(&id) else {
                return;
            };
            let message = match connection.stream.recv(&mut buf, &mut fds) {
                Ok(None) => return,
                Ok(Some(n)) if n > 0 && fds.is_empty() => Message::decode(&buf[..n]),
                // Closed, or a descriptor, a message too long: either way the end.
                _ => Err("closed"),
            };
            match message {
                Ok(Message::Kick { index, .. }) => {
                    if let Some(slot) = connection.slots.get(index as usize) {
                        self.shared.enqueue(slot);
                    }
                }
                Ok(Message::OpenSlot) => self.open_slot(id),
                Ok(Message::Describe) => {
                    let description = Message::Description(self.shared.description.clone());
                    if connection.stream.send(&description.encode(), &[]).is_err() {
                        self.close(id);
                    }
                }
                _ => return self.close(id),
            }
        }
    }

    fn open_slot(&mut self, id: u64) {
        let shared = self.shared;
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        let index = connection.slots.len();
        let created = if index >= MAX_SLOTS {
            Err(format!(
                "a connection may have {MAX_SLOTS} slots (calls in flight), and this one has"
            ))
        } else {
            ServerSlot::create(shared.geometry, index as u32, connection.caller)
                .map_err(|e| format!("the server could not create shared memory: {e}"))
        };
        let sent = match created {
            Ok((slot, memfd)) => {
                let message = Message::Slot {
                    index: index as u32,
                    slot_len: shared.geometry.total_len() as u64,
                };
                let sent = connection
                    .stream
                    .send(&message.encode(), &[memfd.as_fd(), slot.waker.fd()]);
                connection.slots.push(Arc::new(slot));
                sent
            }
            Err(reason) => {
                let message = Message::Refused {
                    code: RefusedCode::Limit,
                    reason,
                };
                connection.stream.send(&message.encode(), &[])
            }
        };
        if sent.is_err() {
            self.close(id);
        }
    }

    fn close(&mut self, id: u64) {
        let Some(connection) = self.connections.remove(&id) else {
            return;
        };
        self.poller.remove(connection.stream.fd());
        if let Some(process) = &connection.process {
            self.poller.remove(process.fd());
        }
        for slot in &connection.slots {
            slot.closed.store(true, Ordering::Relaxed);
        }
        // Also ends it for the client if a process forked from this one holds a copy.
        connection.stream.shutdown();
    }
}

fn refuse(stream: &Stream, code: RefusedCode, reason: String) {
    let _ = stream.send(&Message::Refused { code, reason }.encode(), &[]);
    stream.shutdown();
}
