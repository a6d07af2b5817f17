//! What macOS has in place of Linux's primitives. Compile-checked in CI, not tested: no macOS
//! machine runs the suite, and the README says so.
//!
//! | Linux | macOS |
//! |---|---|
//! | abstract `SOCK_SEQPACKET` socket, freed with its last descriptor | a stream socket at `/tmp/<address>`, in a directory per user (`0700`) or a shared sticky one; the name held by `flock` on `<address>=lock` (`=` is in no service name), which the kernel drops with the holder's last descriptor, however it died; a socket file left behind is removed by the next server |
//! | messages kept whole by the kernel | frames: a length and a descriptor count, then the bytes; a receiver reads exactly one frame's bytes, so nothing waits in a buffer of ours while the socket looks idle |
//! | `SO_PEERCRED`, `SO_PEERGROUPS`, `SO_PEERPIDFD` | `LOCAL_PEERCRED` (user, groups), `LOCAL_PEERPID` (the last process to use the peer's socket); the process handle is opened from the pid, so a pid reused between connecting and opening would be mistaken for the peer |
//! | sealed memfd | POSIX shared memory under a random name, unlinked at once; macOS refuses to resize such an object once sized, which is what the seals give on Linux (a client cannot check it, and trusts the server it identified) |
//! | eventfd, epoll, timerfd | a datagram socket pair, kqueue (`EV_DISPATCH` for once-only events), `EVFILT_TIMER` |
//! | pidfd | a kqueue watching the process for `NOTE_EXIT` (kqueues are not passed on to a forked child: a child never closes one it inherited) |
//! | `SO_PEERGROUPS` | the first 16 groups `LOCAL_PEERCRED` reports (the effective group first); groups macOS resolves in user space are not among them, so `allow_gid` may refuse a member |
//! | `SOCK_CLOEXEC`, `MSG_NOSIGNAL`, `MSG_CMSG_CLOEXEC`, `dup3` | `FD_CLOEXEC` set after the fact (a `fork` and `exec` on another thread in between leaks the descriptor to the child), `SO_NOSIGPIPE`, `dup2` then `FD_CLOEXEC` |

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::event::kqueue::{self, EventFilter, EventFlags, ProcessEvents};
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::{Errno, FdFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, Shutdown, SocketAddrUnix, SocketType,
};

use super::{Credentials, Interest, MAX_FDS};

// ---- Sockets -------------------------------------------------------------------------------

/// Where sockets live: `/tmp/<address>`, e.g. `/tmp/shmrpc/u501/calc` (at most 88 bytes of the
/// 104 a socket address holds).
const ROOT: &str = "/tmp";

/// The lock file of the socket at `<path>` is `<path>=lock`: `=` is in no service name, so no
/// service's socket is another's lock file (with `.lock`, a service `x.lock` would remove the
/// lock of `x` when it binds, and a second `x` could then take the name from a live server).
const LOCK_SUFFIX: &str = "=lock";

/// Makes `fd` close-on-exec and non-blocking; for a socket, also quiet on a closed peer
/// (`SO_NOSIGPIPE`) and with room for a whole message in its buffers.
fn configure(fd: &OwnedFd, socket: bool) -> io::Result<()> {
    rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC)?;
    rustix::io::ioctl_fionbio(fd, true)?;
    if socket {
        use rustix::net::sockopt;
        sockopt::set_socket_nosigpipe(fd, true)?;
        // Two frames of the largest message: a send that fits is never cut short.
        let room = 2 * (crate::protocol::messages::MAX_MESSAGE + HEADER);
        let _ = sockopt::set_socket_send_buffer_size(fd, room);
        let _ = sockopt::set_socket_recv_buffer_size(fd, room);
    }
    Ok(())
}

fn stream_socket() -> io::Result<OwnedFd> {
    let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None)?;
    configure(&fd, true)?;
    Ok(fd)
}

