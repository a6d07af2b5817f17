//! Windows: pagefile-backed sections, events, process handles.
//!
//! The connection transport (a named pipe as the rendezvous, handles duplicated into the
//! client, a poller over events) is not built yet: [`Listener`], [`Stream`], [`Poller`],
//! [`WaitSet`], [`Reactor`] and [`SignalBell`] cannot be made, and binding or connecting a name
//! fails with [`unsupported`]'s error. Everything they would carry (slot memory, wake-ups,
//! process liveness) is here and tested.

mod event;
mod memory;
mod process;
mod transport;

pub(crate) use event::*;
pub(crate) use memory::*;
pub(crate) use process::*;
pub(crate) use transport::*;

use std::io;

/// The error of everything the Windows transport does not do yet.
pub(crate) fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "shmrpc's local transport is not built for Windows yet (its shared memory, events and \
         process handles are; connections are not): run the server and its clients on Linux, \
         or call across machines with shmrpc-zenoh",
    )
}

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
