//! The server side: the dispatch loop and its handle.
//!
//! The loop sleeps on the exec doorbell with no timeout (an idle server uses no CPU). A request is
//! new when its sequence number differs from the last one the loop saw. The loop takes it by
//! publishing its number in the taken line and then checking it was not withdrawn (see
//! `client.rs` for why that excludes a withdrawal), copies it out of the segment, and hands the
//! private copy to the generated dispatch, which validates the method tag and every value
//! before calling the method. A panic in the method is caught and answered as such. The loop
//! keeps its own copy of the header and description, and puts them back when they change.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::data::Invalid;
use crate::interface::{self, Interface};
use crate::layout::Status;
use crate::name::ServiceName;
use crate::options::ServerOptions;
use crate::segment::{Segment, Slot};
use crate::wait::{Ended, SpinPolicy, spin_briefly, spin_until};
use crate::{Error, fault};

/// The generated dispatch: method tag, request bytes, reply buffer → reply length.
pub type Dispatch = Box<dyn FnMut(u32, &[u8], &mut [u8]) -> Result<usize, Invalid> + Send>;

/// Smallest slot a server offers, so that panic messages and refusals fit even when every
/// method carries a few bytes. The segment is a page anyway.
const MIN_CAPACITY: usize = 1024;

/// How often a busy server checks its header for damage (an idle one checks before sleeping).
const REPAIR_INTERVAL: Duration = Duration::from_millis(25);

/// How long `shutdown` waits for a method that is still running before it returns anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(60);

/// A bound server, not yet serving. Dropping it removes the name.
#[derive(Debug)]
pub struct Server {
    core: Option<Core>,
}

struct Core {
    name: ServiceName,
    segment: Arc<Segment>,
    description: String,
    dispatch: Dispatch,
    spin: SpinPolicy,
    request: Vec<u8>,
    reply: Vec<u8>,
    /// The last request sequence number seen, taken and answered: this loop's own record, which
    /// repairs the segment's.
    last_seq: u64,
    last_taken: u64,
    last_answered: u64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Creates and publishes the segment of `name`; clients may connect once this returns.
    pub fn bind(
        name: &str,
        options: ServerOptions,
        interface: &'static Interface,
        dispatch: Dispatch,
    ) -> Result<Self, Error> {
        let name = ServiceName::new(name)?;
        let description = interface::describe(interface);
        let capacity = interface.capacity.max(MIN_CAPACITY);
        let segment = Segment::publish(
            &name,
            options.mode,
            interface.fingerprint,
            capacity,
            &description,
        )?;
        Ok(Server {
            core: Some(Core {
                name,
                segment: Arc::new(segment),
                description,
                dispatch,
                spin: SpinPolicy::new(options.wait, options.spin_budget),
                request: vec![0; capacity],
                reply: vec![0; capacity],
                last_seq: 0,
                last_taken: 0,
                last_answered: 0,
            }),
        })
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.core.as_ref().map_or("", |c| c.name.as_str())
    }

    /// Serves on a new thread until the returned handle is shut down or dropped.
    pub fn spawn(mut self) -> Result<ServerHandle, Error> {
        let core = self
            .core
            .take()
            .expect("a Server holds its core until it serves");
        let name = core.name.clone();
        let segment = core.segment.clone();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            exited: Mutex::new(false),
            cv: Condvar::new(),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("shmrpc-{}", name.as_str()))
            .spawn(move || {
                let _exit = ExitSignal(&thread_shared);
                let mut core = core;
                core.serve(&thread_shared.stop);
                core.segment.unpublish(&core.name);
            })
            .map_err(|e| {
                segment.unpublish(&name);
                Error::io(
                    format!("starting the server thread of `{}`", name.as_str()),
                    e,
                )
            })?;
        Ok(ServerHandle {
            name,
            segment,
            shared,
            thread: Some(thread),
        })
    }

    /// Serves on this thread, for ever.
    pub fn run(mut self) -> Result<(), Error> {
        let mut core = self
            .core
            .take()
            .expect("a Server holds its core until it serves");
        let never = AtomicBool::new(false);
        core.serve(&never);
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            core.segment.unpublish(&core.name);
        }
    }
}