/// The socket's path for `address` (`shmrpc/u<uid>/<name>`, `shmrpc/public/<name>`), its
/// directories made as needed: `u<uid>` of this process's user private to it, the others
/// shared and sticky, as `/tmp` is (nobody removes another's files).
fn path(address: &[u8]) -> io::Result<PathBuf> {
    let address = std::str::from_utf8(address)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a socket name is not UTF-8"))?;
    let path = PathBuf::from(ROOT).join(address);
    let mine = format!("u{}", super::euid());
    let mut dir = PathBuf::from(ROOT);
    let parents: Vec<_> = path.parent().into_iter().flat_map(|p| p.iter()).collect();
    for part in parents.iter().skip(PathBuf::from(ROOT).iter().count()) {
        dir.push(part);
        let private = part.to_str() == Some(mine.as_str());
        let mode = if private { 0o700 } else { 0o1777 };
        match rustix::fs::mkdir(&dir, Mode::from_raw_mode(mode)) {
            // The mode the umask left out.
            Ok(()) => rustix::fs::chmod(&dir, Mode::from_raw_mode(mode))?,
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let stat = rustix::fs::lstat(&dir)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Directory {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is not a directory: remove it", dir.display()),
            ));
        }
        let owner_ok = stat.st_uid == super::euid() || stat.st_uid == 0;
        if private && (stat.st_uid != super::euid() || stat.st_mode & 0o077 != 0) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} must be a directory of this user's only (mode 0700); another user made \
                     it: remove it",
                    dir.display()
                ),
            ));
        }
        if !owner_ok && stat.st_mode & 0o1000 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to another user and is not sticky, so that user could replace \
                     this service's socket: remove it",
                    dir.display()
                ),
            ));
        }
    }
    Ok(path)
}

/// What holds a name besides its socket: a lock on the file beside it (dropped by the kernel
/// with its last descriptor), and the socket file to remove while the lock is still held.
#[derive(Debug)]
pub(super) struct Hold {
    lock: Option<OwnedFd>,
    entry: Option<usize>,
    path: PathBuf,
    /// The fork epoch it was taken in: a forked child leaves the file to its parent.
    epoch: u64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        // While the lock is held: a server that takes the name next makes a file of its own.
        if self.epoch == super::fork_epoch() {
            let _ = rustix::fs::unlink(&self.path);
        }
        if let Some(lock) = self.lock.take() {
            super::release_listener(lock, self.entry);
        }
    }
}

/// Opens the lock file beside a socket (`create`: making it if need be), refusing anything
/// but a regular file (a FIFO put there would block the open, a symbolic link lead elsewhere).
fn open_lock(path: &std::ffi::OsStr, create: bool) -> io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    if create {
        flags |= OFlags::CREATE;
    }
    let lock = rustix::fs::open(path, flags, Mode::from_raw_mode(0o444))?;
    let kind = rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&lock)?.st_mode);
    if kind != rustix::fs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a regular file: another process put it there; remove it",
                std::path::Path::new(path).display()
            ),
        ));
    }
    Ok(lock)
}

/// A socket holding the name `name`, listening; `AddrInUse` if a live socket holds it.
pub(super) fn listen(name: &[u8]) -> io::Result<(OwnedFd, Hold)> {
    let path = path(name)?;
    let mut lock_path = path.clone().into_os_string();
    lock_path.push(LOCK_SUFFIX);
    // Readable by all: whoever comes first takes a name, as with Linux's abstract names; a
    // client checks who holds it.
    let lock = open_lock(&lock_path, true)?;
    match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Err(io::ErrorKind::AddrInUse.into()),
        Err(e) => return Err(e.into()),
    }
    // Registered at once: a forked child must not keep the name.
    let entry = super::register_listener(lock.as_raw_fd());
    let hold = Hold {
        lock: Some(lock),
        entry,
        path,
        epoch: super::fork_epoch(),
    };
    // A socket file left by a server that died.
    match rustix::fs::unlink(&hold.path) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} was left by a server that died, and this user cannot remove it ({e}): \
                     its owner or root must",
                    hold.path.display()
                ),
            ));
        }
    }
    let fd = stream_socket()?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(&hold.path)?)?;
    // Connecting needs write permission on the file, made with the umask's mode: who may
    // connect is the directory's business (and the server's access rules).
    rustix::fs::chmod(&hold.path, Mode::from_raw_mode(0o777))?;
    rustix::net::listen(&fd, libc::SOMAXCONN)?;
    Ok((fd, hold))
}

