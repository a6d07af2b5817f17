//! Processes: handles on them (`os::ProcessHandle`), what happens at `fork`, ids and limits.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use super::os::{self, ProcessHandle};
use super::{Interest, wait_any};

impl ProcessHandle {
    /// Whether the process still runs: its handle is not readable yet.
    pub(crate) fn is_alive(&self) -> bool {
        wait_any(&[(self.fd(), Interest::Readable)], Some(Duration::ZERO)) == 0
    }
}

/// Counts the `fork`s between this process and the one that started the program: 0 in it, one
/// more in each child. Anything that belongs to a process (a connection, a server's threads)
/// records the epoch it was made in, and a forked child, whose epoch differs, never uses it.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Descriptors of listening sockets a forked child must not keep: -1 for a free entry.
static LISTENERS: [AtomicI32; 64] = [const { AtomicI32::new(-1) }; 64];

/// A descriptor of `/dev/null`, copied over each listener in a forked child.
static PLACEHOLDER: AtomicI32 = AtomicI32::new(-1);

/// Runs in the child of every `fork` (as a `pthread_atfork` handler): a new epoch, and every
/// listening socket replaced by `/dev/null`, so that the child, which has none of the server's
/// threads, cannot keep a service's name alive once its parent is gone.
extern "C" fn in_forked_child() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    let placeholder = PLACEHOLDER.load(Ordering::Relaxed);
    if placeholder < 0 {
        return;
    }
    for entry in &LISTENERS {
        let fd = entry.load(Ordering::Relaxed);
        if fd >= 0 {
            // Async-signal-safe, as an atfork child handler must be; both descriptors are open
            // in the child (it inherited the parent's table).
            os::replace_fd(placeholder, fd);
        }
    }
}

/// Registers the fork handler, once per process. Every client and server calls it before it
/// relies on [`fork_epoch`].
pub(crate) fn watch_forks() {
    static HANDLER: Once = Once::new();
    HANDLER.call_once(|| {
        if let Ok(null) = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            // Kept open for the life of the process: the child handler needs it.
            PLACEHOLDER.store(std::os::fd::IntoRawFd::into_raw_fd(null), Ordering::Relaxed);
        }
        // SAFETY: registers a handler that only touches atomics and calls `replace_fd`, which is
        // async-signal-safe as a fork child handler must be; the handler lives for ever.
        unsafe { libc::pthread_atfork(None, None, Some(in_forked_child)) };
    });
}

/// This process's fork epoch (see [`FORK_EPOCH`]): one relaxed load.
#[inline]
pub(crate) fn fork_epoch() -> u64 {
    FORK_EPOCH.load(Ordering::Relaxed)
}

/// Adds a listening socket to those a forked child gives up; its entry, if there was room.
pub(crate) fn register_listener(fd: RawFd) -> Option<usize> {
    watch_forks();
    LISTENERS.iter().position(|entry| {
        entry
            .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

/// Gives up a listening socket for good: its name is free as soon as this returns, even if a
/// `fork` happens meanwhile (the child then inherits `/dev/null`, or gives the socket up itself).
pub(crate) fn release_listener(fd: OwnedFd, entry: Option<usize>) {
    let placeholder = PLACEHOLDER.load(Ordering::Relaxed);
    if placeholder >= 0 {
        // `fd` is owned here and `placeholder` is open for the life of the process; after the
        // call `fd` refers to `/dev/null`, and is closed below.
        os::replace_fd(placeholder, fd.as_raw_fd());
    }
    if let Some(entry) = entry {
        LISTENERS[entry].store(-1, Ordering::Release);
    }
    drop(fd);
}

/// Ends this process at once, after saying why on standard error, without running anything of
/// the parent's it inherited (destructors, `atexit` handlers): for a forked child found where it
/// must not be.
pub(crate) fn exit_forked_child(why: &[&str]) -> ! {
    // Straight to descriptor 2, and without allocating: the standard library's stderr lock,
    // and the allocator's, may be held for ever here, by a thread of the parent that does not
    // exist in the child.
    for part in why.iter().chain(&["\n"]) {
        // SAFETY: writes bytes of a live buffer to descriptor 2; the result does not matter.
        let _ = unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    // SAFETY: _exit has no preconditions; it ends the process without returning.
    unsafe { libc::_exit(70) }
}

/// A descriptor (of `/dev/null`) held in reserve, to be closed when the process runs out.
pub(crate) fn reserve_descriptor() -> Option<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
}

/// Closes descriptors on a thread of its own, for a server that received some it never asked
/// for (only on kernels that cannot refuse them): the last `close` of some blocks for as long
/// as their sender chose (a TCP socket lingering over unsent data), and must not hold up a
/// server thread.
pub(crate) fn dispose(fds: Vec<OwnedFd>) {
    use std::sync::mpsc::{Sender, channel};
    use std::sync::{Mutex, OnceLock};
    if fds.is_empty() {
        return;
    }
    static REAPER: OnceLock<Option<Mutex<Sender<Vec<OwnedFd>>>>> = OnceLock::new();
    let reaper = REAPER.get_or_init(|| {
        let (send, receive) = channel::<Vec<OwnedFd>>();
        std::thread::Builder::new()
            .name("shmrpc-reaper".into())
            .spawn(move || receive.into_iter().for_each(drop))
            .ok()
            .map(|_| Mutex::new(send))
    });
    match reaper {
        Some(send) => {
            let _ = send
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .send(fds);
        }
        // No thread to close them: keeping them open is better than blocking.
        None => std::mem::forget(fds),
    }
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether `e` says this process (`EMFILE`) or the system (`ENFILE`) has no descriptor to
/// spare.
pub(crate) fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Raises this process's soft limit on open descriptors to its hard limit: a server holds a few
/// per connection, and the usual soft limit (1024) would cap it at a few hundred clients.
pub(crate) fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}

/// This process's soft limit on open files.
pub(crate) fn fd_limit() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Test-only: sends `SIGKILL` (`stop == false`) or `SIGSTOP` to the calling thread, so that the
/// process dies or freezes right here. A process-directed signal would be delivered to whichever
/// thread the kernel picks, and this thread could run on for microseconds.
#[cfg(feature = "fault-injection")]
pub(crate) fn signal_this_thread(stop: bool) {
    let signal = if stop { libc::SIGSTOP } else { libc::SIGKILL };
    // SAFETY: raise() has no memory-safety preconditions; it signals the calling thread.
    unsafe { libc::raise(signal) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_handle_sees_its_process_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let handle = ProcessHandle::open(child.id()).unwrap();
        assert!(handle.is_alive());
        child.kill().unwrap();
        let start = std::time::Instant::now();
        assert_eq!(wait_any(&[(handle.fd(), Interest::Readable)], None), 1);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(!handle.is_alive());
        let _ = child.wait();
    }

    #[test]
    fn this_process_is_alive() {
        assert!(ProcessHandle::open(std::process::id()).unwrap().is_alive());
    }
}
