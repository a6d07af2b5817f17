//! What the connection transport will be on Windows. Its wake-up bells are real (auto-reset
//! events); its rendezvous, streams and pollers cannot be made yet: each type below that has
//! no constructor holds a [`Never`], so code reached only through one is unreachable, and the
//! compiler says so.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task;
#[cfg(feature = "tokio")]
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use windows_sys::Win32::System::Threading::{CreateEventW, SetEvent, WaitForSingleObject};

use super::{Interest, ProcessHandle, owned, raw, unsupported};
use crate::sys::{Borrowed, Owned, borrow};

/// A value that cannot exist.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Never {}

/// Who is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The holder of a service's name (a named pipe, to come).
#[derive(Debug)]
pub(crate) struct Listener(Never);

/// Whether one of this process's listeners holds `name` now: none can, yet.
pub(crate) fn holds_name(_name: &[u8]) -> bool {
    false
}

impl Listener {
    pub(crate) fn bind(_name: &[u8]) -> io::Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        match self.0 {}
    }

    pub(crate) fn accept(&self) -> io::Result<Option<Stream>> {
        match self.0 {}
    }
}

/// One end of a connection (a named pipe instance, to come).
#[derive(Debug)]
pub(crate) struct Stream(Never);

impl Stream {
    pub(crate) fn connect(_name: &[u8]) -> io::Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        match self.0 {}
    }

    pub(crate) fn peer_credentials(&self) -> io::Result<Credentials> {
        match self.0 {}
    }

    pub(crate) fn peer_groups(&self) -> io::Result<Vec<u32>> {
        match self.0 {}
    }

    pub(crate) fn peer_process(&self, _pid: u32) -> io::Result<ProcessHandle> {
        match self.0 {}
    }

    pub(crate) fn send(&self, _bytes: &[u8], _handles: &[Borrowed<'_>]) -> io::Result<()> {
        match self.0 {}
    }

    pub(crate) fn recv(
        &self,
        _buf: &mut [u8],
        _handles: &mut Vec<Owned>,
    ) -> io::Result<Option<usize>> {
        match self.0 {}
    }

    pub(crate) fn shutdown(&self) {
        match self.0 {}
    }
}

/// One side's end of a wake-up bell: an auto-reset event, of which the other side gets a
/// handle of its own. A ring sets it; the sleeper's wait takes it.
#[derive(Debug)]
pub(crate) struct Bell(Owned);

impl Bell {
    /// A new bell: this end, and a handle on the same event to hand over.
    pub(crate) fn pair() -> io::Result<(Self, Owned)> {
        // SAFETY: no attributes, no name: a fresh unnamed auto-reset event.
        let event = owned(unsafe { CreateEventW(std::ptr::null(), 0, 0, std::ptr::null()) })?;
        let theirs = event.try_clone()?;
        Ok((Bell(event), theirs))
    }

    /// The end handed over by the other side.
    pub(crate) fn from_fd(handle: Owned) -> Self {
        Bell(handle)
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        borrow(&self.0)
    }

    /// Wakes the other side. Never blocks.
    pub(crate) fn ring(&self) {
        // SAFETY: a live event handle owned by `self`.
        unsafe { SetEvent(raw(self.fd())) };
    }

    /// Takes a pending ring, if any.
    pub(crate) fn take_one(&self) {
        // SAFETY: as above; a zero timeout never blocks.
        unsafe { WaitForSingleObject(raw(self.fd()), 0) };
    }

    /// Takes every pending ring: an event holds one at most.
    pub(crate) fn drain(&self) {
        self.take_one();
    }
}

/// Server threads' poller (to come).
#[derive(Debug)]
pub(crate) struct Poller(Never);

/// A thread's buffer for [`Poller::wait`].
#[derive(Debug, Default)]
pub(crate) struct Events {
    _none: (),
}

