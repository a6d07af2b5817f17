//! The client behind every generated `XxxClient`.
//!
//! A client holds one connection to the server (see `connection`), made at `connect` and made
//! again, at the next call, after the server went away. Each thread remembers the slot it used
//! last: a call on it takes no lock but the slot's own in-process one, allocates nothing and,
//! while the server watches the slot, makes no system call. Threads that call at once use
//! different slots, up to the bound; beyond it they take turns.
//!
//! After a `fork`, the child's copy of a client is the parent's connection: it must not touch
//! it (the parent may be calling through the same slots, and locks held by the parent's other
//! threads stay held in the child). A client notices that it runs in a forked child and makes
//! a connection of its own there.

mod asynch;
mod call;
mod connection;

pub use asynch::AsyncClient;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use crate::data::Invalid;
use crate::fork_local::ForkLocal;
use crate::interface::Interface;
use crate::name::ServiceName;
use crate::options::ClientOptions;
use crate::wait::{Deadline, SpinPolicy};
use crate::wire::{Private, Reader, Writer};
use crate::{Error, MutexExt, sys};

use call::{Answer, Attempt, Call};
use connection::{ClientSlot, Connection, Taken, Within};

/// The untyped client behind every generated `XxxClient`.
#[derive(Debug)]
pub struct Client {
    name: ServiceName,
    options: ClientOptions,
    interface: &'static Interface,
    /// Unique in this process: keys the per-thread cache.
    id: u64,
    spin: SpinPolicy,
    state: ForkLocal<State>,
    /// Calls go through this transport instead (a remote service).
    remote: Option<crate::remote::Link>,
}

/// The connection of this process.
#[derive(Debug, Default)]
struct State {
    current: Mutex<Current>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Current {
    connection: Option<Arc<Connection>>,
    /// A thread is connecting: the others wait for it.
    connecting: bool,
}

/// What each thread keeps for its calls, so that a call's fast path allocates nothing and takes
/// no lock but its slot's.
#[derive(Default)]
struct PerThread {
    /// The private copy of a small reply (at most 4 KiB: larger ones are decoded straight out
    /// of the slot): allocated once, kept.
    scratch: Private,
    /// The slot this thread used last, and its connection.
    last: Option<Last>,
}

struct Last {
    client: u64,
    epoch: u64,
    connection: Arc<Connection>,
    slot: Arc<ClientSlot>,
}

/// Results up to this size are returned through the thread-local's closure (a copy of a few
/// hundred bytes at most); larger ones are not copied on their way out.
const SMALL_RESULT: usize = 256;

thread_local! {
    static PER_THREAD: RefCell<PerThread> = const {
        RefCell::new(PerThread { scratch: Private::EMPTY, last: None })
    };
}

/// Client ids, never reused in a process (nor in its forked children, which go on counting).
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

impl Client {
    /// Connects to the server of `name`, which must serve `interface`.
    pub fn connect(
        name: &str,
        options: ClientOptions,
        interface: &'static Interface,
    ) -> Result<Self, Error> {
        let name = ServiceName::new(name)?;
        let patience = options.timeout.max(crate::CONNECT_PATIENCE);
        let within = Within {
            give_up: crate::wait::after(options.wait_for_server.saturating_add(patience)),
            method: "connect",
        };
        let wait = options.wait_for_server;
        let opening = ClientOptions {
            timeout: patience,
            ..options.clone()
        };
        let mut connection = Connection::open(&name, &opening, wait, interface, within)?;
        connection.timeout = options.timeout;
        Ok(Client {
            spin: SpinPolicy::new(options.wait, options.spin_budget),
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            state: ForkLocal::new(State {
                current: Mutex::new(Current {
                    connection: Some(Arc::new(connection)),
                    connecting: false,
                }),
                changed: Condvar::new(),
            }),
            name,
            options,
            interface,
            remote: None,
        })
    }

