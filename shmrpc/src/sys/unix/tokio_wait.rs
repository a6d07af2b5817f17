//! A wait set registered with the reactor of the tokio runtime the calling task runs in (the
//! `tokio` feature): an async call that must sleep is then woken by the runtime itself, with no
//! thread of shmrpc's in between.
//!
//! A wait set keeps its registration between calls (registering costs two system calls and an
//! allocation in tokio), with the runtime it was made in: a call in another runtime registers
//! anew (a registration only wakes tasks while its own runtime's driver runs, and that runtime
//! may be idle, or gone).

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::runtime::{Handle, Id};

use super::WaitSet;

/// A wait set's descriptor, borrowed (tokio's `AsyncFd` never closes what it holds).
struct Raw(RawFd);

impl AsRawFd for Raw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A wait set's registration with one runtime's reactor. Held by the set itself between calls
/// (its field declared before the descriptor's, so that it goes first), or by a [`TokioWait`]
/// borrowing the set: the descriptor stays open as long as the registration exists.
pub(crate) struct Registration {
    runtime: Id,
    fd: AsyncFd<Raw>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

/// A wait set registered with the current tokio runtime, for as long as it is borrowed; the
/// registration goes back to the set when this is dropped.
pub(crate) struct TokioWait<'a> {
    registration: Option<Registration>,
    set: &'a WaitSet,
}

impl std::fmt::Debug for TokioWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioWait").finish_non_exhaustive()
    }
}

impl<'a> TokioWait<'a> {
    /// The registration of `set` with the reactor of the tokio runtime this thread runs in, if
    /// it runs in one (`None` otherwise): the one the set keeps if it was made in this runtime,
    /// or a new one. Panics as every tokio I/O type does if that runtime was built without I/O.
    pub(crate) fn register(set: &'a WaitSet) -> Option<io::Result<Self>> {
        let runtime = Handle::try_current().ok()?.id();
        let kept = set.registration().take();
        let registration = match kept {
            Some(kept) if kept.runtime == runtime => kept,
            other => {
                // Another runtime's (deregistered here, from that runtime's reactor).
                drop(other);
                let raw = Raw(set.fd().as_fd().as_raw_fd());
                // SAFETY: the descriptor is the wait set's, which owns it. The registration is
                // held either by a `TokioWait` borrowing the set, or by the set itself in a
                // field dropped before the descriptor's: the descriptor stays open, and refers
                // to the same epoll instance, for as long as the registration exists (`Raw`
                // always returns that same descriptor).
                let fd = unsafe { AsyncFd::register_with_interest(raw, Interest::READABLE) };
                match fd {
                    Ok(fd) => Registration { runtime, fd },
                    Err(e) => return Some(Err(io::Error::from(e))),
                }
            }
        };
        Some(Ok(TokioWait {
            registration: Some(registration),
            set,
        }))
    }

    /// `Ready` once the set became readable since the last `Ready` (perhaps before this call
    /// began: the waiter then looks, and finds nothing, once); `Pending` otherwise, the task
    /// woken when it does.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(registration) = &self.registration else {
            unreachable!("shmrpc bug: a TokioWait without its registration");
        };
        match registration.fd.poll_read_ready(cx) {
            Poll::Ready(Ok(mut guard)) => {
                guard.clear_ready();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for TokioWait<'_> {
    fn drop(&mut self) {
        *self.set.registration() = self.registration.take();
    }
}
