//! What only Linux has: abstract `SOCK_SEQPACKET` sockets and `SO_PEERCRED`/`SO_PEERPIDFD`,
//! sealed memfds, eventfd, epoll and timerfd, pidfds, `dup3`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFlags, epoll};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use super::{Credentials, Interest, MAX_FDS, timespec, wait_any};

// ---- Sockets -------------------------------------------------------------------------------

/// Abstract names live in the kernel only: nothing on disk, gone the moment the last socket
/// holding one closes (however its process died), and the kernel lets only one socket hold a
/// name.
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

/// What holds a name besides its socket: nothing, here (the kernel frees an abstract name with
/// its socket).
#[derive(Debug)]
pub(super) struct Hold;

/// A socket holding the abstract name `name`, listening; `AddrInUse` if a socket holds it.
pub(super) fn listen(name: &[u8]) -> io::Result<(OwnedFd, Hold)> {
    let fd = seqpacket()?;
    refuse_descriptors(&fd);
    rustix::net::bind(&fd, &address(name)?)?;
    rustix::net::listen(&fd, libc::SOMAXCONN)?;
    Ok((fd, Hold))
}

/// A new connection to the socket holding `name`: `ConnectionRefused` if none does.
pub(super) fn connect(name: &[u8]) -> io::Result<OwnedFd> {
    let fd = seqpacket()?;
    match rustix::net::connect(&fd, &address(name)?) {
        Ok(()) => Ok(fd),
        // A name nobody holds.
        Err(Errno::NOENT) => Err(io::ErrorKind::ConnectionRefused.into()),
        Err(e) => Err(e.into()),
    }
}

/// The next waiting connection, if any (never blocks).
pub(super) fn accept(listener: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    match rustix::net::accept_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
        Ok(fd) => {
            refuse_descriptors(&fd);
            Ok(Some(fd))
        }
        Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `SO_PASSRIGHTS` (Linux 6.16, asm-generic value): when 0, the kernel refuses to send this
/// socket a message carrying descriptors (the sender gets `EPERM`).
const SO_PASSRIGHTS: libc::c_int = 83;

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

/// What a connection keeps between receives: nothing, here (the kernel keeps each message
/// whole).
#[derive(Debug, Default)]
pub(super) struct Inbox(());

/// Sends one message with `fds` attached. Never blocks: `WouldBlock` if the other end does not
/// read; `BrokenPipe` once it closed.
pub(super) fn send(fd: &OwnedFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let sent = rustix::net::sendmsg(
        fd,
        &[io::IoSlice::new(bytes)],
        &mut control,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    )?;
    if sent != bytes.len() {
        return Err(io::Error::other("a message was cut short"));
    }
    Ok(())
}

/// Receives one message (see [`super::Stream::recv`]).
pub(super) fn recv(
    fd: &OwnedFd,
    _: &Inbox,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<Option<usize>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = match rustix::net::recvmsg(
        fd,
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
            "a message arrived too long, or without all its descriptors (is this process out of \
             file descriptors?)",
        ));
    }
    Ok(Some(msg.bytes))
}

/// Whether the other end of a connection closed: [`Interest::Hangup`] is exact here.
pub(super) fn is_closed(fd: &OwnedFd) -> bool {
    wait_any(&[(fd.as_fd(), Interest::Hangup)], Some(Duration::ZERO)) != 0
}

/// Who is at the other end (`SO_PEERCRED`).
pub(super) fn peer_credentials(fd: &OwnedFd) -> io::Result<Credentials> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    getsockopt(fd, libc::SO_PEERCRED, &mut cred)?;
    Ok(Credentials {
        pid: cred.pid.max(0) as u32,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// The supplementary groups of the process at the other end (`SO_PEERGROUPS`), as they were
/// when it connected.
pub(super) fn peer_groups(fd: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * 4) as libc::socklen_t;
        // SAFETY: `groups` is valid for `len` bytes of writes; the kernel writes at most `len`
        // bytes and reports the length it needs (ERANGE) or wrote.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
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
/// (`SO_PEERPIDFD`, Linux 6.5), so that a reused pid is never mistaken for it; on older kernels
/// from its pid. `NotFound` if that process is gone.
pub(super) fn peer_process(fd: &OwnedFd, pid: u32) -> io::Result<ProcessHandle> {
    let mut pidfd: libc::c_int = -1;
    match getsockopt(fd, libc::SO_PEERPIDFD, &mut pidfd) {
        Ok(()) if pidfd >= 0 => {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd) };
            Ok(ProcessHandle(pidfd))
        }
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(io::ErrorKind::NotFound.into()),
        _ => ProcessHandle::open(pid),
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

/// A pair of connected, non-blocking datagram sockets.
pub(super) fn datagram_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

/// Flags of every send: never block, never raise `SIGPIPE`.
pub(super) const SEND: SendFlags = SendFlags::DONTWAIT.union(SendFlags::NOSIGNAL);

/// The addresses of the listening sockets of this network namespace whose names start with
/// `shmrpc/`, from the kernel's table of Unix sockets.
pub(crate) fn listening() -> io::Result<Vec<String>> {
    Ok(listening_in(&std::fs::read_to_string("/proc/net/unix")?))
}

/// The listening `shmrpc/` addresses of a `/proc/net/unix` table.
fn listening_in(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; a listening socket has
            // __SO_ACCEPTCON (0x10000) in its flags.
            let flags = u32::from_str_radix(fields.get(3)?, 16).ok()?;
            if flags & 0x10000 == 0 {
                return None;
            }
            // Abstract names start with `@`; a name may hold spaces: the rest of the line.
            let path = fields.get(7..).filter(|p| !p.is_empty())?.join(" ");
            path.strip_prefix("@shmrpc/")
                .map(|rest| format!("shmrpc/{rest}"))
        })
        .collect()
}

