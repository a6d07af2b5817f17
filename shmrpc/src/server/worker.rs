//! A server thread: watches the sockets when nobody does, and with a permit takes requests
//! (the ready queue first, in arrival order; then, as the spinner, the slots it watches), runs
//! them and answers; sleeps when there is nothing to do.
//!
//! Serving a slot: take turns with other workers at it (one at a time), read the request's
//! number, take it (see `protocol::exchange`: a withdrawn request is answered "withdrawn", never
//! run), copy the request out, and hand the private copy to the generated dispatch, which
//! validates the method tag and every value before calling the method. Then write the answer,
//! publish its number, and ring the bell, which wakes the client only if it sleeps.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shared;
use super::slot::ServerSlot;
use super::watcher;
use crate::caller::Serving;
use crate::data::Invalid;
use crate::options::WaitStrategy;
use crate::protocol::exchange::{Take, serve_exclusively};
use crate::protocol::layout::Status;
use crate::sys::{self, Events};
use crate::wait::{Ended, SpinPolicy, spin_briefly, spin_until};
use crate::wire::Private;
use crate::{MutexExt, fault, trace};

/// Most slots the spinner watches at once: past that, the one idle longest is let go.
const MAX_HOT: usize = 64;

/// Two kicks of one slot this close together make it worth watching, whatever the spin budget.
const SPIN_FLOOR: Duration = Duration::from_micros(200);

/// The slots the spinner watches (their clients need not kick).
#[derive(Debug, Default)]
pub(crate) struct HotSet {
    slots: Vec<Hot>,
    /// Where the next scan starts, so that no slot is always looked at last.
    next: usize,
    /// Requests served by the spinner so far: when each slot was last busy.
    clock: u64,
}

#[derive(Debug)]
struct Hot {
    slot: Arc<ServerSlot>,
    busy_at: u64,
}

impl HotSet {
    /// The index of a watched slot holding a new request, scanning from a rotating start;
    /// forgets slots whose connection closed.
    fn pending(&mut self) -> Option<usize> {
        let n = self.slots.len();
        for i in 0..n {
            let at = (self.next + i) % n;
            if self.slots[at].slot.has_request() {
                self.next = at + 1;
                return Some(at);
            }
        }
        if self
            .slots
            .iter()
            .any(|h| h.slot.closed.load(Ordering::Relaxed))
        {
            self.slots.retain(|h| {
                let keep = !h.slot.closed.load(Ordering::Relaxed);
                if !keep {
                    h.slot.hot.store(false, Ordering::Relaxed);
                }
                keep
            });
        }
        None
    }

    fn any_pending(&self) -> bool {
        self.slots.iter().any(|h| h.slot.has_request())
    }

    /// Watches `slot` from now on. If that means letting go of another slot, and a request came
    /// in that one meanwhile, returns it: it must be served.
    #[must_use]
    fn add(&mut self, slot: &Arc<ServerSlot>) -> Option<Arc<ServerSlot>> {
        self.clock += 1;
        if slot.hot.swap(true, Ordering::Relaxed) {
            if let Some(h) = self.slots.iter_mut().find(|h| Arc::ptr_eq(&h.slot, slot)) {
                h.busy_at = self.clock;
            }
            return None;
        }
        let mut missed = None;
        if self.slots.len() >= MAX_HOT
            && let Some(oldest) = (0..self.slots.len()).min_by_key(|&i| self.slots[i].busy_at)
        {
            let old = self.slots.swap_remove(oldest);
            missed = let_go(&old.slot).then_some(old.slot);
        }
        slot.memory.words().set_watched();
        self.slots.push(Hot {
            slot: slot.clone(),
            busy_at: self.clock,
        });
        missed
    }

    fn touch(&mut self, at: usize) {
        self.clock += 1;
        self.slots[at].busy_at = self.clock;
    }
}

/// Stops watching one slot; whether a request came in it meanwhile (its client saw the slot
/// watched and did not kick: the server must serve it).
fn let_go(slot: &ServerSlot) -> bool {
    slot.hot.store(false, Ordering::Relaxed);
    slot.memory
        .words()
        .unwatch(slot.seen.load(Ordering::Relaxed))
}

/// A worker keeps a private request buffer up to this size between calls; a larger one is let
/// go after its call (16 MiB messages, plus the line a private copy starts into).
const KEEP_REQUEST: usize = (16 << 20) + 64;