impl Core {
    fn serve(&mut self, stop: &AtomicBool) {
        let segment = self.segment.clone();
        let slot = segment.slot();
        let mut checked = Instant::now();
        let mut handled = 0u32;
        loop {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let seq = slot.req_seq.load(Ordering::Acquire);
            if seq != self.last_seq {
                self.last_seq = seq;
                fault::point(fault::Step::ServerSawRequest);
                self.take(&slot, seq);
                // A server that never runs out of work must still put back what another process
                // damaged, or new clients could not connect.
                handled = handled.wrapping_add(1);
                // A client that found damage asks for a repair; a busy server also checks by
                // itself now and then.
                if slot.repair.load(Ordering::Relaxed) != 0
                    || handled.is_multiple_of(1024) && checked.elapsed() >= REPAIR_INTERVAL
                {
                    self.repair(&slot, stop);
                    checked = Instant::now();
                }
                continue;
            }
            // Nothing to do: spin while the next request is likely to come soon, then sleep.
            let spin = self.spin.spin_for();
            let last = self.last_seq;
            let arrived =
                || slot.req_seq.load(Ordering::Relaxed) != last || stop.load(Ordering::Relaxed);
            if spin != Some(Duration::ZERO) && spin_briefly(arrived) {
                self.spin.record(spin.unwrap_or_default(), Ended::Spinning);
                continue;
            }
            let idle_since = Instant::now();
            if spin != Some(Duration::ZERO) {
                // Spin until the budget is spent (for ever when spinning only), repairing now
                // and then meanwhile.
                let end = spin.map(|d| idle_since + d);
                let came = loop {
                    let next_repair = checked + REPAIR_INTERVAL;
                    if spin_until(end.map_or(next_repair, |e| e.min(next_repair)), arrived) {
                        break true;
                    }
                    let now = Instant::now();
                    if now >= next_repair {
                        self.repair(&slot, stop);
                        checked = now;
                    }
                    if end.is_some_and(|e| now >= e) {
                        break false;
                    }
                };
                if came {
                    self.spin.record(spin.unwrap_or_default(), Ended::Spinning);
                    continue;
                }
            }
            // Before sleeping, check for damage, at most every REPAIR_INTERVAL: a server that
            // sleeps after every call (park-only) must not pay for a full check each time.
            if slot.repair.load(Ordering::Relaxed) != 0 || checked.elapsed() >= REPAIR_INTERVAL {
                self.repair(&slot, stop);
                checked = Instant::now();
            }
            // The bell is read only now, not on every turn: the client rings it on every call,
            // and reading it in between would make each ring wait for the line to come back.
            let seen = slot.exec.seen();
            if slot.req_seq.load(Ordering::Acquire) != self.last_seq || stop.load(Ordering::Acquire)
            {
                continue;
            }
            slot.exec.sleep(seen, None);
            self.spin.record(
                spin.unwrap_or_default(),
                Ended::Sleeping(idle_since.elapsed()),
            );
        }
    }

    /// Puts back what another process changed: the header and description, and the two words of
    /// the slot only the server writes (`resp_seq`, `taken`), from this loop's own record.
    fn repair(&self, slot: &Slot<'_>, stop: &AtomicBool) {
        if stop.load(Ordering::Acquire) {
            return;
        }
        slot.repair.store(0, Ordering::Relaxed);
        self.segment.repair(&self.description);
        if slot.resp_seq.load(Ordering::Relaxed) != self.last_answered {
            slot.resp_seq.store(self.last_answered, Ordering::Release);
            slot.done.ring();
        }
        if slot.taken.load(Ordering::Relaxed) != self.last_taken {
            slot.taken.store(self.last_taken, Ordering::SeqCst);
        }
    }