/// The addresses of the sockets in this user's directory and the public one (a file left by a
/// server that died is among them until the next server of its name removes it: connecting
/// tells).
pub(crate) fn listening() -> io::Result<Vec<String>> {
    let mut found = Vec::new();
    for dir in [format!("u{}", super::euid()), "public".to_owned()] {
        let entries = match std::fs::read_dir(PathBuf::from(ROOT).join("shmrpc").join(&dir)) {
            Ok(entries) => entries,
            // None yet; or a directory someone else made unreadable (anyone may make the
            // public one first): its services cannot be reached either.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            use std::os::unix::fs::FileTypeExt as _;
            if entry.file_type()?.is_socket()
                && let Some(name) = entry.file_name().to_str()
            {
                found.push(format!("shmrpc/{dir}/{name}"));
            }
        }
    }
    Ok(found)
}

/// A new connection to the socket holding `name`: `ConnectionRefused` if none does.
pub(super) fn connect(name: &[u8]) -> io::Result<OwnedFd> {
    let path = PathBuf::from(ROOT).join(
        std::str::from_utf8(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a name is not UTF-8"))?,
    );
    let fd = stream_socket()?;
    match rustix::net::connect(&fd, &SocketAddrUnix::new(&path)?) {
        // Connecting a non-blocking stream socket may complete later: the first send or
        // receive waits for it as for any message.
        Ok(()) | Err(Errno::INPROGRESS) => Ok(fd),
        Err(Errno::NOENT) => Err(io::ErrorKind::ConnectionRefused.into()),
        // A file left by a server that died, or a live server's full queue of waiting
        // connections (macOS refuses rather than asks to retry): the lock tells which.
        Err(Errno::CONNREFUSED) => {
            let mut lock_path = path.into_os_string();
            lock_path.push(LOCK_SUFFIX);
            let held = open_lock(&lock_path, false).is_ok_and(|lock| {
                rustix::fs::flock(&lock, FlockOperation::NonBlockingLockShared)
                    == Err(Errno::WOULDBLOCK)
            });
            Err(if held {
                io::ErrorKind::WouldBlock
            } else {
                io::ErrorKind::ConnectionRefused
            }
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The next waiting connection, if any (never blocks).
pub(super) fn accept(listener: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    match rustix::net::accept(listener) {
        // A client that closed at once leaves a socket macOS refuses options on: dropped.
        Ok(fd) => Ok(configure(&fd, true).is_ok().then_some(fd)),
        Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Bytes before each frame's message: its length and how many descriptors came with it (both
/// `u32`, little-endian).
const HEADER: usize = 8;

/// What arrived of the frame being received (never more: see [`recv`]).
#[derive(Debug, Default)]
pub(super) struct Inbox(Mutex<Partial>);

#[derive(Debug, Default)]
struct Partial {
    bytes: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// Sends one message with `fds` attached, as one frame. Never blocks: `WouldBlock` if the other
/// end does not read; a frame that only partly fits ends the connection (the rest cannot be
/// sent without blocking, and a cut frame would garble every later one).
pub(super) fn send(fd: &OwnedFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let too_long = || io::Error::new(io::ErrorKind::InvalidInput, "a message is too long");
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(
        &u32::try_from(bytes.len())
            .map_err(|_| too_long())?
            .to_le_bytes(),
    );
    header[4..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("too many descriptors for one message"));
    }
    let sent = rustix::net::sendmsg(
        fd,
        &[io::IoSlice::new(&header), io::IoSlice::new(bytes)],
        &mut control,
        SendFlags::DONTWAIT,
    )?;
    if sent != HEADER + bytes.len() {
        let _ = rustix::net::shutdown(fd, Shutdown::Both);
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the other end does not read: a message was cut short, and the connection ended",
        ));
    }
    Ok(())
}

/// Receives one message (see [`super::Stream::recv`]): reads exactly what its frame still
/// lacks, so that a socket that looks idle has nothing of a message waiting here. Descriptors
/// that came go to `fds` with the message, or with the error.
pub(super) fn recv(
    fd: &OwnedFd,
    inbox: &Inbox,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<Option<usize>> {
    let mut partial = inbox.0.lock().unwrap_or_else(PoisonError::into_inner);
    let result = frame(fd, &mut partial, buf);
    if !matches!(result, Ok(None)) {
        fds.append(&mut partial.fds);
        partial.bytes.clear();
    }
    result
}

/// Reads towards the frame `partial` holds the start of: `Ok(None)` while it is not whole.
fn frame(fd: &OwnedFd, partial: &mut Partial, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    loop {
        let have = partial.bytes.len();
        let want = if have < HEADER {
            HEADER
        } else {
            let word = |at: usize| {
                u32::from_le_bytes(partial.bytes[at..at + 4].try_into().expect("4 bytes")) as usize
            };
            let (len, count) = (word(0), word(4));
            if len > buf.len() || count > MAX_FDS {
                return Err(invalid(
                    "a message arrived too long, or with too many descriptors",
                ));
            }
            if have == HEADER + len {
                if partial.fds.len() != count {
                    return Err(invalid(
                        "a message arrived without all its descriptors (is this process out of \
                         file descriptors?)",
                    ));
                }
                buf[..len].copy_from_slice(&partial.bytes[HEADER..]);
                return Ok(Some(len));
            }
            HEADER + len
        };
        partial.bytes.resize(want, 0);
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let result = rustix::net::recvmsg(
            fd,
            &mut [io::IoSliceMut::new(&mut partial.bytes[have..want])],
            &mut control,
            RecvFlags::DONTWAIT,
        );
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                for fd in fds {
                    let _ = rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC);
                    partial.fds.push(fd);
                }
            }
        }
        let msg = match result {
            Ok(msg) => msg,
            Err(e) => {
                partial.bytes.truncate(have);
                return match e {
                    Errno::AGAIN | Errno::INTR => Ok(None),
                    Errno::CONNRESET => Ok(Some(0)),
                    e => Err(e.into()),
                };
            }
        };
        partial.bytes.truncate(have + msg.bytes);
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(invalid(
                "a message arrived without all its descriptors (is this process out of file \
                 descriptors?)",
            ));
        }
        if msg.bytes == 0 {
            return if have == 0 {
                Ok(Some(0))
            } else {
                Err(invalid("the other end closed in the middle of a message"))
            };
        }
    }
}

/// Whether the other end of a connection closed: `poll` reports a hang-up (macOS does from the
/// end of file even with data still queued), or a peek finds the end of file.
pub(super) fn is_closed(fd: &OwnedFd) -> bool {
    let mut poll = [rustix::event::PollFd::new(fd, PollFlags::IN)];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if rustix::event::poll(&mut poll, Some(&zero)).is_ok()
        && poll[0]
            .revents()
            .intersects(PollFlags::HUP | PollFlags::ERR)
    {
        return true;
    }
    let mut byte = [0u8; 1];
    match rustix::net::recv(fd, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((0, _)) => true,
        Ok(_) | Err(Errno::AGAIN | Errno::INTR) => false,
        Err(_) => true,
    }
}

/// `getsockopt(SOL_LOCAL, option)` into `value`.
fn getsockopt<T>(fd: &OwnedFd, option: libc::c_int, value: &mut T) -> io::Result<()> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is valid for writes of `len` bytes, which is all the kernel writes.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_LOCAL,
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

fn xucred(fd: &OwnedFd) -> io::Result<libc::xucred> {
    let mut cred = libc::xucred {
        cr_version: 0,
        cr_uid: 0,
        cr_ngroups: 0,
        cr_groups: [0; 16],
    };
    getsockopt(fd, libc::LOCAL_PEERCRED, &mut cred)?;
    Ok(cred)
}

/// Who is at the other end (`LOCAL_PEERCRED`, `LOCAL_PEERPID`).
pub(super) fn peer_credentials(fd: &OwnedFd) -> io::Result<Credentials> {
    let cred = xucred(fd)?;
    let mut pid: libc::pid_t = 0;
    getsockopt(fd, libc::LOCAL_PEERPID, &mut pid)?;
    Ok(Credentials {
        pid: pid.max(0) as u32,
        uid: cred.cr_uid,
        gid: cred.cr_groups[0],
    })
}

/// The groups of the process at the other end (the first 16, as `LOCAL_PEERCRED` gives them).
pub(super) fn peer_groups(fd: &OwnedFd) -> io::Result<Vec<u32>> {
    let cred = xucred(fd)?;
    let count = (cred.cr_ngroups.max(0) as usize).min(cred.cr_groups.len());
    Ok(cred.cr_groups[..count].to_vec())
}

/// A handle on the process at the other end, from its pid (macOS has no handle bound to the
/// connection). `NotFound` if that process is gone.
pub(super) fn peer_process(_: &OwnedFd, pid: u32) -> io::Result<ProcessHandle> {
    ProcessHandle::open(pid)
}

/// A pair of connected, non-blocking datagram sockets.
pub(super) fn datagram_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        rustix::net::SocketFlags::empty(),
        None,
    )?;
    configure(&a, true)?;
    configure(&b, true)?;
    Ok((a, b))
}

