//! The lock-free exchanges between a client and the server on one slot, written once over any
//! kind of atomics so that `loom` can check them (its tests are at the end of this file).
//!
//! Three of them are "store, fence, load" on each side (Dekker's pattern): with a
//! sequentially consistent fence between each side's store and its load, at least one side's
//! load sees the other side's store.
//!
//! | exchange | one side stores, then loads | the other side stores, then loads | guarantee |
//! |---|---|---|---|
//! | publish vs. unwatch | client: request number, watched flag | server: flag cleared, request number | the server sees the request, or the client kicks |
//! | withdraw vs. take | client: withdrawn number, taken number | server: taken number, withdrawn number | a request is run, or withdrawn, never both; when both see each other the server answers "withdrawn" |
//!
//! A fifth, in one client process: a slot let go vs. a caller about to wait for one. The
//! caller counts itself among the waiters, then looks for a free slot; the client letting go
//! clears the slot's lock word, then looks for waiters, and signals one if there are. With a
//! fence between each side's write and its read, the caller finds the slot free or is
//! signalled (without it, a slot let go as a caller starts to wait could leave that caller
//! asleep until its deadline).
//!
//! The fourth, the done bell, is a counter: the server adds 2 after publishing an answer, a
//! client that is about to sleep sets bit 0 with a compare-and-swap against the value it read
//! before looking for its answer. An answer published in between changes the counter, so the
//! swap fails and the client looks again; a swap that succeeded is seen by the server's add,
//! which then wakes the client.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::layout::WATCHED;

/// A 32-bit atomic word.
pub(crate) trait Word32: Sync {
    fn load(&self, order: Ordering) -> u32;
    fn store(&self, value: u32, order: Ordering);
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
    fn fetch_and(&self, value: u32, order: Ordering) -> u32;
    fn compare_exchange(&self, current: u32, new: u32) -> Result<u32, u32>;
}

/// A 64-bit atomic word.
pub(crate) trait Word64: Sync {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
}

/// A kind of atomics: the standard library's, or (in tests) loom's.
pub(crate) trait Memory {
    type U32: Word32;
    type U64: Word64;
    fn fence(order: Ordering);
}

/// The standard library's atomics: what runs.
#[derive(Debug)]
pub(crate) struct Std;

impl Word32 for AtomicU32 {
    #[inline]
    fn load(&self, order: Ordering) -> u32 {
        AtomicU32::load(self, order)
    }
    #[inline]
    fn store(&self, value: u32, order: Ordering) {
        AtomicU32::store(self, value, order)
    }
    #[inline]
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_add(self, value, order)
    }
    #[inline]
    fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
        AtomicU32::fetch_and(self, value, order)
    }
    #[inline]
    fn compare_exchange(&self, current: u32, new: u32) -> Result<u32, u32> {
        AtomicU32::compare_exchange(self, current, new, Ordering::AcqRel, Ordering::Acquire)
    }
}

impl Word64 for AtomicU64 {
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
}

impl Memory for Std {
    type U32 = AtomicU32;
    type U64 = AtomicU64;
    #[inline]
    fn fence(order: Ordering) {
        std::sync::atomic::fence(order)
    }
}

/// The control words of one slot.
#[derive(Debug)]
pub(crate) struct Words<'a, M: Memory = Std> {
    /// Request line (client): the number of the request in the slot.
    pub(crate) req_seq: &'a M::U64,
    /// Request line (client): the number of a request its caller gave up on.
    pub(crate) withdrawn: &'a M::U64,
    /// Server line: the number of the last request the server took.
    pub(crate) taken: &'a M::U64,
    /// Server line: [`WATCHED`] while a server thread looks at the slot by itself.
    pub(crate) watch: &'a M::U32,
    /// Response line (server): the number of the request answered.
    pub(crate) resp_seq: &'a M::U64,
    /// The done bell.
    pub(crate) bell: &'a M::U32,
}

impl<M: Memory> Clone for Words<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Memory> Copy for Words<'_, M> {}

/// Bit 0 of the bell: a client sleeps on the slot's wake-up socket.
const SLEEPER: u32 = 1;

/// What taking a request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// The request is the server's to run: nobody can withdraw or replace it any more.
    Run,
    /// Its caller withdrew it before the server took it: do not run it, answer "withdrawn"
    /// (the caller may have seen the taken number and be waiting).
    Withdrawn,
    /// The slot no longer holds that request (the number read was stale): do nothing.
    Stale,
}

