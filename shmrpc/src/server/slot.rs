//! A slot as the server sees it: the shared memory, the eventfd that wakes its client, and the
//! server's private record of it.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::Caller;
use crate::protocol::layout::Geometry;
use crate::sys::Waker;
use crate::transport::slot::SlotMemory;

/// One slot of one connection. Workers hold it (through an `Arc`) while they serve it, so its
/// memory stays mapped even if the connection closes meanwhile.
#[derive(Debug)]
pub(crate) struct ServerSlot {
    pub(crate) memory: SlotMemory,
    /// Wakes the client when it sleeps on its answer.
    pub(crate) waker: Waker,
    /// The connection's client, as the kernel reported it.
    pub(crate) caller: Caller,
    /// A worker is serving this slot now: only it touches `seen`.
    pub(crate) claimed: AtomicBool,
    /// The number of the last request the server handled (ran, refused, or found withdrawn or
    /// stale); a different number in the slot is a new request.
    pub(crate) seen: AtomicU64,
    /// In the ready queue.
    pub(crate) queued: AtomicBool,
    /// In the spinner's set of watched slots.
    pub(crate) hot: AtomicBool,
    /// Its connection is gone: nothing more to serve.
    pub(crate) closed: AtomicBool,
}

impl ServerSlot {
    /// A new slot, and the descriptors to send to the client: the slot's memfd (the server
    /// keeps only its mapping) and the eventfd.
    pub(crate) fn create(
        geometry: Geometry,
        index: u32,
        caller: Caller,
    ) -> std::io::Result<(Self, OwnedFd)> {
        let (memory, memfd) = SlotMemory::create(geometry, index)?;
        let slot = ServerSlot {
            memory,
            waker: Waker::new()?,
            caller,
            claimed: AtomicBool::new(false),
            seen: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            hot: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        };
        Ok((slot, memfd))
    }

    /// Whether the slot holds a request the server has not handled yet.
    #[inline]
    pub(crate) fn has_request(&self) -> bool {
        self.memory.words().req_seq.load(Ordering::Acquire) != self.seen.load(Ordering::Relaxed)
    }
}
