//! The wake-ups of async calls: the system's thread pool waits on the handles a sleeping call
//! waits for (its slot's bell, its connection, the server's process, its deadline's timer) and
//! wakes its task; a thread of shmrpc's own keeps the other timers. Any executor works.
//!
//! Each of a call's handles has one wait of the pool at a time, from the first
//! [`Reactor::arm`] until [`Reactor::disarm`]: when it is signalled, it wakes the task that
//! armed last, and the next `arm` registers it again. A task that wakes re-checks what it waits
//! for, and arms again if it must sleep on: spurious wake-ups are harmless, lost ones
//! impossible (arming a handle that is signalled already wakes the task at once).
//!
//! A wait is never cancelled while the task sleeps: the bell and the timer reset themselves
//! when a wait takes their signal, and cancelling a wait whose callback is queued but not yet
//! running loses that signal with the callback. (Arming once registered a new wait on every
//! handle and cancelled the old ones: a ring in between was lost now and then, 5 in 3,000 under
//! Wine, and the call slept until its deadline.)

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task;
use std::time::Instant;

use windows_sys::Win32::System::Threading::{
    CreateWaitableTimerW, SetWaitableTimer, WaitForSingleObject,
};

use super::{Interest, PoolWait, owned, raw};
use crate::sys::{Borrowed, Owned, borrow};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handles an async call sleeps on, and a timer for its deadline.
#[derive(Debug)]
pub(crate) struct WaitSet {
    /// Copies of the handles (the same objects), so that the set owns what it waits on.
    members: Vec<Owned>,
    /// A synchronization (auto-reset) timer: a wait that sees it expire takes the expiry.
    timer: Owned,
    /// When the timer is set to expire, if it is set and its expiry was not taken yet.
    armed: Mutex<Option<Instant>>,
}

impl WaitSet {
    pub(crate) fn new(handles: &[(Borrowed<'_>, Interest)]) -> io::Result<Self> {
        let members = handles
            .iter()
            .map(|(handle, _)| handle.try_clone_to_owned())
            .collect::<io::Result<Vec<_>>>()?;
        // SAFETY: no attributes, no name: a fresh unnamed synchronization timer.
        let timer = owned(unsafe { CreateWaitableTimerW(std::ptr::null(), 0, std::ptr::null()) })?;
        Ok(WaitSet {
            members,
            timer,
            armed: Mutex::new(None),
        })
    }

    fn handles(&self) -> impl Iterator<Item = Borrowed<'_>> {
        self.members.iter().chain([&self.timer]).map(borrow)
    }

    /// Makes the set wake its task at `at` at the latest. A timer set to expire before `at` is
    /// left as it is (deadlines come in increasing order), and wakes the task early, once; the
    /// task then takes the expiry and sets it again.
    pub(crate) fn wake_by(&self, at: Instant) -> io::Result<()> {
        let mut armed = lock(&self.armed);
        let now = Instant::now();
        // One set for a time past is set again: its expiry may have gone to a wait that was
        // cancelled since (a call given up on while it slept), and would never come.
        if armed.is_some_and(|set| set <= at && set > now) {
            return Ok(());
        }
        // Relative due times are negative, in 100 ns units; 0 would mean "now" too.
        let after = at.saturating_duration_since(now);
        let due = -i64::try_from(after.as_nanos().div_ceil(100))
            .unwrap_or(i64::MAX)
            .max(1);
        // SAFETY: a live timer this set owns; `due` is read; no completion routine.
        if unsafe { SetWaitableTimer(raw(borrow(&self.timer)), &due, 0, None, std::ptr::null(), 0) }
            == 0
        {
            return Err(io::Error::last_os_error());
        }
        *armed = Some(at);
        Ok(())
    }

    /// Takes the timer's expiry if it is due, so that it no longer wakes the task. Called each
    /// time the waiter wakes: the timer counts as unset from then on, and the next
    /// [`wake_by`](Self::wake_by) sets it again. (The timer's clock is not `Instant`'s: it may
    /// fire a little before `at`, and the wait that saw it fire took its expiry; kept as set,
    /// it would never wake the task again, at its deadline or ever.)
    pub(crate) fn take_expiry(&self, now: Instant) {
        let mut armed = lock(&self.armed);
        if armed.is_some_and(|at| at <= now) {
            // SAFETY: a live timer; a zero timeout never blocks, and takes a pending expiry.
            unsafe { WaitForSingleObject(raw(borrow(&self.timer)), 0) };
        }
        *armed = None;
    }
}

/// Tokens of handles and ids of timers, unique in a process.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A fresh token for a wait set, or id for a timer.
pub(crate) fn token() -> u64 {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// The waits of one wait set: one per handle, and the task they wake.
#[derive(Debug)]
struct Armed {
    /// The task to wake: the one that armed last.
    waker: Arc<Mutex<task::Waker>>,
    /// Per handle: whether its wait has fired (and must be registered again), and the wait.
    waits: Vec<(Arc<AtomicBool>, PoolWait)>,
}

impl Armed {
    /// A wait on `handle` that marks `fired` and wakes the task.
    fn wait(
        handle: Borrowed<'_>,
        fired: &Arc<AtomicBool>,
        waker: &Arc<Mutex<task::Waker>>,
    ) -> io::Result<PoolWait> {
        let (fired, waker) = (fired.clone(), waker.clone());
        PoolWait::new(
            handle,
            Box::new(move || {
                // Before the wake: the task it wakes must see it spent, and register it again.
                fired.store(true, Ordering::SeqCst);
                // Outside the lock: a waker may poll its task right here, and that task arm.
                let waker = lock(&waker).clone();
                waker.wake();
            }),
        )
    }
}

/// The wake-ups of this process's async calls.
#[derive(Debug, Default)]
pub(crate) struct Reactor {
    /// The waits armed for each token.
    armed: Mutex<HashMap<u64, Armed>>,
    /// Timers: the task to wake at each instant.
    timers: Mutex<BTreeMap<(Instant, u64), task::Waker>>,
    /// Wakes the timer thread when a timer is set.
    changed: Condvar,
}

/// The reactor of this process, its timer thread started on first use.
pub(crate) fn reactor() -> io::Result<&'static Reactor> {
    static CURRENT: OnceLock<&'static Reactor> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(reactor) = CURRENT.get() {
        return Ok(reactor);
    }
    let _starting = lock(&STARTING);
    if let Some(reactor) = CURRENT.get() {
        return Ok(reactor);
    }
    let reactor: &'static Reactor = Box::leak(Box::default());
    std::thread::Builder::new()
        .name("shmrpc-wakeups".into())
        .spawn(move || reactor.run_timers())?;
    let _ = CURRENT.set(reactor);
    Ok(reactor)
}

