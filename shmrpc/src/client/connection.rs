//! A client's connection to one server: the handshake, the slots, kicks, and noticing the
//! server's death.
//!
//! The connection holds the socket, a pidfd of the server and the slots the server sent. Each
//! slot is used by one thread at a time, through an in-process lock (`lock`); a thread that
//! finds every slot busy asks the server for another, up to the bound both sides allow, and
//! beyond it waits for one to be free. A slot whose call timed out after the server took it
//! stays out of use until that late answer arrives, so the answer never meets a later call.

use crate::sys::Owned;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::task;
use std::time::{Duration, Instant};

use crate::interface::{self, Interface, MethodMap};
use crate::name::ServiceName;
use crate::options::ClientOptions;
use crate::protocol::exchange::{self, Std};
use crate::protocol::layout::{Geometry, MAX_CAPACITY};
use crate::protocol::messages::{self, MAX_MESSAGE, Message, RefusedCode};
use crate::sys::{self, Bell, Interest, ProcessHandle, Stream, WaitSet, wait_any};
use crate::transport::rendezvous;
use crate::transport::slot::SlotMemory;
use crate::{Error, MutexExt, fault};

/// How long an exchange with the server may take, and for which call (named in a `Timeout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Within {
    pub(crate) give_up: Instant,
    pub(crate) method: &'static str,
}

/// One slot, as the client sees it.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    pub(crate) memory: SlotMemory,
    /// Readable when the server woke this slot's sleeping client.
    pub(crate) bell: Bell,
    /// The in-process lock: one call at a time (1: taken).
    lock: AtomicU32,
    /// The last sequence number used here (only touched by the thread holding `lock`).
    pub(crate) last_seq: AtomicU64,
    /// A request given up on after the server took it, whose answer has not come yet (0: none).
    pub(crate) abandoned: AtomicU64,
    /// The length of the last reply read here (only touched by the thread holding `lock`): how
    /// large the next one is likely to be, for the spin.
    pub(crate) reply_len: AtomicU64,
    /// What async calls sleep on: readable when the bell rings or the server is gone (made at
    /// the first async call that sleeps here).
    wait_set: OnceLock<WaitSet>,
    /// Names `wait_set` to the reactor.
    pub(crate) token: u64,
}

impl ClientSlot {
    fn new(memory: SlotMemory, bell: Bell) -> Self {
        ClientSlot {
            memory,
            bell,
            lock: AtomicU32::new(0),
            last_seq: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            reply_len: AtomicU64::new(0),
            wait_set: OnceLock::new(),
            token: sys::token(),
        }
    }

    /// Takes the slot for one call, if no other thread has it and no late answer is due.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        if !exchange::try_lock(&self.lock) {
            return false;
        }
        let abandoned = self.abandoned.load(Ordering::Relaxed);
        if abandoned == 0 {
            return true;
        }
        if self.memory.words().is_answered(abandoned) {
            self.abandoned.store(0, Ordering::Relaxed);
            return true;
        }
        // Resting: no use to a caller waiting for a slot, which looks again now and then.
        self.lock.store(0, Ordering::Release);
        false
    }
}

/// A connection to a live server.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) name: ServiceName,
    stream: Stream,
    server: ProcessHandle,
    geometry: Geometry,
    /// The most slots: the client's option, the server's bound, or fewer if the server refused
    /// one.
    max_slots: AtomicUsize,
    slots: Mutex<Vec<Arc<ClientSlot>>>,
    /// Signalled when a slot is let go and a thread waits for one.
    slot_freed: Condvar,
    /// Threads and async calls waiting for a slot.
    waiters: AtomicU32,
    /// The async calls waiting for a slot, in arrival order (by id): one is woken per slot let
    /// go.
    slot_wakers: Mutex<std::collections::VecDeque<(u64, task::Waker)>>,
    /// One exchange of messages with the server at a time.
    control: Mutex<()>,
    /// Set once the server is known to be gone: the next call connects afresh.
    pub(crate) dead: AtomicBool,
    /// The fork epoch this connection was made in: a forked child must not end it.
    epoch: u64,
    /// The client's timeout (for messages).
    pub(crate) timeout: Duration,
    /// How this client's methods map to the server's, if their interfaces differ (`None`: the
    /// same interface, the same tags).
    methods: Option<MethodMap>,
}

