//! A wait set registered with the reactor of the tokio runtime the calling task runs in (the
//! `tokio` feature): an async call that must sleep is then woken by the runtime itself, with no
//! thread of shmrpc's in between.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::WaitSet;

/// A wait set's descriptor, borrowed (tokio's `AsyncFd` never closes what it holds).
struct Raw(RawFd);

impl AsRawFd for Raw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A wait set registered with the current tokio runtime, for as long as it is borrowed.
pub(crate) struct TokioWait<'a> {
    fd: AsyncFd<Raw>,
    _set: PhantomData<&'a WaitSet>,
}

impl std::fmt::Debug for TokioWait<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioWait").finish_non_exhaustive()
    }
}

impl<'a> TokioWait<'a> {
    /// Registers `set` with the reactor of the tokio runtime this thread runs in, if it runs in
    /// one (`None` otherwise). Panics as every tokio I/O type does if that runtime was built
    /// without I/O.
    pub(crate) fn register(set: &'a WaitSet) -> Option<io::Result<Self>> {
        tokio::runtime::Handle::try_current().ok()?;
        let raw = Raw(set.fd().as_fd().as_raw_fd());
        // SAFETY: the descriptor is the wait set's, which owns it and outlives `'a`; the
        // returned value borrows the set for `'a`, so the descriptor stays open, and refers to
        // the same epoll instance, for as long as the registration exists (`Raw` always
        // returns that same descriptor).
        let fd = unsafe { AsyncFd::register_with_interest(raw, Interest::READABLE) };
        Some(
            fd.map(|fd| TokioWait {
                fd,
                _set: PhantomData,
            })
            .map_err(io::Error::from),
        )
    }

    /// `Ready` once the set became readable since the last `Ready`; `Pending` otherwise, the
    /// task woken when it does.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.fd.poll_read_ready(cx) {
            Poll::Ready(Ok(mut guard)) => {
                guard.clear_ready();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}
