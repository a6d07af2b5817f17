//! Wake-up bells (auto-reset events), and what Windows lacks yet: stopping servers on Ctrl+C
//! (`stop_on_signals`), and async calls waiting in tokio's own reactor. Each type below that has
//! no constructor holds a [`Never`], so code reached only through one is unreachable, and the
//! compiler says so.

use std::io;
#[cfg(feature = "tokio")]
use std::task::{Context, Poll};
#[cfg(test)]
use std::time::Duration;

use windows_sys::Win32::System::Threading::{CreateEventW, SetEvent, WaitForSingleObject};

use super::{owned, raw, unsupported};
use crate::sys::{Borrowed, Owned, borrow};

/// A value that cannot exist.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Never {}

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

/// Would be set when Ctrl+C or a console close arrives (with `SetConsoleCtrlHandler`): not
/// built yet, so `ServerOptions::stop_on_signals` fails at `bind` on Windows.
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

/// A wait set registered with a tokio runtime: none on Windows yet (async calls sleep in the
/// system's thread pool instead, see [`super::Reactor`]).
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub(crate) struct TokioWait<'a>(Never, std::marker::PhantomData<&'a super::WaitSet>);

#[cfg(feature = "tokio")]
impl<'a> TokioWait<'a> {
    pub(crate) fn register(_set: &'a super::WaitSet) -> Option<io::Result<Self>> {
        None
    }

    pub(crate) fn poll_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0 {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Interest, wait_any};

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
    fn stopping_on_signals_says_it_is_not_built_yet() {
        let e = SignalBell::new().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("not built for Windows yet"), "{e}");
        assert!(e.to_string().contains("ServerHandle::shutdown"), "{e}");
    }
}
