//! Waking and sleeping: an eventfd per slot to wake a client that sleeps on its answer, epoll
//! for the server's watcher thread, poll for a client waiting on one call.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFd, PollFlags, epoll};
use rustix::io::Errno;

fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos().into(),
    }
}

/// An eventfd: one side writes to wake the other, which polls it.
#[derive(Debug)]
pub(crate) struct Waker(OwnedFd);

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Waker(fd))
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Makes the eventfd readable. Never blocks: a counter that is already huge stays readable.
    pub(crate) fn wake(&self) {
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    /// Makes the eventfd unreadable again, consuming past wake-ups.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut buf);
    }
}

/// What to wait for on a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Data to read (or, for a pidfd, the process exited), or the other end closed.
    Readable,
    /// Only the other end closing (or an error): data to read does not wake.
    Hangup,
}

impl Interest {
    fn poll_flags(self) -> PollFlags {
        match self {
            Interest::Readable => PollFlags::IN | PollFlags::RDHUP,
            Interest::Hangup => PollFlags::RDHUP,
        }
    }
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
        PollFd::from_borrowed_fd(*fd, interest.poll_flags())
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
/// timer expired (an epoll instance holding them and a timerfd): an async call sleeps on its
/// slot's, registered with one reactor (the executor's or shmrpc's own), instead of on the
/// slot's bell, the connection's socket and the server's pidfd each, and on a timer.
#[derive(Debug)]
pub(crate) struct WaitSet {
    set: OwnedFd,
    timer: OwnedFd,
    /// When the timer is set to expire, if it is set and its expiry was not taken yet.
    armed: std::sync::Mutex<Option<std::time::Instant>>,
}

impl WaitSet {
    pub(crate) fn new(fds: &[(BorrowedFd<'_>, Interest)]) -> io::Result<Self> {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let set = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let timer = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        let all = fds
            .iter()
            .copied()
            .chain([(timer.as_fd(), Interest::Readable)]);
        for (i, (fd, interest)) in all.enumerate() {
            let flags = match interest {
                Interest::Readable => epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
                Interest::Hangup => epoll::EventFlags::RDHUP,
            };
            epoll::add(&set, fd, epoll::EventData::new_u64(i as u64), flags)?;
        }
        Ok(WaitSet {
            set,
            timer,
            armed: std::sync::Mutex::new(None),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.set.as_fd()
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
        use rustix::time::{Itimerspec, TimerfdTimerFlags, timerfd_settime};
        let mut armed = self.armed();
        if armed.is_some_and(|set| set <= at) {
            return Ok(());
        }
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // A zero time would disarm the timer: one nanosecond at least.
        let after = at
            .saturating_duration_since(std::time::Instant::now())
            .max(Duration::from_nanos(1));
        timerfd_settime(
            &self.timer,
            TimerfdTimerFlags::empty(),
            &Itimerspec {
                it_interval: zero,
                it_value: timespec(after),
            },
        )?;
        *armed = Some(at);
        Ok(())
    }

    /// Takes the timer's expiry if it is due, so that it no longer makes the set readable.
    pub(crate) fn take_expiry(&self, now: std::time::Instant) {
        let mut armed = self.armed();
        if armed.is_some_and(|at| at <= now) {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&self.timer, &mut buf);
            *armed = None;
        }
    }
}

/// An epoll instance shared by the server's threads: each idle thread sleeps in it, and one
/// event wakes one thread.
#[derive(Debug)]
pub(crate) struct Poller {
    epoll: OwnedFd,
}

/// A thread's buffer for [`Poller::wait`] (one event at a time: the other events go to other
/// threads).
pub(crate) struct Events(Vec<epoll::Event>);

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
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC)?,
        })
    }

    fn interest(once: bool) -> epoll::EventFlags {
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        if once {
            flags | epoll::EventFlags::ONESHOT
        } else {
            flags
        }
    }

    /// Watches `fd` for data to read and for its other end closing. `once`: reported to one
    /// thread, then not again until [`Poller::rearm`]; otherwise reported to every waiting
    /// thread, for as long as it is readable.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, token: u64, once: bool) -> io::Result<()> {
        Ok(epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token),
            Self::interest(once),
        )?)
    }

    /// Watches a `once` descriptor again, after its event was handled.
    pub(crate) fn rearm(&self, fd: BorrowedFd<'_>, token: u64) {
        let _ = epoll::modify(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(token),
            Self::interest(true),
        );
    }

    pub(crate) fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = epoll::delete(&self.epoll, fd);
    }

    /// Sleeps until a descriptor is ready (or `timeout` passes); the one event this thread got.
    pub(crate) fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> io::Result<Option<Ready>> {
        let events = &mut events.0;
        events.clear();
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(events),
            timeout.map(timespec).as_ref(),
        ) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(events.first().map(|e| {
            let flags = e.flags;
            Ready {
                token: e.data.u64(),
                hangup: flags.intersects(
                    epoll::EventFlags::HUP | epoll::EventFlags::RDHUP | epoll::EventFlags::ERR,
                ),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
