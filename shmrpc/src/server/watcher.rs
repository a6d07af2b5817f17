//! What arrives on the server's sockets, handled by whichever server thread it wakes.
//!
//! Every idle server thread sleeps in one shared `epoll`, and each event (a client connecting,
//! sending a message, closing its connection or dying, its pidfd becoming readable) wakes one of
//! them. Descriptors are watched "one shot": a thread that got an event handles it, under the
//! lock of this state, and rearms the descriptor, so no two threads handle the same one. When a
//! kick (a client telling the server about a request in a slot nobody watches) queues a
//! request, the thread that read it serves it at once if a worker permit is free: a request to
//! an idle server costs one wake-up of the server. Connections are this state's own: workers see
//! only slots. Every message is validated; a client that sends anything a well-behaved client
//! never sends (descriptors, an unknown message, a message too long) loses its connection and
//! costs nobody else anything.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::access;
use super::budget::{Budget, Cost};
use super::slot::ServerSlot;
use crate::protocol::messages::{MAX_CLIENT_MESSAGE, Message, RefusedCode};
use crate::sys::{self, Listener, Poller, ProcessHandle, Ready, Stream, Waker};
use crate::{Caller, MutexExt, fault};

/// Most slots one connection may open.
pub(crate) const MAX_SLOTS: usize = 64;
/// Most messages discarded at once from a connection being refused.
const DISCARDED_AT_ONCE: usize = 64;
/// Most connections accepted per wake-up.
const ACCEPTS_PER_TURN: usize = 64;

/// Tokens of the poller: the two bells, the listeners, then two per connection.
const STOP_BELL: u64 = 0;
const WORK_BELL: u64 = 1;
const LISTENER: u64 = 2;
const SIGNAL_BELL: u64 = 7;
const FIRST_CONNECTION: u64 = 8;

/// One client's connection.
pub(crate) struct Connection {
    stream: Stream,
    process: Option<ProcessHandle>,
    caller: Caller,
    slots: Vec<Arc<ServerSlot>>,
    /// What it holds of the budget.
    cost: Cost,
}

/// Every connection of the server.
pub(crate) struct Connections {
    map: HashMap<u64, Connection>,
    next_id: u64,
    /// A descriptor kept for the moment the process has no other free: closed, it lets the
    /// server accept a waiting connection and refuse it with a reason, rather than leave it
    /// waiting for ever.
    reserve: Option<sys::Owned>,
    budget: Budget,
    /// Connections closed while the lock was held, to be let go of once it is released
    /// ([`Connections::retired`]): shutting a socket down, closing descriptors and unmapping
    /// slots take tens of microseconds each, and a thousand connections closing at once would
    /// otherwise hold up every kick behind them.
    retired: Vec<Connection>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.map.len())
            .finish_non_exhaustive()
    }
}

/// Registers the bells and listeners with a new poller. The stop bell is level-triggered and
/// never drained, so that it wakes every thread; the work bell wakes one.
pub(crate) fn watch(
    poller: &Poller,
    listeners: &[Listener],
    stop_bell: &Waker,
    work_bell: &Waker,
) -> std::io::Result<()> {
    poller.add(stop_bell.fd(), STOP_BELL, false)?;
    poller.add(work_bell.fd(), WORK_BELL, true)?;
    for (i, listener) in listeners.iter().enumerate() {
        poller.add(listener.fd(), LISTENER + i as u64, true)?;
    }
    Ok(())
}

/// Watches the bell SIGINT and SIGTERM ring (level-triggered: every thread sees it).
pub(crate) fn watch_signals(poller: &Poller, bell: &sys::SignalBell) -> std::io::Result<()> {
    poller.add(bell.fd(), SIGNAL_BELL, false)
}

/// Whether an event is one of the server's own bells rather than a socket's.
pub(crate) fn is_bell(token: u64) -> bool {
    token == STOP_BELL || token == WORK_BELL || token == SIGNAL_BELL
}

