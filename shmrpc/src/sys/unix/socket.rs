//! The rendezvous and the connections: Unix sockets that keep messages whole, carry
//! descriptors, and report who is at the other end.
//!
//! On Linux, abstract `SOCK_SEQPACKET` sockets: the name lives in the kernel only, gone the
//! moment the last socket holding it closes. On macOS, which has neither, a stream socket in a
//! directory per user, the name held by a lock on a file beside it, and messages framed by
//! length (see `macos`). Either way names are not authenticated (any local user may take one
//! first), so a client checks who holds one before it trusts it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::net::{RecvFlags, Shutdown};

use super::{ProcessHandle, os};

/// Most descriptors one message carries.
pub(crate) const MAX_FDS: usize = 4;

/// Who is at the other end of a connection, as the kernel recorded it when the connection was
/// made (for a client: when it connected; for a server: when it began to listen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// 0 when the process is not visible in this process's pid namespace.
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// A socket holding a service's name and accepting connections. Dropping it frees the name at
/// once (see [`super::release_listener`]), except from a child being spawned at that moment,
/// which holds a copy until its `exec`.
#[derive(Debug)]
pub(crate) struct Listener {
    fd: Option<OwnedFd>,
    entry: Option<usize>,
    name: Box<[u8]>,
    /// Dropped after the socket: what else holds the name.
    _hold: os::Hold,
}

/// The names this process's listeners hold now. A taken name whose socket's credentials name
/// this process, but which is not listed here, is held by a copy of a socket this process gave
/// up: a child spawned at that moment inherited it and drops it at its `exec`.
static HELD: std::sync::Mutex<Vec<Box<[u8]>>> = std::sync::Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<Box<[u8]>>> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether one of this process's listeners holds `name` now.
pub(crate) fn holds_name(name: &[u8]) -> bool {
    held().iter().any(|n| **n == *name)
}

impl Listener {
    /// Takes the name `name`; `AddrInUse` if a socket holds it.
    pub(crate) fn bind(name: &[u8]) -> io::Result<Self> {
        let (fd, hold) = os::listen(name)?;
        let entry = super::register_listener(fd.as_raw_fd());
        let name: Box<[u8]> = name.into();
        held().push(name.clone());
        Ok(Listener {
            fd: Some(fd),
            entry,
            name,
            _hold: hold,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("held until drop").as_fd()
    }

    /// The next waiting connection, if any (never blocks).
    pub(crate) fn accept(&self) -> io::Result<Option<Stream>> {
        Ok(os::accept(self.fd())?.map(Stream::new))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Unlisted first: from here on, this process's own `bind` of the name waits for
            // any copy of the socket to go, rather than report that this process holds it.
            let mut held = held();
            if let Some(i) = held.iter().position(|n| *n == self.name) {
                held.swap_remove(i);
            }
            drop(held);
            super::release_listener(fd, self.entry);
        }
    }
}

/// One end of a connection: a non-blocking socket.
#[derive(Debug)]
pub(crate) struct Stream {
    fd: OwnedFd,
    /// What arrived of a message that is not whole yet (macOS only: Linux keeps messages).
    inbox: os::Inbox,
}

impl Stream {
    fn new(fd: OwnedFd) -> Self {
        Stream {
            fd,
            inbox: os::Inbox::default(),
        }
    }

