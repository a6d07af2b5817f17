//! The floors: the least a request/response round trip between two processes can cost, spinning
//! or sleeping on a futex, with nothing of shmrpc's in the way. The only unsafe code of the
//! benchmarks is the mapping of the shared page, here.
//!
//! Payloads of 256 bytes or more are copied with `rep movsb`, as shmrpc copies them; smaller
//! ones word by word with relaxed atomics.
//!
//! The page is a memfd, handed to the echo process as its stdin. Two layouts:
//! - *slot*: the request word, the response word and the payload each on a cache-line pair of
//!   their own, as a request/response slot is usually laid out (the issue's "floor for this
//!   design");
//! - *one line*: each word followed by its payload, so that a small payload travels in the same
//!   cache line as its word: the fewest lines a request and a response can move.

use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

const REQ: usize = 0;

/// Where the response word is, and where the request and response payloads are.
#[derive(Clone, Copy)]
struct Places {
    resp: usize,
    req_data: usize,
    resp_data: usize,
}

fn places(size: usize, one_line: bool) -> Places {
    if one_line {
        let resp = (8 + size).next_multiple_of(128);
        Places {
            resp,
            req_data: 8,
            resp_data: resp + 8,
        }
    } else {
        // Both payloads in one area of their own, as in a slot used for the request, then the
        // response.
        Places {
            resp: 128,
            req_data: 256,
            resp_data: 256,
        }
    }
}

/// A shared, mapped page (or more).
pub struct SharedPage {
    ptr: NonNull<u8>,
    len: usize,
    places: Places,
    fd: OwnedFd,
}

// SAFETY: the mapping is only reached through atomics and atomic copies.
unsafe impl Send for SharedPage {}

impl SharedPage {
    /// A new zeroed memfd for `payload` bytes each way plus the control words, mapped.
    pub fn create(payload: usize, one_line: bool) -> std::io::Result<Self> {
        let fd = rustix::fs::memfd_create("shmrpc-floor", rustix::fs::MemfdFlags::empty())?;
        rustix::fs::ftruncate(&fd, Self::len_for(payload, one_line) as u64)?;
        Self::map(fd, payload, one_line)
    }

    /// Maps a page created by [`SharedPage::create`] in another process.
    pub fn open(fd: OwnedFd, payload: usize, one_line: bool) -> std::io::Result<Self> {
        Self::map(fd, payload, one_line)
    }

    fn len_for(payload: usize, one_line: bool) -> usize {
        let p = places(payload, one_line);
        (p.resp_data.max(p.req_data) + payload).next_multiple_of(4096)
    }

    fn map(fd: OwnedFd, size: usize, one_line: bool) -> std::io::Result<Self> {
        let len = Self::len_for(size, one_line);
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
        Ok(SharedPage {
            ptr,
            len,
            places: places(size, one_line),
            fd,
        })
    }

    /// The memfd, to hand to the other process.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn u64(&self, off: usize) -> &AtomicU64 {
        assert!(off + 8 <= self.len && off.is_multiple_of(8));
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
        self.u64(self.places.resp)
    }

    /// The low half of a word, as the kernel's futex sees it (little-endian).
    pub fn futex(&self, word: &AtomicU64) -> &AtomicU32 {
        let off = word.as_ptr() as usize - self.ptr.as_ptr() as usize;
        assert!(off == REQ || off == self.places.resp);
        // SAFETY: the low half of an aligned word of the mapping, accessed only atomically.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// Copies `src` into the request (`response == false`) or response area.
    pub fn write(&self, response: bool, src: &[u8]) {
        let mut at = if response {
            self.places.resp_data
        } else {
            self.places.req_data
        };
        if src.len() >= BULK {
            assert!(at + src.len() <= self.len);
            // SAFETY: in bounds (asserted), and `src` is private memory of that length.
            unsafe { bulk_copy(self.ptr.as_ptr().add(at), src.as_ptr(), src.len()) };
            return;
        }
        let mut chunks = src.chunks_exact(8);
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

    /// Copies the request or response area into `dst`.
    pub fn read(&self, response: bool, dst: &mut [u8]) {
        let mut at = if response {
            self.places.resp_data
        } else {
            self.places.req_data
        };
        if dst.len() >= BULK {
            assert!(at + dst.len() <= self.len);
            // SAFETY: as in `write`, the other way round.
            unsafe { bulk_copy(dst.as_mut_ptr(), self.ptr.as_ptr().add(at), dst.len()) };
            return;
        }
        let mut chunks = dst.chunks_exact_mut(8);
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

/// From this many bytes on, payloads are copied with `rep movsb`, as shmrpc copies them (see
/// `shmrpc/src/view.rs`), so that the floor stays a floor.
const BULK: usize = 256;

/// `rep movsb` on x86-64 (the same copy as shmrpc's), a byte loop of relaxed atomics elsewhere.
///
/// # Safety
///
/// `src` valid for reads and `dst` for writes of `len` bytes, not overlapping.
#[inline]
unsafe fn bulk_copy(dst: *mut u8, src: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract; the direction flag is clear on entry to an asm block.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") len => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    for i in 0..len {
        // SAFETY: byte `i` of the caller's ranges.
        let (from, to) = unsafe {
            (
                AtomicU8::from_ptr(src.add(i).cast_mut()),
                AtomicU8::from_ptr(dst.add(i)),
            )
        };
        to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no reference into it outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
