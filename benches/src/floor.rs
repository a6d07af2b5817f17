//! The floors: the least a request/response round trip between two processes can cost, spinning
//! or sleeping on a futex, with nothing of shmrpc's in the way. The only unsafe code of the
//! benchmarks is the mapping of the shared page, here.
//!
//! The page is a memfd, handed to the echo process as its stdin. Layout: the request word on one
//! cache-line pair, the response word on another, then the payload.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

const REQ: usize = 0;
const RESP: usize = 128;
const DATA: usize = 256;

/// A shared, mapped page (or more).
pub struct SharedPage {
    ptr: NonNull<u8>,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is only reached through atomics and atomic copies.
unsafe impl Send for SharedPage {}

impl SharedPage {
    /// A new zeroed memfd of `payload` bytes plus the control words, mapped.
    pub fn create(payload: usize) -> std::io::Result<Self> {
        let fd = rustix::fs::memfd_create("shmrpc-floor", rustix::fs::MemfdFlags::empty())?;
        let len = (DATA + payload).next_multiple_of(4096);
        rustix::fs::ftruncate(&fd, len as u64)?;
        Self::map(fd, len)
    }

    /// Maps a page created by [`SharedPage::create`] in another process.
    pub fn open(fd: OwnedFd, payload: usize) -> std::io::Result<Self> {
        Self::map(fd, (DATA + payload).next_multiple_of(4096))
    }

    fn map(fd: OwnedFd, len: usize) -> std::io::Result<Self> {
        use rustix::mm::{MapFlags, ProtFlags};
        // SAFETY: a fresh shared mapping at an address the kernel picks cannot alias anything.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(SharedPage { ptr, len, fd })
    }

    /// The memfd, to hand to the other process.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn u64(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= self.len && off % 8 == 0);
        // SAFETY: in bounds and aligned (the mapping is page aligned), alive as long as `self`,
        // and only ever accessed atomically.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    fn u8(&self, off: usize) -> &AtomicU8 {
        assert!(off < self.len);
        // SAFETY: as in `u64`, for one byte.
        unsafe { AtomicU8::from_ptr(self.ptr.as_ptr().add(off)) }
    }

    /// The request word (its low half is a futex).
    pub fn request(&self) -> &AtomicU64 {
        self.u64(REQ)
    }

    /// The response word.
    pub fn response(&self) -> &AtomicU64 {
        self.u64(RESP)
    }

    /// The low half of a word, as the kernel's futex sees it (little-endian).
    pub fn futex(&self, word: &AtomicU64) -> &AtomicU32 {
        let off = word.as_ptr() as usize - self.ptr.as_ptr() as usize;
        assert!(off == REQ || off == RESP);
        // SAFETY: the low half of an aligned word of the mapping, accessed only atomically.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// Copies `src` into the payload area, word by word.
    pub fn write(&self, src: &[u8]) {
        let mut chunks = src.chunks_exact(8);
        let mut at = DATA;
        for c in &mut chunks {
            self.u64(at)
                .store(u64::from_ne_bytes(c.try_into().unwrap()), Ordering::Relaxed);
            at += 8;
        }
        for b in chunks.remainder() {
            self.u8(at).store(*b, Ordering::Relaxed);
            at += 1;
        }
    }

    /// Copies the payload area into `dst`.
    pub fn read(&self, dst: &mut [u8]) {
        let mut chunks = dst.chunks_exact_mut(8);
        let mut at = DATA;
        for c in &mut chunks {
            c.copy_from_slice(&self.u64(at).load(Ordering::Relaxed).to_ne_bytes());
            at += 8;
        }
        for b in chunks.into_remainder() {
            *b = self.u8(at).load(Ordering::Relaxed);
            at += 1;
        }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