/// A slot taken for one call; let go when dropped.
#[derive(Debug)]
pub(crate) struct Taken<'a> {
    pub(crate) slot: &'a ClientSlot,
    connection: &'a Connection,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.connection.let_go(self.slot);
    }
}

impl<'a> Taken<'a> {
    /// Wraps a slot this thread locked (with [`ClientSlot::try_lock`] or
    /// [`Connection::take_slot`]).
    pub(crate) fn new(connection: &'a Connection, slot: &'a ClientSlot) -> Self {
        Taken { slot, connection }
    }
}

impl Connection {
    /// Connects to the server of `name` (waiting up to `wait` for one to bind it), checks it
    /// serves `interface`, and maps its first slot, all `within` a deadline.
    pub(crate) fn open(
        name: &ServiceName,
        options: &ClientOptions,
        wait: Duration,
        interface: &Interface,
        within: Within,
    ) -> Result<Self, Error> {
        sys::watch_forks();
        let found = rendezvous::connect(name, options, wait, within.give_up, within.method)?;
        let mut connection = Connection {
            name: name.clone(),
            stream: found.stream,
            server: found.process,
            geometry: Geometry { capacity: 0 },
            max_slots: AtomicUsize::new(1),
            slots: Mutex::new(Vec::new()),
            slot_freed: Condvar::new(),
            waiters: AtomicU32::new(0),
            slot_wakers: Mutex::new(std::collections::VecDeque::new()),
            control: Mutex::new(()),
            dead: AtomicBool::new(false),
            epoch: sys::fork_epoch(),
            timeout: options.timeout,
            methods: None,
        };
        let (message, fds) = connection.receive(within)?;
        let (fingerprint, capacity, slot_len, max_slots) = match message {
            Message::Welcome {
                fingerprint,
                capacity,
                slot_len,
                max_slots,
            } => (fingerprint, capacity as usize, slot_len, max_slots as usize),
            other => {
                sys::dispose(fds);
                return Err(connection.unexpected(other));
            }
        };
        // A tool's connection (`inspect::Service`) takes whatever the server serves.
        if fingerprint != interface.fingerprint && !std::ptr::eq(interface, &crate::inspect::ANY) {
            let mismatch = |difference| Error::InterfaceMismatch {
                name: name.as_str().to_owned(),
                difference,
            };
            let server = match connection.describe(within) {
                Ok(server) => server,
                Err(e) => {
                    sys::dispose(fds);
                    return Err(e);
                }
            };
            if options.exact_interface {
                sys::dispose(fds);
                let mine = interface::describe(interface);
                return Err(mismatch(interface::first_difference(&server, &mine)));
            }
            match MethodMap::new(interface, &server) {
                Ok(map) => connection.methods = Some(map),
                Err(difference) => {
                    sys::dispose(fds);
                    return Err(mismatch(difference));
                }
            }
        }
        connection.geometry = Geometry { capacity };
        if capacity > MAX_CAPACITY || slot_len != connection.geometry.total_len() as u64 {
            sys::dispose(fds);
            return Err(connection.corrupted(format!(
                "the server offers slots of {capacity} bytes ({slot_len} in all), which no \
                 shmrpc server does"
            )));
        }
        let max_slots = max_slots
            .clamp(1, options.max_slots)
            .min(slots_in_address_space(
                connection.geometry.total_len(),
                usize::BITS,
            ));
        connection.max_slots = AtomicUsize::new(max_slots);
        let slot = connection.map_slot(0, fds)?;
        connection.slots.lock_anyway().push(Arc::new(slot));
        fault::point(fault::Step::ClientConnected);
        Ok(connection)
    }

    pub(crate) fn io(&self, e: io::Error) -> Error {
        Error::io(
            format!("talking to the server of `{}`", self.name.as_str()),
            e,
        )
    }

    fn corrupted(&self, detail: String) -> Error {
        Error::Corrupted {
            name: self.name.as_str().to_owned(),
            detail,
        }
    }