    /// A client whose calls go through `transport` (see [`crate::remote`]).
    pub fn with_transport(
        name: &str,
        transport: Arc<dyn crate::remote::Transport>,
        timeout: std::time::Duration,
        interface: &'static Interface,
    ) -> Self {
        let options = ClientOptions::default().timeout(timeout);
        Client {
            spin: SpinPolicy::new(options.wait, options.spin_budget),
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            state: ForkLocal::new(State::default()),
            name: ServiceName::label(name),
            options,
            interface,
            remote: Some(crate::remote::Link::new(transport, interface, timeout)),
        }
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The server's description of its interface.
    pub(crate) fn server_description(&self) -> Result<String, Error> {
        let deadline = Deadline::new(self.options.timeout);
        let connection = self.connection(&deadline, "describe")?;
        connection.describe(Within {
            give_up: deadline.get(),
            method: "describe",
        })
    }

    /// The server's counters.
    pub(crate) fn server_stats(&self) -> Result<crate::server::stats::Decoded, Error> {
        let deadline = Deadline::new(self.options.timeout);
        let connection = self.connection(&deadline, "stats")?;
        connection.stats(Within {
            give_up: deadline.get(),
            method: "stats",
        })
    }

    fn timeout(&self, method: &'static str) -> Error {
        Error::Timeout {
            name: self.name.as_str().to_owned(),
            method,
            timeout: self.options.timeout,
        }
    }

    /// The live connection, connecting afresh if the last one's server went away (one thread
    /// connects, the others wait for it).
    fn connection(
        &self,
        deadline: &Deadline,
        method: &'static str,
    ) -> Result<Arc<Connection>, Error> {
        if self.remote.is_some() {
            return Err(Error::ServerNotRunning {
                name: self.name.as_str().to_owned(),
                detail: "a remote service has no connection on this machine".to_owned(),
            });
        }
        let state = self.state.get(State::default);
        let mut current = state.current.lock_anyway();
        loop {
            if let Some(connection) = &current.connection
                && !connection.dead.load(Ordering::Relaxed)
            {
                return Ok(connection.clone());
            }
            if !current.connecting {
                break;
            }
            let left = deadline.get().saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout(method));
            }
            current = state
                .changed
                .wait_timeout(current, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // A dead connection closes when the last call in flight on it lets go (dropping it).
        current.connection = None;
        current.connecting = true;
        drop(current);
        // A call does not wait for a server to come back: it fails at once if none is there;
        // and it waits for a server that holds the name only until the call's own deadline.
        let within = Within {
            give_up: deadline.get(),
            method,
        };
        let opened = Connection::open(
            &self.name,
            &self.options,
            std::time::Duration::ZERO,
            self.interface,
            within,
        );
        let mut current = state.current.lock_anyway();
        current.connecting = false;
        state.changed.notify_all();
        let connection = Arc::new(opened?);
        crate::trace::reconnected(self.name.as_str());
        current.connection = Some(connection.clone());
        Ok(connection)
    }

    /// Makes one call: `encode` writes the request (straight into the slot; again if the call
    /// is sent to another server), `decode` reads the reply (from a private copy).
    pub fn call<R>(
        &self,
        tag: u32,
        method: &'static str,
        encode: impl Fn(&mut Writer<'_>),
        decode: impl FnOnce(&mut Reader<'_>) -> Result<R, Invalid>,
    ) -> Result<R, Error> {
        if let Some(remote) = &self.remote {
            return remote.call(self.name.as_str(), tag, method, encode, decode);
        }
        let trace = crate::trace::Call::client(self.name.as_str(), method);
        #[allow(clippy::let_unit_value)] // `()` without the `tracing` feature
        let _entered = trace.enter();
        let deadline = Deadline::new(self.options.timeout);
        let result = if size_of::<Result<R, Error>>() <= SMALL_RESULT {
            // One look at the thread-local (a call into the system on Windows). A call made
            // while it is borrowed (from a `Wire` implementation, or a tracing subscriber) or
            // gone (from another thread-local's destructor) gets a state of its own.
            let mut args = Some((encode, decode));
            let mut call = |per_thread: &mut PerThread| {
                let (encode, decode) = args.take().expect("one call");
                self.call_with(per_thread, &deadline, tag, method, encode, decode)
            };
            PER_THREAD
                .try_with(|per_thread| Some(call(&mut *per_thread.try_borrow_mut().ok()?)))
                .ok()
                .flatten()
                .unwrap_or_else(|| call(&mut PerThread::default()))
        } else {
            // Out of the thread-local for the call, not borrowed in a closure: a closure's
            // result would be moved through `LocalKey::with` on its way out, a copy of a big
            // reply (and a frame's worth of stack each, unoptimised).
            let mut per_thread = PER_THREAD
                .try_with(|per_thread| {
                    per_thread
                        .try_borrow_mut()
                        .map(|mut per_thread| std::mem::take(&mut *per_thread))
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            let result = self.call_with(&mut per_thread, &deadline, tag, method, encode, decode);
            let _ = PER_THREAD.try_with(|kept| {
                if let Ok(mut kept) = kept.try_borrow_mut() {
                    *kept = per_thread;
                }
            });
            result
        };
        trace.end_call(&result);
        result
    }

    #[inline(always)]
    fn call_with<R>(
        &self,
        per_thread: &mut PerThread,
        deadline: &Deadline,
        tag: u32,
        method: &'static str,
        encode: impl Fn(&mut Writer<'_>),
        decode: impl FnOnce(&mut Reader<'_>) -> Result<R, Invalid>,
    ) -> Result<R, Error> {
        let PerThread { scratch, last } = per_thread;
        let mut resent = false;
        let mut remapped = false;
        let (answer, taken) = loop {
            let ours = last.as_ref().is_some_and(|last| {
                last.client == self.id
                    && last.epoch == sys::fork_epoch()
                    && !last.connection.dead.load(Ordering::Relaxed)
                    && last.slot.try_lock()
            });
            if !ours {
                // Let go of a dead connection (or a forked parent's) at once.
                if last.as_ref().is_some_and(|last| {
                    last.epoch != sys::fork_epoch() || last.connection.dead.load(Ordering::Relaxed)
                }) {
                    *last = None;
                }
                // The slow path may wait (for another thread connecting, or for a free slot):
                // the call's time starts now.
                let connection = self.connection(deadline, method)?;
                let within = Within {
                    give_up: deadline.get(),
                    method,
                };
                let slot = match connection.take_slot(within) {
                    Ok(Some(slot)) => slot,
                    Ok(None) => return Err(self.timeout(method)),
                    // The server went away before the request was sent: send it to the next
                    // one, once.
                    Err(Error::ServerNotRunning { .. }) if !resent => {
                        resent = true;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                *last = Some(Last {
                    client: self.id,
                    epoch: sys::fork_epoch(),
                    connection,
                    slot,
                });
            }
            let Last {
                connection, slot, ..
            } = last.as_ref().expect("set above");
            let taken = Taken::new(connection, slot);
            let server_tag = match connection.server_tag(tag, method) {
                Ok(server_tag) => server_tag,
                // The server this connection knew lacks the method; if it has gone since (an
                // upgrade), the next one may have it: look, once. Nothing else would notice,
                // since no call went out.
                Err(_) if !remapped && connection.server_gone() => {
                    connection.dead.store(true, Ordering::Relaxed);
                    drop(taken);
                    *last = None;
                    remapped = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut request = slot.memory.request_writer();
            encode(&mut request);
            if request.too_large() {
                return Err(Error::TooLarge {
                    name: self.name.as_str().to_owned(),
                    method,
                    size: request.len() as u64,
                    limit: connection.limit() as u64,
                    response: false,
                });
            }
            let call = Call {
                tag: server_tag,
                method,
                request_len: request.len(),
                deadline,
                kick_after: self.options.spin_budget,
            };
            match call::exchange(connection, slot, &call, &self.spin) {
                // The slot stays this thread's while the reply is read out of it.
                Ok(Attempt::Answered(answer)) => break (answer, taken),
                Ok(Attempt::NotTaken) => {
                    drop(taken);
                    // The request never reached a server: send it to the next one, once.
                    if resent || Instant::now() >= deadline.get() {
                        return Err(Error::ServerNotRunning {
                            name: self.name.as_str().to_owned(),
                            detail: String::new(),
                        });
                    }
                    resent = true;
                }
                Err(e) => return Err(e),
            }
        };
        let name = || self.name.as_str().to_owned();
        match answer {
            Answer::Reply { len, seq } => {
                call::decode_reply(&self.name, &taken.slot.memory, (len, seq), scratch, decode)
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

impl Drop for Client {
    /// Ends the connection (the server sees it closed at once), and lets go of this thread's
    /// cached slot if it is this client's; other threads let go of theirs at their next call.
    fn drop(&mut self) {
        if let Some(state) = self.state.get_mut_if_own() {
            let current = state
                .current
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(connection) = current.connection.take() {
                connection.close();
            }
        }
        let _ = PER_THREAD.try_with(|per_thread| {
            if let Ok(mut per_thread) = per_thread.try_borrow_mut()
                && per_thread
                    .last
                    .as_ref()
                    .is_some_and(|last| last.client == self.id)
            {
                per_thread.last = None;
            }
        });
    }
}
