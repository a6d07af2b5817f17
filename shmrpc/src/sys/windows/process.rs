//! Processes: handles, ids, and what Linux needs for `fork` (nothing: Windows does not fork).

use std::io;
use std::time::Duration;

use windows_sys::Win32::Foundation::ERROR_INVALID_PARAMETER;
use windows_sys::Win32::Security::{
    GetSidSubAuthority, GetSidSubAuthorityCount, GetTokenInformation, TOKEN_PRIMARY_GROUP,
    TOKEN_QUERY, TOKEN_USER, TokenPrimaryGroup, TokenUser,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
    PROCESS_SYNCHRONIZE,
};

use super::{Interest, owned, raw, wait_any};
use crate::sys::{Borrowed, Owned, borrow};

/// A handle on one process: it names that process and no other, even once its id is reused,
/// and is signalled when the process exits.
#[derive(Debug)]
pub(crate) struct ProcessHandle(Owned);

impl ProcessHandle {
    /// A handle on the process with id `pid`, if it exists now. `NotFound` if it does not.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "for the pipe transport, to come")
    )]
    pub(crate) fn open(pid: u32) -> io::Result<Self> {
        // SAFETY: asks for a new handle; no pointers.
        let handle = unsafe {
            OpenProcess(
                PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
                0,
                pid,
            )
        };
        match owned(handle) {
            Ok(handle) => Ok(ProcessHandle(handle)),
            Err(e) if e.raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32) => {
                Err(io::ErrorKind::NotFound.into())
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        borrow(&self.0)
    }

    /// Whether the process still runs: its handle is not signalled yet.
    pub(crate) fn is_alive(&self) -> bool {
        wait_any(&[(self.fd(), Interest::Readable)], Some(Duration::ZERO)) == 0
    }
}

/// Windows does not fork: nothing to watch.
pub(crate) fn watch_forks() {}

/// Always 0: a Windows process is never a forked copy of another.
pub(crate) fn fork_epoch() -> u64 {
    0
}

/// Never called on Windows, where [`fork_epoch`] never changes.
pub(crate) fn exit_forked_child(why: &[&str]) -> ! {
    unreachable!("shmrpc: a forked child on Windows? {}", why.concat())
}

/// No descriptor to keep in reserve: Windows has no small per-process limit on handles.
pub(crate) fn reserve_descriptor() -> Option<Owned> {
    None
}

/// Closes handles a peer sent: closing a handle never blocks on Windows.
pub(crate) fn dispose(handles: Vec<Owned>) {
    drop(handles);
}

/// Whether `e` says this process has no handle to spare: never on Windows, whose limit (16
/// million per process) is not a practical one.
pub(crate) fn out_of_descriptors(_e: &io::Error) -> bool {
    false
}

/// Nothing to raise on Windows.
pub(crate) fn raise_fd_limit() {}

/// No practical limit on handles on Windows.
pub(crate) fn fd_limit() -> usize {
    usize::MAX
}

/// This process's user, as a number: the last part (the relative id) of its user's security
/// identifier, 1000 under Wine. Two users of different domains can share one; the transport
/// will compare whole identifiers.
pub(crate) fn euid() -> u32 {
    // SAFETY: the pseudo-handle of this process, valid always.
    token_ids(unsafe { GetCurrentProcess() }).map_or(u32::MAX, |(uid, _)| uid)
}

/// The relative ids of the user and primary group of the process `pid`.
pub(crate) fn user_of(pid: u32) -> io::Result<(u32, u32)> {
    // SAFETY: asks for a new handle; no pointers.
    let process = owned(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) })?;
    token_ids(raw(borrow(&process)))
}

/// The last sub-authority of a SID.
///
/// # Safety
///
/// `sid` points to a valid SID.
unsafe fn rid(sid: windows_sys::Win32::Security::PSID) -> io::Result<u32> {
    // SAFETY: `sid` is valid (the caller says so); a SID's count says how many sub-authorities
    // follow.
    unsafe {
        let count = *GetSidSubAuthorityCount(sid);
        if count == 0 {
            return Err(io::Error::other("a SID without sub-authorities"));
        }
        Ok(*GetSidSubAuthority(sid, u32::from(count) - 1))
    }
}

/// The relative ids of the user and primary group of the process `process` runs as.
fn token_ids(process: windows_sys::Win32::Foundation::HANDLE) -> io::Result<(u32, u32)> {
    let mut token = std::ptr::null_mut();
    // SAFETY: `process` is a live process handle; `token` receives a new handle, owned next.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(super::last_error());
    }
    let token = owned(token)?;
    // A TOKEN_USER or TOKEN_PRIMARY_GROUP and the SID it points to, in one buffer (8-aligned:
    // u64 words).
    let query = |class| -> io::Result<Vec<u64>> {
        let mut buf = vec![0u64; 64];
        let mut len = 0u32;
        // SAFETY: `buf` is valid for writes of its length in bytes, which is what is passed.
        let ok = unsafe {
            GetTokenInformation(
                raw(borrow(&token)),
                class,
                buf.as_mut_ptr().cast(),
                (buf.len() * 8) as u32,
                &mut len,
            )
        };
        if ok == 0 {
            return Err(super::last_error());
        }
        Ok(buf)
    };
    let user = query(TokenUser)?;
    let group = query(TokenPrimaryGroup)?;
    // SAFETY: each query succeeded, so each buffer starts with the structure asked for, whose
    // SID pointer points into the same buffer, alive here.
    unsafe {
        let uid = rid((*user.as_ptr().cast::<TOKEN_USER>()).User.Sid)?;
        let gid = rid((*group.as_ptr().cast::<TOKEN_PRIMARY_GROUP>()).PrimaryGroup)?;
        Ok((uid, gid))
    }
}

/// Test-only: ends this process at once (`stop == false`), or stops this thread for good
/// (`stop == true`: Windows cannot stop a whole process the way `SIGSTOP` does).
#[cfg(feature = "fault-injection")]
pub(crate) fn signal_this_thread(stop: bool) {
    if stop {
        loop {
            std::thread::park();
        }
    }
    // SAFETY: ends this process; no memory is touched afterwards.
    unsafe {
        windows_sys::Win32::System::Threading::TerminateProcess(GetCurrentProcess(), 9);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: &str = "SHMRPC_TEST_LINGER";

    /// The other process of the test below: lives until killed (a minute at most).
    #[test]
    fn child_side_lingers() {
        if std::env::var_os(LINGER).is_some() {
            std::thread::sleep(Duration::from_secs(60));
        }
    }

    #[test]
    fn a_process_handle_sees_its_process_exit() {
        if std::env::var_os(LINGER).is_some() {
            return;
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sys::windows::process::tests::child_side_lingers",
                "--test-threads=1",
            ])
            .env(LINGER, "1")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let handle = ProcessHandle::open(child.id()).unwrap();
        assert!(handle.is_alive());
        child.kill().unwrap();
        let start = std::time::Instant::now();
        assert_eq!(wait_any(&[(handle.fd(), Interest::Readable)], None), 1);
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!handle.is_alive());
        let _ = child.wait();
    }

    #[test]
    fn this_process_is_alive_and_a_free_id_is_not_found() {
        assert!(ProcessHandle::open(std::process::id()).unwrap().is_alive());
        // Process ids are multiples of 4 on Windows: 2 is never one.
        assert_eq!(
            ProcessHandle::open(2).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn the_user_has_a_relative_id() {
        assert_ne!(euid(), u32::MAX);
    }
}