/// What a client about to sleep found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sleep {
    /// The answer is there.
    Answered,
    /// The bell rang meanwhile: look again.
    Retry,
    /// The sleeper bit is set: sleep on the wake-up socket, and the server will wake it.
    Flagged,
}

impl<M: Memory> Words<'_, M> {
    /// Client: publishes request `seq` (its bytes written before). Whether the client must kick
    /// the server, which is not watching the slot.
    #[inline]
    pub(crate) fn publish(&self, seq: u64) -> bool {
        self.req_seq.store(seq, Ordering::Release);
        M::fence(Ordering::SeqCst);
        self.watch.load(Ordering::Relaxed) != WATCHED
    }

    /// Server: looks at the slot by itself from now on; clients need not kick.
    pub(crate) fn set_watched(&self) {
        self.watch.store(WATCHED, Ordering::Relaxed);
    }

    /// Server: stops looking at the slot. Whether a request other than `seen` was published
    /// meanwhile (its client may not have kicked: the server must serve it).
    pub(crate) fn unwatch(&self, seen: u64) -> bool {
        self.watch.store(0, Ordering::Relaxed);
        M::fence(Ordering::SeqCst);
        self.req_seq.load(Ordering::Acquire) != seen
    }

    /// Server: takes request `seq`, which it read from the slot.
    #[inline]
    pub(crate) fn take(&self, seq: u64) -> Take {
        self.taken.store(seq, Ordering::Relaxed);
        M::fence(Ordering::SeqCst);
        if self.withdrawn.load(Ordering::Relaxed) == seq {
            return Take::Withdrawn;
        }
        // The number read may be stale: if the server stalled between reading it and storing
        // `taken`, the request could have been withdrawn, another published, withdrawn in turn
        // (so `withdrawn` no longer names ours), and a third half written. Only if the slot
        // still holds `seq` is the request ours: any withdrawal from now on sees `taken`.
        if self.req_seq.load(Ordering::Acquire) != seq {
            return Take::Stale;
        }
        Take::Run
    }

    /// Client: withdraws request `seq` unless the server took it. Whether it is withdrawn (the
    /// server will never run it); if not, the server will answer it.
    pub(crate) fn withdraw(&self, seq: u64) -> bool {
        self.withdrawn.store(seq, Ordering::Relaxed);
        M::fence(Ordering::SeqCst);
        self.taken.load(Ordering::Relaxed) != seq
    }

    /// Client: whether the server took request `seq`.
    pub(crate) fn is_taken(&self, seq: u64) -> bool {
        self.taken.load(Ordering::Relaxed) == seq
    }

    /// Client: whether the answer to `seq` is in the slot.
    #[inline]
    pub(crate) fn is_answered(&self, seq: u64) -> bool {
        self.resp_seq.load(Ordering::Acquire) == seq
    }

    /// Server: publishes the answer to `seq` (its bytes written before); then [`Words::ring`].
    #[inline]
    pub(crate) fn publish_answer(&self, seq: u64) {
        self.resp_seq.store(seq, Ordering::Release);
    }

    /// Server: rings the bell after publishing an answer. Whether a client sleeps on the
    /// wake-up socket and must be woken.
    #[inline]
    pub(crate) fn ring(&self) -> bool {
        let old = self.bell.fetch_add(2, Ordering::AcqRel);
        if old & SLEEPER == 0 {
            return false;
        }
        self.bell.fetch_and(!SLEEPER, Ordering::Relaxed);
        true
    }

    /// Client: gets ready to sleep until the answer to `seq` comes.
    pub(crate) fn prepare_sleep(&self, seq: u64) -> Sleep {
        let seen = self.bell.load(Ordering::Acquire);
        if self.is_answered(seq) {
            return Sleep::Answered;
        }
        if seen & SLEEPER == 0 && self.bell.compare_exchange(seen, seen | SLEEPER).is_err() {
            return Sleep::Retry;
        }
        Sleep::Flagged
    }
}

/// Client: lets go of a slot it held (its lock word back to 0). Whether a caller may wait for a
/// slot: the one letting go must then signal it.
#[inline]
pub(crate) fn let_go<M: Memory>(lock: &M::U32, waiters: &M::U32) -> bool {
    lock.store(0, Ordering::Release);
    M::fence(Ordering::SeqCst);
    waiters.load(Ordering::Relaxed) != 0
}