/// Answers a bell. The stop bell stays rung, for every thread to see; the work bell is drained
/// and watched again.
pub(crate) fn answer_bell(shared: &Shared, token: u64) {
    if token == WORK_BELL {
        shared.work_bell.drain();
        shared.poller.rearm(shared.work_bell.fd(), WORK_BELL);
    }
    if token == SIGNAL_BELL {
        // Never drained: the stop is for good.
        shared.begin_stop();
    }
}

impl Connections {
    pub(crate) fn new(own_uid: u32) -> Self {
        Connections {
            map: HashMap::new(),
            next_id: FIRST_CONNECTION,
            reserve: sys::reserve_descriptor(),
            budget: Budget::new(own_uid),
            retired: Vec::new(),
        }
    }

    /// Handles one event a thread woke for, and watches its descriptor again.
    pub(crate) fn handle(&mut self, shared: &Shared, event: Ready) {
        match event.token {
            STOP_BELL | WORK_BELL | SIGNAL_BELL => answer_bell(shared, event.token),
            token if token < FIRST_CONNECTION => self.accept(shared, (token - LISTENER) as usize),
            token => {
                let id = token / 2;
                if token % 2 == 1 || event.hangup {
                    // The client's process exited, or it closed its end.
                    self.close(shared, id);
                } else {
                    self.read(shared, id);
                    if let Some(connection) = self.map.get(&id) {
                        shared.poller.rearm(connection.stream.fd(), 2 * id);
                    }
                }
            }
        }
    }

