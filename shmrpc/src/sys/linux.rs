//! Linux: POSIX shared memory under `/dev/shm`, futexes, open-file-description locks and
//! `/proc` for process identity.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rustix::fs::{Mode, RenameFlags};
use rustix::io::Errno;
use rustix::shm::OFlags as ShmFlags;

/// Where POSIX shared-memory objects live on Linux (`shm_open` is a thin layer over it).
const SHM_DIR: &str = "/dev/shm";

/// `O_NOFOLLOW`: glibc's `shm_open` adds it, rustix's does not; a symlink planted under our name
/// must never redirect us to another file.
fn no_follow() -> ShmFlags {
    ShmFlags::from_bits_retain(libc::O_NOFOLLOW as u32)
}

/// The path of an object, for messages.
pub(crate) fn object_path(object: &str) -> String {
    format!("{SHM_DIR}/{object}")
}

/// Creates a new shared-memory object that must not exist yet (`O_CREAT | O_EXCL`), with exactly
/// `mode` as its permission bits: the umask is undone with `fchmod`.
pub(crate) fn create_exclusive(object: &str, mode: u32) -> io::Result<OwnedFd> {
    let flags = ShmFlags::CREATE | ShmFlags::EXCL | ShmFlags::RDWR | no_follow();
    let fd = rustix::shm::open(object, flags, Mode::from_raw_mode(mode & 0o777))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))?;
    Ok(fd)
}

/// Opens an existing object for reading and writing.
pub(crate) fn open_existing(object: &str) -> io::Result<OwnedFd> {
    let flags = ShmFlags::RDWR | no_follow();
    Ok(rustix::shm::open(object, flags, Mode::empty())?)
}

/// Removes a name. The memory lives on until the last mapping of it goes away.
pub(crate) fn unlink(object: &str) -> io::Result<()> {
    Ok(rustix::shm::unlink(object)?)
}

/// Gives `from` the name `to`, atomically, failing with `AlreadyExists` if `to` exists.
///
/// This is how a server publishes its object: only a fully initialised, locked object ever
/// appears under the service's name.
pub(crate) fn rename_no_replace(from: &str, to: &str) -> io::Result<()> {
    let dir = shm_dir()?;
    rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE)?;
    Ok(())
}

/// The names in the shared-memory directory that start with `prefix`.
pub(crate) fn list_objects(prefix: &str) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let name = entry?.file_name();
        if let Some(name) = name.to_str()
            && name.starts_with(prefix)
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

fn shm_dir() -> io::Result<std::os::fd::BorrowedFd<'static>> {
    static DIR: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir.as_fd());
    }
    let flags =
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    let fd = rustix::fs::open(SHM_DIR, flags, Mode::empty())?;
    Ok(DIR.get_or_init(|| fd).as_fd())
}

/// Sets the size of a new object and allocates every page now (`fallocate`), so that a full
/// `/dev/shm` fails here, with an error, rather than with `SIGBUS` at some later write.
pub(crate) fn allocate(fd: &OwnedFd, len: u64) -> io::Result<()> {
    rustix::fs::ftruncate(fd, len)?;
    match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, len) {
        // A file system without fallocate: the size alone must do.
        Err(Errno::OPNOTSUPP) => Ok(()),
        other => Ok(other?),
    }
}

/// Size and link count of an open object.
pub(crate) fn stat(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_size as u64, st.st_nlink as u64))
}

/// Owner uid of an open object.
pub(crate) fn owner(fd: &OwnedFd) -> io::Result<u32> {
    Ok(rustix::fs::fstat(fd)?.st_uid)
}

/// An open-file-description lock on the first byte of the object, exclusive.
///
/// The server holds it for as long as it lives; the kernel drops it when the last descriptor of
/// that open file goes away, which is when the process dies, however it dies. Open-file-description
/// locks are used rather than `flock` because they can be *tested* without being taken
/// (`F_OFD_GETLK`): a client probing the server must never make a concurrent `bind` believe the
/// server is still alive.
fn ofd_lock(fd: &OwnedFd, cmd: libc::c_int) -> io::Result<libc::flock64> {
    let mut lock = libc::flock64 {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 1,
        l_pid: 0,
    };
    loop {
        // SAFETY: `fd` is an open descriptor for the duration of the call, and `lock` is a valid,
        // initialised `flock64` that the kernel reads (and, for GETLK, writes) only during it.
        // The F_OFD_* commands take a `struct flock64` on every Linux target.
        let ret = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut lock as *mut libc::flock64) };
        if ret == 0 {
            return Ok(lock);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Takes the liveness lock without waiting. `Ok(false)`: another open file holds it.
pub(crate) fn try_lock(fd: &OwnedFd) -> io::Result<bool> {
    match ofd_lock(fd, libc::F_OFD_SETLK) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether another open file holds the liveness lock, without taking it.
pub(crate) fn is_locked_by_other(fd: &OwnedFd) -> io::Result<bool> {
    let lock = ofd_lock(fd, libc::F_OFD_GETLK)?;
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

/// A shared, read-write mapping of a whole object. Unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; every access to it goes through
// atomics (see `shm::view`), so sharing the pointer between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only hands out atomics and atomic copies.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd`, shared. The caller has checked that the object is at
    /// least `len` bytes long, so no access within the mapping can fault (`SIGBUS`) unless
    /// another process shrinks the object, which any process that may open it for writing can
    /// do (a known limit: the object's mode decides who that is).
    pub(crate) fn new(fd: &OwnedFd, len: usize) -> io::Result<Self> {
        use rustix::mm::{MapFlags, ProtFlags};
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map 0 bytes",
            ));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint, no MAP_FIXED) cannot alias any
        // Rust object; `fd` is open for reading and writing.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping made in `new` and not unmapped since; no
        // reference into it outlives `self` (views borrow the mapping).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// What a futex wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken, or the word no longer held the expected value, or a signal: look again.
    Woken,
    /// The timeout passed.
    TimedOut,
}