/// Client: counts a caller among those waiting for a slot, before it looks for a free one: a
/// slot let go from then on is either found free or signalled. Undone by [`stop_waiting`].
pub(crate) fn start_waiting<M: Memory>(waiters: &M::U32) {
    waiters.fetch_add(1, Ordering::Relaxed);
    M::fence(Ordering::SeqCst);
}

/// Client: a caller no longer waits for a slot.
pub(crate) fn stop_waiting<M: Memory>(waiters: &M::U32) {
    waiters.fetch_add(u32::MAX, Ordering::Relaxed);
}

/// Client: takes a slot's lock word, if it is free.
#[inline]
pub(crate) fn try_lock<W: Word32 + ?Sized>(lock: &W) -> bool {
    lock.compare_exchange(0, 1).is_ok()
}

/// Server: runs `serve` on one slot for a worker that wants to, one worker at a time, never
/// missing a request. A worker that finds another at the slot leaves a mark (adds one to
/// `serving`) and goes; the other, before it lets go, sees the mark and serves once more, which
/// covers every request published before the mark. Whether this worker ran `serve`.
pub(crate) fn serve_exclusively<W: Word32 + ?Sized>(serving: &W, mut serve: impl FnMut()) -> bool {
    // Sequentially consistent: a server stopping sets its stop flag, then closes the
    // connections no worker serves; a worker marks the slot, then looks at the stop flag. One
    // of the two sees the other (it costs nothing more on x86, where every such add is locked).
    if serving.fetch_add(1, Ordering::SeqCst) != 0 {
        return false;
    }
    loop {
        serve();
        if serving.compare_exchange(1, 0).is_ok() {
            return true;
        }
        // Marks came meanwhile: one more look covers them all.
        serving.store(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_slot_is_not_taken_twice_and_only_a_waiter_is_signalled() {
        let (lock, waiters) = (AtomicU32::new(0), AtomicU32::new(0));
        assert!(try_lock(&lock));
        assert!(!try_lock(&lock), "taken twice");
        assert!(!let_go::<Std>(&lock, &waiters), "signalled for nobody");
        assert!(try_lock(&lock), "not let go");
        start_waiting::<Std>(&waiters);
        assert!(let_go::<Std>(&lock, &waiters), "a waiter not signalled");
        stop_waiting::<Std>(&waiters);
        assert!(try_lock(&lock));
        assert!(
            !let_go::<Std>(&lock, &waiters),
            "signalled for a caller that left"
        );
    }
}

// Not on Windows: loom runs each modelled thread on a stack of its own, which unwinding (a
// model's failure is a panic) cannot cross there; the model is the same on every platform.
#[cfg(all(test, not(windows)))]
mod loom_tests {
    //! Every interleaving (and every weak-memory outcome loom models) of each exchange.

    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicU32 as LU32, AtomicU64 as LU64};

    struct Loom;

    impl Word32 for LU32 {
        fn load(&self, order: Ordering) -> u32 {
            LU32::load(self, order)
        }
        fn store(&self, value: u32, order: Ordering) {
            LU32::store(self, value, order)
        }
        fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
            LU32::fetch_add(self, value, order)
        }
        fn fetch_and(&self, value: u32, order: Ordering) -> u32 {
            LU32::fetch_and(self, value, order)
        }
        fn compare_exchange(&self, current: u32, new: u32) -> Result<u32, u32> {
            LU32::compare_exchange(self, current, new, Ordering::AcqRel, Ordering::Acquire)
        }
    }

    impl Word64 for LU64 {
        fn load(&self, order: Ordering) -> u64 {
            LU64::load(self, order)
        }
        fn store(&self, value: u64, order: Ordering) {
            LU64::store(self, value, order)
        }
    }

    impl Memory for Loom {
        type U32 = LU32;
        type U64 = LU64;
        fn fence(order: Ordering) {
            loom::sync::atomic::fence(order)
        }
    }

    struct Slot {
        req_seq: LU64,
        withdrawn: LU64,
        taken: LU64,
        watch: LU32,
        resp_seq: LU64,
        bell: LU32,
    }

    impl Slot {
        fn new(watched: bool) -> Arc<Self> {
            Arc::new(Slot {
                req_seq: LU64::new(0),
                withdrawn: LU64::new(0),
                taken: LU64::new(0),
                watch: LU32::new(if watched { WATCHED } else { 0 }),
                resp_seq: LU64::new(0),
                bell: LU32::new(0),
            })
        }

        fn words(&self) -> Words<'_, Loom> {
            Words {
                req_seq: &self.req_seq,
                withdrawn: &self.withdrawn,
                taken: &self.taken,
                watch: &self.watch,
                resp_seq: &self.resp_seq,
                bell: &self.bell,
            }
        }
    }

    #[test]
    fn a_request_published_as_the_server_stops_watching_is_seen_or_kicked() {
        loom::model(|| {
            let slot = Slot::new(true);
            let server = {
                let slot = slot.clone();
                loom::thread::spawn(move || slot.words().unwatch(0))
            };
            let kicked = slot.words().publish(1);
            let seen = server.join().unwrap();
            assert!(seen || kicked, "a request nobody will serve");
        });
    }

    #[test]
    fn a_request_is_run_or_withdrawn_never_both() {
        loom::model(|| {
            let slot = Slot::new(true);
            slot.words().publish(1);
            let server = {
                let slot = slot.clone();
                loom::thread::spawn(move || {
                    let w = slot.words();
                    let seq = w.req_seq.load(Ordering::Acquire);
                    let take = w.take(seq);
                    if take != Take::Stale {
                        w.publish_answer(seq);
                        w.ring();
                    }
                    take
                })
            };
            let withdrawn = slot.words().withdraw(1);
            let take = server.join().unwrap();
            assert!(!(withdrawn && take == Take::Run), "a withdrawn request ran");
            if !withdrawn {
                // The client waits for an answer: there must be one.
                assert_ne!(take, Take::Stale);
                assert!(slot.words().is_answered(1));
            }
        });
    }

    #[test]
    fn a_lone_worker_serves_and_leaves_the_slot_free() {
        loom::model(|| {
            let serving = LU32::new(0);
            for _ in 0..2 {
                let mut ran = 0;
                assert!(
                    serve_exclusively(&serving, || ran += 1),
                    "the worker did not serve"
                );
                assert_eq!(ran, 1);
                assert_eq!(serving.load(Ordering::Relaxed), 0);
            }
        });
    }

    #[test]
    fn a_request_published_while_another_worker_serves_the_slot_is_served() {
        loom::model(|| {
            let slot = Slot::new(true);
            let serving = Arc::new(LU32::new(0));
            // What the serving worker saw last: the request it handled.
            let seen = Arc::new(LU64::new(0));
            let worker = |slot: Arc<Slot>, serving: Arc<LU32>, seen: Arc<LU64>| {
                serve_exclusively(&*serving, || {
                    let req = slot.req_seq.load(Ordering::Acquire);
                    seen.store(req, Ordering::Relaxed);
                });
            };
            slot.words().publish(1);
            let first = {
                let (slot, serving, seen) = (slot.clone(), serving.clone(), seen.clone());
                loom::thread::spawn(move || worker(slot, serving, seen))
            };
            // The next request, and the kick that sends another worker to the slot.
            slot.words().publish(2);
            worker(slot.clone(), serving.clone(), seen.clone());
            first.join().unwrap();
            assert_eq!(seen.load(Ordering::Relaxed), 2, "request 2 was dropped");
            assert_eq!(serving.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn a_slot_let_go_as_a_caller_starts_waiting_is_found_or_signalled() {
        loom::model(|| {
            let lock = Arc::new(LU32::new(1));
            let waiters = Arc::new(LU32::new(0));
            let holder = {
                let (lock, waiters) = (lock.clone(), waiters.clone());
                loom::thread::spawn(move || let_go::<Loom>(&lock, &waiters))
            };
            start_waiting::<Loom>(&waiters);
            let found = try_lock(&*lock);
            let signalled = holder.join().unwrap();
            assert!(
                found || signalled,
                "a free slot, and a caller asleep for it"
            );
        });
    }

    #[test]
    fn a_client_going_to_sleep_as_the_answer_comes_is_woken() {
        loom::model(|| {
            let slot = Slot::new(true);
            let eventfd = Arc::new(loom::sync::Notify::new());
            let server = {
                let (slot, eventfd) = (slot.clone(), eventfd.clone());
                loom::thread::spawn(move || {
                    slot.words().publish_answer(1);
                    if slot.words().ring() {
                        eventfd.notify();
                    }
                })
            };
            loop {
                match slot.words().prepare_sleep(1) {
                    Sleep::Answered => break,
                    Sleep::Retry => loom::thread::yield_now(),
                    // Loom reports a deadlock if nothing ever wakes this.
                    Sleep::Flagged => eventfd.wait(),
                }
            }
            server.join().unwrap();
        });
    }
}
