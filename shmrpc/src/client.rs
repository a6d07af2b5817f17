//! The client side of a call.
//!
//! A call takes the client lock, makes sure the request left in the slot by the previous caller
//! is finished (answered, or withdrawn before the server took it; a caller that died or gave up
//! may leave one the server is still working on), writes its own request with a fresh sequence
//! number, rings exec, and waits until the done line carries that same number. It never reads a
//! response that answers another sequence number, so a late answer to a timed-out call is
//! dropped, and a request nobody took yet is withdrawn when its caller gives up.
//!
//! Taking and withdrawing exclude each other without a shared lock word: the server stores the
//! sequence number it takes, then reads the withdrawn one; a client stores the withdrawn number,
//! then reads the taken one (all sequentially consistent). At least one of the two sees the
//! other's store, so a request is either run and answered, or skipped and never run; and when
//! both see each other, the server answers `Withdrawn`, so nobody waits for ever.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::data::Invalid;
use crate::interface::{self, Interface};
use crate::layout::{ServerState, Status};
use crate::lock::{Lock, Owner, PROBE_INTERVAL};
use crate::name::ServiceName;
use crate::options::ClientOptions;
use crate::segment::{OpenError, Segment, Slot};
use crate::wait::{Deadline, Ended, SpinPolicy, spin_briefly, spin_until};
use crate::{Error, fault};

/// The untyped client behind every generated `XxxClient`.
#[derive(Debug)]
pub struct Client {
    name: ServiceName,
    options: ClientOptions,
    interface: &'static Interface,
    conn: RwLock<Option<Arc<Conn>>>,
    /// Unique in this process: keys the per-thread connection cache.
    id: u64,
    /// Bumped whenever `conn` is replaced: a thread's cached connection is current while its
    /// generation matches, so a call takes no lock and touches no reference count.
    generation: AtomicU64,
    spin: SpinPolicy,
}

/// One opened segment. Marked dead once its server is known to be gone, so that the next call
/// opens the name afresh.
#[derive(Debug)]
struct Conn {
    segment: Segment,
    dead: AtomicBool,
}

/// How one attempt at a call ended, short of an error.
enum Attempt {
    /// The server answered.
    Answered(Answer),
    /// The server was gone before it took the request: safe to send again elsewhere.
    NotTaken,
}

/// One call, as `exchange` needs it.
#[derive(Clone, Copy)]
struct Call<'a> {
    tag: u32,
    method: &'static str,
    request_len: usize,
    reply_len: usize,
    deadline: &'a Deadline,
}

/// What the server answered.
enum Answer {
    /// The method returned; this many reply bytes are in the buffer.
    Reply(usize),
    /// The server refused the request, for this reason.
    Refused(String),
    /// The method panicked with this message.
    Panicked(String),
}

/// How a wait ended.
enum WaitEnd {
    Done(Ended),
    Deadline,
    ServerGone,
}

/// What each thread keeps for its calls, so that a call's fast path allocates nothing, takes no
/// lock and makes no atomic read-modify-write beyond the protocol's own.
struct PerThread {
    /// Request and reply bytes: allocated once, reused.
    scratch: Vec<u8>,
    /// The last sequence number this thread used (0: none yet), and the pid it was drawn in (a
    /// forked child draws a new start rather than repeat its parent's numbers).
    seq: u64,
    seq_pid: u32,
    /// The connection of the client this thread called last: (client id, generation, conn).
    conn: Option<(u64, u64, Arc<Conn>)>,
}

thread_local! {
    static PER_THREAD: RefCell<PerThread> = const {
        RefCell::new(PerThread { scratch: Vec::new(), seq: 0, seq_pid: 0, conn: None })
    };
}

/// Client ids, never reused in a process.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// A sequence number for a new request: counting up from a random start per thread, never 0, and
/// never one the slot holds now. That last rule is what makes it safe: the only answers that can
/// ever appear are to the request in the slot or to earlier ones, all of which the slot shows,
/// so no answer but our own can carry the number we publish (whatever other processes, a reused
/// pid or a fork have used before).
fn next_seq(last: &mut u64, slot: &Slot<'_>) -> u64 {
    if *last == 0 {
        *last = crate::sys::random_u64();
    }
    // (Not `taken`: the server took nothing but the request in the slot or answered ones.)
    let in_slot = [slot.req_seq, slot.resp_seq, slot.withdrawn].map(|w| w.load(Ordering::Relaxed));
    loop {
        *last = last.wrapping_add(1);
        if *last != 0 && !in_slot.contains(last) {
            return *last;
        }
    }
}