    /// Takes request `seq` unless its caller withdrew it, runs it, and answers.
    fn take(&mut self, slot: &Slot<'_>, seq: u64) {
        self.last_taken = seq;
        slot.taken.store(seq, Ordering::SeqCst);
        if slot.withdrawn.load(Ordering::SeqCst) == seq {
            // Withdrawn before we took it: do not run it, but answer, since whoever withdrew it
            // may have seen our taken number and be waiting.
            self.last_answered = seq;
            answer(slot, seq, Status::Withdrawn, &[]);
            return;
        }
        // The number we read may be stale: if this loop stalled between reading it and storing
        // `taken`, the request could have been withdrawn, another published, withdrawn in turn
        // (so `withdrawn` no longer names ours), and a third half written. Only if the slot
        // still holds our number is the request ours to run: nobody can replace it from now on,
        // since any withdrawal now sees `taken` and waits for our answer.
        if slot.req_seq.load(Ordering::SeqCst) != seq {
            return;
        }
        let tag = slot.method.load(Ordering::Relaxed);
        let len = slot.req_len.load(Ordering::Relaxed) as usize;
        fault::point(fault::Step::ServerTookRequest);
        // The generated dispatch validates the tag (methods compiled out included) and each value.
        let (status, reply_len) = match () {
            _ if len > slot.capacity() => {
                self.refuse(Status::BadRequest, "the request is longer than the slot")
            }
            () => {
                slot.read_request(&mut self.request[..len]);
                let (request, reply, dispatch) =
                    (&self.request[..len], &mut self.reply, &mut self.dispatch);
                match catch_unwind(AssertUnwindSafe(|| dispatch(tag, request, reply))) {
                    Ok(Ok(n)) => (Status::Ok, n),
                    Ok(Err(Invalid(why))) => self.refuse(Status::BadRequest, why),
                    Err(panic) => self.refuse(Status::Panicked, &panic_message(&*panic)),
                }
            }
        };
        fault::point(fault::Step::ServerDispatched);
        self.last_answered = seq;
        answer(slot, seq, status, &self.reply[..reply_len]);
    }

    /// Writes `message` (cut to the slot) as the reply.
    fn refuse(&mut self, status: Status, message: &str) -> (Status, usize) {
        let mut end = message.len().min(self.reply.len());
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self.reply[..end].copy_from_slice(&message.as_bytes()[..end]);
        (status, end)
    }
}

/// Writes the answer to `seq` and rings done. The sequence number goes last: it publishes the
/// answer.
fn answer(slot: &Slot<'_>, seq: u64, status: Status, reply: &[u8]) {
    slot.write_response(reply);
    slot.status.store(status as u32, Ordering::Relaxed);
    slot.resp_len.store(reply.len() as u32, Ordering::Relaxed);
    slot.resp_seq.store(seq, Ordering::Release);
    fault::point(fault::Step::ServerWroteResponse);
    slot.done.ring();
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

struct Shared {
    stop: AtomicBool,
    exited: Mutex<bool>,
    cv: Condvar,
}

/// Tells the handle that the serving thread is done, however it ends.
struct ExitSignal<'a>(&'a Shared);

impl Drop for ExitSignal<'_> {
    fn drop(&mut self) {
        *self.0.exited.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.cv.notify_all();
    }
}

/// A server running on its own thread. [`ServerHandle::shutdown`] (or dropping the handle)
/// stops it and removes its name from the system.
pub struct ServerHandle {
    name: ServiceName,
    segment: Arc<Segment>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("name", &self.name.as_str())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The service name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Stops serving and removes the name, within 100 ms.
    ///
    /// New calls fail with `ServerNotRunning` from then on. A method that is still running is
    /// let finish on its thread (its caller still gets the answer), but `shutdown` does not wait
    /// for it beyond a short grace period.
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.shared.stop.store(true, Ordering::Release);
        // The name goes now, whatever the thread is doing.
        self.segment.unpublish(&self.name);
        let slot = self.segment.slot();
        slot.exec.ring();
        slot.exec.knock();
        let exited = self
            .shared
            .exited
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (exited, _) = self
            .shared
            .cv
            .wait_timeout_while(exited, SHUTDOWN_GRACE, |exited| !*exited)
            .unwrap_or_else(PoisonError::into_inner);
        if *exited {
            drop(exited);
            thread.join().map_err(|_| {
                Error::io(
                    format!("shutting down `{}`", self.name.as_str()),
                    std::io::Error::other("the server thread panicked"),
                )
            })?;
        }
        Ok(())
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