// ---- Waking and waiting --------------------------------------------------------------------

/// An eventfd: one side writes to wake the other, which polls it.
#[derive(Debug)]
pub(crate) struct Waker(OwnedFd);

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Waker(fd))
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Makes the eventfd readable. Never blocks: a counter that is already huge stays readable.
    pub(crate) fn wake(&self) {
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    /// Makes the eventfd unreadable again, consuming past wake-ups.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut buf);
    }
}

/// What `poll` waits for, for `interest`.
pub(super) fn poll_flags(interest: Interest) -> PollFlags {
    match interest {
        Interest::Readable => PollFlags::IN | PollFlags::RDHUP,
        Interest::Hangup => PollFlags::RDHUP,
    }
}

/// A set of descriptors to sleep on (an epoll instance), itself readable while one of them is
/// ready.
#[derive(Debug)]
pub(super) struct Set(OwnedFd);

/// One ready descriptor of a [`Set`].
pub(super) type Event = epoll::Event;

fn epoll_flags(interest: Interest, once: bool) -> epoll::EventFlags {
    let flags = match interest {
        Interest::Readable => epoll::EventFlags::IN | epoll::EventFlags::RDHUP,
        Interest::Hangup => epoll::EventFlags::RDHUP,
    };
    if once {
        flags | epoll::EventFlags::ONESHOT
    } else {
        flags
    }
}

impl Set {
    pub(super) fn new() -> io::Result<Self> {
        Ok(Set(epoll::create(epoll::CreateFlags::CLOEXEC)?))
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Watches `fd`. `once`: reported once, then not again until [`Set::rearm`]; otherwise
    /// reported for as long as it is ready.
    pub(super) fn add(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        interest: Interest,
        once: bool,
    ) -> io::Result<()> {
        Ok(epoll::add(
            &self.0,
            fd,
            epoll::EventData::new_u64(token),
            epoll_flags(interest, once),
        )?)
    }

    /// Watches a `once` descriptor of the set again (`NotFound` if it is not in the set).
    pub(super) fn rearm(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        Ok(epoll::modify(
            &self.0,
            fd,
            epoll::EventData::new_u64(token),
            epoll_flags(Interest::Readable, true),
        )?)
    }

    /// Watches `fd` once more, adding it to the set if it is not in it.
    pub(super) fn arm_once(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        match self.rearm(fd, token) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.add(fd, token, Interest::Readable, true)
            }
            other => other,
        }
    }

    pub(super) fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = epoll::delete(&self.0, fd);
    }

    /// Nothing to collect: epoll finds out afresh whether each descriptor is ready, so the set
    /// is readable only while one is. Never reports `token`.
    pub(super) fn settle(&self, _token: u64) -> bool {
        false
    }

    /// Sleeps until a descriptor is ready or `timeout` passes (or a signal came), filling
    /// `events` up to its capacity.
    pub(super) fn wait(
        &self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        events.clear();
        match epoll::wait(
            &self.0,
            rustix::buffer::spare_capacity(events),
            timeout.map(timespec).as_ref(),
        ) {
            Ok(_) | Err(Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The token an event reports.
pub(super) fn token(event: &Event) -> u64 {
    event.data.u64()
}

/// Whether an event says the other end closed, or an error: nothing more will come.
pub(super) fn hangup(event: &Event) -> bool {
    let flags = event.flags;
    flags.intersects(epoll::EventFlags::HUP | epoll::EventFlags::RDHUP | epoll::EventFlags::ERR)
}

/// A one-shot timer in a [`Set`] (a timerfd in the epoll set).
#[derive(Debug)]
pub(super) struct Timer(OwnedFd, u64);

impl Timer {
    /// A timer reported by `set` with `token` when it expires.
    pub(super) fn new(set: &Set, token: u64) -> io::Result<Self> {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        set.add(fd.as_fd(), token, Interest::Readable, false)?;
        Ok(Timer(fd, token))
    }

    /// The token the set reports it with.
    pub(super) fn token(&self) -> u64 {
        self.1
    }

    /// Expires `after` from now (at least a nanosecond: zero would disarm it).
    pub(super) fn set(&self, _: &Set, after: Duration) -> io::Result<()> {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, timerfd_settime};
        let zero = timespec(Duration::ZERO);
        timerfd_settime(
            &self.0,
            TimerfdTimerFlags::empty(),
            &Itimerspec {
                it_interval: zero,
                it_value: timespec(after.max(Duration::from_nanos(1))),
            },
        )?;
        Ok(())
    }

    /// Takes its expiry, so that it no longer makes the set ready.
    pub(super) fn take(&self, _: &Set) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut buf);
    }
}

