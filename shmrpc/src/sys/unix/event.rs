//! Sleeping: `poll` for a client waiting on one call, a set of descriptors (epoll on Linux,
//! kqueue on macOS: `os::Set`) for the server's threads and for async calls.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::event::PollFd;

use super::os;

pub(super) fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// What to wait for on a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Data to read (or, for a process handle, the process exited), or the other end closed.
    Readable,
    /// Only the other end closing (or an error): data to read does not wake, on Linux. macOS
    /// has no such wait: there it is [`Interest::Readable`], and [`super::Stream::is_closed`]
    /// tells the two apart.
    Hangup,
}

/// Sleeps until one of `fds` (at most 4) is ready or `timeout` passes (`None`: no timeout).
/// Returns a bit per descriptor that is ready (bit `i` for `fds[i]`), 0 if the time passed or a
/// signal interrupted the sleep. Allocates nothing: a call's wait uses it.
pub(crate) fn wait_any(fds: &[(BorrowedFd<'_>, Interest)], timeout: Option<Duration>) -> u32 {
    assert!(
        (1..=4).contains(&fds.len()),
        "shmrpc bug: wait_any on {} descriptors",
        fds.len()
    );
    // Entries past `fds.len()` only fill the array; they are never polled.
    let mut list: [PollFd<'_>; 4] = std::array::from_fn(|i| {
        let (fd, interest) = fds.get(i).unwrap_or(&fds[0]);
        PollFd::from_borrowed_fd(*fd, os::poll_flags(*interest))
    });
    let list = &mut list[..fds.len()];
    match rustix::event::poll(list, timeout.map(timespec).as_ref()) {
        Ok(_) => ready_bits(list.iter()),
        Err(_) => 0,
    }
}

fn ready_bits<'a>(fds: impl Iterator<Item = &'a PollFd<'a>>) -> u32 {
    fds.enumerate()
        .filter(|(_, fd)| !fd.revents().is_empty())
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// One descriptor that is readable while any of the descriptors it holds is ready, or its
/// timer expired (a [`os::Set`] holding them and a timer): an async call sleeps on its slot's,
/// registered with one reactor (the executor's or shmrpc's own), instead of on the slot's bell,
/// the connection's socket and the server's process handle each, and on a timer.
#[derive(Debug)]
pub(crate) struct WaitSet {
    /// Its registration with a tokio runtime's reactor, kept between calls. Declared first:
    /// fields drop in order, and the registration must go before the descriptor it names.
    #[cfg(feature = "tokio")]
    registration: std::sync::Mutex<Option<super::tokio_wait::Registration>>,
    set: os::Set,
    timer: os::Timer,
    /// When the timer is set to expire, if it is set and its expiry was not taken yet.
    armed: std::sync::Mutex<Option<std::time::Instant>>,
}

impl WaitSet {
    pub(crate) fn new(fds: &[(BorrowedFd<'_>, Interest)]) -> io::Result<Self> {
        let set = os::Set::new()?;
        for (i, (fd, interest)) in fds.iter().enumerate() {
            set.add(*fd, i as u64, *interest, false)?;
        }
        let timer = os::Timer::new(&set, fds.len() as u64)?;
        Ok(WaitSet {
            #[cfg(feature = "tokio")]
            registration: std::sync::Mutex::new(None),
            set,
            timer,
            armed: std::sync::Mutex::new(None),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.set.fd()
    }

    #[cfg(feature = "tokio")]
    pub(super) fn registration(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<super::tokio_wait::Registration>> {
        self.registration
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn armed(&self) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
        self.armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the set readable at `at` at the latest. A timer set to expire before `at` is left
    /// as it is (one system call saved per call: deadlines come in increasing order), and makes
    /// the set readable early, once; the waiter then takes the expiry and sets it again.
    pub(crate) fn wake_by(&self, at: std::time::Instant) -> io::Result<()> {
        let mut armed = self.armed();
        if armed.is_some_and(|set| set <= at) {
            return Ok(());
        }
        let after = at.saturating_duration_since(std::time::Instant::now());
        self.timer.set(&self.set, after)?;
        *armed = Some(at);
        Ok(())
    }

    /// Takes the timer's expiry if it is due, and whatever else the set reported and keeps
    /// (a kqueue stays readable until its events are collected), so that only what is still
    /// ready makes the set readable. Called each time the waiter wakes.
    pub(crate) fn take_expiry(&self, now: std::time::Instant) {
        let timer_fired = self.set.settle(self.timer.token());
        let mut armed = self.armed();
        if timer_fired {
            *armed = None;
        } else if armed.is_some_and(|at| at <= now) {
            self.timer.take(&self.set);
            *armed = None;
        }
    }
}

/// A set of descriptors shared by the server's threads: each idle thread sleeps in it, and one
/// event wakes one thread.
#[derive(Debug)]
pub(crate) struct Poller {
    set: os::Set,
}

/// A thread's buffer for [`Poller::wait`] (one event at a time: the other events go to other
/// threads).
pub(crate) struct Events(Vec<os::Event>);

impl Default for Events {
    fn default() -> Self {
        Events(Vec::with_capacity(1))
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// One ready descriptor, as [`Poller::wait`] reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub(crate) token: u64,
    /// The other end closed, or an error: nothing more will come.
    pub(crate) hangup: bool,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Poller {
            set: os::Set::new()?,
        })
    }

    /// Watches `fd` for data to read and for its other end closing. `once`: reported to one
    /// thread, then not again until [`Poller::rearm`]; otherwise reported to every waiting
    /// thread, for as long as it is readable.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, token: u64, once: bool) -> io::Result<()> {
        self.set.add(fd, token, Interest::Readable, once)
    }

    /// Watches a `once` descriptor again, after its event was handled.
    pub(crate) fn rearm(&self, fd: BorrowedFd<'_>, token: u64) {
        let _ = self.set.rearm(fd, token);
    }

    pub(crate) fn remove(&self, fd: BorrowedFd<'_>) {
        self.set.remove(fd);
    }

    /// Sleeps until a descriptor is ready (or `timeout` passes); the one event this thread got.
    pub(crate) fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<Option<Ready>> {
        self.set.wait(&mut events.0, timeout)?;
        Ok(events.0.first().map(|e| Ready {
            token: os::token(e),
            hangup: os::hangup(e),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Waker;

    #[test]
    fn a_waker_wakes_a_poll_and_drains() {
        let w = Waker::new().unwrap();
        assert_eq!(
            wait_any(&[(w.fd(), Interest::Readable)], Some(Duration::ZERO)),
            0
        );
        w.wake();
        w.wake();
        assert_eq!(wait_any(&[(w.fd(), Interest::Readable)], None), 1);
        w.drain();
        assert_eq!(
            wait_any(
                &[(w.fd(), Interest::Readable)],
                Some(Duration::from_millis(1))
            ),
            0
        );
    }

    #[test]
    fn the_poller_reports_tokens_and_once_means_once() {
        let p = Poller::new().unwrap();
        let mut events = Events::default();
        let (a, b) = (Waker::new().unwrap(), Waker::new().unwrap());
        p.add(a.fd(), 7, false).unwrap();
        p.add(b.fd(), 9, true).unwrap();
        b.wake();
        let ready = p.wait(&mut events, None).unwrap().unwrap();
        assert_eq!(ready.token, 9);
        // Still readable, but reported once until rearmed.
        let later = p.wait(&mut events, Some(Duration::from_millis(1))).unwrap();
        assert!(later.is_none());
        p.rearm(b.fd(), 9);
        assert_eq!(p.wait(&mut events, None).unwrap().unwrap().token, 9);
        a.wake();
        assert_eq!(p.wait(&mut events, None).unwrap().unwrap().token, 7);
        assert_eq!(
            p.wait(&mut events, None).unwrap().unwrap().token,
            7,
            "level: again"
        );
        p.remove(a.fd());
        assert!(
            p.wait(&mut events, Some(Duration::from_millis(1)))
                .unwrap()
                .is_none()
        );
    }
}