    fn unexpected(&self, message: Message) -> Error {
        match message {
            Message::Refused {
                code: RefusedCode::Permission,
                reason,
            } => Error::PermissionDenied {
                name: self.name.as_str().to_owned(),
                detail: format!("the server refused this client: {reason}"),
            },
            Message::Refused { reason, .. } => {
                self.io(io::Error::other(format!("the server refused: {reason}")))
            }
            other => self.corrupted(format!("the server sent an unexpected message ({other:?})")),
        }
    }

    /// Asks for the server's counters.
    pub(crate) fn stats(&self, within: Within) -> Result<crate::server::stats::Decoded, Error> {
        let _control = self.control.lock_anyway();
        match self.request(&Message::GetStats, within)? {
            (Message::Stats(bytes), fds) => {
                sys::dispose(fds);
                crate::server::stats::decode(&bytes)
                    .map_err(|why| self.corrupted(format!("the server sent {why}")))
            }
            (other, fds) => {
                sys::dispose(fds);
                Err(self.unexpected(other))
            }
        }
    }

    /// Asks for the server's description of its interface.
    pub(crate) fn describe(&self, within: Within) -> Result<String, Error> {
        let _control = self.control.lock_anyway();
        match self.request(&Message::Describe, within)? {
            (Message::Description(server), fds) => {
                sys::dispose(fds);
                Ok(server)
            }
            (other, fds) => {
                sys::dispose(fds);
                Err(self.unexpected(other))
            }
        }
    }

    /// The server's tag for this client's method `tag`, or why the server cannot run it.
    #[inline]
    pub(crate) fn server_tag(&self, tag: u32, method: &'static str) -> Result<u32, Error> {
        match &self.methods {
            None => Ok(tag),
            Some(map) => map.get(tag).map_err(|why| Error::InterfaceMismatch {
                name: self.name.as_str().to_owned(),
                difference: format!("method `{method}`: {why}"),
            }),
        }
    }

    /// The largest request or response the server takes.
    pub(crate) fn limit(&self) -> usize {
        self.geometry.capacity
    }

    /// Checks and maps a slot the server sent. Descriptors it does not keep are closed on a
    /// thread of their own (the last close of some can block for as long as their sender
    /// chose).
    fn map_slot(&self, index: u32, fds: Vec<Owned>) -> Result<ClientSlot, Error> {
        let count = fds.len();
        let [memfd, bell]: [Owned; 2] = fds.try_into().map_err(|fds: Vec<Owned>| {
            sys::dispose(fds);
            self.corrupted(format!("a slot came with {count} descriptors instead of 2"))
        })?;
        let memory = match SlotMemory::open(&memfd, self.geometry, index) {
            Ok(memory) => memory,
            Err(why) => {
                sys::dispose(vec![memfd, bell]);
                return Err(self.corrupted(format!("slot {index} is unusable: {why}")));
            }
        };
        Ok(ClientSlot::new(memory, Bell::from_fd(bell)))
    }

    /// Sends `message` and waits for the answer. The caller holds the `control` lock.
    fn request(&self, message: &Message, within: Within) -> Result<(Message, Vec<Owned>), Error> {
        self.stream
            .send(&message.encode(), &[])
            .map_err(|e| self.gone_or(e))?;
        self.receive(within)
    }

    /// Waits for the server's next message.
    fn receive(&self, within: Within) -> Result<(Message, Vec<Owned>), Error> {
        let give_up = within.give_up;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut fds = Vec::new();
        loop {
            match self.stream.recv(&mut buf, &mut fds) {
                Ok(Some(0)) => return Err(self.not_running()),
                Ok(Some(n)) => {
                    return Message::decode(&buf[..n])
                        .map(|m| (m, fds))
                        .map_err(|why| self.corrupted(format!("the server sent {why}")));
                }
                Ok(None) => {}
                Err(e) => return Err(self.io(e)),
            }
            let now = Instant::now();
            if now >= give_up {
                // The server holds the name but does not answer: stopped, bound and not yet
                // serving, out of descriptors, or busy. Its answer may still come: nobody will
                // wait for it, and a later request would take it for its own. The connection
                // is given up (the next call makes a new one).
                self.dead.store(true, Ordering::Relaxed);
                return Err(Error::Timeout {
                    name: self.name.as_str().to_owned(),
                    method: within.method,
                    timeout: self.timeout,
                });
            }
            let ready = wait_any(
                &[
                    (self.stream.fd(), Interest::Readable),
                    (self.server.fd(), Interest::Readable),
                ],
                Some(give_up - now),
            );
            if ready & 2 != 0 {
                return Err(self.not_running());
            }
        }
    }