    /// Connects to the socket holding `name`. `ConnectionRefused` if none does;
    /// `WouldBlock` if its queue of waiting connections is full.
    pub(crate) fn connect(name: &[u8]) -> io::Result<Self> {
        os::connect(name).map(Stream::new)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The socket itself (for the tests' hostile client).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Who is at the other end.
    pub(crate) fn peer_credentials(&self) -> io::Result<Credentials> {
        os::peer_credentials(&self.fd)
    }

    /// The supplementary groups of the process at the other end, as they were when it
    /// connected.
    pub(crate) fn peer_groups(&self) -> io::Result<Vec<u32>> {
        os::peer_groups(&self.fd)
    }

    /// A handle on the process at the other end (whose pid is `pid`); `NotFound` if it is
    /// gone.
    pub(crate) fn peer_process(&self, pid: u32) -> io::Result<ProcessHandle> {
        os::peer_process(&self.fd, pid)
    }

    /// Sends one message with `fds` attached. Never blocks: `WouldBlock` if the other end does
    /// not read; `BrokenPipe` once it closed.
    pub(crate) fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        os::send(&self.fd, bytes, fds)
    }

    /// Receives one message into `buf` (never blocks), appending the descriptors it carried to
    /// `fds` (also when it fails). `Ok(None)`: nothing to read; `Ok(Some(0))`: the other end
    /// closed. A message longer than `buf`, or carrying more than [`MAX_FDS`] descriptors, is an
    /// `InvalidData` error.
    pub(crate) fn recv(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<Option<usize>> {
        os::recv(&self.fd, &self.inbox, buf, fds)
    }

    /// Whether the other end closed. Where [`Interest::Hangup`](super::Interest::Hangup) is
    /// exact (Linux), a wait that reported it has said so already; elsewhere it may also report
    /// a message waiting.
    pub(crate) fn is_closed(&self) -> bool {
        os::is_closed(&self.fd)
    }

    /// Ends the connection for both ends, whatever other processes (a forked child) still hold
    /// a copy of this socket: the other end sees it closed at once.
    pub(crate) fn shutdown(&self) {
        let _ = rustix::net::shutdown(&self.fd, Shutdown::Both);
    }
}

/// One side's end of a pair of connected datagram sockets that only carry wake-ups: the server
/// rings the client's slot through one. Unlike an eventfd, whose blocking mode lives in the
/// open file both sides share (a client could make the server's writes block for ever), each
/// end is a file of its own, and every send and receive says it must not block.
#[derive(Debug)]
pub(crate) struct Bell(OwnedFd);

impl Bell {
    /// A new pair: this end, and the other end to hand over.
    pub(crate) fn pair() -> io::Result<(Self, OwnedFd)> {
        let (mine, theirs) = os::datagram_pair()?;
        // Nothing is ever read from this end: keep its queue from filling with the other's.
        let _ = rustix::net::shutdown(&mine, Shutdown::Read);
        Ok((Bell(mine), theirs))
    }

    /// The end handed over by the other side.
    pub(crate) fn from_fd(fd: OwnedFd) -> Self {
        Bell(fd)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Makes the other end readable. Never blocks: a full queue is readable already.
    pub(crate) fn ring(&self) {
        let _ = rustix::net::send(&self.0, &[1], os::SEND);
    }

    /// Takes one pending ring: a sleeper woken by a ring takes it with one system call (any
    /// further ring, from a rare spurious one, wakes it once more, harmlessly).
    pub(crate) fn take_one(&self) {
        let mut buf = [0u8; 16];
        let _ = rustix::net::recv(&self.0, &mut buf, RecvFlags::DONTWAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(what: &str) -> Vec<u8> {
        format!("shmrpc-test/{what}/{}", std::process::id()).into_bytes()
    }

    #[test]
    fn one_socket_holds_a_name_and_releases_it_when_dropped() {
        let n = name("hold");
        let first = Listener::bind(&n).unwrap();
        assert_eq!(
            Listener::bind(&n).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(first);
        Listener::bind(&n).unwrap();
    }

    #[test]
    fn connecting_to_a_free_name_is_refused() {
        assert_eq!(
            Stream::connect(&name("free")).unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
    }

    #[test]
    fn messages_carry_descriptors_and_credentials() {
        let n = name("talk");
        let listener = Listener::bind(&n).unwrap();
        let client = Stream::connect(&n).unwrap();
        let server = listener.accept().unwrap().unwrap();
        let me = Credentials {
            pid: std::process::id(),
            uid: super::super::euid(),
            gid: rustix::process::getegid().as_raw(),
        };
        assert_eq!(server.peer_credentials().unwrap(), me);
        assert_eq!(client.peer_credentials().unwrap(), me);
        assert!(client.peer_process(me.pid).unwrap().is_alive());

        let waker = super::super::Waker::new().unwrap();
        server.send(b"hello", &[waker.fd()]).unwrap();
        let mut buf = [0u8; 16];
        let mut fds = Vec::new();
        assert_eq!(client.recv(&mut buf, &mut fds).unwrap(), Some(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(fds.len(), 1);
        assert_eq!(client.recv(&mut buf, &mut fds).unwrap(), None);

        // A message longer than the buffer is refused, not cut.
        server.send(&[7u8; 32], &[]).unwrap();
        assert!(client.recv(&mut buf, &mut fds).is_err());

        server.shutdown();
        assert_eq!(client.recv(&mut buf, &mut fds).unwrap(), Some(0));
    }
}
