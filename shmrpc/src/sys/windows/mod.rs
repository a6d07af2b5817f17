//! Windows: a named pipe per service name (held by a named mutex), overlapped pipe I/O for
//! connections, pagefile-backed sections for slots, events for wake-ups, process handles for
//! liveness, the system's thread pool for waiting on many handles at once.
//!
//! Not built yet: tokio's own reactor for async calls (they wait in the thread pool),
//! admitting other users (`allow_any_user`, `allow_uid`, `allow_gid`: the pipe keeps Windows'
//! default security, which lets only the server's user, administrators and SYSTEM connect), and
//! supplementary groups of a caller.

mod bell;
mod event;
mod memory;
mod pipe;
mod poller;
mod process;
mod reactor;

pub(crate) use bell::*;
pub(crate) use event::*;
pub(crate) use memory::*;
pub(crate) use pipe::*;
pub(crate) use poller::*;
pub(crate) use process::*;
pub(crate) use reactor::*;

use std::io;

/// The error a Windows call that returned failure left in `GetLastError`.
fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// Takes ownership of a handle a Windows call returned (null or `INVALID_HANDLE_VALUE` on
/// failure).
fn owned(handle: windows_sys::Win32::Foundation::HANDLE) -> io::Result<super::Owned> {
    use std::os::windows::io::FromRawHandle;
    if handle.is_null() || handle == windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE {
        return Err(last_error());
    }
    // SAFETY: the handle was just returned, valid, by the call that created or opened it, and
    // nothing else owns it.
    Ok(unsafe { super::Owned::from_raw_handle(handle) })
}

/// The raw value of a borrowed handle, to pass to a Windows call.
fn raw(handle: super::Borrowed<'_>) -> windows_sys::Win32::Foundation::HANDLE {
    use std::os::windows::io::AsRawHandle;
    handle.as_raw_handle()
}