/// One worker thread's state.
struct Worker<'a> {
    shared: &'a Shared,
    /// The private copy of the request being served, 16-aligned so that slices of numbers can
    /// be lent out of it: the buffer of the permit this worker holds.
    request: Private,
    spin: SpinPolicy,
    /// How long this worker spun in vain before its next sleep, if it did: the spin policy
    /// learns from how long the sleep then lasts.
    spun_in_vain: Option<Duration>,
    /// Slots let go of with a request in them, to serve (kept, for its capacity).
    missed: Vec<Arc<ServerSlot>>,
    /// This thread's counters in the server's statistics.
    stats: usize,
    /// Whether the thread slept since its last call (the next one is timed).
    slept: bool,
    /// The caller of the call this thread serves.
    serving: Serving,
}

/// The body of a server thread: runs until the server stops.
pub(crate) fn run(shared: &Shared) {
    let mut worker = Worker {
        shared,
        request: Private::default(),
        spin: SpinPolicy::new(shared.options.wait, shared.options.spin_budget),
        spun_in_vain: None,
        missed: Vec::with_capacity(MAX_HOT),
        stats: shared.stats.thread(),
        slept: true,
        serving: Serving::new(),
    };
    let mut events = Events::default();
    while !shared.stopping() {
        leave_if_forked(shared);
        if shared.work_for_a_permit() && shared.take_permit() {
            worker.request = shared.take_buffer();
            worker.work();
            shared.give_buffer(std::mem::take(&mut worker.request));
            shared.release_permit();
            continue;
        }
        worker.watch(&mut events);
    }
    // Whatever it logs as it closes connections is no call's.
    worker.serving.leave();
    shared.connections.lock_anyway().close_idle(shared);
}

