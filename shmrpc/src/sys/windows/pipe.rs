//! The rendezvous and connections: a named pipe per service name, in message mode, with
//! overlapped I/O so that nothing blocks; a named mutex says who holds the name.
//!
//! A pipe name can be created again by anyone while instances of it exist (and Wine ignores
//! `FILE_FLAG_FIRST_PIPE_INSTANCE`), so the name is held by a mutex instead: the first process
//! to create `Local\shmrpc/u<uid>/<name>` holds it, until its last handle closes, however its
//! process died. A client still checks who serves the pipe it opened, as on Linux. Both names
//! are encoded (see [`object_name`]): Windows would otherwise fold names that differ only by
//! case or by trailing dots into one pipe.
//!
//! A message is framed as the number of handles it carries (u32, little-endian), their values
//! in the receiver's process (u64 each), then its bytes. Only a server sends handles: it
//! duplicates them into the client's process, which it opened when the client connected. A
//! server never takes handles from a client (their values mean nothing in the server's
//! process): a message that claims some ends the connection.

use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

use windows_sys::Win32::Foundation::{
    DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_ACCESS_DENIED,
    ERROR_ALREADY_EXISTS, ERROR_BROKEN_PIPE, ERROR_FILE_NOT_FOUND, ERROR_IO_INCOMPLETE,
    ERROR_IO_PENDING, ERROR_MORE_DATA, ERROR_NO_DATA, ERROR_OPERATION_ABORTED, ERROR_PIPE_BUSY,
    ERROR_PIPE_CONNECTED, ERROR_PIPE_NOT_CONNECTED, GENERIC_READ, GENERIC_WRITE, GetLastError,
    HANDLE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX, ReadFile, SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT, WriteFile,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, GetNamedPipeClientProcessId,
    GetNamedPipeServerProcessId, PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_MESSAGE, PIPE_UNLIMITED_INSTANCES, PIPE_WAIT, PeekNamedPipe, SetNamedPipeHandleState,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, CreateMutexW, GetCurrentProcess, OpenProcess, PROCESS_DUP_HANDLE,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, ResetEvent, SetEvent,
    WaitForSingleObject,
};

use super::{ProcessHandle, owned, raw};
use crate::sys::{Borrowed, Owned, borrow};

/// Most handles one message carries.
pub(crate) const MAX_FDS: usize = 4;

/// The largest message: the protocol's, with its frame.
const FRAME_MAX: usize = crate::protocol::messages::MAX_MESSAGE + 4 + 8 * MAX_FDS;

/// Who is at the other end of a connection: its process id, and the relative ids of its
/// user and primary group (see [`super::euid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A NUL-terminated UTF-16 string.
fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// The name of a service's pipe and mutex for the address `name` (`shmrpc/u<uid>/<service>`):
/// a capital letter becomes `^` and the letter in lower case, a dot `^_`. Windows compares
/// pipe names without regard to case and drops or folds dots in a path (`calc.` is `calc`, and
/// `..` climbs), so that `Calc`, `calc` and `calc.`, three names, would share one pipe; none
/// of the encoded names differ only by case, and none has a dot. `^` is no name's character.
fn object_name(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for &b in name {
        match b {
            b'A'..=b'Z' => {
                out.push('^');
                out.push(char::from(b.to_ascii_lowercase()));
            }
            b'.' => out.push_str("^_"),
            b'\\' => out.push('_'),
            b => out.push(char::from(b)),
        }
    }
    out
}