    fn not_running(&self) -> Error {
        self.dead.store(true, Ordering::Relaxed);
        Error::ServerNotRunning {
            name: self.name.as_str().to_owned(),
            detail: String::new(),
        }
    }

    fn gone_or(&self, e: io::Error) -> Error {
        if matches!(
            e.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            self.not_running()
        } else {
            self.io(e)
        }
    }

    /// Takes a free slot, locked for one call, asking the server for a new one if all are busy
    /// and the bound allows; `None` if none is free now. Fails with `ServerNotRunning`, the
    /// connection marked dead, if the server went away meanwhile.
    pub(crate) fn try_take_slot(&self, within: Within) -> Result<Option<Arc<ClientSlot>>, Error> {
        loop {
            let slots = self.slots.lock_anyway();
            if let Some(slot) = slots.iter().find(|s| s.try_lock()) {
                return Ok(Some(slot.clone()));
            }
            if slots.len() < self.max_slots.load(Ordering::Relaxed) {
                drop(slots);
                if let Some(slot) = self.open_slot(within)? {
                    return Ok(Some(slot));
                }
                continue;
            }
            if self.dead.load(Ordering::Relaxed) || self.server_gone() {
                return Err(self.not_running());
            }
            return Ok(None);
        }
    }

    /// Wakes `waker` when a slot is let go (and counts it as waiting until then).
    pub(crate) fn wait_for_slot(&self, id: u64, waker: &task::Waker) {
        let mut wakers = self.slot_wakers.lock_anyway();
        match wakers.iter_mut().find(|(waiter, _)| *waiter == id) {
            Some((_, old)) => old.clone_from(waker),
            None => {
                wakers.push_back((id, waker.clone()));
                // Before the caller looks for a free slot (again).
                exchange::start_waiting::<Std>(&self.waiters);
            }
        }
    }

    /// Takes waiter `id` off the queue. Whether it was on it (if not, a slot let go took it
    /// off, to wake it).
    pub(crate) fn stop_waiting_for_slot(&self, id: u64) -> bool {
        let mut wakers = self.slot_wakers.lock_anyway();
        let Some(at) = wakers.iter().position(|(waiter, _)| *waiter == id) else {
            return false;
        };
        wakers.remove(at);
        exchange::stop_waiting::<Std>(&self.waiters);
        true
    }

    /// Wakes the async call that has waited longest for a slot, if any.
    pub(crate) fn wake_slot_waiter(&self) {
        let next = self.slot_wakers.lock_anyway().pop_front();
        if let Some((_, waker)) = next {
            exchange::stop_waiting::<Std>(&self.waiters);
            waker.wake();
        }
    }

    /// Whether a slot rests until the late answer to a call given up on: it frees itself
    /// without a signal when that answer comes.
    pub(crate) fn any_slot_resting(&self) -> bool {
        self.slots
            .lock_anyway()
            .iter()
            .any(|s| s.abandoned.load(Ordering::Relaxed) != 0)
    }