impl Worker<'_> {
    /// With a permit: serves the ready queue, then, as the spinner if nobody is, the slots it
    /// watches, until there is nothing to do.
    fn work(&mut self) {
        let shared = self.shared;
        while let Some(slot) = shared.pop_ready() {
            self.serve(&slot);
            // A worker that can watch the slot from now on does: its client's next call then
            // needs no kick.
            if let Ok(mut hot) = shared.hot.try_lock() {
                self.watch_kicked(&mut hot, &slot);
            }
            if shared.stopping() {
                return;
            }
        }
        if let Ok(mut hot) = shared.hot.try_lock() {
            self.spin(&mut hot);
        }
    }

    /// After serving a request that came with a kick: watches `slot` from now on if its client
    /// calls often (it kicked before, less than a spin budget ago). A client that calls now and
    /// then is not about to call again, and spinning for it would only take the CPU it needs
    /// to wake up (the kernel tends to run a woken process on its waker's CPU).
    fn watch_kicked(&self, hot: &mut HotSet, slot: &Arc<ServerSlot>) {
        let shared = self.shared;
        let now = shared
            .started
            .elapsed()
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64
            | 1;
        let before = slot.kicked_at.swap(now, Ordering::Relaxed);
        let often = before != 0
            // Two workers may race here: a later value may have been swapped in first.
            && Duration::from_nanos(now.saturating_sub(before))
                <= shared.options.spin_budget.max(SPIN_FLOOR);
        if often
            && shared.options.wait != WaitStrategy::ParkOnly
            && !slot.closed.load(Ordering::Relaxed)
            && let Some(missed) = hot.add(slot)
        {
            shared.enqueue(&missed);
        }
    }

    /// As the spinner: serves the ready queue and the watched slots until nothing came for
    /// the spin budget; then lets every watched slot go (serving what that turns up) and
    /// returns.
    fn spin(&mut self, hot: &mut HotSet) {
        let shared = self.shared;
        loop {
            if shared.stopping() {
                return;
            }
            if let Some(slot) = shared.pop_ready() {
                self.serve(&slot);
                self.watch_kicked(hot, &slot);
                continue;
            }
            if let Some(at) = hot.pending() {
                hot.touch(at);
                self.serve(&hot.slots[at].slot);
                continue;
            }
            if !hot.slots.is_empty() && self.wait_for_work(hot) {
                continue;
            }
            // Nothing came: stop watching. A request that came meanwhile was not kicked for:
            // this thread serves it. Requests that came with a kick and wait in the ready queue
            // (left to this thread while it spun) go to another thread if a permit is free, so
            // that they do not wait for what this one is about to run.
            // Into a vector this worker keeps: a warm call allocates nothing, even when a
            // request slips in as the slots are let go.
            let mut missed = std::mem::take(&mut self.missed);
            missed.extend(
                hot.slots
                    .drain(..)
                    .filter_map(|h| let_go(&h.slot).then_some(h.slot)),
            );
            if missed.is_empty() {
                self.missed = missed;
                return;
            }
            shared.wake_for_queued();
            for slot in missed.drain(..) {
                self.serve(&slot);
            }
            self.missed = missed;
        }
    }

    /// Spins while work is likely to come soon; whether it came.
    fn wait_for_work(&mut self, hot: &HotSet) -> bool {
        let shared = self.shared;
        let came = || {
            shared.ready_len.load(Ordering::Relaxed) > 0
                || hot.any_pending()
                || shared.stop.load(Ordering::Relaxed)
        };
        let spin = self.spin.spin_for();
        if spin == Some(Duration::ZERO) {
            self.spun_in_vain = spin;
            return false;
        }
        shared.spinning.store(true, Ordering::SeqCst);
        let came = || {
            let came = came();
            if came {
                shared.spinning.store(false, Ordering::SeqCst);
            }
            came
        };
        if spin_briefly(came) {
            self.spin.record(spin.unwrap_or_default(), Ended::Spinning);
            return true;
        }
        let start = Instant::now();
        let end = spin.map(|s| start + s);
        let came_while_spinning = match end {
            Some(end) => spin_until(end, came),
            None => loop {
                // Spinning only: until work comes, however long that takes.
                if spin_until(Instant::now() + Duration::from_secs(1), came) {
                    break true;
                }
            },
        };
        shared.spinning.store(false, Ordering::SeqCst);
        if came_while_spinning {
            self.spin.record(spin.unwrap_or_default(), Ended::Spinning);
        } else {
            self.spun_in_vain = spin;
        }
        came_while_spinning
    }

    /// Sleeps until an event comes (or the server stops), and handles it.
    fn watch(&mut self, events: &mut Events) {
        let shared = self.shared;
        let start = Instant::now();
        self.slept = true;
        self.serving.leave();
        let event = match shared.poller.wait(events, None) {
            Ok(event) => event,
            Err(e) => {
                eprintln!(
                    "shmrpc: the server of `{}` cannot wait on its sockets ({e}); stopping it",
                    shared.name.as_str()
                );
                shared.begin_stop();
                return;
            }
        };
        if let Some(spun) = self.spun_in_vain.take() {
            self.spin
                .record(spun, Ended::Sleeping(spun + start.elapsed()));
        }
        match event {
            // The bells need no connection: a thread woken to serve the ready queue does not
            // wait behind another handling connections (accepting a burst of them, say).
            Some(event) if watcher::is_bell(event.token) => {
                watcher::answer_bell(shared, event.token)
            }
            Some(event) => {
                let retired = {
                    let mut connections = shared.connections.lock_anyway();
                    connections.handle(shared, event);
                    connections.retired()
                };
                watcher::retire(retired);
            }
            None => {}
        }
    }

    /// Serves the request in `slot`, if there is a new one, unless another worker serves the
    /// slot (it then looks once more before it lets go: see
    /// [`serve_exclusively`](crate::protocol::exchange::serve_exclusively)).
    fn serve(&mut self, slot: &ServerSlot) {
        serve_exclusively(&slot.serving, || {
            // Once the server stops, it takes no new request (the thread that closes idle
            // connections, after `stop`, keeps those whose slot is being served).
            if !self.shared.stopping() {
                self.serve_claimed(slot);
            }
        });
    }

    fn serve_claimed(&mut self, slot: &ServerSlot) {
        let words = slot.memory.words();
        let seq = words.req_seq.load(Ordering::Acquire);
        if seq == slot.seen.load(Ordering::Relaxed) {
            return;
        }
        slot.seen.store(seq, Ordering::Relaxed);
        self.serving.enter(slot.caller);
        fault::point(fault::Step::ServerSawRequest);
        let tag = slot.memory.method().load(Ordering::Relaxed);
        let trace = trace::Call::serve(
            self.shared.name.as_str(),
            self.shared.method_name(tag),
            seq,
            slot.caller.pid(),
        );
        #[allow(clippy::let_unit_value)] // `()` without the `tracing` feature
        let _entered = trace.enter();
        match words.take(seq) {
            Take::Stale => return,
            Take::Withdrawn => {
                trace.end("Withdrawn");
                return answer(slot, seq, Status::Withdrawn, &[]);
            }
            Take::Run => {}
        }
        // Read again after the take: the number was read before, and only now is the request
        // this server's to run.
        let tag = slot.memory.method().load(Ordering::Relaxed);
        let len = slot.memory.request_len().load(Ordering::Relaxed) as usize;
        fault::point(fault::Step::ServerTookRequest);
        if len > slot.memory.capacity() {
            trace.end("BadRequest");
            return self.refuse(
                slot,
                seq,
                Status::BadRequest,
                "the request is longer than the slot",
            );
        }
        let stats = &self.shared.stats;
        let timed = stats
            .call(self.stats, tag, std::mem::take(&mut self.slept))
            .then(Instant::now);
        let request = self.request.bytes(len);
        slot.memory.read_request(request);
        let request = &*request;
        let dispatch = &self.shared.dispatch;
        let reply = slot.memory.response_writer();
        let ran = catch_unwind(AssertUnwindSafe(|| dispatch(tag, request, reply)));
        if let Some(start) = timed {
            stats.latency(self.stats, tag, start.elapsed());
        }
        if !matches!(ran, Ok(Ok(ref written)) if !written.too_large) {
            stats.error(self.stats, tag);
        }
        // A method that forked, and whose child came back here: the child must not answer
        // (its parent does) nor serve anything.
        leave_if_forked(self.shared);
        if self.request.capacity() > KEEP_REQUEST {
            self.request = Private::default();
        }
        fault::point(fault::Step::ServerDispatched);
        match ran {
            Ok(Ok(written)) if written.too_large => {
                trace.end("TooLarge");
                let size = written.len as u64;
                answer(slot, seq, Status::TooLarge, &size.to_le_bytes());
            }
            Ok(Ok(written)) => {
                trace.end("ok");
                publish(slot, seq, Status::Ok, written.len);
            }
            Ok(Err(Invalid(why))) => {
                trace.end("BadRequest");
                self.refuse(slot, seq, Status::BadRequest, why);
            }
            Err(panic) => {
                trace.end("Panicked");
                refuse(slot, seq, Status::Panicked, &panic_message(&*panic));
            }
        }
    }

    /// Refuses a bad request (and says so, with the `tracing` feature).
    fn refuse(&self, slot: &ServerSlot, seq: u64, status: Status, why: &str) {
        trace::refused(self.shared.name.as_str(), why);
        refuse(slot, seq, status, why);
    }
}