/// The address an object's name encodes ([`object_name`]'s inverse); `None` if it encodes none.
fn address_of(object: &str) -> Option<String> {
    let mut out = String::with_capacity(object.len());
    let mut chars = object.chars();
    while let Some(c) = chars.next() {
        match c {
            '^' => match chars.next()? {
                '_' => out.push('.'),
                c @ 'a'..='z' => out.push(c.to_ascii_uppercase()),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

fn pipe_path(name: &[u8]) -> Vec<u16> {
    wide(&format!(r"\\.\pipe\{}", object_name(name)))
}

fn mutex_name(name: &[u8]) -> Vec<u16> {
    wide(&format!(r"Local\{}", object_name(name)))
}

fn last_error_code() -> u32 {
    // SAFETY: reads this thread's last error; no preconditions.
    unsafe { GetLastError() }
}

/// A new unnamed event, manual-reset, not set.
fn event() -> io::Result<Owned> {
    // SAFETY: no attributes, no name.
    owned(unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) })
}

/// An overlapped operation's state, at an address that does not move while the system may
/// write to it.
struct Overlapped(Box<OVERLAPPED>);

impl Overlapped {
    fn new(event: &Owned) -> Self {
        let mut ov: Box<OVERLAPPED> = Box::default();
        ov.hEvent = raw(borrow(event));
        Overlapped(ov)
    }
}

// SAFETY: the OVERLAPPED holds plain integers and the handle of an event this process owns; it
// is only touched under the mutex of its owner (and by the system during the operation).
unsafe impl Send for Overlapped {}

/// Waits for the operation on `pipe` that `ov` tracks to end, cancelling it first: afterwards
/// the system no longer writes to `ov` or its buffer.
fn cancel(pipe: &Owned, ov: &Overlapped) {
    let mut n = 0u32;
    // SAFETY: `ov` is the OVERLAPPED of an operation on `pipe` (or of none: then both calls
    // fail harmlessly); waiting makes sure it is over before `ov` can be freed.
    unsafe {
        CancelIoEx(raw(borrow(pipe)), &*ov.0);
        GetOverlappedResult(raw(borrow(pipe)), &*ov.0, &mut n, 1);
    }
}

/// The names this process's listeners hold now.
static HELD: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());

/// Whether one of this process's listeners holds `name` now.
pub(crate) fn holds_name(name: &[u8]) -> bool {
    lock(&HELD).iter().any(|n| **n == *name)
}

/// The names held now by servers of this session: the names of the mutexes that hold them
/// (`shmrpc/u<user>/<name>`, `shmrpc/public/<name>`), read from the session's directory of
/// named objects. A mutex is gone with its holder's last handle, however it died. A server of
/// another session (a Windows service, in session 0) is not found here, though its pipe can be
/// reached. (Listing the pipes, `\\.\pipe\*`, would also list a squatter's; and Wine cannot
/// list them.)
pub(crate) fn listening() -> io::Result<Vec<String>> {
    use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
    use windows_sys::Wdk::Storage::FileSystem::{NtOpenDirectoryObject, NtQueryDirectoryObject};
    use windows_sys::Wdk::System::SystemServices::DIRECTORY_QUERY;
    use windows_sys::Win32::Foundation::UNICODE_STRING;
    use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
    use windows_sys::Win32::System::Threading::GetCurrentProcessId;

    /// One entry of a directory of objects, as `NtQueryDirectoryObject` returns them (a
    /// documented layout that windows-sys does not declare).
    #[repr(C)]
    struct Entry {
        name: UNICODE_STRING,
        type_name: UNICODE_STRING,
    }
    const NO_MORE_ENTRIES: i32 = 0x8000_001A_u32 as i32;
    let failed = |what: &str, status: i32| {
        io::Error::other(format!(
            "cannot {what} the named objects of this session (NTSTATUS {status:#010x})"
        ))
    };

    let mut session = 0u32;
    // SAFETY: `session` is writable for the call.
    if unsafe { ProcessIdToSessionId(GetCurrentProcessId(), &mut session) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // `Local\` names live here (in session 0, in the global directory).
    let path = if session == 0 {
        r"\BaseNamedObjects".to_owned()
    } else {
        format!(r"\Sessions\{session}\BaseNamedObjects")
    };
    let mut path: Vec<u16> = path.encode_utf16().collect();
    let bytes = (path.len() * 2) as u16;
    let name = UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: path.as_mut_ptr(),
    };
    let attributes = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: std::ptr::null_mut(),
        ObjectName: &name,
        Attributes: 0,
        SecurityDescriptor: std::ptr::null(),
        SecurityQualityOfService: std::ptr::null(),
    };
    let mut handle: HANDLE = std::ptr::null_mut();
    // SAFETY: `handle` is writable; `attributes` and the name it points to live for the call.
    let status = unsafe { NtOpenDirectoryObject(&mut handle, DIRECTORY_QUERY, &attributes) };
    if status < 0 {
        return Err(failed("open", status));
    }
    let directory = super::owned(handle)?;

    // Entries, then the strings they point to, in this buffer (u64s: aligned for both), large
    // enough for the longest name (32,767 characters) and grown until the whole directory fits
    // in one read, one consistent view (reading on from an entry's index could skip one if an
    // object before it went away meanwhile). Wine implements one entry per call only: there,
    // entry by entry.
    const NOT_IMPLEMENTED: i32 = 0xC000_0002_u32 as i32;
    const MORE_ENTRIES: i32 = 0x105;
    const LARGEST: usize = 16 << 20;
    let mut buffer = vec![0u64; 9 * 1024];
    let mut context = 0u32;
    let mut found = Vec::new();
    let mut one_by_one = false;
    let mut first = true;
    loop {
        let mut returned = 0u32;
        // SAFETY: `buffer` is writable for its whole length, `context` and `returned` are
        // writable; the directory handle is open.
        let status = unsafe {
            NtQueryDirectoryObject(
                raw(borrow(&directory)),
                buffer.as_mut_ptr().cast(),
                (buffer.len() * 8) as u32,
                one_by_one,
                first,
                &mut context,
                &mut returned,
            )
        };
        if status == NOT_IMPLEMENTED && !one_by_one {
            one_by_one = true;
            continue;
        }
        if status == MORE_ENTRIES && first && !one_by_one && buffer.len() * 8 < LARGEST {
            found.clear();
            buffer = vec![0u64; buffer.len() * 4];
            continue;
        }
        first = false;
        if status == NO_MORE_ENTRIES {
            return Ok(found);
        }
        if status < 0 {
            return Err(failed("read", status));
        }
        let span = buffer.as_ptr_range();
        let (start, end) = (span.start as usize, span.end as usize);
        // A string the system wrote into the buffer, checked to lie inside it.
        let text = |s: &UNICODE_STRING| -> Option<String> {
            let at = s.Buffer as usize;
            let len = usize::from(s.Length) / 2;
            if at < start
                || !at.is_multiple_of(2)
                || at.checked_add(len * 2).is_none_or(|last| last > end)
            {
                return None;
            }
            // SAFETY: `len` u16s at `at`, inside `buffer`, which nothing else writes now.
            let units = unsafe { std::slice::from_raw_parts(s.Buffer.cast_const(), len) };
            String::from_utf16(units).ok()
        };
        let entries = buffer.as_ptr().cast::<Entry>();
        let most = if one_by_one {
            1
        } else {
            buffer.len() * 8 / size_of::<Entry>()
        };
        for i in 0..most {
            // SAFETY: entry `i` lies inside `buffer` (i < most), which is aligned for it; its
            // fields are plain numbers and pointers, valid for any bits.
            let entry = unsafe { &*entries.add(i) };
            // The list ends with an empty entry.
            if entry.name.Length == 0 {
                break;
            }
            if text(&entry.type_name).as_deref() == Some("Mutant")
                && let Some(name) = text(&entry.name)
                && name.starts_with("shmrpc/")
                && let Some(address) = address_of(&name)
            {
                found.push(address);
            }
        }
        if !one_by_one && status != MORE_ENTRIES {
            return Ok(found);
        }
    }
}