    /// Takes a free slot, locked for one call (asking the server for a new one if all are busy
    /// and the bound allows), waiting if needed (`None`: none was free in time). Fails with
    /// `ServerNotRunning`, the connection marked dead, if the server went away meanwhile.
    pub(crate) fn take_slot(&self, within: Within) -> Result<Option<Arc<ClientSlot>>, Error> {
        loop {
            let slots = self.slots.lock_anyway();
            if let Some(slot) = slots.iter().find(|s| s.try_lock()) {
                return Ok(Some(slot.clone()));
            }
            if slots.len() < self.max_slots.load(Ordering::Relaxed) {
                drop(slots);
                if let Some(slot) = self.open_slot(within)? {
                    return Ok(Some(slot));
                }
                // Another thread opened the last one, or the server allows no more.
                continue;
            }
            // Every slot is busy, or rests until the late answer to a call that timed out: a
            // dead server never sends it, and only this look tells.
            if self.dead.load(Ordering::Relaxed) || self.server_gone() {
                return Err(self.not_running());
            }
            let now = Instant::now();
            if now >= within.give_up {
                return Ok(None);
            }
            // Counted among the waiters, then one more look: a slot let go from now on is
            // found, or signalled (under the lock of `slots`, which this thread holds until it
            // waits: the signal cannot come in between).
            exchange::start_waiting::<Std>(&self.waiters);
            if let Some(slot) = slots.iter().find(|s| s.try_lock()) {
                exchange::stop_waiting::<Std>(&self.waiters);
                return Ok(Some(slot.clone()));
            }
            // In short slices: a slot whose late answer arrives frees itself without a signal.
            let slice = (within.give_up - now).min(Duration::from_millis(1));
            drop(
                self.slot_freed
                    .wait_timeout(slots, slice)
                    .unwrap_or_else(PoisonError::into_inner),
            );
            exchange::stop_waiting::<Std>(&self.waiters);
        }
    }

    /// Lets go of `slot`, which this thread held for a call, and signals a caller waiting for a
    /// slot, if any.
    #[inline]
    pub(crate) fn let_go(&self, slot: &ClientSlot) {
        if exchange::let_go::<Std>(&slot.lock, &self.waiters) {
            let slots = self.slots.lock_anyway();
            self.slot_freed.notify_one();
            drop(slots);
            self.wake_slot_waiter();
        }
    }