/// Flags of every send: never block (`SIGPIPE` is off per socket: `SO_NOSIGPIPE`).
pub(super) const SEND: SendFlags = SendFlags::DONTWAIT;

// ---- Waking and waiting --------------------------------------------------------------------

/// A datagram socket pair: one side sends to wake the other, which polls its end.
#[derive(Debug)]
pub(crate) struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        let (read, write) = datagram_pair()?;
        Ok(Waker { read, write })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Makes the read end readable. Never blocks: a full queue is readable already.
    pub(crate) fn wake(&self) {
        let _ = rustix::net::send(&self.write, &[1], SEND);
    }

    /// Makes the read end unreadable again, consuming past wake-ups.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 16];
        while rustix::net::recv(&self.read, &mut buf, RecvFlags::DONTWAIT).is_ok() {}
    }
}

/// What `poll` waits for, for `interest`: macOS has no `POLLRDHUP`, so a hang-up is waited for
/// as data is (the end of file is readable).
pub(super) fn poll_flags(_: Interest) -> PollFlags {
    PollFlags::IN
}

/// A kqueue. macOS does not pass one on to a forked child (the child has that descriptor
/// number closed), so a child never closes it: by then the number may name a file of its own.
#[derive(Debug)]
struct Kqueue {
    fd: Option<OwnedFd>,
    epoch: u64,
}

