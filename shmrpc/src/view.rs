//! Typed access to a mapped segment: the only code that turns offsets into memory accesses.
//!
//! Another process may write any byte of the segment at any time, so no Rust reference to plain
//! (non-atomic) data ever points into it. Control words are reached as atomics, which are made
//! for concurrent writers; payloads and the header are copied word by word with relaxed atomic
//! loads into private memory, and only the copy is validated and used. Every access is bounds
//! checked against the mapping, whose length the caller checked against the object's size.
//!
//! Within this process a given word is always accessed with one size (the header, whose state
//! word is also used alone, is copied in 4-byte units): concurrent atomic accesses of different
//! sizes to the same bytes are not allowed by Rust's memory model. The kernel reading the low
//! half of the lock word as a futex is outside that model.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use crate::sys::Mapping;

/// A mapped segment, seen as atomics and byte ranges.
#[derive(Debug)]
pub(crate) struct View {
    map: Mapping,
}

impl View {
    pub(crate) fn new(map: Mapping) -> Self {
        // mmap returns page-aligned memory, so every naturally aligned offset is aligned.
        assert_eq!(map.as_ptr() as usize % 4096, 0, "mappings are page aligned");
        View { map }
    }

    fn check(&self, offset: usize, len: usize, align: usize) {
        assert!(
            offset
                .checked_add(len)
                .is_some_and(|end| end <= self.map.len())
                && offset.is_multiple_of(align),
            "shmrpc bug: access of {len} bytes at offset {offset} outside a {}-byte segment",
            self.map.len()
        );
    }

    /// The 32-bit control word at `offset`.
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: in bounds and 4-aligned (checked above; the mapping is page aligned); the
        // memory stays mapped for as long as `self` is borrowed; and every access this process
        // makes to it is atomic. Writes from other processes are outside this program, and an
        // aligned 4-byte access is single-copy atomic on every supported CPU.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(offset).cast()) }
    }

    /// The 64-bit control word at `offset`.
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: as in `u32`, for an 8-aligned, 8-byte, in-bounds word.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(offset).cast()) }
    }

    /// Copies `dst.len()` bytes starting at `offset` out of the segment. The bytes may be torn
    /// if another process writes meanwhile; the caller validates the copy.
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len(), 1);
        // SAFETY: `offset..offset + dst.len()` is in bounds (checked above) and stays mapped
        // while `self` is borrowed.
        let src = unsafe { self.map.as_ptr().add(offset) };
        let (head, words, tail) = split_at_words(src as usize, dst.len());
        for (i, b) in dst[..head].iter_mut().enumerate() {
            // SAFETY: byte `i` of the checked range, accessed only atomically in this process.
            *b = unsafe { AtomicU8::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
        }
        let body = &mut dst[head..head + 8 * words];
        for (i, chunk) in body.chunks_exact_mut(8).enumerate() {
            // SAFETY: word `i` of the 8-aligned part of the checked range (`split_at_words`).
            let word = unsafe { AtomicU64::from_ptr(src.add(head + 8 * i).cast()) };
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        let start = head + 8 * words;
        for (i, b) in dst[start..start + tail].iter_mut().enumerate() {
            // SAFETY: as for the head bytes.
            *b = unsafe { AtomicU8::from_ptr(src.add(start + i)) }.load(Ordering::Relaxed);
        }
    }

    /// Copies `dst.len()` bytes (a multiple of 4, at a 4-aligned offset) out of the segment in
    /// 4-byte units: for regions where some words are also accessed alone as `u32` (the header's
    /// state word), since concurrent atomic accesses of different sizes are not allowed.
    pub(crate) fn read_words(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len(), 4);
        assert!(
            dst.len().is_multiple_of(4),
            "shmrpc bug: word copy of {} bytes",
            dst.len()
        );
        for (i, chunk) in dst.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(
                &self
                    .u32(offset + 4 * i)
                    .load(Ordering::Relaxed)
                    .to_ne_bytes(),
            );
        }
    }

    /// Copies `src` (a multiple of 4 bytes) into the segment at a 4-aligned `offset` in 4-byte
    /// units; see [`View::read_words`].
    pub(crate) fn write_words(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len(), 4);
        assert!(
            src.len().is_multiple_of(4),
            "shmrpc bug: word copy of {} bytes",
            src.len()
        );
        for (i, chunk) in src.chunks_exact(4).enumerate() {
            let word = u32::from_ne_bytes(chunk.try_into().expect("4 bytes"));
            self.u32(offset + 4 * i).store(word, Ordering::Relaxed);
        }
    }

    /// Copies `src` into the segment at `offset`. Publish it with a release store afterwards.
    pub(crate) fn write(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len(), 1);
        // SAFETY: as in `read`.
        let dst = unsafe { self.map.as_ptr().add(offset) };
        let (head, words, tail) = split_at_words(dst as usize, src.len());
        for (i, b) in src[..head].iter().enumerate() {
            // SAFETY: as in `read`.
            unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(*b, Ordering::Relaxed);
        }
        for (i, chunk) in src[head..head + 8 * words].chunks_exact(8).enumerate() {
            let value = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
            // SAFETY: as in `read`.
            let word = unsafe { AtomicU64::from_ptr(dst.add(head + 8 * i).cast()) };
            word.store(value, Ordering::Relaxed);
        }
        let start = head + 8 * words;
        for (i, b) in src[start..start + tail].iter().enumerate() {
            // SAFETY: as in `read`.
            unsafe { AtomicU8::from_ptr(dst.add(start + i)) }.store(*b, Ordering::Relaxed);
        }
    }
}

/// Splits `len` bytes at address `at` into leading bytes up to an 8-byte boundary, whole
/// 8-aligned words, and trailing bytes: (head bytes, words, tail bytes).
fn split_at_words(at: usize, len: usize) -> (usize, usize, usize) {
    let head = at.wrapping_neg() % 8;
    if head >= len {
        return (len, 0, 0);
    }
    let words = (len - head) / 8;
    (head, words, len - head - 8 * words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_round_trip_at_any_offset_and_length() {
        let fd = rustix::fs::memfd_create("view-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let view = View::new(Mapping::new(&fd, 4096).unwrap());
        let src: Vec<u8> = (0..200u8).collect();
        for offset in [0, 1, 8, 13, 64] {
            for len in [0, 1, 7, 8, 9, 63, 64, 200] {
                view.write(offset, &src[..len]);
                let mut dst = vec![0xAA; len];
                view.read(offset, &mut dst);
                assert_eq!(dst, src[..len]);
            }
        }
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn out_of_bounds_is_refused() {
        let fd = rustix::fs::memfd_create("view-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let view = View::new(Mapping::new(&fd, 4096).unwrap());
        view.read(4090, &mut [0; 8]);
    }
}
