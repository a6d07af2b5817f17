//! SIGINT and SIGTERM stopping servers (`ServerOptions::stop_on_signals`).
//!
//! Each such server holds a [`SignalBell`]: a socket that becomes readable when one of the two
//! signals arrives (signal-hook writes to its other end from the handler). The first signal
//! stops every such server of the process, gracefully: the calls in progress finish, then
//! `run()` returns. A second one, while they stop, does what the signal did before shmrpc
//! handled it: by default, it kills the process at once.
//!
//! Once no such server runs, the signals are what they were: a process that had them at their
//! default is killed by them (as a supervisor expects to see), one that ignored them ignores
//! them, one with handlers of its own has them run (signal-hook calls the handler it found
//! installed before its own actions).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

const SIGNALS: [libc::c_int; 2] = [SIGINT, SIGTERM];

/// Per signal: whether its disposition was the default before shmrpc's handler went in.
static WAS_DEFAULT: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
/// Servers that stop on signals, now.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// A signal came while servers were active: they are stopping.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Readable once SIGINT or SIGTERM arrived.
#[derive(Debug)]
pub(crate) struct SignalBell {
    read: OwnedFd,
    ids: Vec<SigId>,
}

impl SignalBell {
    pub(crate) fn new() -> io::Result<Self> {
        install()?;
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        let mut ids = Vec::with_capacity(2);
        let registered = SIGNALS.into_iter().try_for_each(|signal| {
            ids.push(signal_hook::low_level::pipe::register(
                signal,
                write.try_clone()?,
            )?);
            io::Result::Ok(())
        });
        if let Err(e) = registered {
            for id in ids {
                signal_hook::low_level::unregister(id);
            }
            return Err(e);
        }
        if ACTIVE.fetch_add(1, Ordering::SeqCst) == 0 {
            STOPPING.store(false, Ordering::SeqCst);
        }
        Ok(SignalBell {
            read: read.into(),
            ids,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

impl Drop for SignalBell {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Installs, once, the action that decides what a signal does besides ringing the bells.
fn install() -> io::Result<()> {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if *installed {
        return Ok(());
    }
    for (i, signal) in SIGNALS.into_iter().enumerate() {
        let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
        // SAFETY: reads the signal's current disposition into `old` (a null new action changes
        // nothing).
        let read = unsafe { libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) };
        if read != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigaction succeeded, so `old` is filled in.
        let old = unsafe { old.assume_init() };
        WAS_DEFAULT[i].store(old.sa_sigaction == libc::SIG_DFL, Ordering::SeqCst);
        // SAFETY: the action is async-signal-safe: it reads and swaps atomics and, at most,
        // calls `emulate_default_handler`, which signal-hook provides for signal handlers
        // (sigaction and raise). It never allocates or takes a lock.
        unsafe {
            signal_hook::low_level::register(signal, move || on_signal(i, signal))?;
        }
    }
    *installed = true;
    Ok(())
}

/// In the signal handler: the first signal while servers run only rings their bells (their
/// own actions, registered after this one); any other does what the signal did before.
fn on_signal(index: usize, signal: libc::c_int) {
    let first = ACTIVE.load(Ordering::SeqCst) > 0 && !STOPPING.swap(true, Ordering::SeqCst);
    if !first && WAS_DEFAULT[index].load(Ordering::SeqCst) {
        let _ = signal_hook::low_level::emulate_default_handler(signal);
    }
}