/// One ready handle, as [`Poller::wait`] reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub(crate) token: u64,
    pub(crate) hangup: bool,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn add(&self, _handle: Borrowed<'_>, _token: u64, _once: bool) -> io::Result<()> {
        match self.0 {}
    }

    pub(crate) fn rearm(&self, _handle: Borrowed<'_>, _token: u64) {
        match self.0 {}
    }

    pub(crate) fn remove(&self, _handle: Borrowed<'_>) {
        match self.0 {}
    }

    pub(crate) fn wait(
        &self,
        _events: &mut Events,
        _timeout: Option<Duration>,
    ) -> io::Result<Option<Ready>> {
        match self.0 {}
    }
}

/// What an async call sleeps on (to come).
#[derive(Debug)]
pub(crate) struct WaitSet(Never);

impl WaitSet {
    pub(crate) fn new(_handles: &[(Borrowed<'_>, Interest)]) -> io::Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        match self.0 {}
    }

    pub(crate) fn wake_by(&self, _at: Instant) -> io::Result<()> {
        match self.0 {}
    }

    pub(crate) fn take_expiry(&self, _now: Instant) {
        match self.0 {}
    }
}

/// Tokens of handles and ids of timers, unique in a process.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A fresh token for a handle, or id for a timer.
pub(crate) fn token() -> u64 {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// The wake-up thread of async calls (to come).
#[derive(Debug)]
pub(crate) struct Reactor(Never);

pub(crate) fn reactor() -> io::Result<&'static Reactor> {
    Err(unsupported())
}

impl Reactor {
    pub(crate) fn arm(
        &self,
        _handle: Borrowed<'_>,
        _token: u64,
        _waker: &task::Waker,
    ) -> io::Result<()> {
        match self.0 {}
    }

    pub(crate) fn disarm(&self, _token: u64) {
        match self.0 {}
    }

    pub(crate) fn timer(&self, _at: Instant, _waker: &task::Waker) -> u64 {
        match self.0 {}
    }

    pub(crate) fn cancel(&self, _at: Instant, _id: u64) {
        match self.0 {}
    }
}

/// Set when Ctrl+C or a console close arrives (to come, with `SetConsoleCtrlHandler`).
#[derive(Debug)]
pub(crate) struct SignalBell(Never);

impl SignalBell {
    pub(crate) fn new() -> io::Result<Self> {
        Err(unsupported())
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        match self.0 {}
    }
}

/// A wait set registered with a tokio runtime: none on Windows yet (async calls would sleep in
/// shmrpc's own wake-up thread).
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub(crate) struct TokioWait<'a>(Never, std::marker::PhantomData<&'a WaitSet>);

#[cfg(feature = "tokio")]
impl<'a> TokioWait<'a> {
    pub(crate) fn register(_set: &'a WaitSet) -> Option<io::Result<Self>> {
        None
    }

    pub(crate) fn poll_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::wait_any;

    #[test]
    fn a_bell_wakes_the_other_end_once_per_ring() {
        let (mine, theirs) = Bell::pair().unwrap();
        let theirs = Bell::from_fd(theirs);
        let both = |b: &Bell, ms| {
            wait_any(
                &[(b.fd(), Interest::Readable)],
                Some(Duration::from_millis(ms)),
            )
        };
        assert_eq!(both(&theirs, 0), 0);
        mine.ring();
        mine.ring();
        // One wait takes the ring (an event holds one).
        assert_eq!(both(&theirs, 1000), 1);
        assert_eq!(both(&theirs, 5), 0);
        mine.ring();
        theirs.drain();
        assert_eq!(both(&theirs, 5), 0);
        // Rung from another thread while the other end sleeps.
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(10));
                mine.ring();
            });
            assert_eq!(both(&theirs, 10_000), 1);
        });
    }

    #[test]
    fn the_transport_says_it_is_not_built_yet() {
        let e = Listener::bind(b"shmrpc-test").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("not built for Windows yet"), "{e}");
        assert!(Stream::connect(b"shmrpc-test").is_err());
        assert!(Poller::new().is_err());
        assert!(reactor().is_err());
        assert!(SignalBell::new().is_err());
    }
}
