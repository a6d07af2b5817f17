//! Every call into the operating system lives below this module.
//!
//! The rest of the crate sees a few types, one per role in the transport:
//!
//! | role | type | Linux | macOS (compile-checked) | Windows |
//! |---|---|---|---|---|
//! | the rendezvous: a name that one server holds and clients connect to | [`Listener`] | abstract Unix socket (`SOCK_SEQPACKET`) | a stream socket in `/tmp/shmrpc/…`, the name held by `flock` | a named pipe, the name held by a named mutex |
//! | a connection's control channel: messages, descriptors, who is at the other end | [`Stream`] | the accepted or connected socket, `SO_PEERCRED`, `SO_PEERPIDFD`, `SCM_RIGHTS` | the socket, messages framed by length, `LOCAL_PEERCRED`, `LOCAL_PEERPID`, `SCM_RIGHTS` | the pipe instance (message mode, overlapped I/O), the pipe's process ids and their tokens, handles duplicated into the client |
//! | a slot's memory, created by the server and mapped by both sides | [`create_sealed`], [`Mapping`] | `memfd_create` sealed against shrinking and growing, `mmap` | POSIX shared memory, unlinked at once (macOS never resizes it again), `mmap` | a pagefile-backed section (no process can resize it), `MapViewOfFile` |
//! | waking a sleeping process: a client on its answer, a server thread on queued work | [`Bell`], [`Waker`] | a datagram socket pair (each side's end is its own), `eventfd` (in-process only) | datagram socket pairs | an auto-reset event (a handle per side), a manual-reset event |
//! | sleeping until one of several things happens | [`Poller`], [`wait_any`], [`WaitSet`] | `epoll`, `poll`, an epoll set with a timerfd | kqueue (`EV_DISPATCH`), `poll`, a kqueue with `EVFILT_TIMER` | the thread pool's waits, `WaitForMultipleObjects`, thread pool waits and a waitable timer |
//! | a live process, never mistaken for another that reused its pid | [`ProcessHandle`] | pidfd | a kqueue watching for `NOTE_EXIT` (opened from a pid) | process handle |
//! | a process that `fork`s | [`fork_epoch`] | `pthread_atfork` | `pthread_atfork` | (no `fork`) |
//!
//! What the OS hands out for these is an [`Owned`] descriptor (a file descriptor on Linux, a
//! handle on Windows), lent as a [`Borrowed`] one. What Windows lacks yet is listed in its
//! module; what macOS does differently from Linux, in `unix/macos.rs`.

#[cfg(any(target_os = "linux", target_os = "macos"))]
mod unix;
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) use std::os::fd::{BorrowedFd as Borrowed, OwnedFd as Owned};
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use std::os::windows::io::{BorrowedHandle as Borrowed, OwnedHandle as Owned};
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
compile_error!(
    "shmrpc supports Linux, macOS and Windows for now; the OS layer (src/sys) is where a port \
     would start"
);

/// Lends `owned`.
pub(crate) fn borrow(owned: &Owned) -> Borrowed<'_> {
    #[cfg(unix)]
    return std::os::fd::AsFd::as_fd(owned);
    #[cfg(windows)]
    return std::os::windows::io::AsHandle::as_handle(owned);
}
