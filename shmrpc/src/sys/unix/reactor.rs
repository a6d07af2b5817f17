//! The wake-ups of async calls: one thread per process, started by the first async call that
//! has to sleep, waits in a set of descriptors (epoll, kqueue) for the descriptors such calls
//! sleep on and for their timers, and wakes their tasks. It needs nothing of the executor the
//! tasks run on: any executor works (tokio, smol, `futures::executor`), at the price of one
//! more wake-up (the thread's, then the task's) than a reactor of the executor's own.
//!
//! A descriptor is watched once per registration ([`Reactor::arm`]): its event wakes the task
//! that armed it last, once. A task that wakes re-checks what it waits for, and arms again if
//! it must sleep on: spurious wake-ups are harmless, lost ones impossible (arming a descriptor
//! that is ready already reports it at once).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task;
use std::time::Instant;

use super::{Interest, WaitSet, Waker, fork_epoch, os};

/// The reactor's own token: its interrupt waker.
const INTERRUPT: u64 = 0;

/// Tokens of descriptors and ids of timers, unique in a process (and in its forked children,
/// which go on counting).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A fresh token for a descriptor, or id for a timer.
pub(crate) fn token() -> u64 {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// The wake-up thread of this process, and what it watches.
#[derive(Debug)]
pub(crate) struct Reactor {
    set: os::Set,
    /// Wakes the thread when a timer earlier than the one it sleeps until is set.
    interrupt: Waker,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The task to wake for each armed descriptor.
    armed: HashMap<u64, task::Waker>,
    /// Timers: the task to wake at each instant.
    timers: BTreeMap<(Instant, u64), task::Waker>,
    /// The instant the thread sleeps until, if it sleeps with a timeout.
    sleeping_until: Option<Instant>,
}

/// The reactor of this process (a forked child starts its own: the parent's thread does not run
/// in it).
pub(crate) fn reactor() -> io::Result<&'static Reactor> {
    static CURRENT: Mutex<Option<(u64, &'static Reactor)>> = Mutex::new(None);
    let mut current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    let epoch = fork_epoch();
    if let Some((at, reactor)) = *current
        && at == epoch
    {
        return Ok(reactor);
    }
    let reactor: &'static Reactor = Box::leak(Box::new(Reactor::new()?));
    std::thread::Builder::new()
        .name("shmrpc-wakeups".into())
        .spawn(move || reactor.run())?;
    *current = Some((epoch, reactor));
    Ok(reactor)
}

impl Reactor {
    fn new() -> io::Result<Self> {
        let set = os::Set::new()?;
        let interrupt = Waker::new()?;
        set.add(interrupt.fd(), INTERRUPT, Interest::Readable, false)?;
        Ok(Reactor {
            set,
            interrupt,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes `waker` once `set` is readable (one of its descriptors is ready, or its timer
    /// expired), once. `token` names the set: one token per set, for as long as it exists.
    pub(crate) fn arm(&self, set: &WaitSet, token: u64, waker: &task::Waker) -> io::Result<()> {
        self.inner().armed.insert(token, waker.clone());
        self.set.arm_once(set.fd(), token).inspect_err(|_| {
            self.inner().armed.remove(&token);
        })
    }

    /// Forgets the task armed for `token` (its event, if it comes, wakes nobody).
    pub(crate) fn disarm(&self, token: u64) {
        self.inner().armed.remove(&token);
    }

    /// Wakes `waker` at `at`; the timer's id, to [`cancel`](Self::cancel) it.
    pub(crate) fn timer(&self, at: Instant, waker: &task::Waker) -> u64 {
        let id = token();
        let mut inner = self.inner();
        inner.timers.insert((at, id), waker.clone());
        let earlier = inner.sleeping_until.is_none_or(|until| at < until);
        drop(inner);
        if earlier {
            self.interrupt.wake();
        }
        id
    }

    /// Cancels the timer set for `at` with id `id`, if it has not fired.
    pub(crate) fn cancel(&self, at: Instant, id: u64) {
        self.inner().timers.remove(&(at, id));
    }

    fn run(&self) {
        let mut events: Vec<os::Event> = Vec::with_capacity(64);
        let mut due: Vec<task::Waker> = Vec::new();
        loop {
            let timeout = {
                let mut inner = self.inner();
                let next = inner.timers.keys().next().map(|(at, _)| *at);
                inner.sleeping_until = next;
                next.map(|at| at.saturating_duration_since(Instant::now()))
            };
            if self.set.wait(&mut events, timeout).is_err() {
                // Nothing sensible to do but wait again, a little later.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            {
                let mut inner = self.inner();
                inner.sleeping_until = Some(Instant::now());
                for event in &events {
                    let token = os::token(event);
                    if token == INTERRUPT {
                        self.interrupt.drain();
                    } else if let Some(waker) = inner.armed.remove(&token) {
                        due.push(waker);
                    }
                }
                let now = Instant::now();
                while let Some(entry) = inner.timers.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    due.push(entry.remove());
                }
            }
            // Outside the lock: a waker may poll its task right here (a `block_on` executor).
            due.drain(..).for_each(task::Waker::wake);
        }
    }
}

/// The same tests as the Windows reactor's.
#[cfg(test)]
#[path = "../reactor_tests.rs"]
mod tests;