    /// After the stop: closes every connection none of whose slots a worker is serving (their
    /// clients learn at once that the server is gone; the others once their answer is out).
    pub(crate) fn close_idle(&mut self, shared: &Shared) {
        let idle: Vec<u64> = self
            .map
            .iter()
            .filter(|(_, c)| {
                c.slots
                    .iter()
                    .all(|s| s.serving.load(Ordering::SeqCst) == 0)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.close(shared, id);
        }
        retire(self.retired());
    }

    /// Closes every connection: the last thread of a stopped server does.
    pub(crate) fn close_all(&mut self, shared: &Shared) {
        let all: Vec<u64> = self.map.keys().copied().collect();
        for id in all {
            self.close(shared, id);
        }
        retire(self.retired());
    }

    fn accept(&mut self, shared: &Shared, index: usize) {
        for _ in 0..ACCEPTS_PER_TURN {
            let accepted = match shared.listeners.lock_anyway().get(index) {
                Some(listener) => listener.accept(),
                None => return,
            };
            match accepted {
                // Dropped here, unwelcomed: the client sees the connection close.
                Ok(Some(_)) if shared.stopping() => {}
                Ok(Some(stream)) => self.welcome(shared, stream),
                Ok(None) => break,
                Err(e) if sys::out_of_descriptors(&e) => {
                    if !self.refuse_one_for_lack_of_descriptors(shared, index) {
                        break;
                    }
                }
                Err(e) => {
                    // Rare (out of memory): say so, and look again in a moment rather than at
                    // once, which could spin.
                    eprintln!(
                        "shmrpc: the server of `{}` cannot accept a connection: {e}",
                        shared.name.as_str()
                    );
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    break;
                }
            }
        }
        // Watch the socket again: if more connections wait, it wakes a thread at once.
        if let Some(listener) = shared.listeners.lock_anyway().get(index) {
            shared.poller.rearm(listener.fd(), LISTENER + index as u64);
        }
    }

    /// The process has no free descriptor: frees the reserve, accepts one waiting connection
    /// and refuses it with the reason, so that its client is told rather than left waiting.
    /// Whether it did.
    fn refuse_one_for_lack_of_descriptors(&mut self, shared: &Shared, index: usize) -> bool {
        let Some(reserve) = self.reserve.take() else {
            std::thread::sleep(std::time::Duration::from_millis(1));
            return false;
        };
        drop(reserve);
        let accepted = shared
            .listeners
            .lock_anyway()
            .get(index)
            .map(sys::Listener::accept);
        if let Some(Ok(Some(stream))) = accepted {
            refuse(
                shared,
                &stream,
                RefusedCode::Limit,
                OUT_OF_DESCRIPTORS.into(),
            );
        }
        self.reserve = sys::reserve_descriptor();
        true
    }

    /// Checks who connected, and gives an admitted client its first slot.
    fn welcome(&mut self, shared: &Shared, stream: Stream) {
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
                shared,
                &stream,
                RefusedCode::Permission,
                access::refusal(access, shared.uid, &peer),
            );
            return;
        }
        if let Err(reason) = self.budget.take(peer.uid, Cost::CONNECTION) {
            refuse(shared, &stream, RefusedCode::Limit, reason);
            return;
        }
        if !self.admit(shared, stream, peer) {
            self.budget.give_back(peer.uid, Cost::CONNECTION);
        }
    }

    /// Gives an admitted client its first slot; whether the connection was made.
    fn admit(&mut self, shared: &Shared, stream: Stream, peer: sys::Credentials) -> bool {
        let process = match stream.peer_process(peer.pid) {
            Ok(process) => Some(process),
            // Gone already.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(_) => None,
        };
        let caller = Caller::new(peer.pid, peer.uid, peer.gid);
        let (slot, [memfd, bell]) = match ServerSlot::create(shared.geometry, 0, caller) {
            Ok(created) => created,
            Err(e) => {
                refuse(shared, &stream, RefusedCode::Limit, lacking(&e));
                return false;
            }
        };
        let welcome = Message::Welcome {
            fingerprint: shared.fingerprint,
            capacity: shared.geometry.capacity as u32,
            slot_len: shared.geometry.total_len() as u64,
            max_slots: MAX_SLOTS as u32,
        };
        if stream
            .send(
                &welcome.encode(),
                &[sys::borrow(&memfd), sys::borrow(&bell)],
            )
            .is_err()
        {
            return false;
        }
        let id = self.next_id;
        self.next_id += 1;
        if shared.poller.add(stream.fd(), 2 * id, true).is_err() {
            return false;
        }
        if let Some(process) = &process {
            let _ = shared.poller.add(process.fd(), 2 * id + 1, true);
        }
        self.map.insert(
            id,
            Connection {
                stream,
                process,
                caller,
                slots: vec![Arc::new(slot)],
                cost: Cost::CONNECTION,
            },
        );
        true
    }

    /// Reads one message a client sent. One per wake-up: the descriptor is watched again right
    /// after, and reported again at once if more wait, so a lone kick costs one read (not a
    /// second one to find the socket empty), and a chatty client cannot keep this thread from
    /// the others.
    fn read(&mut self, shared: &Shared, id: u64) {
        let mut buf = [0u8; MAX_CLIENT_MESSAGE];
        let mut fds = Vec::new();
        let Some(connection) = self.map.get(&id) else {
            return;
        };
        let received = connection.stream.recv(&mut buf, &mut fds);
        // A client never sends descriptors (the kernel refuses them where it can): one that
        // does loses its connection, and what it sent is closed on a thread of its own.
        let sent_descriptors = !fds.is_empty();
        sys::dispose(std::mem::take(&mut fds));
        let message = match received {
            Ok(None) => return,
            Ok(Some(n)) if n > 0 && !sent_descriptors => Message::decode(&buf[..n]),
            // Closed, descriptors, a message too long: either way the end.
            _ => Err("closed"),
        };
        match message {
            Ok(Message::Kick { index, .. }) => {
                if let Some(slot) = connection.slots.get(index as usize) {
                    shared.enqueue(slot);
                }
            }
            Ok(Message::OpenSlot) => self.open_slot(shared, id),
            Ok(Message::Describe) => {
                let description = Message::Description(shared.description.clone());
                if connection.stream.send(&description.encode(), &[]).is_err() {
                    self.close(shared, id);
                }
            }
            Ok(Message::GetStats) => {
                let stats = Message::Stats(super::stats::encode(shared, self.map.len()));
                if connection.stream.send(&stats.encode(), &[]).is_err() {
                    self.close(shared, id);
                }
            }
            _ => self.close(shared, id),
        }
    }

    fn open_slot(&mut self, shared: &Shared, id: u64) {
        let Some(connection) = self.map.get_mut(&id) else {
            return;
        };
        let index = connection.slots.len();
        let uid = connection.caller.uid();
        let created = if index >= MAX_SLOTS {
            Err(format!(
                "a connection may have {MAX_SLOTS} slots (calls in flight), and this one has"
            ))
        } else {
            self.budget.take(uid, Cost::SLOT).and_then(|()| {
                ServerSlot::create(shared.geometry, index as u32, connection.caller).map_err(|e| {
                    self.budget.give_back(uid, Cost::SLOT);
                    lacking(&e)
                })
            })
        };
        let sent = match created {
            Ok((slot, [memfd, bell])) => {
                let message = Message::Slot {
                    index: index as u32,
                    slot_len: shared.geometry.total_len() as u64,
                };
                let sent = connection.stream.send(
                    &message.encode(),
                    &[sys::borrow(&memfd), sys::borrow(&bell)],
                );
                connection.slots.push(Arc::new(slot));
                connection.cost = connection.cost.add(Cost::SLOT);
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
            self.close(shared, id);
        }
    }

    fn close(&mut self, shared: &Shared, id: u64) {
        let Some(connection) = self.map.remove(&id) else {
            return;
        };
        shared.poller.remove(connection.stream.fd());
        if let Some(process) = &connection.process {
            shared.poller.remove(process.fd());
        }
        for slot in &connection.slots {
            slot.closed.store(true, Ordering::Relaxed);
        }
        crate::trace::client_gone(shared.name.as_str(), connection.caller.pid());
        self.budget
            .give_back(connection.caller.uid(), connection.cost);
        self.retired.push(connection);
    }

    /// The connections closed since the last call, to be let go of with [`retire`] once the
    /// lock is released.
    pub(crate) fn retired(&mut self) -> Vec<Connection> {
        std::mem::take(&mut self.retired)
    }
}

