//! Every call into the operating system lives below this module.
//!
//! The rest of the crate sees a handful of safe functions: create, open, publish and remove a
//! named shared-memory object, map it, wait and wake on a word of it, take and probe a lock that
//! the kernel drops when its holder dies, and ask whether a process is still alive.
//!
//! Linux is the only implementation today. A Windows port maps these to named file mappings,
//! `WaitOnAddress`/`WakeByAddress` and abandoned-mutex detection; a macOS port to `shm_open`,
//! `os_sync_wait_on_address` and `flock`. Nothing outside this module needs to change for either.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmrpc supports Linux only for now; the OS layer (src/sys) is where a port would start"
);