// ---- Processes -----------------------------------------------------------------------------

/// A handle on one process (a pidfd): it names that process and no other, even once its pid is
/// reused, and becomes readable when the process exits.
#[derive(Debug)]
pub(crate) struct ProcessHandle(OwnedFd);

impl ProcessHandle {
    /// A handle on the process with id `pid`, if it exists now (`NotFound` otherwise). Only a
    /// fallback: a handle taken from a socket ([`super::Stream::peer_process`]) cannot name the
    /// wrong process.
    pub(crate) fn open(pid: u32) -> io::Result<Self> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            Ok(fd) => Ok(ProcessHandle(fd)),
            Err(Errno::SRCH) => Err(io::ErrorKind::NotFound.into()),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Makes descriptor `fd` a copy of `placeholder`, close-on-exec. Async-signal-safe: a `fork`
/// child handler calls it.
pub(super) fn replace_fd(placeholder: RawFd, fd: RawFd) {
    // SAFETY: dup3 touches no memory of this process, whatever the numbers; with both open (as
    // every caller has them), `fd` keeps its number, so whatever owns it in Rust still owns an
    // open descriptor.
    unsafe { libc::dup3(placeholder, fd, libc::O_CLOEXEC) };
}

// ---- Memory --------------------------------------------------------------------------------

/// The seals every slot carries: `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL` make the object's
/// size fixed for ever: no process holding the descriptor can truncate it, so no access within
/// the size can fault with `SIGBUS`. A client may still punch holes in it
/// (`fallocate(PUNCH_HOLE)`), which read back as zeros, never as a fault.
fn seals() -> SealFlags {
    SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL
}

/// Creates an anonymous shared-memory object of `len` bytes whose size can never change.
pub(crate) fn create_sealed(name: &str, len: usize) -> io::Result<OwnedFd> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // Without MFD_NOEXEC_SEAL, Linux 6.3 and later log a warning for every process; older
    // kernels refuse the flag.
    let fd = match rustix::fs::memfd_create(name, flags | MemfdFlags::NOEXEC_SEAL) {
        Err(Errno::INVAL) => rustix::fs::memfd_create(name, flags)?,
        other => other?,
    };
    rustix::fs::ftruncate(&fd, len as u64)?;
    rustix::fs::fcntl_add_seals(&fd, seals())?;
    Ok(fd)
}

/// Checks that `fd` is a sealed object of exactly `len` bytes, as a server creates them: only
/// then can it be mapped without the risk of a fault.
pub(crate) fn check_sealed(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let have = rustix::fs::fcntl_get_seals(fd)?;
    if !have.contains(seals()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the slot's memory is not sealed against resizing",
        ));
    }
    super::check_size(fd, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_shmrpc_sockets_are_read_from_the_table() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0005 01 101 @shmrpc/u1000/calc\n\
            0000000000000000: 00000002 00000000 00010000 0005 01 102 @shmrpc/public/calc\n\
            0000000000000000: 00000003 00000000 00000000 0005 03 105 @shmrpc/u1000/connected\n\
            0000000000000000: 00000002 00000000 00010000 0005 01 106 @shmrpc/u1000/bad name\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 107 /run/other.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 107 /tmp/shmrpc/u1000/x\n\
            0000000000000000: 00000002 00000000 00010000 0005 01 108\n";
        assert_eq!(
            listening_in(table),
            [
                "shmrpc/u1000/calc",
                "shmrpc/public/calc",
                "shmrpc/u1000/bad name"
            ]
        );
    }

    #[test]
    fn a_sealed_object_cannot_be_resized_by_anyone() {
        let fd = create_sealed("shmrpc-test", 8192).unwrap();
        check_sealed(&fd, 8192).unwrap();
        assert!(check_sealed(&fd, 4096).is_err());
        assert_eq!(rustix::fs::ftruncate(&fd, 100), Err(Errno::PERM));
        assert_eq!(rustix::fs::ftruncate(&fd, 1 << 20), Err(Errno::PERM));
        assert_eq!(
            rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE),
            Err(Errno::PERM)
        );
    }

    #[test]
    fn an_unsealed_object_is_refused() {
        let fd = rustix::fs::memfd_create("plain", MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(check_sealed(&fd, 4096).is_err());
    }
}