/// Lets closed connections go: their sockets are shut down (which also ends them for the
/// client if a process forked from this one holds a copy), what their clients left queued is
/// discarded, and their descriptors and (once no worker holds them) slots are closed.
pub(crate) fn retire(connections: Vec<Connection>) {
    for connection in connections {
        connection.stream.shutdown();
        discard_pending(&connection.stream);
    }
}

const OUT_OF_DESCRIPTORS: &str =
    "the server is out of file descriptors (raise its limit, `ulimit -n`, or close clients)";

/// Why the server could not make a slot, in the words a client shows its user.
fn lacking(e: &std::io::Error) -> String {
    if sys::out_of_descriptors(e) {
        OUT_OF_DESCRIPTORS.to_owned()
    } else {
        format!("the server could not create shared memory for the connection: {e}")
    }
}

fn refuse(shared: &Shared, stream: &Stream, code: RefusedCode, reason: String) {
    crate::trace::refused(shared.name.as_str(), &reason);
    let _ = stream.send(&Message::Refused { code, reason }.encode(), &[]);
    stream.shutdown();
    discard_pending(stream);
}

/// Reads what a client left queued on a connection the server drops, handing any descriptor
/// to be closed elsewhere: dropped with the socket, the last one would close here (on kernels
/// that let clients send descriptors at all).
fn discard_pending(stream: &Stream) {
    let mut buf = [0u8; MAX_CLIENT_MESSAGE];
    let mut fds = Vec::new();
    for _ in 0..DISCARDED_AT_ONCE {
        let more = matches!(stream.recv(&mut buf, &mut fds), Ok(Some(n)) if n > 0);
        sys::dispose(std::mem::take(&mut fds));
        if !more {
            return;
        }
    }
}