/// A service's name, held, and the pipe instance waiting for the next client.
#[derive(Debug)]
pub(crate) struct Listener {
    /// Holds the name for as long as it is open.
    _mutex: Owned,
    name: Box<[u8]>,
    path: Vec<u16>,
    /// Set when a client connected to the waiting instance (the connect's event).
    ready: Owned,
    waiting: Mutex<Waiting>,
}

struct Waiting {
    pipe: Option<Owned>,
    ov: Overlapped,
    /// The client connected before the instance started waiting.
    connected: bool,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Takes `name`; `AddrInUse` if a process holds it.
    pub(crate) fn bind(name: &[u8]) -> io::Result<Self> {
        let mutex_name = mutex_name(name);
        // SAFETY: a named mutex, not owned; the name is NUL-terminated.
        let mutex = unsafe { CreateMutexW(std::ptr::null(), 0, mutex_name.as_ptr()) };
        let existed = last_error_code() == ERROR_ALREADY_EXISTS;
        let mutex = owned(mutex)?;
        if existed {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let ready = event()?;
        let ov = Overlapped::new(&ready);
        let listener = Listener {
            _mutex: mutex,
            name: name.into(),
            path: pipe_path(name),
            ready,
            waiting: Mutex::new(Waiting {
                pipe: None,
                ov,
                connected: false,
            }),
        };
        listener.wait_next(&mut lock(&listener.waiting), true)?;
        lock(&HELD).push(listener.name.clone());
        Ok(listener)
    }

    /// Makes a new instance of the pipe and waits for a client on it.
    fn wait_next(&self, waiting: &mut Waiting, first: bool) -> io::Result<()> {
        let first = if first {
            FILE_FLAG_FIRST_PIPE_INSTANCE
        } else {
            0
        };
        // SAFETY: the path is NUL-terminated; default security (the creator's user, SYSTEM and
        // administrators may connect to read and write).
        let pipe = unsafe {
            CreateNamedPipeW(
                self.path.as_ptr(),
                PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | first,
                PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                PIPE_UNLIMITED_INSTANCES,
                FRAME_MAX as u32,
                FRAME_MAX as u32,
                0,
                std::ptr::null(),
            )
        };
        let pipe = match owned(pipe) {
            Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) => {
                // Windows: another process made the first instance of this pipe.
                return Err(io::ErrorKind::AddrInUse.into());
            }
            other => other?,
        };
        waiting.connected = false;
        // Not signalled until a client comes (an earlier client's connect set it).
        // SAFETY: a live event this listener owns.
        unsafe { ResetEvent(raw(borrow(&self.ready))) };
        loop {
            // SAFETY: `ov` stays at its address (boxed) and is not reused until this operation
            // ends (see `accept` and `drop`).
            let ok = unsafe { ConnectNamedPipe(raw(borrow(&pipe)), &mut *waiting.ov.0) };
            if ok == 0 {
                match last_error_code() {
                    ERROR_IO_PENDING => {}
                    ERROR_PIPE_CONNECTED => {
                        waiting.connected = true;
                        // SAFETY: a live event this listener owns.
                        unsafe { SetEvent(raw(borrow(&self.ready))) };
                    }
                    ERROR_NO_DATA => {
                        // A client connected and left before the wait began: free the instance
                        // for the next one.
                        // SAFETY: a live pipe handle of this listener.
                        unsafe { DisconnectNamedPipe(raw(borrow(&pipe))) };
                        continue;
                    }
                    _ => {
                        let e = io::Error::last_os_error();
                        // No instance waits now: signalled, so that the next `accept` tries
                        // again (reset above, nothing else would ever set it, and the name
                        // would be dead for good).
                        // SAFETY: a live event this listener owns.
                        unsafe { SetEvent(raw(borrow(&self.ready))) };
                        return Err(e);
                    }
                }
            }
            break;
        }
        waiting.pipe = Some(pipe);
        Ok(())
    }

    /// Signalled while a client waits to be accepted.
    pub(crate) fn fd(&self) -> Borrowed<'_> {
        borrow(&self.ready)
    }

    /// The next waiting connection, if any (never blocks).
    pub(crate) fn accept(&self) -> io::Result<Option<Stream>> {
        let mut waiting = lock(&self.waiting);
        let Some(pipe) = &waiting.pipe else {
            // A failed attempt at a new instance: try again.
            self.wait_next(&mut waiting, false)?;
            return Ok(None);
        };
        if !waiting.connected {
            let mut n = 0u32;
            // SAFETY: `ov` tracks the connect on `pipe`; no wait.
            let ok = unsafe { GetOverlappedResult(raw(borrow(pipe)), &*waiting.ov.0, &mut n, 0) };
            if ok == 0 {
                if last_error_code() == ERROR_IO_INCOMPLETE {
                    return Ok(None);
                }
                // The client came and went: wait on a fresh instance, made before the old one
                // closes (the name never vanishes while the listener lives).
                let old = waiting.pipe.take();
                let next = self.wait_next(&mut waiting, false);
                drop(old);
                next?;
                return Ok(None);
            }
        }
        let pipe = waiting.pipe.take().expect("checked above");
        let next = self.wait_next(&mut waiting, false);
        let stream = match Stream::accepted(pipe) {
            Ok(stream) => Some(stream),
            // The client left already.
            Err(e) if e.raw_os_error().is_some_and(|code| ended(code as u32)) => None,
            Err(e) => return Err(e),
        };
        next?;
        Ok(stream)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut held = lock(&HELD);
        if let Some(i) = held.iter().position(|n| *n == self.name) {
            held.swap_remove(i);
        }
        drop(held);
        let waiting = lock(&self.waiting);
        // A connect is in progress unless a client connected before it could start.
        if let Some(pipe) = &waiting.pipe
            && !waiting.connected
        {
            cancel(pipe, &waiting.ov);
        }
    }
}