impl Kqueue {
    fn new() -> io::Result<Self> {
        super::watch_forks();
        let fd = kqueue::kqueue()?;
        rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC)?;
        Ok(Kqueue {
            fd: Some(fd),
            epoch: super::fork_epoch(),
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_ref().expect("held until drop").as_fd()
    }
}

impl Drop for Kqueue {
    fn drop(&mut self) {
        if self.epoch != super::fork_epoch() {
            std::mem::forget(self.fd.take());
        }
    }
}

/// A set of descriptors to sleep on (a kqueue), itself readable while one of them is ready.
#[derive(Debug)]
pub(super) struct Set(Kqueue);

/// One ready descriptor of a [`Set`].
pub(super) type Event = kqueue::Event;

impl Set {
    pub(super) fn new() -> io::Result<Self> {
        Ok(Set(Kqueue::new()?))
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd()
    }

    fn change(&self, filter: EventFilter, flags: EventFlags, token: u64) -> io::Result<()> {
        let event = kqueue::Event::new(filter, flags, token as usize as *mut libc::c_void);
        let mut none: Vec<Event> = Vec::new();
        // SAFETY: the kernel drops a descriptor's events when it closes, so no event outlives
        // what it watches; the user data is a token, never dereferenced.
        unsafe {
            kqueue::kevent(
                self.0.fd(),
                &[event],
                rustix::buffer::spare_capacity(&mut none),
                Some(Duration::ZERO),
            )
        }?;
        Ok(())
    }

