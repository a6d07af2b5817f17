//! The server threads' poller: the system's thread pool waits on each watched handle
//! (`RegisterWaitForSingleObject`, once) and queues its token; idle server threads sleep on the
//! queue, and each token wakes one of them.

use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Threading::{
    INFINITE, RegisterWaitForSingleObject, UnregisterWaitEx, WT_EXECUTEONLYONCE,
};

use super::raw;
use crate::sys::Borrowed;

/// A thread's buffer for [`Poller::wait`] (nothing to hold on Windows).
#[derive(Debug, Default)]
pub(crate) struct Events {
    _none: (),
}

/// One ready handle, as [`Poller::wait`] reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub(crate) token: u64,
    /// Never set on Windows: reading a connection tells its end.
    pub(crate) hangup: bool,
}

#[derive(Debug, Default)]
struct Queue {
    /// Tokens of "once" handles that were signalled, oldest first: each goes to one thread.
    once: VecDeque<u64>,
    /// Tokens of the other handles that were signalled: reported to every thread, for good.
    level: Vec<u64>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    woken: Condvar,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A wait of the system's thread pool on one handle, once: when the handle is signalled, a
/// pool thread runs the callback. Dropping it cancels the wait, and waits for a callback that
/// is running to finish.
pub(crate) struct PoolWait {
    wait: HANDLE,
    callback: *mut Callback,
}

type Callback = Box<dyn Fn() + Send + Sync>;

// SAFETY: the wait handle is only passed to UnregisterWaitEx (from any thread); the callback is
// `Send + Sync`.
unsafe impl Send for PoolWait {}
// SAFETY: `&PoolWait` gives access to nothing.
unsafe impl Sync for PoolWait {}

impl std::fmt::Debug for PoolWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolWait").finish_non_exhaustive()
    }
}