/// Sleeps while `word == expected`, at most `timeout` (for ever if `None`).
///
/// The futex is shared (not `FUTEX_PRIVATE`): the word lives in memory mapped by several
/// processes, and the kernel keys the wait on the underlying page.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Wake {
    use rustix::thread::futex;
    let ts = timeout.map(|t| rustix::time::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: t.subsec_nanos().into(),
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Err(Errno::TIMEDOUT) => Wake::TimedOut,
        _ => Wake::Woken,
    }
}

/// Wakes up to `count` waiters on `word` (at most `i32::MAX`: the kernel reads the count as an
/// `int`, and a negative one wakes a single waiter); returns how many were woken.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) -> usize {
    let count = count.min(i32::MAX as u32);
    rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), count).unwrap_or(0)
}

/// This process's id and tag (see [`identity`]), `tag << 32 | pid`; 0 until first asked, and
/// again in a child after `fork`.
static IDENTITY: AtomicU64 = AtomicU64::new(0);
extern "C" fn after_fork_in_child() {
    IDENTITY.store(0, Ordering::Relaxed);
}

/// This process's id and a tag that, with the pid, names it among all processes the machine has
/// run since boot: the low 32 bits of its start time in clock ticks (`/proc/self/stat`, field
/// 22), with the low bit set so that it is never 0 (a tag of 0 names nobody). Cached, and
/// forgotten in the child of a `fork`.
pub(crate) fn identity() -> (u32, u32) {
    let known = IDENTITY.load(Ordering::Relaxed);
    if known != 0 {
        return (known as u32, (known >> 32) as u32);
    }
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        // SAFETY: registers a handler that only stores to atomics, which is async-signal-safe
        // as a fork child handler must be; the handler is a plain function that lives for ever.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    let tag = read_stat(pid).map_or(1, |stat| tag_of(stat.start_time));
    IDENTITY.store((u64::from(tag) << 32) | u64::from(pid), Ordering::Relaxed);
    (pid, tag)
}

/// The monotonic clock, in nanoseconds: the same clock in every process of the machine.
pub(crate) fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// This process's id.
pub(crate) fn pid() -> u32 {
    identity().0
}

fn tag_of(start_time: u64) -> u32 {
    (start_time as u32) | 1
}

/// 64 random bits from the kernel (or, if that fails, from the clock and the pid).
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    match rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => u64::from_ne_bytes(bytes),
        _ => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            (nanos as u64).rotate_left(17) ^ u64::from(pid()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }
    }
}

struct Stat {
    state: u8,
    start_time: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after it start after
    // the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    // `state` is field 3; `starttime` is field 22.
    let start_time = fields.nth(22 - 4)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// Whether a process shown as a zombie still has live threads (its main thread called
/// `pthread_exit` while others run on).
fn has_live_threads(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| tasks.count() > 1)
}

/// Whether the process named by `pid` and `tag` (see [`identity`]) is still running.
///
/// Dead means: a tag of 0, no such process, a zombie with no live thread, or another process
/// that has since been given the same pid (its start time differs). When `/proc` does not tell
/// (hidden by `hidepid`), a process that exists counts as alive.
pub(crate) fn process_alive(pid: u32, tag: u32) -> bool {
    if tag == 0 || !process_exists(pid) {
        return false;
    }
    match read_stat(pid) {
        Some(stat) => {
            let zombie = matches!(stat.state, b'Z' | b'X' | b'x');
            tag_of(stat.start_time) == tag && (!zombie || has_live_threads(pid))
        }
        // Gone between the two looks, or /proc hides other users' processes.
        None => process_exists(pid),
    }
}

/// Whether a process with this pid exists (any process; a zombie counts).
pub(crate) fn process_exists(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|raw| !matches!(rustix::process::test_kill_process(raw), Err(Errno::SRCH)))
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

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