    /// Watches `fd` (for data or its end of file: `interest` makes no difference here).
    /// `once`: reported once, then not again until [`Set::rearm`]; otherwise reported for as
    /// long as it is ready.
    pub(super) fn add(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        _: Interest,
        once: bool,
    ) -> io::Result<()> {
        let mut flags = EventFlags::ADD | EventFlags::ENABLE;
        if once {
            flags |= EventFlags::from_bits_retain(libc::EV_DISPATCH);
        }
        self.change(EventFilter::Read(fd.as_raw_fd()), flags, token)
    }

    /// Watches a `once` descriptor of the set again (`NotFound` if it is not in the set).
    pub(super) fn rearm(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let flags = EventFlags::ENABLE | EventFlags::from_bits_retain(libc::EV_DISPATCH);
        self.change(EventFilter::Read(fd.as_raw_fd()), flags, token)
    }

    /// Watches `fd` once more, adding it to the set if it is not in it.
    pub(super) fn arm_once(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let flags = EventFlags::ADD | EventFlags::ENABLE | EventFlags::ONESHOT;
        self.change(EventFilter::Read(fd.as_raw_fd()), flags, token)
    }

    pub(super) fn remove(&self, fd: BorrowedFd<'_>) {
        let _ = self.change(EventFilter::Read(fd.as_raw_fd()), EventFlags::DELETE, 0);
    }

    /// Collects the events the set holds: a kqueue keeps an event queued (and itself readable)
    /// until a `kevent` call collects it, even once its descriptor is no longer ready, and one
    /// nested in another kqueue (or tokio's, which watches it edge-triggered) signals again
    /// only once its queue was empty. Whether `token` was among them.
    pub(super) fn settle(&self, token: u64) -> bool {
        let mut seen = false;
        loop {
            let mut buf = [MaybeUninit::<Event>::uninit(); 8];
            // SAFETY: as in `change`: no change is made here, events are only read.
            let got = match unsafe {
                kqueue::kevent(self.0.fd(), &[], &mut buf[..], Some(Duration::ZERO))
            } {
                Ok((events, _)) => {
                    seen |= events.iter().any(|e| self::token(e) == token);
                    events.len()
                }
                Err(_) => 0,
            };
            if got < buf.len() {
                return seen;
            }
        }
    }