impl PoolWait {
    /// Runs `callback` on a pool thread once `handle` is signalled (at once if it is). The
    /// handle must stay open until the wait is dropped.
    pub(crate) fn new(handle: Borrowed<'_>, callback: Callback) -> io::Result<Self> {
        let callback = Box::into_raw(Box::new(callback));
        let mut wait: HANDLE = std::ptr::null_mut();
        // SAFETY: `callback` stays valid until the wait is unregistered and a running callback
        // has finished (`drop` waits for that); the caller keeps the handle open as long.
        let ok = unsafe {
            RegisterWaitForSingleObject(
                &mut wait,
                raw(handle),
                Some(run),
                callback.cast_const().cast(),
                INFINITE,
                WT_EXECUTEONLYONCE,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            // SAFETY: never registered: nothing else holds the callback.
            drop(unsafe { Box::from_raw(callback) });
            return Err(e);
        }
        Ok(PoolWait { wait, callback })
    }
}

impl Drop for PoolWait {
    fn drop(&mut self) {
        // SAFETY: `wait` is this wait's; INVALID_HANDLE_VALUE makes the call wait for a running
        // callback to finish, after which none can start, so the callback can be freed. Never
        // dropped from its own callback (which would wait for itself).
        unsafe {
            UnregisterWaitEx(self.wait, INVALID_HANDLE_VALUE);
            drop(Box::from_raw(self.callback));
        }
    }
}

/// The thread pool's callback: runs the wait's own.
unsafe extern "system" fn run(context: *mut c_void, _timed_out: bool) {
    // SAFETY: the context registered with this wait, alive until it is unregistered.
    let callback = unsafe { &*context.cast::<Callback>() };
    callback();
}

/// Queues `token` for a thread (every thread, unless `once`) when `handle` is signalled.
fn watch(
    shared: &Arc<Shared>,
    handle: Borrowed<'_>,
    token: u64,
    once: bool,
) -> io::Result<PoolWait> {
    let shared = shared.clone();
    PoolWait::new(
        handle,
        Box::new(move || {
            let mut queue = shared.queue();
            if once {
                queue.once.push_back(token);
                drop(queue);
                shared.woken.notify_one();
            } else {
                if !queue.level.contains(&token) {
                    queue.level.push(token);
                }
                drop(queue);
                shared.woken.notify_all();
            }
        }),
    )
}

/// A poller shared by the server's threads: each idle thread sleeps in it, and one signalled
/// handle wakes one thread. A handle added with `once == false` must stay signalled for good
/// once it is (the stop bells): it is reported to every waiting thread from then on.
#[derive(Debug)]
pub(crate) struct Poller {
    shared: Arc<Shared>,
    registered: Mutex<HashMap<usize, PoolWait>>,
}

fn key(handle: Borrowed<'_>) -> usize {
    raw(handle) as usize
}

impl Poller {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Poller {
            shared: Arc::default(),
            registered: Mutex::default(),
        })
    }

    fn registered(&self) -> MutexGuard<'_, HashMap<usize, PoolWait>> {
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `handle`. `once`: reported to one thread, then not again until
    /// [`Poller::rearm`]; otherwise reported to every waiting thread, for good.
    pub(crate) fn add(&self, handle: Borrowed<'_>, token: u64, once: bool) -> io::Result<()> {
        let registration = watch(&self.shared, handle, token, once)?;
        // An older registration of the same handle (not removed) is dropped: unregistered.
        self.registered().insert(key(handle), registration);
        Ok(())
    }

    /// Watches a `once` handle again, after its event was handled.
    pub(crate) fn rearm(&self, handle: Borrowed<'_>, token: u64) {
        // The old wait fired and ended: unregister it, then wait again, all under the map's
        // lock. Two threads may rearm one handle at once (the work bell, rearmed without the
        // connections' lock): the new wait can fire at once, and the thread it wakes rearm
        // before this one stores it; in separate steps, this one's store would then replace
        // (and unregister) that thread's live wait, and nothing would watch the handle any
        // more. Unregistering under the lock is safe: callbacks take only the queue's lock.
        let mut registered = self.registered();
        drop(registered.remove(&key(handle)));
        if let Ok(registration) = watch(&self.shared, handle, token, true) {
            registered.insert(key(handle), registration);
        }
    }

    pub(crate) fn remove(&self, handle: Borrowed<'_>) {
        let old = self.registered().remove(&key(handle));
        drop(old);
    }

    /// Sleeps until a handle is signalled (or `timeout` passes); the one event this thread got.
    pub(crate) fn wait(
        &self,
        _events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<Option<Ready>> {
        let until = timeout.map(|t| Instant::now() + t);
        let mut queue = self.shared.queue();
        loop {
            let token = queue
                .level
                .first()
                .copied()
                .or_else(|| queue.once.pop_front());
            if let Some(token) = token {
                return Ok(Some(Ready {
                    token,
                    hangup: false,
                }));
            }
            queue = match until {
                None => self
                    .shared
                    .woken
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    self.shared
                        .woken
                        .wait_timeout(queue, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let all = std::mem::take(&mut *self.registered());
        drop(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Waker;

    /// The work bell's pattern: whichever thread it wakes takes the ring and rearms it, without
    /// a lock of its own, while rings keep coming. A ring right after a take makes the new wait
    /// fire at once, and a second thread rearm while the first still does: the bell must stay
    /// watched (each ring below waits for the previous one to be taken).
    #[test]
    fn a_handle_rearmed_by_two_threads_at_once_stays_watched() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let p = Arc::new(Poller::new().unwrap());
        let bell = Arc::new(Waker::new().unwrap());
        p.add(bell.fd(), 1, true).unwrap();
        let taken = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (p, bell, taken, stop) = (p.clone(), bell.clone(), taken.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut events = Events::default();
                    while !stop.load(Ordering::Relaxed) {
                        let ready = p
                            .wait(&mut events, Some(Duration::from_millis(20)))
                            .unwrap();
                        if ready.is_some_and(|r| r.token == 1) {
                            bell.drain();
                            taken.fetch_add(1, Ordering::SeqCst);
                            p.rearm(bell.fd(), 1);
                        }
                    }
                })
            })
            .collect();
        for ring in 0..10_000u64 {
            let start = std::time::Instant::now();
            while taken.load(Ordering::SeqCst) < ring {
                assert!(
                    start.elapsed() < Duration::from_secs(2),
                    "ring {ring} was never reported: the bell is no longer watched"
                );
                std::hint::spin_loop();
            }
            bell.wake();
        }
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    #[test]
    fn the_poller_reports_tokens_and_once_means_once() {
        let p = Poller::new().unwrap();
        let mut events = Events::default();
        let (a, b) = (Waker::new().unwrap(), Waker::new().unwrap());
        p.add(a.fd(), 7, false).unwrap();
        p.add(b.fd(), 9, true).unwrap();
        let none = p.wait(&mut events, Some(Duration::from_millis(5))).unwrap();
        assert!(none.is_none());
        b.wake();
        let ready = p
            .wait(&mut events, Some(Duration::from_secs(5)))
            .unwrap()
            .unwrap();
        assert_eq!(ready.token, 9);
        // Still signalled, but reported once until rearmed.
        let later = p
            .wait(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        assert!(later.is_none());
        p.rearm(b.fd(), 9);
        let again = p.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(again.unwrap().token, 9);
        b.drain();
        p.rearm(b.fd(), 9);
        a.wake();
        for _ in 0..3 {
            let level = p.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
            assert_eq!(level.unwrap().token, 7, "level: again and again");
        }
        p.remove(b.fd());
        b.wake();
        std::thread::sleep(Duration::from_millis(20));
        let queue = p.shared.queue();
        assert!(queue.once.is_empty(), "a removed handle was reported");
    }

    #[test]
    fn one_event_wakes_one_of_several_sleeping_threads() {
        let p = Poller::new().unwrap();
        let w = Waker::new().unwrap();
        p.add(w.fd(), 3, true).unwrap();
        let woken = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let mut events = Events::default();
                    if let Some(r) = p
                        .wait(&mut events, Some(Duration::from_millis(300)))
                        .unwrap()
                    {
                        assert_eq!(r.token, 3);
                        woken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(20));
            w.wake();
        });
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