impl Reactor {
    /// Wakes `waker` once one of `set`'s handles is signalled (or its timer expires): the
    /// handles' waits wake the task that armed last. `token` names the set: one token per set,
    /// for as long as it exists; the set must outlive its waits ([`disarm`](Self::disarm)).
    pub(crate) fn arm(&self, set: &WaitSet, token: u64, waker: &task::Waker) -> io::Result<()> {
        let mut armed = lock(&self.armed);
        let Some(current) = armed.get_mut(&token) else {
            let waker = Arc::new(Mutex::new(waker.clone()));
            let waits = set
                .handles()
                .map(|handle| {
                    let fired = Arc::new(AtomicBool::new(false));
                    Ok((fired.clone(), Armed::wait(handle, &fired, &waker)?))
                })
                .collect::<io::Result<Vec<_>>>()?;
            armed.insert(token, Armed { waker, waits });
            return Ok(());
        };
        lock(&current.waker).clone_from(waker);
        // The waits that fired are spent: new ones in their place. The others stay registered.
        let mut spent = Vec::new();
        for ((fired, wait), handle) in current.waits.iter_mut().zip(set.handles()) {
            if fired.swap(false, Ordering::SeqCst) {
                match Armed::wait(handle, fired, &current.waker) {
                    Ok(new) => spent.push(std::mem::replace(wait, new)),
                    Err(e) => {
                        fired.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                }
            }
        }
        drop(armed);
        // Outside the lock: dropping a wait waits for its callback, if it is still running.
        drop(spent);
        Ok(())
    }

    /// Forgets the waits armed for `token`.
    pub(crate) fn disarm(&self, token: u64) {
        let old = lock(&self.armed).remove(&token);
        drop(old);
    }

    /// Wakes `waker` at `at`; the timer's id, to [`cancel`](Self::cancel) it.
    pub(crate) fn timer(&self, at: Instant, waker: &task::Waker) -> u64 {
        let id = token();
        lock(&self.timers).insert((at, id), waker.clone());
        self.changed.notify_one();
        id
    }

    /// Cancels the timer set for `at` with id `id`, if it has not fired.
    pub(crate) fn cancel(&self, at: Instant, id: u64) {
        lock(&self.timers).remove(&(at, id));
    }

    fn run_timers(&self) {
        let mut due = Vec::new();
        let mut timers = lock(&self.timers);
        loop {
            let now = Instant::now();
            while let Some(entry) = timers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                drop(timers);
                // Outside the lock: a waker may poll its task right here.
                due.drain(..).for_each(task::Waker::wake);
                timers = lock(&self.timers);
                continue;
            }
            timers = match timers.keys().next().map(|(at, _)| *at) {
                Some(at) => {
                    self.changed
                        .wait_timeout(timers, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(timers)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// The same tests as the Unix reactor's.
#[cfg(test)]
#[path = "../reactor_tests.rs"]
mod tests;

#[cfg(test)]
mod windows_tests {
    use super::*;
    use std::time::Duration;

    /// A deadline whose expiry went to a wait that was cancelled since (a call given up on while
    /// it slept) is set again by the next call's deadline, not left for ever unset.
    #[test]
    fn a_deadline_whose_expiry_went_elsewhere_is_set_again() {
        let (bell, _theirs) = crate::sys::Bell::pair().unwrap();
        let set = WaitSet::new(&[(bell.fd(), Interest::Readable)]).unwrap();
        set.wake_by(Instant::now() + Duration::from_millis(10))
            .unwrap();
        std::thread::sleep(Duration::from_millis(30));
        // The expiry, taken as a wait would take it.
        // SAFETY: a live timer of the set; a zero timeout never blocks.
        let taken = unsafe { WaitForSingleObject(raw(borrow(&set.timer)), 0) };
        assert_eq!(taken, 0, "the timer did not expire");
        set.wake_by(Instant::now() + Duration::from_millis(20))
            .unwrap();
        // SAFETY: as above; waits at most 2 s.
        let fired = unsafe { WaitForSingleObject(raw(borrow(&set.timer)), 2000) };
        assert_eq!(fired, 0, "the next deadline never came");
    }
}