impl Client {
    /// Connects to the server of `name`, which must serve `interface`.
    pub fn connect(
        name: &str,
        options: ClientOptions,
        interface: &'static Interface,
    ) -> Result<Self, Error> {
        let name = ServiceName::new(name)?;
        let spin = SpinPolicy::new(options.wait, options.spin_budget);
        let client = Client {
            name,
            options,
            interface,
            conn: RwLock::new(None),
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
            spin,
        };
        let conn = client.open(None)?;
        *client.conn.write().unwrap_or_else(PoisonError::into_inner) = Some(conn);
        Ok(client)
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Opens the name; within a call, gives up retrying at the call's deadline.
    fn open(&self, deadline: Option<&Deadline>) -> Result<Arc<Conn>, Error> {
        let name = || self.name.as_str().to_owned();
        // A damaged header makes `Segment::open` knock on the server, which repairs it: give it
        // a few moments before giving up.
        let mut attempts = 0;
        let segment = loop {
            match Segment::open(&self.name) {
                Ok(segment) => break segment,
                Err(OpenError::NotRunning) => return Err(Error::ServerNotRunning { name: name() }),
                Err(OpenError::Mismatch(difference)) => {
                    return Err(Error::InterfaceMismatch {
                        name: name(),
                        difference,
                    });
                }
                Err(OpenError::Error(e)) => return Err(e),
                Err(OpenError::Corrupted(detail))
                    if attempts >= 20 || deadline.is_some_and(|d| Instant::now() >= d.get()) =>
                {
                    return Err(Error::Corrupted {
                        name: name(),
                        detail,
                    });
                }
                Err(OpenError::Corrupted(_)) => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        let image = segment.image();
        if image.fingerprint != self.interface.fingerprint {
            let difference = match segment.read_description() {
                Ok(server) => {
                    interface::first_difference(&server, &interface::describe(self.interface))
                }
                Err(_) => "the server's interface description is unreadable".to_owned(),
            };
            return Err(Error::InterfaceMismatch {
                name: name(),
                difference,
            });
        }
        if image.geometry.capacity < self.interface.capacity {
            return Err(Error::InterfaceMismatch {
                name: name(),
                difference: format!(
                    "the server's slot holds {} bytes, this client needs {}",
                    image.geometry.capacity, self.interface.capacity
                ),
            });
        }
        Ok(Arc::new(Conn {
            segment,
            dead: AtomicBool::new(false),
        }))
    }

    /// The current connection, from this thread's cache when it is current.
    fn cached_connection<'c>(
        &self,
        cache: &'c mut Option<(u64, u64, Arc<Conn>)>,
        deadline: &Deadline,
    ) -> Result<&'c Arc<Conn>, Error> {
        let generation = self.generation.load(Ordering::Acquire);
        let current = matches!(cache, Some((id, g, conn))
            if *id == self.id && *g == generation && !conn.dead.load(Ordering::Relaxed));
        if !current {
            // The slow path may wait for another thread that is reopening the name: the call's
            // time starts now.
            deadline.get();
            let (conn, generation) = self.connection(deadline)?;
            *cache = Some((self.id, generation, conn));
        }
        Ok(&cache.as_ref().expect("filled above").2)
    }

    /// The current connection and its generation, opening the name again if the last server
    /// went away.
    fn connection(&self, deadline: &Deadline) -> Result<(Arc<Conn>, u64), Error> {
        {
            let slot = self.conn.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(conn) = &*slot
                && !conn.dead.load(Ordering::Relaxed)
            {
                return Ok((conn.clone(), self.generation.load(Ordering::Acquire)));
            }
        }
        let mut slot = self.conn.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = &*slot
            && !conn.dead.load(Ordering::Relaxed)
        {
            return Ok((conn.clone(), self.generation.load(Ordering::Acquire)));
        }
        let conn = self.open(Some(deadline))?;
        *slot = Some(conn.clone());
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        Ok((conn, generation))
    }

    /// Makes one call: `encode` writes the `request_len` request bytes, `decode` reads the
    /// `reply_len` reply bytes.
    pub fn call<R>(
        &self,
        tag: u32,
        method: &'static str,
        request_len: usize,
        reply_len: usize,
        encode: impl FnOnce(&mut [u8]),
        decode: impl FnOnce(&[u8]) -> Result<R, Invalid>,
    ) -> Result<R, Error> {
        let deadline = Deadline::new(self.options.timeout);
        PER_THREAD.with_borrow_mut(|per_thread| {
            let PerThread {
                scratch: buf,
                seq,
                seq_pid,
                conn: cache,
            } = per_thread;
            let pid = crate::sys::pid();
            if *seq_pid != pid {
                *seq_pid = pid;
                *seq = 0;
            }
            let size = request_len.max(reply_len);
            if buf.len() < size {
                buf.resize(size, 0);
            }
            encode(&mut buf[..request_len]);
            let mut resent = false;
            let call = Call {
                tag,
                method,
                request_len,
                reply_len,
                deadline: &deadline,
            };
            let answer = loop {
                let conn = self.cached_connection(cache, &deadline)?;
                match self.exchange(&conn.segment, &call, buf, seq) {
                    Ok(Attempt::Answered(answer)) => break answer,
                    Ok(Attempt::NotTaken) => {
                        conn.dead.store(true, Ordering::Relaxed);
                        // The request never reached a server: send it to the next one, once.
                        if resent || Instant::now() >= deadline.get() {
                            return Err(Error::ServerNotRunning {
                                name: self.name.as_str().to_owned(),
                            });
                        }
                        resent = true;
                    }
                    Err(e) => {
                        // After a death, or if the header changed under us (written over), the
                        // next call opens the name afresh.
                        let reopen = match e {
                            Error::ServerDied { .. } => true,
                            Error::Timeout { .. } | Error::Corrupted { .. } => {
                                !conn.segment.header_unchanged()
                            }
                            _ => false,
                        };
                        if reopen {
                            conn.dead.store(true, Ordering::Relaxed);
                        }
                        return Err(e);
                    }
                }
            };
            let name = || self.name.as_str().to_owned();
            match answer {
                Answer::Reply(len) => {
                    decode(&buf[..len]).map_err(|Invalid(why)| self.corrupted(why))
                }
                Answer::Refused(reason) => Err(Error::BadRequest {
                    name: name(),
                    method,
                    reason,
                }),
                Answer::Panicked(message) => Err(Error::HandlerPanicked {
                    name: name(),
                    method,
                    message,
                }),
            }
        })
    }

    fn corrupted(&self, detail: &str) -> Error {
        Error::Corrupted {
            name: self.name.as_str().to_owned(),
            detail: detail.to_owned(),
        }
    }

    fn timeout(&self, method: &'static str) -> Error {
        Error::Timeout {
            name: self.name.as_str().to_owned(),
            method,
            timeout: self.options.timeout,
        }
    }

    /// One attempt on one segment. `buf` holds the request and receives the reply; `last_seq` is
    /// this thread's last sequence number.
    fn exchange(
        &self,
        segment: &Segment,
        call: &Call<'_>,
        buf: &mut [u8],
        last_seq: &mut u64,
    ) -> Result<Attempt, Error> {
        let Call {
            tag,
            method,
            request_len,
            reply_len,
            deadline,
        } = *call;
        if segment.server_state().load(Ordering::Acquire) != ServerState::Ready as u32 {
            return Ok(Attempt::NotTaken);
        }
        let lock = segment.lock();
        let me = Owner::me();
        if lock.acquire(me, deadline).is_none() {
            return Err(self.timeout(method));
        }
        let _held = Held { lock, me };
        fault::point(fault::Step::ClientLocked);
        let slot = segment.slot();

        // The previous request: finished, or to be withdrawn, or to be waited for.
        let previous = slot.req_seq.load(Ordering::Acquire);
        if previous != 0
            && slot.resp_seq.load(Ordering::Acquire) != previous
            && !withdraw(&slot, previous)
        {
            let answered = || slot.resp_seq.load(Ordering::Acquire) == previous;
            match self.wait(segment, &slot, deadline, Some(Duration::ZERO), answered) {
                WaitEnd::Done(_) => {}
                WaitEnd::Deadline => return Err(self.timeout(method)),
                WaitEnd::ServerGone => return Ok(Attempt::NotTaken),
            }
        }

        let seq = next_seq(last_seq, &slot);
        slot.write_request(&buf[..request_len]);
        slot.method.store(tag, Ordering::Relaxed);
        slot.req_len.store(request_len as u32, Ordering::Relaxed);
        fault::point(fault::Step::ClientWroteRequest);
        slot.req_seq.store(seq, Ordering::Release);
        slot.exec.ring();
        fault::point(fault::Step::ClientRangExec);

        let answered = || slot.resp_seq.load(Ordering::Acquire) == seq;
        let spin = self.spin.spin_for();
        match self.wait(segment, &slot, deadline, spin, answered) {
            WaitEnd::Done(ended) => self.spin.record(spin.unwrap_or_default(), ended),
            WaitEnd::Deadline => {
                // If the server has not taken it, it never will; if it has, its answer carries a
                // sequence number nobody waits for.
                withdraw(&slot, seq);
                return Err(self.timeout(method));
            }
            WaitEnd::ServerGone => {
                return if withdraw(&slot, seq) {
                    Ok(Attempt::NotTaken)
                } else if answered() {
                    self.read_answer(&slot, seq, buf, reply_len)
                } else {
                    Err(Error::ServerDied {
                        name: self.name.as_str().to_owned(),
                        method,
                    })
                };
            }
        }
        fault::point(fault::Step::ClientGotResponse);
        self.read_answer(&slot, seq, buf, reply_len)
    }

    /// Copies out and checks the answer to `seq`, which the done line carries.
    fn read_answer(
        &self,
        slot: &Slot<'_>,
        seq: u64,
        buf: &mut [u8],
        reply_len: usize,
    ) -> Result<Attempt, Error> {
        let status = Status::from_raw(slot.status.load(Ordering::Relaxed));
        let len = slot.resp_len.load(Ordering::Relaxed) as usize;
        let answer = match status {
            Some(Status::Ok) if len == reply_len && len <= slot.capacity().min(buf.len()) => {
                slot.read_response(&mut buf[..len]);
                Answer::Reply(len)
            }
            Some(status @ (Status::BadRequest | Status::Panicked)) if len <= slot.capacity() => {
                let mut text = vec![0; len];
                slot.read_response(&mut text);
                let text = String::from_utf8_lossy(&text).into_owned();
                if status == Status::Panicked {
                    Answer::Panicked(text)
                } else {
                    Answer::Refused(text)
                }
            }
            // Our own request withdrawn behind our back: someone wrote into the segment.
            _ => return Err(self.corrupted("a response with an unknown status or length")),
        };
        // Like a seqlock's second read: the copies above must not be reordered after it.
        std::sync::atomic::fence(Ordering::Acquire);
        if slot.resp_seq.load(Ordering::Relaxed) != seq {
            return Err(self.corrupted("the response changed while it was read"));
        }
        Ok(Attempt::Answered(answer))
    }

    /// Waits until `done()`, spinning first for `spin` (`None`: the whole wait), then sleeping on
    /// the done bell in slices; between slices, checks that the server lives and knocks on exec
    /// in case its wake-up was lost.
    fn wait(
        &self,
        segment: &Segment,
        slot: &Slot<'_>,
        deadline: &Deadline,
        spin: Option<Duration>,
        done: impl Fn() -> bool,
    ) -> WaitEnd {
        if spin != Some(Duration::ZERO) && spin_briefly(&done) {
            return WaitEnd::Done(Ended::Spinning);
        }
        let start = Instant::now();
        let deadline = deadline.get();
        let spin_end = spin.map(|s| start + s);
        let mut probed = start;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return if done() {
                    WaitEnd::Done(Ended::Sleeping(now - start))
                } else if !segment.server_alive() {
                    // Even a timeout shorter than the probe interval notices a dead server.
                    WaitEnd::ServerGone
                } else {
                    WaitEnd::Deadline
                };
            }
            if now.duration_since(probed) >= PROBE_INTERVAL {
                probed = now;
                if !segment.server_alive() {
                    return if done() {
                        WaitEnd::Done(Ended::Sleeping(now - start))
                    } else {
                        WaitEnd::ServerGone
                    };
                }
                slot.exec.knock();
            }
            let next_probe = probed + PROBE_INTERVAL;
            let spinning = spin_end.is_none_or(|end| now < end);
            if spinning {
                let limit = spin_end
                    .map_or(next_probe, |end| end.min(next_probe))
                    .min(deadline);
                if spin_until(limit, &done) {
                    return WaitEnd::Done(Ended::Spinning);
                }
                continue;
            }
            let seen = slot.done.seen();
            if done() {
                return WaitEnd::Done(Ended::Sleeping(now - start));
            }
            let sleep = next_probe.min(deadline).saturating_duration_since(now);
            slot.done
                .sleep(seen, Some(sleep.max(Duration::from_micros(50))));
        }
    }
}

impl Drop for Client {
    /// Lets go of this thread's cached connection if it is this client's, so that the segment is
    /// unmapped now (other threads let go of theirs at their next call of another client).
    fn drop(&mut self) {
        let _ = PER_THREAD.try_with(|per_thread| {
            if let Ok(mut per_thread) = per_thread.try_borrow_mut()
                && matches!(per_thread.conn, Some((id, ..)) if id == self.id)
            {
                per_thread.conn = None;
            }
        });
    }
}

/// Withdraws request `seq` unless the server took it; whether it is withdrawn (the server will
/// never run it). Both stores and both loads are sequentially consistent (see the module docs).
fn withdraw(slot: &Slot<'_>, seq: u64) -> bool {
    slot.withdrawn.store(seq, Ordering::SeqCst);
    slot.taken.load(Ordering::SeqCst) != seq
}

/// Releases the client lock when the call ends, however it ends.
struct Held<'a> {
    lock: Lock<'a>,
    me: Owner,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        fault::point(fault::Step::ClientReleasing);
        self.lock.release(self.me);
    }
}