/// One end of a connection: a pipe instance in message mode, with a read always in progress
/// (its event is the stream's readiness).
#[derive(Debug)]
pub(crate) struct Stream {
    pipe: Owned,
    /// Set when the read in progress ended: a message, or the end of the connection.
    readable: Owned,
    reading: Mutex<Reading>,
    /// Serialises writes (one OVERLAPPED and event for them).
    writing: Mutex<Overlapped>,
    written: Owned,
    /// The process at the other end.
    peer_pid: u32,
    /// A server's end (accepted), not a client's: it never takes handles from its peer.
    server: bool,
    /// On a server's end: the client's process, to duplicate handles into, if it could be
    /// opened (a client may deny it: it then gets no slot).
    target: Option<Owned>,
}

struct Reading {
    ov: Overlapped,
    buf: Box<[u8]>,
    /// The connection ended (or failed): nothing more will be read.
    ended: bool,
    /// A read was started and its result not taken yet: the system may still write to `ov`
    /// and `buf`.
    outstanding: bool,
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Overlapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlapped").finish_non_exhaustive()
    }
}

/// Whether a pipe error means the other end is gone.
fn ended(code: u32) -> bool {
    matches!(
        code,
        ERROR_BROKEN_PIPE | ERROR_PIPE_NOT_CONNECTED | ERROR_NO_DATA | ERROR_OPERATION_ABORTED
    )
}

impl Stream {
    fn new(pipe: Owned, peer_pid: u32, server: bool, target: Option<Owned>) -> io::Result<Self> {
        let readable = event()?;
        let written = event()?;
        let stream = Stream {
            reading: Mutex::new(Reading {
                ov: Overlapped::new(&readable),
                buf: vec![0u8; FRAME_MAX].into_boxed_slice(),
                ended: false,
                outstanding: false,
            }),
            writing: Mutex::new(Overlapped::new(&written)),
            pipe,
            readable,
            written,
            peer_pid,
            server,
            target,
        };
        stream.start_read(&mut lock(&stream.reading));
        Ok(stream)
    }

    /// A server's end of a connection a client just made.
    fn accepted(pipe: Owned) -> io::Result<Self> {
        let mut pid = 0u32;
        // SAFETY: a live pipe handle; `pid` is written.
        if unsafe { GetNamedPipeClientProcessId(raw(borrow(&pipe)), &mut pid) } == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: asks for a new handle; no pointers.
        let target = owned(unsafe {
            OpenProcess(
                PROCESS_DUP_HANDLE | PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
                0,
                pid,
            )
        })
        .ok();
        Stream::new(pipe, pid, true, target)
    }

