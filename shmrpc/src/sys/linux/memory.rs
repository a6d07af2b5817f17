//! A slot's memory: a memfd the server creates and seals, mapped shared by server and client.
//!
//! The seals (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`) make the object's size fixed for
//! ever: no process holding the descriptor can truncate it, so no access within the size can
//! fault with `SIGBUS`. A client may still punch holes in it (`fallocate(PUNCH_HOLE)`), which
//! reads back as zeros, never as a fault; since everything read from a slot is copied out and
//! validated, zeros are just another invalid request.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::io::Errno;

/// The seals every slot carries.
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
    let size = rustix::fs::fstat(fd)?.st_size;
    if size != len as i64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the slot's memory holds {size} bytes, {len} were announced"),
        ));
    }
    Ok(())
}

/// A shared, read-write mapping of a whole object. Unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; every access to it goes through
// atomics (see `view`), so sharing the pointer between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only hands out atomics and atomic copies.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd`, shared. The caller has made sure the object is
    /// sealed at exactly `len` bytes (see [`check_sealed`]), so no access within the mapping
    /// can fault.
    pub(crate) fn new(fd: impl AsFd, len: usize) -> io::Result<Self> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
