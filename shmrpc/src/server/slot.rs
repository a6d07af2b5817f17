//! A slot as the server sees it: the shared memory, the bell that wakes its client, and the
//! server's private record of it.

use crate::sys::Owned;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::Caller;
use crate::protocol::layout::Geometry;
use crate::sys::Bell;
use crate::transport::slot::SlotMemory;

/// One slot of one connection. Workers hold it (through an `Arc`) while they serve it, so its
/// memory stays mapped even if the connection closes meanwhile.
#[derive(Debug)]
pub(crate) struct ServerSlot {
    pub(crate) memory: SlotMemory,
    /// Wakes the client when it sleeps on its answer.
    pub(crate) bell: Bell,
    /// The connection's client, as the kernel reported it.
    pub(crate) caller: Caller,
    /// Non-zero while a worker serves this slot (only it touches `seen`); each other worker
    /// that wanted to meanwhile adds one (see `worker::Worker::serve`).
    pub(crate) serving: AtomicU32,
    /// The number of the last request the server handled (ran, refused, or found withdrawn or
    /// stale); a different number in the slot is a new request.
    pub(crate) seen: AtomicU64,
    /// In the ready queue.
    pub(crate) queued: AtomicBool,
    /// In the spinner's set of watched slots.
    pub(crate) hot: AtomicBool,
    /// Its connection is gone: nothing more to serve.
    pub(crate) closed: AtomicBool,
    /// When the server last served a request of this slot that came with a kick (nanoseconds
    /// since the server started; 0: never): a client that kicks again soon calls often, and its
    /// slot is worth watching.
    pub(crate) kicked_at: AtomicU64,
}

impl ServerSlot {
    /// A new slot, and the descriptors to send to the client: the slot's memfd (the server
    /// keeps only its mapping) and the client's end of the bell.
    pub(crate) fn create(
        geometry: Geometry,
        index: u32,
        caller: Caller,
    ) -> std::io::Result<(Self, [Owned; 2])> {
        let (memory, memfd) = SlotMemory::create(geometry, index)?;
        let (bell, their_bell) = Bell::pair()?;
        let slot = ServerSlot {
            memory,
            bell,
            caller,
            serving: AtomicU32::new(0),
            seen: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            hot: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            kicked_at: AtomicU64::new(0),
        };
        Ok((slot, [memfd, their_bell]))
    }

    /// Whether the slot holds a request the server has not handled yet.
    #[inline]
    pub(crate) fn has_request(&self) -> bool {
        self.memory.req_seq().load(Ordering::Acquire) != self.seen.load(Ordering::Relaxed)
    }
}
