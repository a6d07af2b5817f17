//! The server: `workers + 1` threads, each of which watches the sockets while it has nothing
//! else to do, and serves requests while it holds one of `workers` permits.
//!
//! **Watching.** Every idle thread sleeps in one shared `epoll` on the service's listening
//! socket(s), every connection's socket and every client's pidfd; each event wakes one thread
//! (see `watcher`). It accepts connections (checking the client's identity against the access
//! rules, creating its first slot), opens more slots when a client asks, closes a connection
//! when its client closes it or dies, and turns each kick (a client telling the server about a
//! request in a slot nobody watches) into an entry of the ready queue, which it then serves
//! itself if a permit is free: a request to an idle server costs one wake-up of the server.
//! There is always a thread to watch (one more thread than permits), so `connect` is quick
//! whatever the methods do.
//!
//! **Serving.** Threads holding one of `ServerOptions::workers` permits (1 by default) serve the
//! ready queue in the order the kicks arrived. One worker at a time may also be the "spinner":
//! after serving a slot it keeps watching it (and every other slot it served lately), so that a
//! client calling again needs no kick and no system call: the server sees the request within
//! nanoseconds. The spinner stops watching when nothing came for its spin budget, then lets its
//! permit go. A client whose request is not taken within its own spin budget kicks anyway, so a
//! request waiting behind a long method reaches a free permit, and with one worker the ready
//! queue keeps the order in which calls arrived.
//!
//! Each request is copied out of its slot and validated before the generated dispatch runs the
//! method, on the thread that took it, with [`Caller::current`](crate::Caller::current) set to
//! the connection's kernel-verified identity. A panic is caught and answered as such.
//!
//! The service type must be `Send + Sync + 'static`: methods run on the server's threads,
//! several at once with more than one worker, for as long as the server lives.

mod access;
mod budget;
mod slot;
pub(crate) mod stats;
mod watcher;
mod worker;

use watcher::Connections;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::data::Invalid;
use crate::interface::{self, Interface};
use crate::name::ServiceName;
use crate::options::ServerOptions;
use crate::protocol::layout::{Geometry, MAX_CAPACITY};
use crate::protocol::messages::MAX_DESCRIPTION;
use crate::sys::{self, Listener, Poller, Waker};
use crate::wire::{Private, Writer, Written};
use crate::{Error, MutexExt};

use slot::ServerSlot;

