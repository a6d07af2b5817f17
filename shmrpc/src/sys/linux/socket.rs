//! The rendezvous: abstract Unix sockets of type `SOCK_SEQPACKET` (messages keep their bounds,
//! carry descriptors, and the kernel reports who is at the other end).
//!
//! Abstract names live in the kernel only: nothing on disk, gone the moment the last socket
//! holding one closes (however its process died), and the kernel lets only one socket hold a
//! name. They are not authenticated (any local user may bind any name first), so a client
//! checks who holds one before it trusts it.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, Shutdown, SocketAddrUnix, SocketFlags,
    SocketType,
};

use super::ProcessHandle;

/// Most descriptors one message carries.
pub(crate) const MAX_FDS: usize = 4;

/// `SO_PASSRIGHTS` (Linux 6.16, asm-generic value): when 0, the kernel refuses to send this
/// socket a message carrying descriptors (the sender gets `EPERM`).
const SO_PASSRIGHTS: libc::c_int = 83;

/// Who is at the other end of a connection, as the kernel recorded it when the connection was
/// made (for a client: when it connected; for a server: when it began to listen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// 0 when the process is not visible in this process's pid namespace.
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

fn address(name: &[u8]) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(name)?)
}

fn seqpacket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

/// A socket holding a service's name and accepting connections. Dropping it frees the name at
/// once (see [`super::release_listener`]), except from a child being spawned at that moment,
/// which holds a copy until its `exec`.
#[derive(Debug)]
pub(crate) struct Listener {
    fd: Option<OwnedFd>,
    entry: Option<usize>,
    name: Box<[u8]>,
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
    /// Takes the abstract name `name`; `AddrInUse` if a socket holds it.
    pub(crate) fn bind(name: &[u8]) -> io::Result<Self> {
        let fd = seqpacket()?;
        refuse_descriptors(&fd);
        rustix::net::bind(&fd, &address(name)?)?;
        rustix::net::listen(&fd, libc::SOMAXCONN)?;
        let entry = super::register_listener(fd.as_raw_fd());
        let name: Box<[u8]> = name.into();
        held().push(name.clone());
        Ok(Listener {
            fd: Some(fd),
            entry,
            name,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("held until drop").as_fd()
    }

    /// The next waiting connection, if any (never blocks).
    pub(crate) fn accept(&self) -> io::Result<Option<Stream>> {
        match rustix::net::accept_with(self.fd(), SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(fd) => {
                refuse_descriptors(&fd);
                Ok(Some(Stream(fd)))
            }
            Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => Ok(None),
            Err(e) => Err(e.into()),
        }
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

/// One end of a connection: a non-blocking `SOCK_SEQPACKET` socket.
#[derive(Debug)]
pub(crate) struct Stream(OwnedFd);

impl Stream {
    /// Connects to the socket holding `name`. `ConnectionRefused` if none does;
    /// `WouldBlock` if its queue of waiting connections is full.
    pub(crate) fn connect(name: &[u8]) -> io::Result<Self> {
        let fd = seqpacket()?;
        match rustix::net::connect(&fd, &address(name)?) {
            Ok(()) => Ok(Stream(fd)),
            // A name nobody holds.
            Err(Errno::NOENT) => Err(io::ErrorKind::ConnectionRefused.into()),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// The socket itself (for the tests' hostile client).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.0
    }

    /// Who is at the other end (`SO_PEERCRED`).
    pub(crate) fn peer_credentials(&self) -> io::Result<Credentials> {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        getsockopt(&self.0, libc::SO_PEERCRED, &mut cred)?;
        Ok(Credentials {
            pid: cred.pid.max(0) as u32,
            uid: cred.uid,
            gid: cred.gid,
        })
    }

    /// The supplementary groups of the process at the other end (`SO_PEERGROUPS`), as they were
    /// when it connected.
    pub(crate) fn peer_groups(&self) -> io::Result<Vec<u32>> {
        let mut groups = vec![0u32; 64];
        loop {
            let mut len = (groups.len() * 4) as libc::socklen_t;
            // SAFETY: `groups` is valid for `len` bytes of writes; the kernel writes at most
            // `len` bytes and reports the length it needs (ERANGE) or wrote.
            let ret = unsafe {
                libc::getsockopt(
                    self.0.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_PEERGROUPS,
                    groups.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            if ret == 0 {
                groups.truncate(len as usize / 4);
                return Ok(groups);
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ERANGE) && (len as usize) > groups.len() * 4 {
                groups.resize(len as usize / 4, 0);
                continue;
            }
            return Err(err);
        }
    }

    /// A handle on the process at the other end: from the kernel's record of the connection
    /// (`SO_PEERPIDFD`, Linux 6.5), so that a reused pid is never mistaken for it; on older
    /// kernels from its pid. `NotFound` if that process is gone.
    pub(crate) fn peer_process(&self, pid: u32) -> io::Result<ProcessHandle> {
        let mut fd: libc::c_int = -1;
        match getsockopt(&self.0, libc::SO_PEERPIDFD, &mut fd) {
            Ok(()) if fd >= 0 => {
                // SAFETY: the kernel returned a new descriptor that nothing else owns.
                let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                Ok(ProcessHandle::from_fd(fd))
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(io::ErrorKind::NotFound.into()),
            _ => match ProcessHandle::open(pid) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    Err(io::ErrorKind::NotFound.into())
                }
                other => other,
            },
        }
    }

    /// Sends one message with `fds` attached. Never blocks: `WouldBlock` if the other end does
    /// not read; `BrokenPipe` once it closed.
    pub(crate) fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("too many descriptors for one message"));
        }
        let sent = rustix::net::sendmsg(
            &self.0,
            &[io::IoSlice::new(bytes)],
            &mut control,
            SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
        )?;
        if sent != bytes.len() {
            return Err(io::Error::other("a message was cut short"));
        }
        Ok(())
    }

    /// Receives one message into `buf` (never blocks), appending the descriptors it carried to
    /// `fds` (also when it fails). `Ok(None)`: nothing to read; `Ok(Some(0))`: the other end
    /// closed. A message longer than `buf`, or carrying more than [`MAX_FDS`] descriptors, is an
    /// `InvalidData` error.
    pub(crate) fn recv(&self, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<Option<usize>> {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = match rustix::net::recvmsg(
            &self.0,
            &mut [io::IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(Errno::AGAIN | Errno::INTR) => return Ok(None),
            Err(Errno::CONNRESET) => return Ok(Some(0)),
            Err(e) => return Err(e.into()),
        };
        let before = fds.len();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if msg
            .flags
            .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
        {
            fds.truncate(before);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a message arrived too long, or without all its descriptors (is this process out \
                 of file descriptors?)",
            ));
        }
        Ok(Some(msg.bytes))
    }

    /// Whether the other end closed. Where [`Interest::Hangup`](super::Interest::Hangup) is
    /// exact (here), a wait that reported it has said so already; elsewhere it may also report
    /// a message waiting.
    pub(crate) fn is_closed(&self) -> bool {
        super::wait_any(
            &[(self.fd(), super::Interest::Hangup)],
            Some(std::time::Duration::ZERO),
        ) != 0
    }

    /// Ends the connection for both ends, whatever other processes (a forked child) still hold
    /// a copy of this socket: the other end sees it closed at once.
    pub(crate) fn shutdown(&self) {
        let _ = rustix::net::shutdown(&self.0, Shutdown::Both);
    }
}

/// Asks the kernel to refuse any descriptor sent to this socket, where it can (Linux 6.16 and
/// later). A server must never take descriptors from a client: the last `close` of some (a TCP
/// socket lingering over unsent data) blocks for as long as the sender chose. On older kernels
/// the server closes what it receives on a thread of its own ([`super::dispose`]).
fn refuse_descriptors(fd: &OwnedFd) {
    let no: libc::c_int = 0;
    // SAFETY: passes a live `c_int` and its size; an unknown option fails with an error only.
    let _ = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PASSRIGHTS,
            (&no as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
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
        let (mine, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
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
        let _ = rustix::net::send(&self.0, &[1], SendFlags::DONTWAIT | SendFlags::NOSIGNAL);
    }

    /// Takes one pending ring: a sleeper woken by a ring takes it with one system call (any
    /// further ring, from a rare spurious one, wakes it once more, harmlessly).
    pub(crate) fn take_one(&self) {
        let mut buf = [0u8; 16];
        let _ = rustix::net::recv(&self.0, &mut buf, RecvFlags::DONTWAIT);
    }

    /// Takes every pending ring, so that the end is not readable any more.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 16];
        for _ in 0..64 {
            match rustix::net::recv(&self.0, &mut buf, RecvFlags::DONTWAIT) {
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

/// `getsockopt(SOL_SOCKET, option)` into `value`.
fn getsockopt<T>(fd: &OwnedFd, option: libc::c_int, value: &mut T) -> io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is valid for writes of `len` bytes, which is all the kernel writes.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (value as *mut T).cast(),
            &mut len,
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
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