    /// What async calls on `slot` sleep on: readable when its bell rings, or when the server
    /// closes the connection or dies.
    pub(crate) fn wait_set<'a>(&self, slot: &'a ClientSlot) -> Result<&'a WaitSet, Error> {
        if let Some(set) = slot.wait_set.get() {
            return Ok(set);
        }
        let set = WaitSet::new(&[
            (slot.bell.fd(), Interest::Readable),
            (self.stream.fd(), Interest::Hangup),
            (self.server.fd(), Interest::Readable),
        ])
        .map_err(|e| self.io(e))?;
        Ok(slot.wait_set.get_or_init(|| set))
    }

    /// Asks the server for one more slot and returns it locked; `None` if the bound is reached.
    /// One thread at a time: the server numbers slots in the order it makes them. If the
    /// exchange fails half-way (the answer did not come, or came without its descriptors because
    /// this process has none free), the two sides may no longer agree on the numbers: the
    /// connection is given up (marked dead), and the next call makes a new one.
    fn open_slot(&self, within: Within) -> Result<Option<Arc<ClientSlot>>, Error> {
        let _control = self.control.lock_anyway();
        let index = {
            let slots = self.slots.lock_anyway();
            if slots.len() >= self.max_slots.load(Ordering::Relaxed) {
                return Ok(None);
            }
            slots.len() as u32
        };
        let opened = match self.request(&Message::OpenSlot, within) {
            Ok((
                Message::Slot {
                    index: got,
                    slot_len,
                },
                fds,
            )) if got == index && slot_len == self.geometry.total_len() as u64 => {
                self.map_slot(index, fds).map(Some)
            }
            Ok((
                Message::Refused {
                    code: RefusedCode::Limit,
                    ..
                },
                _,
            )) => {
                // Take turns on the slots there are from now on.
                self.max_slots.store(index as usize, Ordering::Relaxed);
                return Ok(None);
            }
            Ok((other, fds)) => {
                sys::dispose(fds);
                Err(self.unexpected(other))
            }
            Err(e) => Err(e),
        };
        match opened {
            Ok(Some(slot)) => {
                let slot = Arc::new(slot);
                let locked = slot.try_lock();
                debug_assert!(locked, "a new slot is free");
                self.slots.lock_anyway().push(slot.clone());
                Ok(Some(slot))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                // No new call on it; calls in flight on other slots finish, and the connection
                // closes when the last of them lets go.
                self.dead.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Tells the server about request `seq` in slot `index`, which it may not be watching.
    /// Never blocks; if the server is gone, waiting for the answer notices.
    #[inline]
    /// Whether the kick went out, or cannot ever: `false` only if the socket's buffer is full
    /// (the server not reading for now), and the caller should try again. Other errors mean the
    /// server is gone, which the caller notices through the socket and the server's pidfd.
    pub(crate) fn kick(&self, index: u32, seq: u64) -> bool {
        match self.stream.send(&messages::kick(index, seq), &[]) {
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
            Ok(()) => true,
        }
    }

    /// Sleeps until `slot`'s bell rings, the server dies or closes the connection, or
    /// `timeout` passes. Whether the server is gone.
    pub(crate) fn sleep(&self, slot: &ClientSlot, timeout: Option<Duration>) -> bool {
        let ready = wait_any(
            &[
                (slot.bell.fd(), Interest::Readable),
                (self.stream.fd(), Interest::Hangup),
                (self.server.fd(), Interest::Readable),
            ],
            timeout,
        );
        if ready & 1 != 0 {
            // One ring per sleep; a stale one (a sleep that ended otherwise) wakes a later
            // sleep once, which looks and sleeps again.
            slot.bell.take_one();
        }
        ready & 0b100 != 0 || (ready & 0b010 != 0 && self.closed_or_settled())
    }

    /// Whether the connection's stream, which looked ready, was closed by the server. If not,
    /// a message waits on it: on a connection given up on, a late answer nobody will read,
    /// which is read and dropped here (on Windows a stream is signalled while a message waits,
    /// and would wake every sleep on the connection at once, for as long as it lives).
    fn closed_or_settled(&self) -> bool {
        if self.stream.is_closed() {
            return true;
        }
        if self.dead.load(Ordering::Relaxed)
            && let Ok(_control) = self.control.try_lock()
        {
            let mut buf = vec![0u8; MAX_MESSAGE];
            let mut fds = Vec::new();
            for _ in 0..8 {
                let more = matches!(self.stream.recv(&mut buf, &mut fds), Ok(Some(n)) if n > 0);
                sys::dispose(std::mem::take(&mut fds));
                if !more {
                    break;
                }
            }
        }
        false
    }

    /// Whether the server is gone, without waiting.
    pub(crate) fn server_gone(&self) -> bool {
        let ready = wait_any(
            &[
                (self.stream.fd(), Interest::Hangup),
                (self.server.fd(), Interest::Readable),
            ],
            Some(Duration::ZERO),
        );
        ready & 0b10 != 0 || (ready & 1 != 0 && self.closed_or_settled())
    }

    /// Ends the connection: the server sees it closed at once, even if a forked child holds a
    /// copy of the socket. Not in a forked child, which must leave its parent's connection be.
    pub(crate) fn close(&self) {
        if self.epoch == sys::fork_epoch() {
            self.stream.shutdown();
        }
    }
}

/// How many slots of `slot_len` bytes a connection may map in a process of `pointer_bits`: in
/// a 32-bit one, whose address space is 2 to 4 GiB, at most 512 MiB of them (a slot reserves
/// `max_message` each way: a 64 MiB server's slots take 128 MiB each); elsewhere, no bound.
fn slots_in_address_space(slot_len: usize, pointer_bits: u32) -> usize {
    if pointer_bits <= 32 {
        ((512usize << 20) / slot_len.max(1)).max(1)
    } else {
        usize::MAX
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::layout::Geometry;

    #[test]
    fn a_32_bit_client_maps_at_most_512_mib_of_slots() {
        let slot = |max_message| {
            Geometry {
                capacity: max_message,
            }
            .total_len()
        };
        assert_eq!(slots_in_address_space(slot(64 << 20), 32), 3);
        assert_eq!(slots_in_address_space(slot(8 << 20), 32), 31);
        assert_eq!(slots_in_address_space(slot(1 << 30), 32), 1);
        assert_eq!(slots_in_address_space(slot(64 << 20), 64), usize::MAX);
    }
}