    /// Connects to the pipe of `name`. `ConnectionRefused` if nobody serves it; `WouldBlock`
    /// if every instance is taken (the server has not made the next one yet).
    pub(crate) fn connect(name: &[u8]) -> io::Result<Self> {
        let path = pipe_path(name);
        // SAFETY: the path is NUL-terminated; no attributes or template. Identification only:
        // the server may learn who the client is, never act as it.
        let pipe = unsafe {
            CreateFileW(
                path.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                std::ptr::null_mut(),
            )
        };
        let pipe = match owned(pipe) {
            Ok(pipe) => pipe,
            Err(e) => {
                return Err(match e.raw_os_error().map(|c| c as u32) {
                    Some(ERROR_FILE_NOT_FOUND) => io::ErrorKind::ConnectionRefused.into(),
                    Some(ERROR_PIPE_BUSY) => io::ErrorKind::WouldBlock.into(),
                    _ => e,
                });
            }
        };
        let mode = PIPE_READMODE_MESSAGE;
        // SAFETY: a live pipe handle; `mode` is read.
        if unsafe {
            SetNamedPipeHandleState(
                raw(borrow(&pipe)),
                &mode,
                std::ptr::null(),
                std::ptr::null(),
            )
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        let mut pid = 0u32;
        // SAFETY: a live pipe handle; `pid` is written.
        if unsafe { GetNamedPipeServerProcessId(raw(borrow(&pipe)), &mut pid) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Stream::new(pipe, pid, false, None)
    }

    /// Starts the next read, unless the connection ended.
    fn start_read(&self, reading: &mut Reading) {
        if reading.ended {
            return;
        }
        // SAFETY: a live event this stream owns: not signalled until this read ends.
        unsafe { ResetEvent(raw(borrow(&self.readable))) };
        reading.outstanding = true;
        // SAFETY: `buf` and `ov` are boxed (stable addresses) and not touched again until this
        // read ended (`recv` checks, `drop` cancels and waits).
        let ok = unsafe {
            ReadFile(
                raw(borrow(&self.pipe)),
                reading.buf.as_mut_ptr(),
                reading.buf.len() as u32,
                std::ptr::null_mut(),
                &mut *reading.ov.0,
            )
        };
        if ok == 0 {
            let code = last_error_code();
            if code != ERROR_IO_PENDING && code != ERROR_MORE_DATA {
                reading.outstanding = false;
                reading.ended = true;
                // SAFETY: a live event this stream owns.
                unsafe { SetEvent(raw(borrow(&self.readable))) };
            }
        }
    }

    /// Signalled when a message can be read, or the connection ended.
    pub(crate) fn fd(&self) -> Borrowed<'_> {
        borrow(&self.readable)
    }

    /// Who is at the other end.
    pub(crate) fn peer_credentials(&self) -> io::Result<Credentials> {
        let (uid, gid) = super::process::user_of(self.peer_pid)?;
        Ok(Credentials {
            pid: self.peer_pid,
            uid,
            gid,
        })
    }

    /// The other groups of the process at the other end: not read on Windows yet.
    pub(crate) fn peer_groups(&self) -> io::Result<Vec<u32>> {
        Ok(Vec::new())
    }

    /// A handle on the process at the other end. `NotFound` if it is gone.
    pub(crate) fn peer_process(&self, pid: u32) -> io::Result<ProcessHandle> {
        ProcessHandle::open(pid)
    }

    /// Sends one message with `handles` (server side only) duplicated into the other end's
    /// process. Never blocks: `WouldBlock` if the other end does not read; `BrokenPipe` once
    /// it closed.
    pub(crate) fn send(&self, bytes: &[u8], handles: &[Borrowed<'_>]) -> io::Result<()> {
        if handles.len() > MAX_FDS {
            return Err(io::Error::other("too many handles for one message"));
        }
        let len = 4 + 8 * handles.len() + bytes.len();
        if len > FRAME_MAX {
            // Checked before any handle is duplicated into the other process.
            return Err(io::Error::other("a message too long for the pipe"));
        }
        let mut frame = Vec::with_capacity(len);
        frame.extend_from_slice(&(handles.len() as u32).to_le_bytes());
        // The copies made in the other process, closed there unless the message went out.
        let mut sent = SentHandles {
            target: self.target.as_ref(),
            copies: Vec::new(),
        };
        if !handles.is_empty() {
            let target = self.target.as_ref().ok_or_else(|| {
                io::Error::other("only a server sends handles, to a client it could open")
            })?;
            for handle in handles {
                let mut theirs: HANDLE = std::ptr::null_mut();
                // SAFETY: both process handles and the source handle are live; the copy is
                // made in the target process, which owns it from here on.
                let ok = unsafe {
                    DuplicateHandle(
                        GetCurrentProcess(),
                        raw(*handle),
                        raw(borrow(target)),
                        &mut theirs,
                        0,
                        0,
                        DUPLICATE_SAME_ACCESS,
                    )
                };
                if ok == 0 {
                    return Err(io::Error::last_os_error());
                }
                sent.copies.push(theirs);
                frame.extend_from_slice(&(theirs as usize as u64).to_le_bytes());
            }
        }
        frame.extend_from_slice(bytes);
        let mut ov = lock(&self.writing);
        let pipe = raw(borrow(&self.pipe));
        // SAFETY: `frame` and `ov` outlive the operation: it is over (done, or cancelled and
        // waited for) before this function returns.
        let ok = unsafe {
            WriteFile(
                pipe,
                frame.as_ptr(),
                frame.len() as u32,
                std::ptr::null_mut(),
                &mut *ov.0,
            )
        };
        if ok == 0 {
            let code = last_error_code();
            if ended(code) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if code != ERROR_IO_PENDING {
                return Err(io::Error::from_raw_os_error(code as i32));
            }
            // The other end's buffer is full: give up at once rather than block.
            // SAFETY: a live event this stream owns.
            if unsafe { WaitForSingleObject(raw(borrow(&self.written)), 0) } != 0 {
                // SAFETY: cancels this write; waiting for it to end keeps `frame` alive.
                unsafe { CancelIoEx(pipe, &*ov.0) };
            }
        }
        let mut n = 0u32;
        // SAFETY: waits for this write to end (done already, or cancelled).
        if unsafe { GetOverlappedResult(pipe, &*ov.0, &mut n, 1) } == 0 {
            let code = last_error_code();
            return Err(if code == ERROR_OPERATION_ABORTED {
                io::ErrorKind::WouldBlock.into()
            } else if ended(code) {
                io::ErrorKind::BrokenPipe.into()
            } else {
                io::Error::from_raw_os_error(code as i32)
            });
        }
        if n as usize != frame.len() {
            return Err(io::Error::other("a message was cut short"));
        }
        // Delivered: the copies are the other process's now.
        sent.copies.clear();
        Ok(())
    }

    /// Receives one message into `buf` (never blocks), appending the handles it carried to
    /// `handles`. `Ok(None)`: nothing to read; `Ok(Some(0))`: the other end closed. A message
    /// longer than `buf`, or malformed, is an `InvalidData` error, and ends the connection.
    pub(crate) fn recv(
        &self,
        buf: &mut [u8],
        handles: &mut Vec<Owned>,
    ) -> io::Result<Option<usize>> {
        let mut reading = lock(&self.reading);
        if reading.ended {
            return Ok(Some(0));
        }
        let mut n = 0u32;
        // SAFETY: `ov` tracks the read in progress on this pipe; no wait.
        let ok = unsafe { GetOverlappedResult(raw(borrow(&self.pipe)), &*reading.ov.0, &mut n, 0) };
        if ok == 0 {
            let code = last_error_code();
            if code == ERROR_IO_INCOMPLETE {
                return Ok(None);
            }
            reading.outstanding = false;
            reading.ended = true;
            // SAFETY: a live event this stream owns (set already by the ended read).
            unsafe { SetEvent(raw(borrow(&self.readable))) };
            if ended(code) {
                return Ok(Some(0));
            }
            return Err(if code == ERROR_MORE_DATA {
                io::Error::new(io::ErrorKind::InvalidData, "a message arrived too long")
            } else {
                io::Error::from_raw_os_error(code as i32)
            });
        }
        reading.outstanding = false;
        let result = unframe(
            &reading.buf[..n as usize],
            buf,
            handles,
            // By the stream's role, never by whether the client's process could be opened:
            // a hostile client denies that, then sends handle values of the server's own.
            !self.server,
        );
        if result.is_err() {
            reading.ended = true;
        } else {
            self.start_read(&mut reading);
        }
        result.map(Some)
    }

    /// Whether the other end closed. (A wait for [`Interest::Hangup`](super::Interest::Hangup)
    /// on a stream also wakes for a message waiting: this tells the two apart.)
    pub(crate) fn is_closed(&self) -> bool {
        if lock(&self.reading).ended {
            return true;
        }
        let mut available = 0u32;
        // SAFETY: a live pipe handle; no buffer, only the count is written.
        let ok = unsafe {
            PeekNamedPipe(
                raw(borrow(&self.pipe)),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut available,
                std::ptr::null_mut(),
            )
        };
        ok == 0 && ended(last_error_code())
    }

    /// Ends the connection for both ends (a server's end; a client ends its own by dropping it).
    pub(crate) fn shutdown(&self) {
        if self.server {
            // SAFETY: a live pipe handle of this server.
            unsafe { DisconnectNamedPipe(raw(borrow(&self.pipe))) };
        }
    }
}

/// Takes a frame apart: the handles (only where `takes_handles`: a client's end), then the
/// bytes, into `buf`.
fn unframe(
    frame: &[u8],
    buf: &mut [u8],
    handles: &mut Vec<Owned>,
    takes_handles: bool,
) -> io::Result<usize> {
    use std::os::windows::io::FromRawHandle;
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_owned());
    let count = frame
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| bad("a message without its frame"))?;
    if count > MAX_FDS || frame.len() < 4 + 8 * count {
        return Err(bad("a message claiming more handles than it holds"));
    }
    if count > 0 && !takes_handles {
        // A client's handle values mean nothing in the server's process.
        return Err(bad("a client sent handles"));
    }
    for value in frame[4..4 + 8 * count].chunks_exact(8) {
        let value = u64::from_le_bytes(value.try_into().expect("8 bytes")) as usize;
        // SAFETY: the server duplicated this handle into this process for this message;
        // nothing else owns it.
        handles.push(unsafe { Owned::from_raw_handle(value as HANDLE) });
    }
    let bytes = &frame[4 + 8 * count..];
    let Some(into) = buf.get_mut(..bytes.len()) else {
        return Err(bad("a message arrived too long"));
    };
    into.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// Handles a server duplicated into its client for a message: closed in the client's process
/// when dropped, unless the message went out (a write that failed, or a later duplication
/// that did, would otherwise leave them there, costing the client sections and events).
struct SentHandles<'a> {
    target: Option<&'a Owned>,
    copies: Vec<HANDLE>,
}

