//! Wake-up bells (auto-reset events), the bell of console events (Ctrl+C) that stops servers
//! (`stop_on_signals`), and what Windows lacks yet: async calls waiting in tokio's own reactor.
//! A type below that has no constructor holds a [`Never`], so code reached only through one is
//! unreachable, and the compiler says so.

use std::io;
#[cfg(feature = "tokio")]
use std::task::{Context, Poll};
#[cfg(test)]
use std::time::Duration;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, SetConsoleCtrlHandler,
};
use windows_sys::Win32::System::Threading::{CreateEventW, SetEvent, WaitForSingleObject};
use windows_sys::core::BOOL;

use super::{owned, raw};
use crate::sys::{Borrowed, Owned, borrow};

/// A value that cannot exist.
#[cfg(feature = "tokio")]
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
}

/// Set when Ctrl+C, Ctrl+Break or the console's closing arrives (`ServerOptions::
/// stop_on_signals`): a manual-reset event the server's threads watch, never reset (the stop is
/// for good).
///
/// One console control handler per process (`SetConsoleCtrlHandler`, installed by the first
/// bell) sets every bell of the process at the first such event while servers stop on them:
/// they stop gracefully (the calls in progress finish, then `run()` returns). Another event
/// while they stop, or any when none does, goes on to the handlers installed before shmrpc's:
/// by default, the process ends at once. For the console's closing, after which Windows ends
/// the process as soon as the handler returns, the handler waits (up to 4 s of the 5 s Windows
/// allows) for the servers to let go of their bells.
#[derive(Debug)]
pub(crate) struct SignalBell {
    event: Owned,
    id: u64,
}

/// The bells of the servers that stop on console events now, by id.
static BELLS: std::sync::Mutex<Vec<(u64, Owned)>> = std::sync::Mutex::new(Vec::new());
/// A console event came while servers stopped on them: they are stopping.
static STOPPING: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn bells() -> std::sync::MutexGuard<'static, Vec<(u64, Owned)>> {
    BELLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SignalBell {
    pub(crate) fn new() -> io::Result<Self> {
        static INSTALLED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        let mut installed = INSTALLED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*installed {
            // SAFETY: installs a handler that lives for ever (a function), called by the
            // system on a thread of its own.
            if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
                return Err(io::Error::last_os_error());
            }
            *installed = true;
        }
        drop(installed);
        // SAFETY: no attributes, no name: a fresh unnamed manual-reset event.
        let event = owned(unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) })?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut bells = bells();
        if bells.is_empty() {
            STOPPING.store(false, Ordering::SeqCst);
        }
        bells.push((id, event.try_clone()?));
        Ok(SignalBell { event, id })
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        borrow(&self.event)
    }
}

impl Drop for SignalBell {
    fn drop(&mut self) {
        bells().retain(|(id, _)| *id != self.id);
    }
}

/// The console control handler: the first Ctrl+C, Ctrl+Break or close while servers stop on
/// them sets their bells (handled: `TRUE`); anything else goes to the next handler (`FALSE`).
unsafe extern "system" fn on_console_event(kind: u32) -> BOOL {
    BOOL::from(console_event(kind))
}

/// What [`on_console_event`] does: whether the event was this handler's.
fn console_event(kind: u32) -> bool {
    if !matches!(kind, CTRL_C_EVENT | CTRL_BREAK_EVENT | CTRL_CLOSE_EVENT) {
        return false;
    }
    {
        let bells = bells();
        if bells.is_empty() || STOPPING.swap(true, Ordering::SeqCst) {
            return false;
        }
        for (_, event) in bells.iter() {
            // SAFETY: a live event handle the list owns.
            unsafe { SetEvent(raw(borrow(event))) };
        }
    }
    if kind == CTRL_CLOSE_EVENT {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(4);
        while !bells().is_empty() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    true
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
        theirs.take_one();
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

    /// The handler is called as the system would: Wine delivers no console event to a process
    /// without a real console (`GenerateConsoleCtrlEvent` fails with `ERROR_INVALID_ACCESS`
    /// there, and `AllocConsole` waits for a display). What a set bell does to a server is the
    /// same as on Linux (`tests/signals.rs`).
    #[test]
    fn the_first_console_event_sets_every_bell_and_the_next_goes_on() {
        let ready = |bell: &SignalBell| {
            wait_any(&[(bell.fd(), Interest::Readable)], Some(Duration::ZERO)) != 0
        };
        // No server stops on console events: Ctrl+C is the next handler's (by default, the end).
        // SAFETY: the handler has no preconditions; the system would call it the same way.
        assert_eq!(unsafe { on_console_event(CTRL_C_EVENT) }, 0);
        let (first, second) = (SignalBell::new().unwrap(), SignalBell::new().unwrap());
        assert!(!ready(&first) && !ready(&second));
        // Not a stop event (a log-off): the next handler's.
        // SAFETY: as above.
        assert_eq!(unsafe { on_console_event(5) }, 0);
        assert!(!ready(&first));
        // SAFETY: as above.
        assert_eq!(unsafe { on_console_event(CTRL_C_EVENT) }, 1);
        assert!(ready(&first) && ready(&second), "both servers stop");
        // A second Ctrl+C while they stop does what it did before shmrpc's handler.
        // SAFETY: as above.
        assert_eq!(unsafe { on_console_event(CTRL_BREAK_EVENT) }, 0);
        drop((first, second));
        // No server stops on console events: every one goes on.
        // SAFETY: as above.
        assert_eq!(unsafe { on_console_event(CTRL_C_EVENT) }, 0);
        // New servers stop on the next one again, also when one of them is gone already.
        let (third, fourth) = (SignalBell::new().unwrap(), SignalBell::new().unwrap());
        drop(third);
        let start = std::time::Instant::now();
        // SAFETY: as above.
        assert_eq!(unsafe { on_console_event(CTRL_C_EVENT) }, 1);
        assert!(ready(&fourth));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "Ctrl+C does not wait"
        );
        drop(fourth);
        // The console's closing: Windows ends the process once the handler returns, so the
        // handler waits for the servers to let go of their bells (here: 200 ms), no longer.
        let fifth = SignalBell::new().unwrap();
        let start = std::time::Instant::now();
        let stopping = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(fifth);
        });
        // SAFETY: as above.
        assert_eq!(unsafe { on_console_event(CTRL_CLOSE_EVENT) }, 1);
        let waited = start.elapsed();
        stopping.join().unwrap();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
