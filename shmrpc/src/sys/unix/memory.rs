//! A slot's memory: an object the server creates with a size no process can change (a sealed
//! memfd on Linux, POSIX shared memory on macOS: see `os::create_sealed`), mapped shared by
//! server and client. No access within the size can then fault with `SIGBUS`; since everything
//! read from a slot is copied out and validated, whatever another process wrote (or zeros, from
//! a hole it punched) is just another invalid request.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;

/// Checks that `fd` is an object of exactly `len` bytes.
pub(super) fn check_size(fd: &OwnedFd, len: usize) -> io::Result<()> {
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
