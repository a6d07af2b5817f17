//! The client behind every generated `XxxAsyncClient`: the blocking client's connection, slots
//! and protocol, with waits that never block a thread.
//!
//! A call writes its request into a free slot and publishes it exactly as a blocking call does.
//! It then spins for the answer within one poll while one is likely to come soon (the same
//! adaptive policy, never past the spin budget: a spinning poll holds an executor thread), and
//! otherwise sleeps: it sets the bell's sleeper bit, arms the slot's wait set (readable when the
//! server rings the bell, closes the connection or dies) with the reactor, sets a timer for its
//! deadline and returns `Pending`.
//!
//! **Cancellation.** The call's slot is held by an [`InFlight`] guard. Dropping the future
//! drops it: a request the server has not taken is withdrawn (the server will answer it
//! "withdrawn" and never run it); one it has taken leaves the slot resting until that answer
//! comes, as after a timeout, so no later call can read it. Either way the slot goes back to
//! the client, and the connection goes on.
//!
//! What runs on the polling thread without waiting for the server: `connect` and reconnecting
//! (a handshake on a local socket, about 0.1 ms), and asking the server for another slot when
//! every slot is busy (one message each way).

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::call::{self, Answer, Attempt};
use super::connection::{ClientSlot, Connection, Within};
use super::{Client, PER_THREAD};
use crate::data::Invalid;
use crate::interface::Interface;
use crate::options::ClientOptions;
use crate::protocol::exchange::Sleep;
use crate::sys::{self, Reactor, WaitSet};
use crate::wait::{Deadline, Ended, spin_briefly, spin_until};
use crate::wire::{Reader, Writer};
use crate::{Error, fault};

/// How often a call whose request was neither kicked for nor taken wakes to kick again, and how
/// often a call waiting for a slot looks again (a slot whose late answer arrives frees itself
/// without a signal).
const RETRY: Duration = Duration::from_millis(1);

/// The untyped client behind every generated `XxxAsyncClient`.
#[derive(Debug)]
pub struct AsyncClient {
    inner: Client,
}

