//! SIGINT and SIGTERM stopping servers (`ServerOptions::stop_on_signals`).
//!
//! Each such server holds a [`SignalBell`]: a socket that becomes readable when one of the two
//! signals arrives (signal-hook writes to its other end from the handler). The first signal
//! stops every such server of the process, gracefully: the calls in progress finish, then
//! `run()` returns. A second one, while they stop, ends the process at once (exit status 130
//! for SIGINT, 143 for SIGTERM, what a shell reports for a process the signal killed); so does
//! a signal once no such server runs, as it would have without shmrpc.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Set once a signal was handled (or when no server handles them): the next one ends the
/// process.
static HANDLED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// Servers that stop on signals, now.
static ACTIVE: Mutex<usize> = Mutex::new(0);

/// Readable once SIGINT or SIGTERM arrived.
#[derive(Debug)]
pub(crate) struct SignalBell {
    read: OwnedFd,
    ids: Vec<SigId>,
}

impl SignalBell {
    pub(crate) fn new() -> io::Result<Self> {
        let handled = handled()?;
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        let mut ids = Vec::with_capacity(2);
        let registered = [SIGINT, SIGTERM].into_iter().try_for_each(|signal| {
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
        let mut active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
        if *active == 0 {
            handled.store(false, Ordering::SeqCst);
        }
        *active += 1;
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
        let mut active = ACTIVE.lock().unwrap_or_else(PoisonError::into_inner);
        *active -= 1;
        if *active == 0
            && let Some(handled) = HANDLED.get()
        {
            // No server stops on signals any more: the next one ends the process.
            handled.store(true, Ordering::SeqCst);
        }
    }
}

/// The process-wide flag, with its handlers installed the first time: a signal that finds it
/// set ends the process; one that finds it clear sets it (and the bells ring).
fn handled() -> io::Result<&'static Arc<AtomicBool>> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(handled) = HANDLED.get() {
        return Ok(handled);
    }
    let handled = Arc::new(AtomicBool::new(true));
    for (signal, status) in [(SIGINT, 130), (SIGTERM, 143)] {
        // In this order: the check runs before the flag is set.
        signal_hook::flag::register_conditional_shutdown(signal, status, handled.clone())?;
        signal_hook::flag::register(signal, handled.clone())?;
    }
    Ok(HANDLED.get_or_init(|| handled))
}
