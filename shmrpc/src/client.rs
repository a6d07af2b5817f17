//! The client side of a call.
//!
//! A call takes the client lock, waits until the slot is free (a dead or timed-out caller may
//! have left a request the server is still working on), writes its request with a fresh sequence
//! number, rings exec, and waits until the done line carries that same number. It never reads a
//! response that answers another sequence number, so a late answer to a timed-out call is
//! dropped, and a request nobody took yet is withdrawn when its caller gives up.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::data::Invalid;
use crate::interface::{self, Interface};
use crate::layout::{ServerState, SlotState, Status};
use crate::lock::{Lock, Owner, PROBE_INTERVAL};
use crate::name::ServiceName;
use crate::options::{ClientOptions, WaitStrategy};
use crate::segment::{OpenError, Segment, Slot};
use crate::wait::{Ended, SpinPolicy, spin_until};
use crate::{Error, fault};

/// The untyped client behind every generated `XxxClient`.
#[derive(Debug)]
pub struct Client {
    name: ServiceName,
    options: ClientOptions,
    interface: &'static Interface,
    conn: RwLock<Option<Arc<Conn>>>,
    spin: SpinPolicy,
    me: Owner,
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

thread_local! {
    /// Request and reply bytes of the calls made on this thread: allocated once, reused.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A sequence number no other call made while this process lives uses: pid in the high bits.
fn next_seq() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) & ((1 << 40) - 1);
    (u64::from(crate::sys::pid()) << 40) | n
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
            spin,
            me: Owner::me(),
        };
        let conn = client.open()?;
        *client.conn.write().unwrap_or_else(PoisonError::into_inner) = Some(conn);
        Ok(client)
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    fn open(&self) -> Result<Arc<Conn>, Error> {
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
                Err(OpenError::Corrupted(detail)) if attempts >= 20 => {
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

    /// The current connection, opening the name again if the last server went away.
    fn connection(&self) -> Result<Arc<Conn>, Error> {
        if let Some(conn) = &*self.conn.read().unwrap_or_else(PoisonError::into_inner)
            && !conn.dead.load(Ordering::Relaxed)
        {
            return Ok(conn.clone());
        }
        let mut slot = self.conn.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = &*slot
            && !conn.dead.load(Ordering::Relaxed)
        {
            return Ok(conn.clone());
        }
        let conn = self.open()?;
        *slot = Some(conn.clone());
        Ok(conn)
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
        let deadline = Instant::now() + self.options.timeout;
        SCRATCH.with_borrow_mut(|buf| {
            let size = request_len.max(reply_len);
            if buf.len() < size {
                buf.resize(size, 0);
            }
            encode(&mut buf[..request_len]);
            let mut resent = false;
            let answer = loop {
                let conn = self.connection()?;
                match self.exchange(&conn.segment, tag, method, request_len, buf, deadline) {
                    Ok(Attempt::Answered(answer)) => break answer,
                    Ok(Attempt::NotTaken) => {
                        conn.dead.store(true, Ordering::Relaxed);
                        // The request never reached a server: send it to the next one, once.
                        if resent || Instant::now() >= deadline {
                            return Err(Error::ServerNotRunning {
                                name: self.name.as_str().to_owned(),
                            });
                        }
                        resent = true;
                    }
                    Err(e) => {
                        if matches!(e, Error::ServerDied { .. }) {
                            conn.dead.store(true, Ordering::Relaxed);
                        }
                        return Err(e);
                    }
                }
            };
            let name = || self.name.as_str().to_owned();
            match answer {
                Answer::Reply(len) if len == reply_len => {
                    decode(&buf[..len]).map_err(|Invalid(why)| self.corrupted(why))
                }
                Answer::Reply(_) => Err(self.corrupted("a response of the wrong length")),
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

    /// One attempt on one segment. `buf` holds the request and receives the reply.
    fn exchange(
        &self,
        segment: &Segment,
        tag: u32,
        method: &'static str,
        request_len: usize,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<Attempt, Error> {
        if segment.server_state().load(Ordering::Acquire) != ServerState::Ready as u32 {
            return Ok(Attempt::NotTaken);
        }
        let lock = segment.lock();
        if lock.acquire(self.me, deadline).is_none() {
            return Err(self.timeout(method));
        }
        let _held = Held { lock, me: self.me };
        fault::point(fault::Step::ClientLocked);
        let slot = segment.slot();

        // Wait until no request is pending or in progress.
        loop {
            match SlotState::from_raw(slot.state.load(Ordering::Acquire)) {
                Some(SlotState::Idle | SlotState::Response) => break,
                Some(SlotState::Request) => {
                    // Left by a caller that died or gave up: withdraw it unless the server took it.
                    let _ = cas_state(&slot, SlotState::Request, SlotState::Idle);
                }
                Some(SlotState::Processing) | None => {
                    let idle = || {
                        matches!(
                            SlotState::from_raw(slot.state.load(Ordering::Acquire)),
                            Some(SlotState::Idle | SlotState::Response | SlotState::Request)
                        )
                    };
                    match self.wait(segment, &slot, deadline, Some(Duration::ZERO), idle) {
                        WaitEnd::Done(_) => {}
                        WaitEnd::Deadline => return Err(self.timeout(method)),
                        WaitEnd::ServerGone => return Ok(Attempt::NotTaken),
                    }
                }
            }
        }

        let seq = next_seq();
        slot.write_payload(&buf[..request_len]);
        fault::point(fault::Step::ClientWroteRequest);
        slot.method.store(tag, Ordering::Relaxed);
        slot.req_len.store(request_len as u32, Ordering::Relaxed);
        slot.req_seq.store(seq, Ordering::Relaxed);
        slot.state
            .store(SlotState::Request as u32, Ordering::Release);
        slot.exec.ring();
        fault::point(fault::Step::ClientRangExec);

        let answered = || slot.resp_seq.load(Ordering::Acquire) == seq;
        let spin = self.spin.spin_for();
        match self.wait(segment, &slot, deadline, spin, answered) {
            WaitEnd::Done(ended) => self.spin.record(spin.unwrap_or_default(), ended),
            WaitEnd::Deadline => {
                // Withdraw the request if the server has not taken it; else its answer, when it
                // comes, carries a sequence number nobody waits for.
                let _ = cas_state(&slot, SlotState::Request, SlotState::Idle);
                return Err(self.timeout(method));
            }
            WaitEnd::ServerGone => {
                return if cas_state(&slot, SlotState::Request, SlotState::Idle) {
                    Ok(Attempt::NotTaken)
                } else {
                    Err(Error::ServerDied {
                        name: self.name.as_str().to_owned(),
                        method,
                    })
                };
            }
        }
        fault::point(fault::Step::ClientGotResponse);

        let status = Status::from_raw(slot.status.load(Ordering::Relaxed));
        let len = slot.resp_len.load(Ordering::Relaxed) as usize;
        let answer = match status {
            Some(Status::Ok) if len <= buf.len() => {
                slot.read_payload(&mut buf[..len]);
                Answer::Reply(len)
            }
            Some(status @ (Status::BadRequest | Status::Panicked)) if len <= slot.capacity() => {
                let mut text = vec![0; len];
                slot.read_payload(&mut text);
                let text = String::from_utf8_lossy(&text).into_owned();
                if status == Status::Panicked {
                    Answer::Panicked(text)
                } else {
                    Answer::Refused(text)
                }
            }
            _ => return Err(self.corrupted("a response with an unknown status or length")),
        };
        if slot.resp_seq.load(Ordering::Acquire) != seq {
            return Err(self.corrupted("the response changed while it was read"));
        }
        let _ = cas_state(&slot, SlotState::Response, SlotState::Idle);
        Ok(Attempt::Answered(answer))
    }

    /// Waits until `done()`, spinning first for `spin` (`None`: the whole wait), then sleeping on
    /// the done bell in slices; between slices, checks that the server lives and knocks on exec
    /// in case its wake-up was lost.
    fn wait(
        &self,
        segment: &Segment,
        slot: &Slot<'_>,
        deadline: Instant,
        spin: Option<Duration>,
        done: impl Fn() -> bool,
    ) -> WaitEnd {
        let start = Instant::now();
        let spin_end = spin.map(|s| start + s);
        let mut probed = start;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return if done() {
                    WaitEnd::Done(Ended::Sleeping(now - start))
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
                if spin_until(Some(limit), &done) {
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

    /// Whether this client spins (for tests and benchmarks).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.spin.strategy()
    }
}

fn cas_state(slot: &Slot<'_>, from: SlotState, to: SlotState) -> bool {
    slot.state
        .compare_exchange(from as u32, to as u32, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
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