impl AsyncClient {
    /// Connects to the server of `name`, which must serve `interface`; waits for one to bind
    /// the name up to `options.wait_for_server`, without blocking the thread.
    pub async fn connect(
        name: &str,
        options: ClientOptions,
        interface: &'static Interface,
    ) -> Result<Self, Error> {
        let give_up = crate::wait::after(options.wait_for_server);
        let mut pause = Duration::from_micros(100);
        loop {
            let once = options.clone().wait_for_server(Duration::ZERO);
            match Client::connect(name, once, interface) {
                Err(Error::ServerNotRunning { .. }) if Instant::now() < give_up => {
                    sleep_until((Instant::now() + pause).min(give_up)).await?;
                    // Socket names give no notification: look again, at growing intervals.
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                Ok(mut client) => {
                    client.options.wait_for_server = options.wait_for_server;
                    return Ok(AsyncClient { inner: client });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Makes one call: `encode` writes the request (straight into the slot; again if the call
    /// is sent to another server), `decode` reads the reply.
    pub async fn call<R>(
        &self,
        tag: u32,
        method: &'static str,
        encode: impl Fn(&mut Writer<'_>),
        decode: impl FnOnce(&mut Reader<'_>) -> Result<R, Invalid>,
    ) -> Result<R, Error> {
        let trace = crate::trace::Call::client(self.inner.name.as_str(), method);
        #[cfg(feature = "tracing")]
        let result = {
            use tracing::Instrument;
            self.call_untraced(tag, method, encode, decode)
                .instrument(trace.span())
                .await
        };
        #[cfg(not(feature = "tracing"))]
        let result = self.call_untraced(tag, method, encode, decode).await;
        trace.end_call(&result);
        result
    }

    async fn call_untraced<R>(
        &self,
        tag: u32,
        method: &'static str,
        encode: impl Fn(&mut Writer<'_>),
        decode: impl FnOnce(&mut Reader<'_>) -> Result<R, Invalid>,
    ) -> Result<R, Error> {
        let client = &self.inner;
        let timeout = client.options.timeout;
        let deadline = crate::wait::after(timeout);
        let within = Within {
            give_up: deadline,
            method,
        };
        let mut resent = false;
        let mut remapped = false;
        let (flight, answer) = loop {
            let connection = client.connection(&Deadline::fixed(timeout, deadline), method)?;
            let slot = match take_slot(&connection, within).await {
                Ok(Some(slot)) => slot,
                Ok(None) => return Err(client.timeout(method)),
                Err(Error::ServerNotRunning { .. }) if !resent => {
                    resent = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut flight = InFlight {
                connection,
                slot,
                seq: None,
            };
            let server_tag = match flight.connection.server_tag(tag, method) {
                Ok(server_tag) => server_tag,
                Err(_) if !remapped && flight.connection.server_gone() => {
                    flight.connection.dead.store(true, Ordering::Relaxed);
                    remapped = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let request_len = {
                let mut request = flight.slot.memory.request_writer();
                encode(&mut request);
                if request.too_large() {
                    return Err(Error::TooLarge {
                        name: client.name.as_str().to_owned(),
                        method,
                        size: request.len() as u64,
                        limit: flight.connection.limit() as u64,
                        response: false,
                    });
                }
                request.len()
            };
            match flight
                .exchange(client, server_tag, request_len, deadline, method)
                .await
            {
                Ok(Attempt::Answered(answer)) => break (flight, answer),
                Ok(Attempt::NotTaken) => {
                    drop(flight);
                    if resent || Instant::now() >= deadline {
                        return Err(Error::ServerNotRunning {
                            name: client.name.as_str().to_owned(),
                            detail: String::new(),
                        });
                    }
                    resent = true;
                }
                Err(e) => return Err(e),
            }
        };
        let name = || client.name.as_str().to_owned();
        match answer {
            Answer::Reply { len, seq } => {
                // Decoded in this poll: the thread's reply buffer is borrowed, never held
                // across an await.
                let mut scratch = PER_THREAD
                    .try_with(|t| {
                        t.try_borrow_mut()
                            .map(|mut t| std::mem::take(&mut t.scratch))
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                let value = call::decode_reply(
                    &client.name,
                    &flight.slot.memory,
                    (len, seq),
                    &mut scratch,
                    decode,
                );
                let _ = PER_THREAD.try_with(|t| {
                    if let Ok(mut t) = t.try_borrow_mut() {
                        t.scratch = scratch;
                    }
                });
                drop(flight);
                value
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
            Answer::TooLarge { size, limit } => Err(Error::TooLarge {
                name: name(),
                method,
                size,
                limit,
                response: true,
            }),
        }
    }
}

/// A free slot of `connection`, locked for one call, waiting (without blocking) while all are
/// busy, in arrival order; `None` if none was free `within` the deadline.
async fn take_slot(
    connection: &Connection,
    within: Within,
) -> Result<Option<Arc<ClientSlot>>, Error> {
    if let Some(slot) = connection.try_take_slot(within)? {
        return Ok(Some(slot));
    }
    let mut waiting = Waiting {
        connection,
        id: sys::token(),
        served: false,
    };
    let mut timer = Timer::new()?;
    poll_fn(|cx| {
        // Queued before looking, so that a slot let go in between wakes this task.
        connection.wait_for_slot(waiting.id, cx.waker());
        if let Some(slot) = connection.try_take_slot(within)? {
            waiting.served = true;
            return Poll::Ready(Ok(Some(slot)));
        }
        let now = Instant::now();
        if now >= within.give_up {
            return Poll::Ready(Ok(None));
        }
        // A slot resting until a late answer frees itself without a signal: look again now and
        // then while one does. Otherwise a slot let go wakes this task (one per slot).
        let wake_at = if connection.any_slot_resting() {
            (now + RETRY).min(within.give_up)
        } else {
            within.give_up
        };
        timer.set(wake_at, cx);
        Poll::Pending
    })
    .await
}

/// A call's place in the queue for a slot.
struct Waiting<'a> {
    connection: &'a Connection,
    id: u64,
    /// It got a slot.
    served: bool,
}

impl Drop for Waiting<'_> {
    /// Leaves the queue. A wake-up that found this call gone is passed on to the next, so that
    /// no slot let go waits for nobody (at worst the next wakes for nothing): a call that
    /// leaves without a slot (dropped, timed out, or failed because the server is gone) may
    /// have been woken for one, and a call that found a slot by itself may have been taken off
    /// the queue by another slot let go meanwhile.
    fn drop(&mut self) {
        let was_queued = self.connection.stop_waiting_for_slot(self.id);
        if !self.served || !was_queued {
            self.connection.wake_slot_waiter();
        }
    }
}

/// One call's hold on its slot, from the request written to the answer read; dropping it
/// mid-call withdraws the request (see the module's docs).
struct InFlight {
    connection: Arc<Connection>,
    slot: Arc<ClientSlot>,
    /// The request published and not yet answered.
    seq: Option<u64>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(seq) = self.seq.take() {
            let words = self.slot.memory.words();
            // If the server has not taken it, it never will; if it has, its answer carries a
            // number no later call waits for, and the slot rests until that answer is in.
            if !words.is_answered(seq) && !words.withdraw(seq) {
                self.slot.abandoned.store(seq, Ordering::Relaxed);
            }
        }
        self.connection.let_go(&self.slot);
    }
}

impl InFlight {
    /// Publishes the request written in the slot and waits for its answer, as
    /// [`call::exchange`] does for a blocking call.
    async fn exchange(
        &mut self,
        client: &Client,
        tag: u32,
        request_len: usize,
        deadline: Instant,
        method: &'static str,
    ) -> Result<Attempt, Error> {
        let (connection, slot) = (&*self.connection, &*self.slot);
        let memory = &slot.memory;
        let words = memory.words();
        let seq = call::next_seq(slot);
        crate::trace::seq(seq);
        memory.method().store(tag, Ordering::Relaxed);
        memory
            .request_len()
            .store(request_len as u32, Ordering::Relaxed);
        fault::point(fault::Step::ClientWroteRequest);
        self.seq = Some(seq);
        let mut kicked = words.publish(seq) && connection.kick(memory.index(), seq);
        fault::point(fault::Step::ClientPublished);
        let timeout = client.options.timeout;
        match self.wait(client, seq, deadline, &mut kicked).await {
            Ok(()) => {}
            Err(Gone::Deadline) => {
                // Withdrawn, or left to rest, by the guard.
                return Err(Error::Timeout {
                    name: connection.name.as_str().to_owned(),
                    method,
                    timeout,
                });
            }
            Err(Gone::Server) => {
                connection.dead.store(true, Ordering::Relaxed);
                if !words.is_answered(seq) {
                    self.seq = None;
                    if words.withdraw(seq) {
                        return Ok(Attempt::NotTaken);
                    }
                    slot.abandoned.store(seq, Ordering::Relaxed);
                    return Err(Error::ServerDied {
                        name: connection.name.as_str().to_owned(),
                        method,
                    });
                }
            }
            Err(Gone::Os(e)) => return Err(e),
        }
        fault::point(fault::Step::ClientGotResponse);
        // Answered: nothing to withdraw from here on.
        self.seq = None;
        call::read_answer(&connection.name, memory, seq)
    }

    /// Waits for the answer to `seq`: spins within this poll while it is likely to come soon,
    /// then sleeps on the slot's wait set and a timer.
    async fn wait(
        &self,
        client: &Client,
        seq: u64,
        deadline: Instant,
        kicked: &mut bool,
    ) -> Result<(), Gone> {
        let (connection, slot) = (&*self.connection, &*self.slot);
        let words = slot.memory.words();
        let answered = || words.is_answered(seq);
        let budget = client.options.spin_budget;
        // Never past the spin budget, even spin-only: a spinning poll holds an executor thread.
        let spin = client.spin.spin_for().unwrap_or(budget).min(budget);
        let start = Instant::now();
        if !spin.is_zero()
            && (spin_briefly(answered) || spin_until((start + spin).min(deadline), answered))
        {
            client.spin.record(spin, Ended::Spinning);
            return Ok(());
        }
        let wait_set = connection.wait_set(slot).map_err(Gone::Os)?;
        let mut sleeper =
            Sleeper::new(wait_set, slot.token).map_err(|e| Gone::Os(connection.io(e)))?;
        let mut woken = false;
        let ended = poll_fn(|cx: &mut Context<'_>| {
            loop {
                if woken {
                    slot.bell.take_one();
                    wait_set.take_expiry(Instant::now());
                }
                if answered() {
                    return Poll::Ready(Ok(start.elapsed()));
                }
                if woken && connection.server_gone() {
                    return Poll::Ready(if answered() {
                        Ok(start.elapsed())
                    } else {
                        Err(Gone::Server)
                    });
                }
                let now = Instant::now();
                if now >= deadline {
                    return Poll::Ready(if answered() {
                        Ok(start.elapsed())
                    } else if connection.server_gone() {
                        Err(Gone::Server)
                    } else {
                        Err(Gone::Deadline)
                    });
                }
                // Past the spin (the kick-after time, at most): a request still untaken may
                // wait behind a slow method in the thread that watches the slot.
                if !*kicked && !words.is_taken(seq) {
                    *kicked = connection.kick(slot.memory.index(), seq);
                }
                match words.prepare_sleep(seq) {
                    Sleep::Answered => return Poll::Ready(Ok(start.elapsed())),
                    Sleep::Retry => continue,
                    Sleep::Flagged => {}
                }
                // A request neither kicked for nor taken (its kick did not go out): wake up now
                // and then to send it again.
                let wake_at = if *kicked || words.is_taken(seq) {
                    deadline
                } else {
                    (now + RETRY).min(deadline)
                };
                if let Err(e) = wait_set.wake_by(wake_at) {
                    return Poll::Ready(Err(Gone::Os(connection.io(e))));
                }
                woken = true;
                match sleeper.poll_ready(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(Gone::Os(connection.io(e)))),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
        drop(sleeper);
        let waited = ended?;
        client.spin.record(spin, Ended::Sleeping(waited));
        Ok(())
    }
}

/// What a sleeping call waits in: the reactor of the tokio runtime it runs in (with the `tokio`
/// feature), or shmrpc's own wake-up thread.
enum Sleeper<'a> {
    Thread {
        reactor: &'static Reactor,
        set: &'a WaitSet,
        token: u64,
    },
    #[cfg(feature = "tokio")]
    Tokio(sys::TokioWait<'a>),
}

impl<'a> Sleeper<'a> {
    fn new(set: &'a WaitSet, token: u64) -> std::io::Result<Self> {
        #[cfg(feature = "tokio")]
        if let Some(registered) = sys::TokioWait::register(set) {
            return registered.map(Sleeper::Tokio);
        }
        Ok(Sleeper::Thread {
            reactor: sys::reactor()?,
            set,
            token,
        })
    }

    /// `Ready` if the set became readable since the last `Ready`; otherwise `Pending`, the task
    /// woken when it does.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self {
            Sleeper::Thread {
                reactor,
                set,
                token,
            } => {
                reactor.arm(set, *token, cx.waker())?;
                Poll::Pending
            }
            #[cfg(feature = "tokio")]
            Sleeper::Tokio(wait) => wait.poll_ready(cx),
        }
    }
}

impl Drop for Sleeper<'_> {
    fn drop(&mut self) {
        #[allow(irrefutable_let_patterns)] // without the `tokio` feature
        if let Sleeper::Thread { reactor, token, .. } = self {
            reactor.disarm(*token);
        }
    }
}

/// Why a wait ended without an answer.
enum Gone {
    Deadline,
    Server,
    Os(Error),
}

/// A timer of the reactor, cancelled when dropped.
struct Timer {
    reactor: &'static Reactor,
    set: Option<(Instant, u64)>,
}

impl Timer {
    fn new() -> Result<Self, Error> {
        Ok(Timer {
            reactor: sys::reactor()
                .map_err(|e| Error::io("starting shmrpc's wake-up thread", e))?,
            set: None,
        })
    }

    /// Wakes the task of `cx` at `at` (instead of whatever it was set to).
    fn set(&mut self, at: Instant, cx: &Context<'_>) {
        if let Some((old, id)) = self.set.take() {
            self.reactor.cancel(old, id);
        }
        self.set = Some((at, self.reactor.timer(at, cx.waker())));
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Some((at, id)) = self.set.take() {
            self.reactor.cancel(at, id);
        }
    }
}

/// Sleeps until `at`, without blocking the thread.
async fn sleep_until(at: Instant) -> Result<(), Error> {
    let mut timer = Timer::new()?;
    poll_fn(|cx| {
        if Instant::now() >= at {
            return Poll::Ready(());
        }
        timer.set(at, cx);
        Poll::Pending
    })
    .await;
    Ok(())
}
