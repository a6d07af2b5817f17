//! Every call into the operating system lives below this module.
//!
//! The rest of the crate sees a few types, one per role in the transport:
//!
//! | role | type | Linux | Windows |
//! |---|---|---|---|
//! | the rendezvous: a name that one server holds and clients connect to | [`Listener`] | abstract Unix socket (`SOCK_SEQPACKET`) | not yet |
//! | a connection's control channel: messages, descriptors, who is at the other end | [`Stream`] | the accepted or connected socket, `SO_PEERCRED`, `SO_PEERPIDFD`, `SCM_RIGHTS` | not yet |
//! | a slot's memory, created by the server and mapped by both sides | [`create_sealed`], [`Mapping`] | `memfd_create` sealed against shrinking and growing, `mmap` | a pagefile-backed section (no process can resize it), `MapViewOfFile` |
//! | waking a sleeping process: a client on its answer, a server thread on queued work | [`Bell`], [`Waker`] | a datagram socket pair (each side's end is its own), `eventfd` (in-process only) | -, a manual-reset event |
//! | sleeping until one of several things happens | [`Poller`], [`wait_any`] | `epoll`, `poll` | -, `WaitForMultipleObjects` |
//! | a live process, never mistaken for another that reused its pid | [`ProcessHandle`] | pidfd | process handle |
//! | a process that `fork`s | [`fork_epoch`] | `pthread_atfork` | (no `fork`) |
//!
//! What the OS hands out for these is an [`Owned`] descriptor (a file descriptor on Linux, a
//! handle on Windows), lent as a [`Borrowed`] one.
//!
//! On Windows the local transport is not built yet (the rows marked "not yet"): binding or
//! connecting a name fails with an error that says so, and everything else (the data layer,
//! interfaces, the remote seam) works. A macOS port would use a Unix socket in a private
//! directory, POSIX shared memory and a pipe for wake-ups.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(target_os = "linux")]
pub(crate) use std::os::fd::{BorrowedFd as Borrowed, OwnedFd as Owned};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use std::os::windows::io::{BorrowedHandle as Borrowed, OwnedHandle as Owned};
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(target_os = "linux", windows)))]
compile_error!(
    "shmrpc supports Linux (and, partly, Windows) for now; the OS layer (src/sys) is where a \
     port would start"
);

/// Lends `owned`.
pub(crate) fn borrow(owned: &Owned) -> Borrowed<'_> {
    #[cfg(target_os = "linux")]
    return std::os::fd::AsFd::as_fd(owned);
    #[cfg(windows)]
    return std::os::windows::io::AsHandle::as_handle(owned);
}