/// Answers with `message` (cut to the slot).
fn refuse(slot: &ServerSlot, seq: u64, status: Status, message: &str) {
    let mut end = message.len().min(slot.memory.capacity());
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    answer(slot, seq, status, &message.as_bytes()[..end]);
}

/// Writes `payload` as the answer to `seq`, and publishes it.
fn answer(slot: &ServerSlot, seq: u64, status: Status, payload: &[u8]) {
    slot.memory.write_response(payload);
    publish(slot, seq, status, payload.len());
}

/// Publishes the answer to `seq`, whose `len` payload bytes are in the slot, and rings the bell
/// (waking the client if it sleeps).
fn publish(slot: &ServerSlot, seq: u64, status: Status, len: usize) {
    let memory = &slot.memory;
    memory.status().store(status as u32, Ordering::Relaxed);
    memory.response_len().store(len as u32, Ordering::Relaxed);
    let words = memory.words();
    words.publish_answer(seq);
    fault::point(fault::Step::ServerWroteResponse);
    if words.ring() {
        slot.bell.ring();
    }
}

/// Ends this process if it is a forked child of the server's (a method forked without exec, and
/// the child returned into the server): it has none of the server's other threads, and its
/// parent serves the same connections, so anything it did would cross the parent's answers.
fn leave_if_forked(shared: &Shared) {
    if sys::fork_epoch() != shared.epoch {
        sys::exit_forked_child(&[
            "shmrpc: a method of `",
            shared.name.as_str(),
            "` forked this process, and the child returned into the server; only the process \
             that bound a service serves it, so the child exits now (end a forked child with \
             exec or _exit instead)",
        ]);
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Caller;
    use crate::protocol::layout::{Geometry, WATCHED};

    fn slot() -> Arc<ServerSlot> {
        let caller = Caller::new(1, 2, 3);
        let (slot, _fds) = ServerSlot::create(Geometry { capacity: 64 }, 0, caller).unwrap();
        Arc::new(slot)
    }

    fn publish(slot: &ServerSlot, seq: u64) {
        slot.memory.req_seq().store(seq, Ordering::Release);
    }

    fn watched(slot: &ServerSlot) -> bool {
        let by_server = slot.hot.load(Ordering::Relaxed);
        let in_slot = slot.memory.words().watch.load(Ordering::Relaxed) == WATCHED;
        assert_eq!(
            by_server, in_slot,
            "the slot's watch word disagrees with the spinner"
        );
        by_server
    }

    /// A full set, in order: `slots[i]` was busy `i`-th.
    fn full() -> (HotSet, Vec<Arc<ServerSlot>>) {
        let mut hot = HotSet::default();
        let slots: Vec<_> = (0..MAX_HOT).map(|_| slot()).collect();
        for s in &slots {
            assert!(hot.add(s).is_none());
            assert!(watched(s));
        }
        (hot, slots)
    }

    fn index_of(hot: &HotSet, slot: &Arc<ServerSlot>) -> usize {
        hot.slots
            .iter()
            .position(|h| Arc::ptr_eq(&h.slot, slot))
            .expect("watched")
    }

    #[test]
    fn the_spinner_takes_turns_among_the_slots_with_requests() {
        let mut hot = HotSet::default();
        let slots: Vec<_> = (0..3).map(|_| slot()).collect();
        for s in &slots {
            assert!(hot.add(s).is_none());
        }
        assert!(!hot.any_pending());
        assert_eq!(hot.pending(), None);
        for s in &slots {
            publish(s, 1);
        }
        assert!(hot.any_pending());
        // Each slot with a request comes up once before any comes up again, even one that
        // still (or again) holds a request.
        let mut turns: Vec<usize> = (0..3).map(|_| hot.pending().unwrap()).collect();
        turns.sort();
        assert_eq!(turns, [0, 1, 2]);
    }

    #[test]
    fn the_spinner_forgets_closed_slots_and_keeps_watching_the_others() {
        let mut hot = HotSet::default();
        let (closed, open) = (slot(), slot());
        assert!(hot.add(&closed).is_none());
        assert!(hot.add(&open).is_none());
        closed.closed.store(true, Ordering::Relaxed);
        assert_eq!(hot.pending(), None);
        assert_eq!(hot.slots.len(), 1);
        assert!(Arc::ptr_eq(&hot.slots[0].slot, &open));
        assert!(!closed.hot.load(Ordering::Relaxed));
        assert!(watched(&open));
        publish(&open, 1);
        assert_eq!(hot.pending(), Some(0));
    }

    #[test]
    fn past_the_limit_the_slot_idle_longest_is_let_go_and_its_request_served() {
        let (mut hot, slots) = full();
        // Slot 0 is busy again (a request of it was served): slot 1 is now the idle longest.
        assert!(hot.add(&slots[0]).is_none());
        assert_eq!(hot.slots.len(), MAX_HOT);
        publish(&slots[1], 7);
        let newcomer = slot();
        let missed = hot
            .add(&newcomer)
            .expect("slot 1 held a request when it was let go");
        assert!(Arc::ptr_eq(&missed, &slots[1]));
        assert!(!watched(&slots[1]));
        assert!(watched(&slots[0]) && watched(&newcomer));
        // The next idle longest, slot 2, holds no request: nothing to serve.
        assert!(hot.add(&slot()).is_none());
        assert!(!watched(&slots[2]));
        assert!(watched(&slots[0]) && watched(&slots[3]));
        assert_eq!(hot.slots.len(), MAX_HOT);
    }

    #[test]
    fn a_slot_served_by_the_spinner_counts_as_busy() {
        let (mut hot, slots) = full();
        for s in slots[1..].iter().chain(&slots[..1]) {
            let at = index_of(&hot, s);
            hot.touch(at);
        }
        // Slot 0 was served last, slot 1 longest ago.
        assert!(hot.add(&slot()).is_none());
        assert!(!watched(&slots[1]));
        assert!(watched(&slots[0]));
    }
}