/// The generated dispatch: method tag, the private copy of the request, and the writer of the
/// response into the slot. Called from every worker thread.
pub type Dispatch = Arc<dyn Fn(u32, &[u8], Writer<'_>) -> Result<Written, Invalid> + Send + Sync>;

/// Smallest `max_message`, so that panic messages and refusals fit.
pub(crate) const MIN_MESSAGE: usize = 256;

/// How long `shutdown` waits for a method that is still running before it returns anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(60);

/// What the server's threads share.
pub(crate) struct Shared {
    name: ServiceName,
    description: String,
    /// The service's interface: method names for tracing.
    pub(crate) interface: &'static Interface,
    /// Calls, errors and latencies per method (`shmrpc top`).
    pub(crate) stats: stats::Stats,
    fingerprint: u128,
    geometry: Geometry,
    options: ServerOptions,
    dispatch: Dispatch,
    uid: u32,
    /// Set once to stop serving.
    stop: AtomicBool,
    /// Slots whose client kicked, in the order the kicks arrived.
    ready: Mutex<VecDeque<Arc<ServerSlot>>>,
    /// `ready.len()`, read without the lock.
    ready_len: AtomicUsize,
    /// Permits to run a method: `workers` of them.
    permits: AtomicUsize,
    /// One private request buffer per permit: a thread that takes a permit takes a buffer, so
    /// the buffers grow to the largest request once, whichever threads serve.
    buffers: Mutex<Vec<Private>>,
    /// Every idle thread sleeps in it.
    poller: Poller,
    /// The connections, handled by whichever thread an event woke.
    connections: Mutex<Connections>,
    /// The spinner is looking for work: queued requests are its to take.
    spinning: AtomicBool,
    /// The slots the spinner watches; holding the lock is holding the spinner role.
    hot: Mutex<worker::HotSet>,
    /// Wakes every thread, at stop (never drained).
    stop_bell: Waker,
    /// Readable once SIGINT or SIGTERM arrived, with `ServerOptions::stop_on_signals` (held for
    /// its handlers, which it removes when dropped; the poller watches it).
    _signals: Option<sys::SignalBell>,
    /// Wakes one idle thread, to serve queued work with a free permit.
    work_bell: Waker,
    /// The socket(s) holding the service's name; emptied at stop, which frees the name.
    listeners: Mutex<Vec<Listener>>,
    /// Threads not yet exited.
    running: Mutex<usize>,
    exited: Condvar,
    /// When the server started: the origin of [`ServerSlot::kicked_at`].
    started: Instant,
    /// The fork epoch of the process that bound the server: only it may serve.
    epoch: u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Queues a slot whose client kicked, once. The watcher, which calls this, then serves it
    /// or leaves it to the spinner or to a worker finishing its call.
    fn enqueue(&self, slot: &Arc<ServerSlot>) {
        if slot.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        // `ready_len` mirrors the queue's length, set under its lock: never ahead of or behind
        // what a pop can find.
        let mut ready = self.ready.lock_anyway();
        ready.push_back(slot.clone());
        self.ready_len.store(ready.len(), Ordering::SeqCst);
    }

    /// The slot that kicked first, if any, for the calling thread (which holds a permit) to
    /// serve. If more wait and a permit is free, wakes another thread for them: the thread that
    /// read their kicks may have left them to this one (as the spinner), which is about to be
    /// busy, perhaps for long.
    fn pop_ready(&self) -> Option<Arc<ServerSlot>> {
        if self.ready_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let (slot, left) = {
            let mut ready = self.ready.lock_anyway();
            let slot = ready.pop_front()?;
            self.ready_len.store(ready.len(), Ordering::SeqCst);
            // A read-modify-write: it reads the mark of a kick that found the slot queued
            // already (and left it to this pop), and so sees the request that kick was for.
            slot.queued.swap(false, Ordering::SeqCst);
            (slot, ready.len())
        };
        if left > 0 {
            self.wake_for_queued();
        }
        Some(slot)
    }

    /// Wakes a thread to serve the ready queue, if anything waits there and a permit is free
    /// (called by a thread holding a permit, about to be busy).
    fn wake_for_queued(&self) {
        if self.ready_len.load(Ordering::SeqCst) > 0 && self.permits.load(Ordering::SeqCst) > 0 {
            self.work_bell.wake();
        }
    }

    /// The name of method `tag`, for tracing.
    fn method_name(&self, tag: u32) -> &'static str {
        self.interface
            .methods
            .get(tag as usize)
            .and_then(Option::as_ref)
            .map_or("(unknown)", |m| m.name)
    }

    /// Takes a permit to run methods, if one is free.
    fn take_permit(&self) -> bool {
        self.permits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn release_permit(&self) {
        self.permits.fetch_add(1, Ordering::SeqCst);
    }

    /// The request buffer that goes with a permit just taken.
    fn take_buffer(&self) -> Private {
        self.buffers.lock_anyway().pop().unwrap_or_default()
    }

    /// Gives a permit's buffer back, before the permit.
    fn give_buffer(&self, buffer: Private) {
        self.buffers.lock_anyway().push(buffer);
    }

    /// Whether a thread with a permit should serve the ready queue now: the spinner, which
    /// looks at it anyway, is not about to.
    fn work_for_a_permit(&self) -> bool {
        self.ready_len.load(Ordering::SeqCst) > 0 && !self.spinning.load(Ordering::SeqCst)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Stops serving: frees the name at once, and wakes every thread so that it exits once its
    /// current call is answered.
    fn begin_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.release_name();
        self.stop_bell.wake();
    }

    /// Frees the service's name: stops watching the listeners, then closes them (on Windows,
    /// closing a handle the poller still waits on is undefined).
    fn release_name(&self) {
        let mut listeners = self.listeners.lock_anyway();
        for listener in listeners.iter() {
            self.poller.remove(listener.fd());
        }
        listeners.clear();
    }

    /// Counts a thread out. The last one out of a stopped server ends every connection: every
    /// answer is out by then.
    fn exit_thread(&self) {
        let mut running = self.running.lock_anyway();
        *running -= 1;
        if *running == 0 {
            self.connections.lock_anyway().close_all(self);
        }
        drop(running);
        self.exited.notify_all();
    }

    /// Waits until every thread exited, at most `limit` (`None`: for as long as it takes);
    /// whether they did.
    fn wait_exited(&self, limit: Option<Duration>) -> bool {
        let end = limit.and_then(|limit| Instant::now().checked_add(limit));
        let mut running = self.running.lock_anyway();
        while *running > 0 {
            running = match end {
                None => self
                    .exited
                    .wait(running)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        return false;
                    }
                    self.exited
                        .wait_timeout(running, end - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        true
    }
}

/// A bound server, not yet serving. Dropping it frees the name.
#[derive(Debug)]
pub struct Server {
    shared: Option<Arc<Shared>>,
}

impl Server {
    /// Takes the name of the service; clients may connect once this returns (they are welcomed
    /// once the server serves).
    pub fn bind(
        name: &str,
        options: ServerOptions,
        interface: &'static Interface,
        dispatch: Dispatch,
    ) -> Result<Self, Error> {
        let name = ServiceName::new(name)?;
        let invalid = |what: String| {
            Error::io(
                format!("binding `{}`", name.as_str()),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
            )
        };
        if options.workers == 0 {
            return Err(invalid(
                "ServerOptions::workers(0): a server needs at least one worker; use workers(1) \
                 or more"
                    .into(),
            ));
        }
        let description = interface::describe(interface);
        if description.len() > MAX_DESCRIPTION {
            return Err(invalid(format!(
                "the interface of `{}` is too large for shmrpc (a description of {} bytes; the \
                 limit is {MAX_DESCRIPTION}): split the trait",
                interface.name,
                description.len(),
            )));
        }
        if !(MIN_MESSAGE..=MAX_CAPACITY).contains(&options.max_message) {
            return Err(invalid(format!(
                "ServerOptions::max_message({}): the limit must be from {MIN_MESSAGE} bytes to \
                 {MAX_CAPACITY} (1 GiB)",
                options.max_message
            )));
        }
        sys::watch_forks();
        sys::raise_fd_limit();
        let io = |e| Error::io(format!("binding `{}`", name.as_str()), e);
        let (stop_bell, work_bell) = (Waker::new().map_err(io)?, Waker::new().map_err(io)?);
        let listeners = crate::transport::rendezvous::bind(&name, options.access.is_shared())?;
        // Made after what it watches, so that on an error below it goes first (locals drop in
        // reverse order): no wait of its (a thread-pool wait, on Windows) outlives a handle.
        let poller = Poller::new().map_err(io)?;
        watcher::watch(&poller, &listeners, &stop_bell, &work_bell).map_err(io)?;
        let signals = if options.stop_on_signals {
            let bell = sys::SignalBell::new().map_err(|e| {
                Error::io(
                    format!(
                        "installing the SIGINT and SIGTERM (on Windows: console event) \
                         handlers of `{}`",
                        name.as_str()
                    ),
                    e,
                )
            })?;
            watcher::watch_signals(&poller, &bell).map_err(io)?;
            Some(bell)
        } else {
            None
        };
        let shared = Shared {
            description,
            interface,
            stats: stats::Stats::new(options.workers + 1, interface.methods.len()),
            fingerprint: interface.fingerprint,
            geometry: Geometry {
                capacity: options.max_message,
            },
            dispatch,
            uid: sys::euid(),
            stop: AtomicBool::new(false),
            ready: Mutex::new(VecDeque::new()),
            ready_len: AtomicUsize::new(0),
            permits: AtomicUsize::new(options.workers),
            buffers: Mutex::new((0..options.workers).map(|_| Private::default()).collect()),
            poller,
            connections: Mutex::new(Connections::new(sys::euid())),
            spinning: AtomicBool::new(false),
            hot: Mutex::new(worker::HotSet::default()),
            stop_bell,
            _signals: signals,
            work_bell,
            listeners: Mutex::new(listeners),
            running: Mutex::new(0),
            exited: Condvar::new(),
            started: Instant::now(),
            epoch: sys::fork_epoch(),
            options,
            name,
        };
        Ok(Server {
            shared: Some(Arc::new(shared)),
        })
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.shared.as_ref().map_or("", |s| s.name.as_str())
    }

    /// The server's state, to serve with, in the process that bound it.
    fn take(&mut self) -> Result<Arc<Shared>, Error> {
        let shared = self
            .shared
            .take()
            .expect("a Server holds its state until it serves");
        if shared.epoch != sys::fork_epoch() {
            return Err(Error::io(
                format!("serving `{}`", shared.name.as_str()),
                std::io::Error::other(
                    "this process is a fork of the process that bound the name, and only that \
                     process can serve it (the fork gave its copy of the socket up); bind after \
                     forking, in the process that serves",
                ),
            ));
        }
        Ok(shared)
    }

    /// Serves on threads of its own until the returned handle is shut down or dropped.
    pub fn spawn(mut self) -> Result<ServerHandle, Error> {
        let shared = self.take()?;
        let threads = start_threads(&shared, shared.options.workers + 1)?;
        Ok(ServerHandle {
            shared,
            threads,
            epoch: sys::fork_epoch(),
        })
    }

    /// Serves on this thread and threads of its own, for ever.
    pub fn run(mut self) -> Result<(), Error> {
        let shared = self.take()?;
        let threads = start_threads(&shared, shared.options.workers)?;
        *shared.running.lock_anyway() += 1;
        worker::run(&shared);
        shared.exit_thread();
        shared.wait_exited(None);
        for thread in threads {
            let _ = thread.join();
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.release_name();
        }
    }
}

/// Starts `threads` server threads.
fn start_threads(shared: &Arc<Shared>, threads: usize) -> Result<Vec<JoinHandle<()>>, Error> {
    let mut handles = Vec::with_capacity(threads);
    for _ in 0..threads {
        match spawn_thread(shared) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                shared.begin_stop();
                shared.wait_exited(Some(SHUTDOWN_GRACE));
                return Err(e);
            }
        }
    }
    Ok(handles)
}

fn spawn_thread(shared: &Arc<Shared>) -> Result<JoinHandle<()>, Error> {
    let thread_shared = shared.clone();
    *shared.running.lock_anyway() += 1;
    std::thread::Builder::new()
        .name(format!("shmrpc-{}", shared.name.as_str()))
        .spawn(move || {
            worker::run(&thread_shared);
            thread_shared.exit_thread();
        })
        .map_err(|e| {
            *shared.running.lock_anyway() -= 1;
            Error::io(
                format!("starting a server thread of `{}`", shared.name.as_str()),
                e,
            )
        })
}

/// A server running on threads of its own. [`ServerHandle::shutdown`] (or dropping the handle)
/// stops it and frees its name.
pub struct ServerHandle {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The fork epoch the threads run in: in a forked child, none of them exists.
    epoch: u64,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("name", &self.shared.name.as_str())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The service name.
    pub fn name(&self) -> &str {
        self.shared.name.as_str()
    }

    /// Stops serving and frees the name, within 100 ms.
    ///
    /// New calls fail with `ServerNotRunning` from then on. A method that is still running is
    /// let finish on its thread (its caller still gets the answer), but `shutdown` does not wait
    /// for it beyond a short grace period.
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        if self.threads.is_empty() || self.epoch != sys::fork_epoch() {
            // Already stopped, or a forked child's copy of the handle: its threads run in the
            // parent only.
            return Ok(());
        }
        self.shared.begin_stop();
        let threads = std::mem::take(&mut self.threads);
        if self.shared.wait_exited(Some(SHUTDOWN_GRACE)) {
            for thread in threads {
                thread.join().map_err(|_| {
                    Error::io(
                        format!("shutting down `{}`", self.shared.name.as_str()),
                        std::io::Error::other("a server thread panicked"),
                    )
                })?;
            }
        }
        Ok(())
    }
}

impl ServerHandle {
    /// Waits until the server stops by itself: on SIGINT or SIGTERM, with
    /// [`ServerOptions::stop_on_signals`](crate::ServerOptions::stop_on_signals) (without it, a
    /// server stops only when shut down, and this waits for ever). Then finishes as
    /// [`shutdown`](Self::shutdown) does.
    pub fn wait(mut self) -> Result<(), Error> {
        self.shared.wait_exited(None);
        self.stop()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