    /// Sleeps until a descriptor is ready or `timeout` passes (or a signal came), filling
    /// `events` up to its capacity.
    pub(super) fn wait(
        &self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        events.clear();
        // SAFETY: as in `change`: no change is made here, events are only read.
        match unsafe {
            kqueue::kevent(
                self.0.fd(),
                &[],
                rustix::buffer::spare_capacity(events),
                timeout,
            )
        } {
            Ok(_) | Err(Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The token an event reports.
pub(super) fn token(event: &Event) -> u64 {
    event.udata() as usize as u64
}

/// Whether an event says the other end closed, or an error: nothing more will come.
pub(super) fn hangup(event: &Event) -> bool {
    event
        .flags()
        .intersects(EventFlags::EOF | EventFlags::ERROR)
}

/// A one-shot timer in a [`Set`] (`EVFILT_TIMER`).
#[derive(Debug)]
pub(super) struct Timer(u64);

impl Timer {
    /// A timer reported by `set` with `token` when it expires.
    pub(super) fn new(_: &Set, token: u64) -> io::Result<Self> {
        Ok(Timer(token))
    }

    /// The token the set reports it with.
    pub(super) fn token(&self) -> u64 {
        self.0
    }

    /// Expires `after` from now, rounded up to a whole millisecond (at least one): rustix
    /// passes a duration with no whole milliseconds past the second as whole seconds, which
    /// would drop a fraction of a second and fire early.
    pub(super) fn set(&self, set: &Set, after: Duration) -> io::Result<()> {
        let ms = u64::try_from(after.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u64::MAX)
            .max(1);
        let timer = EventFilter::Timer {
            ident: 0,
            timer: Some(Duration::from_millis(ms)),
        };
        set.change(timer, EventFlags::ADD | EventFlags::ONESHOT, self.0)
    }

    /// Takes its expiry, so that it no longer makes the set ready.
    pub(super) fn take(&self, set: &Set) {
        let timer = EventFilter::Timer {
            ident: 0,
            timer: None,
        };
        let _ = set.change(timer, EventFlags::DELETE, self.0);
    }
}

// ---- Processes -----------------------------------------------------------------------------

/// A handle on one process: a kqueue watching it exit, readable once it has.
#[derive(Debug)]
pub(crate) struct ProcessHandle(Set);

impl ProcessHandle {
    /// A handle on the process with id `pid`, if it exists now (`NotFound` otherwise).
    pub(crate) fn open(pid: u32) -> io::Result<Self> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let set = Set::new()?;
        let exit = EventFilter::Proc {
            pid,
            flags: ProcessEvents::EXIT,
        };
        match set.change(exit, EventFlags::ADD | EventFlags::ONESHOT, 0) {
            Ok(()) => Ok(ProcessHandle(set)),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(io::ErrorKind::NotFound.into()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd()
    }
}

/// Makes descriptor `fd` a copy of `placeholder`, close-on-exec. Async-signal-safe: a `fork`
/// child handler calls it.
pub(super) fn replace_fd(placeholder: RawFd, fd: RawFd) {
    // SAFETY: dup2 and fcntl touch no memory of this process, whatever the numbers; with both
    // open (as every caller has them), `fd` keeps its number, so whatever owns it in Rust still
    // owns an open descriptor.
    unsafe {
        if libc::dup2(placeholder, fd) == fd {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

// ---- Memory --------------------------------------------------------------------------------

/// Creates a shared-memory object of `len` bytes that only the returned descriptor names (it is
/// unlinked at once), and whose size macOS lets nobody change again.
pub(crate) fn create_sealed(_: &str, len: usize) -> io::Result<OwnedFd> {
    use rustix::shm;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        // At most 31 bytes, macOS's limit.
        let name = format!(
            "/shmrpc.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed) % 1_000_000_000_000
        );
        let fd = match shm::open(
            &name,
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        };
        let _ = shm::unlink(&name);
        rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC)?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        return Ok(fd);
    }
}

/// Checks that `fd` holds `len` bytes, as macOS reports a shared-memory object's size: rounded
/// up to whole pages of the process that sized it (16 KiB on Apple silicon, also for an
/// x86_64 process under Rosetta talking to a native one; 4 KiB on Intel).
pub(crate) fn check_sealed(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let size = rustix::fs::fstat(fd)?.st_size;
    let pages = [rustix::param::page_size(), 4096, 16384];
    if pages
        .iter()
        .any(|page| size == (len.div_ceil(*page) * page) as i64)
    {
        Ok(())
    } else {
        super::check_size(fd, len)
    }
}