impl Drop for SentHandles<'_> {
    fn drop(&mut self) {
        let Some(target) = self.target else {
            return;
        };
        for copy in self.copies.drain(..) {
            // SAFETY: a handle this process made in the target process and never delivered;
            // DUPLICATE_CLOSE_SOURCE closes it there, and no copy is made.
            unsafe {
                DuplicateHandle(
                    raw(borrow(target)),
                    copy,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                    0,
                    DUPLICATE_CLOSE_SOURCE,
                )
            };
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let reading = lock(&self.reading);
        if reading.outstanding {
            cancel(&self.pipe, &reading.ov);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Interest, Waker, wait_any};
    use std::time::Duration;

    fn name(what: &str) -> Vec<u8> {
        format!("shmrpc-test/{what}/{}", std::process::id()).into_bytes()
    }

    fn wait_readable(fd: Borrowed<'_>) {
        assert_eq!(
            wait_any(&[(fd, Interest::Readable)], Some(Duration::from_secs(5))),
            1,
            "not readable within 5 s"
        );
    }

    #[test]
    fn one_process_holds_a_name_and_releases_it_when_dropped() {
        let n = name("hold");
        let first = Listener::bind(&n).unwrap();
        assert!(holds_name(&n));
        assert_eq!(
            Listener::bind(&n).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(first);
        assert!(!holds_name(&n));
        Listener::bind(&n).unwrap();
    }

    #[test]
    fn names_windows_would_fold_together_stay_apart_and_read_back() {
        let names = [
            "shmrpc/u1/Calc",
            "shmrpc/u1/calc",
            "shmrpc/u1/calc.",
            "shmrpc/u1/calc..",
        ];
        let objects: Vec<String> = names.iter().map(|n| object_name(n.as_bytes())).collect();
        for (i, a) in objects.iter().enumerate() {
            assert!(!a.contains('.'), "{a}");
            assert_eq!(address_of(a).as_deref(), Some(names[i]));
            for b in &objects[i + 1..] {
                assert!(!a.eq_ignore_ascii_case(b), "{a} and {b}");
            }
        }
        assert_eq!(address_of("shmrpc/u1/^"), None);
        assert_eq!(address_of("shmrpc/u1/^1"), None);
    }

    #[test]
    fn connecting_to_a_free_name_is_refused() {
        assert_eq!(
            Stream::connect(&name("free")).unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
    }

    #[test]
    fn messages_carry_handles_and_credentials_and_the_end_is_seen() {
        let n = name("talk");
        let listener = Listener::bind(&n).unwrap();
        assert!(listener.accept().unwrap().is_none());
        let client = Stream::connect(&n).unwrap();
        wait_readable(listener.fd());
        let server = listener.accept().unwrap().expect("a client waits");
        // The next client can come.
        let second = Stream::connect(&n).unwrap();
        wait_readable(listener.fd());
        assert!(listener.accept().unwrap().is_some());
        drop(second);

        let me = Credentials {
            pid: std::process::id(),
            uid: super::super::euid(),
            gid: server.peer_credentials().unwrap().gid,
        };
        assert_eq!(server.peer_credentials().unwrap(), me);
        assert_eq!(client.peer_credentials().unwrap(), me);
        assert!(client.peer_process(me.pid).unwrap().is_alive());

        let mut buf = [0u8; 64];
        let mut handles = Vec::new();
        assert_eq!(client.recv(&mut buf, &mut handles).unwrap(), None);
        let waker = Waker::new().unwrap();
        server.send(b"hello", &[waker.fd()]).unwrap();
        wait_readable(client.fd());
        assert_eq!(client.recv(&mut buf, &mut handles).unwrap(), Some(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(handles.len(), 1);
        // The handle is a copy of the waker's event.
        waker.wake();
        assert_eq!(
            wait_any(
                &[(borrow(&handles[0]), Interest::Readable)],
                Some(Duration::ZERO)
            ),
            1
        );
        assert_eq!(client.recv(&mut buf, &mut handles).unwrap(), None);

        // Both ways, in order.
        client.send(b"one", &[]).unwrap();
        client.send(b"two", &[]).unwrap();
        wait_readable(server.fd());
        assert_eq!(server.recv(&mut buf, &mut handles).unwrap(), Some(3));
        assert_eq!(&buf[..3], b"one");
        wait_readable(server.fd());
        assert_eq!(server.recv(&mut buf, &mut handles).unwrap(), Some(3));
        assert_eq!(&buf[..3], b"two");
        // A client cannot send handles.
        assert!(client.send(b"x", &[waker.fd()]).is_err());

        // A message longer than the buffer is refused, not cut.
        server.send(&[7u8; 100], &[]).unwrap();
        wait_readable(client.fd());
        assert!(client.recv(&mut buf, &mut handles).is_err());

        let (c2, s2) = {
            let c = Stream::connect(&n).unwrap();
            wait_readable(listener.fd());
            (c, listener.accept().unwrap().unwrap())
        };
        s2.shutdown();
        wait_readable(c2.fd());
        assert_eq!(c2.recv(&mut buf, &mut handles).unwrap(), Some(0));
        // A client that goes is seen by the server.
        drop(c2);
        drop(client);
        wait_readable(server.fd());
        assert_eq!(server.recv(&mut buf, &mut handles).unwrap(), Some(0));
        assert!(server.send(b"late", &[]).is_err());
    }

    #[test]
    fn the_largest_message_crosses_with_the_most_handles_and_a_byte_more_is_refused() {
        use crate::protocol::messages::MAX_MESSAGE;
        let n = name("largest");
        let listener = Listener::bind(&n).unwrap();
        let client = Stream::connect(&n).unwrap();
        wait_readable(listener.fd());
        let server = listener.accept().unwrap().unwrap();
        let wakers: Vec<Waker> = (0..MAX_FDS).map(|_| Waker::new().unwrap()).collect();
        let lent: Vec<Borrowed<'_>> = wakers.iter().map(Waker::fd).collect();
        let big = vec![9u8; MAX_MESSAGE];
        server.send(&big, &lent).unwrap();
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut handles = Vec::new();
        wait_readable(client.fd());
        assert_eq!(
            client.recv(&mut buf, &mut handles).unwrap(),
            Some(MAX_MESSAGE)
        );
        assert_eq!(buf, big);
        assert_eq!(handles.len(), MAX_FDS);
        // Each handle is its own waker's event.
        for (waker, handle) in wakers.iter().zip(&handles) {
            waker.wake();
            assert_eq!(
                wait_any(
                    &[(borrow(handle), Interest::Readable)],
                    Some(Duration::ZERO)
                ),
                1
            );
            waker.drain();
        }
        assert!(server.send(&vec![9u8; MAX_MESSAGE + 1], &lent).is_err());
        let five: Vec<Borrowed<'_>> = lent.iter().copied().cycle().take(MAX_FDS + 1).collect();
        assert!(server.send(b"x", &five).is_err());
        // Nothing half-sent: the next message is whole.
        server.send(b"next", &[]).unwrap();
        wait_readable(client.fd());
        assert_eq!(client.recv(&mut buf, &mut handles).unwrap(), Some(4));
        assert_eq!(&buf[..4], b"next");
    }

    /// A frame of `count` claimed handles, `values` given, then `bytes`.
    fn frame(count: u32, values: &[u64], bytes: &[u8]) -> Vec<u8> {
        let mut f = count.to_le_bytes().to_vec();
        values
            .iter()
            .for_each(|v| f.extend_from_slice(&v.to_le_bytes()));
        f.extend_from_slice(bytes);
        f
    }

    #[test]
    fn malformed_frames_are_refused_and_a_server_takes_no_handles() {
        use std::os::windows::io::IntoRawHandle;
        let mut buf = [0u8; 16];
        let mut handles = Vec::new();
        let mut check =
            |f: &[u8], takes: bool, handles: &mut Vec<Owned>| unframe(f, &mut buf, handles, takes);
        assert_eq!(
            check(&frame(0, &[], b"hi"), false, &mut handles).unwrap(),
            2
        );
        assert_eq!(check(&frame(0, &[], b""), true, &mut handles).unwrap(), 0);
        for (what, f) in [
            ("no frame", vec![1, 0]),
            ("5 handles", frame(5, &[1, 2, 3, 4, 5], b"")),
            ("a handle claimed, none held", frame(1, &[], b"")),
            ("2 claimed, 1 held", frame(2, &[7], b"")),
            ("4 GiB of handles", frame(u32::MAX, &[], b"")),
            ("too long for the buffer", frame(0, &[], &[0; 17])),
        ] {
            let e = check(&f, true, &mut handles).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e}");
        }
        // A server never takes a client's handle values (they would name its own handles).
        assert!(check(&frame(1, &[4], b"x"), false, &mut handles).is_err());
        assert!(handles.is_empty());
        // A client takes the server's: here, a real handle of this process.
        let waker = Waker::new().unwrap();
        let copy = waker.fd().try_clone_to_owned().unwrap().into_raw_handle() as u64;
        assert_eq!(
            check(&frame(1, &[copy], b"ok"), true, &mut handles).unwrap(),
            2
        );
        assert_eq!(handles.len(), 1);
        waker.wake();
        assert_eq!(
            wait_any(
                &[(borrow(&handles[0]), Interest::Readable)],
                Some(Duration::ZERO)
            ),
            1
        );
    }

    /// A server's end whose client's process could not be opened (a hostile client can deny
    /// it) still never takes handle values from the client: they would name the server's own
    /// handles, which it would then close.
    #[test]
    fn a_server_end_takes_no_handles_even_without_its_clients_process() {
        let n = name("no-target");
        let listener = Listener::bind(&n).unwrap();
        let mut client = Stream::connect(&n).unwrap();
        wait_readable(listener.fd());
        let mut server = listener.accept().unwrap().expect("a client waits");
        server.target = None;
        // The client frames handles as a server would: duplicated into "its peer", here this
        // very process.
        // SAFETY: asks for a new handle to this process; no pointers.
        client.target =
            Some(owned(unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, std::process::id()) }).unwrap());
        let waker = Waker::new().unwrap();
        client.send(b"x", &[waker.fd()]).unwrap();
        wait_readable(server.fd());
        let mut buf = [0u8; 16];
        let mut handles = Vec::new();
        let e = server.recv(&mut buf, &mut handles).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(handles.is_empty());
    }

    #[test]
    fn a_client_finds_every_instance_taken_as_would_block() {
        let n = name("busy");
        let listener = Listener::bind(&n).unwrap();
        // The one waiting instance is taken, and not accepted yet: no instance is free.
        let _first = Stream::connect(&n).unwrap();
        assert_eq!(
            Stream::connect(&n).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        wait_readable(listener.fd());
        let _server = listener.accept().unwrap().unwrap();
        Stream::connect(&n).unwrap();
    }

    #[test]
    fn a_listener_polled_with_nothing_waiting_never_lets_its_name_vanish() {
        let n = name("vanish");
        let listener = Listener::bind(&n).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        /// Stops the polling thread however the scope ends: a failed assertion fails the
        /// test instead of leaving the scope waiting for ever.
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        std::thread::scope(|s| {
            let _stop = StopOnDrop(&stop);
            s.spawn(|| {
                // Polled far more often than clients come, as a busy server may.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    drop(listener.accept().unwrap());
                }
            });
            for i in 0..300 {
                match Stream::connect(&n) {
                    Ok(client) => drop(client),
                    Err(e) => assert_eq!(
                        e.kind(),
                        io::ErrorKind::WouldBlock,
                        "connect {i} to a live listener: {e}"
                    ),
                }
            }
        });
    }

    #[test]
    fn is_closed_tells_a_live_stream_from_a_closed_one_whatever_the_last_error() {
        let n = name("closed");
        let listener = Listener::bind(&n).unwrap();
        let live = Stream::connect(&n).unwrap();
        wait_readable(listener.fd());
        let live_server = listener.accept().unwrap().unwrap();
        let gone = Stream::connect(&n).unwrap();
        wait_readable(listener.fd());
        let gone_server = listener.accept().unwrap().unwrap();
        gone_server.shutdown();
        wait_readable(gone.fd());
        assert!(gone.is_closed());
        // This thread's last error now says "broken pipe": a live stream is still live, with
        // or without a message waiting.
        let mut buf = [0u8; 8];
        assert_eq!(gone.recv(&mut buf, &mut Vec::new()).unwrap(), Some(0));
        assert!(!live.is_closed());
        live_server.send(b"m", &[]).unwrap();
        wait_readable(live.fd());
        assert!(!live.is_closed());
    }

    #[test]
    fn a_server_that_does_not_read_makes_sends_fail_not_block() {
        let n = name("full");
        let listener = Listener::bind(&n).unwrap();
        let client = Stream::connect(&n).unwrap();
        wait_readable(listener.fd());
        let _server = listener.accept().unwrap().unwrap();
        let message = [1u8; 16 * 1024];
        let start = std::time::Instant::now();
        let mut sent = 0;
        let err = loop {
            match client.send(&message, &[]) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 10_000, "the pipe never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    /// The copies of a message's handles made in the client's process (here, this very
    /// process) are closed there unless the message went out.
    #[test]
    fn handles_of_a_message_that_did_not_go_out_are_closed_in_the_client() {
        use windows_sys::Win32::Foundation::{
            GetHandleInformation, HANDLE_FLAG_INHERIT, SetHandleInformation,
        };
        // Open, and one of this test's copies: marked inheritable below, which no other test's
        // handles are (tests run in parallel, and a value closed here may be reused at once).
        let is_open = |h: HANDLE| {
            let mut flags = 0u32;
            // SAFETY: only asks about a handle value; `flags` is written.
            unsafe { GetHandleInformation(h, &mut flags) != 0 && flags & HANDLE_FLAG_INHERIT != 0 }
        };
        // SAFETY: asks for a new handle to this process; no pointers.
        let me = owned(unsafe { OpenProcess(PROCESS_DUP_HANDLE, 0, std::process::id()) }).unwrap();
        let waker = Waker::new().unwrap();
        let copy = |_| {
            let mut theirs: HANDLE = std::ptr::null_mut();
            // SAFETY: live handles; the copy is made in this process.
            let ok = unsafe {
                DuplicateHandle(
                    GetCurrentProcess(),
                    raw(waker.fd()),
                    raw(borrow(&me)),
                    &mut theirs,
                    0,
                    0,
                    DUPLICATE_SAME_ACCESS,
                )
            };
            assert_ne!(ok, 0);
            // SAFETY: the copy just made, in this process.
            let marked =
                unsafe { SetHandleInformation(theirs, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) };
            assert_ne!(marked, 0);
            theirs
        };
        let copies: Vec<HANDLE> = (0..3).map(copy).collect();
        assert!(copies.iter().all(|&h| is_open(h)));
        drop(SentHandles {
            target: Some(&me),
            copies: copies.clone(),
        });
        assert!(copies.iter().all(|&h| !is_open(h)), "copies left open");
        // Delivered: left alone.
        let delivered = copy(0);
        drop(SentHandles {
            target: Some(&me),
            copies: Vec::new(),
        });
        assert!(is_open(delivered));
        // SAFETY: the copy made above, owned here.
        drop(unsafe { <Owned as std::os::windows::io::FromRawHandle>::from_raw_handle(delivered) });
    }
}
