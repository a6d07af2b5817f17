//! Typed access to a mapped segment: the only code that turns offsets into memory accesses.
//!
//! Another process may write any byte of the segment at any time, so no Rust reference to plain
//! (non-atomic) data ever points into it. Control words are reached as atomics, which are made
//! for concurrent writers; payloads and the header are copied into private memory (word by word
//! with relaxed atomics, or, from 256 bytes on x86-64, with `rep movsb`, which is to the memory
//! model a run of relaxed atomic byte copies), and only the copy is validated and used. Every
//! access is bounds checked against the mapping, whose length the caller checked against the
//! object's size.
//!
//! Within this process no two accesses of different sizes to the same bytes are ever concurrent
//! (control words are only ever reached as the same atomic type; payload bytes only by copies
//! that the protocol orders): Rust's memory model does not allow that.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use zerocopy::FromBytes;

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

    /// Bytes of the segment.
    #[cfg(feature = "fault-injection")]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[inline(always)]
    fn check(&self, offset: usize, len: usize, align: usize) {
        if !(offset
            .checked_add(len)
            .is_some_and(|end| end <= self.map.len())
            && offset.is_multiple_of(align))
        {
            self.bad_access(offset, len, align);
        }
    }

    #[cold]
    #[inline(never)]
    fn bad_access(&self, offset: usize, len: usize, align: usize) -> ! {
        panic!(
            "shmrpc bug: access of {len} bytes at offset {offset} (alignment {align}) outside a \
             {}-byte segment or misaligned",
            self.map.len()
        )
    }

    /// The 32-bit control word at `offset`.
    #[inline]
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: in bounds and 4-aligned (checked above; the mapping is page aligned); the
        // memory stays mapped for as long as `self` is borrowed; and every access this process
        // makes to it is atomic. Writes from other processes are outside this program, and an
        // aligned 4-byte access is single-copy atomic on every supported CPU.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(offset).cast()) }
    }

    /// The 64-bit control word at `offset`.
    #[inline]
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: as in `u32`, for an 8-aligned, 8-byte, in-bounds word.
        unsafe { AtomicU64::from_ptr(self.map.as_ptr().add(offset).cast()) }
    }

    /// Copies `dst.len()` bytes starting at `offset` (8-aligned: payloads and the description
    /// start at aligned offsets) out of the segment. The bytes may be torn if another process
    /// writes meanwhile; the caller validates the copy.
    #[inline]
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len(), 8);
        // SAFETY: the range is in bounds (checked above); `dst` is a private buffer of its
        // length, which cannot overlap the mapping.
        unsafe { self.copy_out(offset, dst.as_mut_ptr(), dst.len()) }
    }

    /// Replaces `out` with `n` values copied out of the segment from `offset` (any offset), in
    /// one copy into the vector's storage (no zero-filling first). `T` is valid for any bytes,
    /// so torn or hostile bytes make values the caller must validate, never undefined
    /// behaviour.
    #[inline]
    pub(crate) fn read_into_vec<T: FromBytes>(&self, offset: usize, n: usize, out: &mut Vec<T>) {
        let len = n.saturating_mul(size_of::<T>());
        self.check(offset, len, 1);
        out.clear();
        out.reserve(n);
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: the range is in bounds (checked above); `dst` is the vector's spare capacity,
        // at least `n` elements (`len` bytes) of private memory, reserved above.
        unsafe { self.copy_out(offset, dst, len) };
        // SAFETY: the first `n` elements' bytes were all written by the copy, and any bytes are
        // a valid `T` (`FromBytes`).
        unsafe { out.set_len(n) };
    }

    /// Copies `len` bytes at `offset` out of the segment to `dst`: byte by byte up to an
    /// 8-aligned offset, then in bulk or word by word, then the last bytes.
    ///
    /// # Safety
    ///
    /// `offset..offset + len` must be in bounds (checked by the caller), and `dst` valid for
    /// writes of `len` bytes of private memory.
    #[inline]
    unsafe fn copy_out(&self, offset: usize, dst: *mut u8, len: usize) {
        // SAFETY: in bounds (the caller's contract), and stays mapped while `self` is
        // borrowed; this process accesses the segment only atomically or through these copies.
        let src = unsafe { self.map.as_ptr().add(offset) };
        let head = (offset.wrapping_neg() % 8).min(len);
        for i in 0..head {
            // SAFETY: a byte of the range, and of `dst`.
            unsafe {
                dst.add(i)
                    .write(AtomicU8::from_ptr(src.add(i)).load(Ordering::Relaxed))
            };
        }
        // SAFETY: `head <= len`: still within both ranges.
        let src = unsafe { src.add(head) };
        // SAFETY: as above.
        let dst = unsafe { dst.add(head) };
        let len = len - head;
        // SAFETY: `src` (now 8-aligned) is valid for `len` bytes, `dst` too, and they cannot
        // overlap (one is private memory, the other the mapping).
        if unsafe { bulk_copy(dst, src, len) } {
            return;
        }
        let words = len / 8;
        for i in 0..words {
            // SAFETY: word `i` of the range, 8-aligned in the mapping; `dst` may be unaligned.
            unsafe {
                let word = AtomicU64::from_ptr(src.add(8 * i).cast()).load(Ordering::Relaxed);
                dst.add(8 * i).cast::<u64>().write_unaligned(word);
            }
        }
        for i in 8 * words..len {
            // SAFETY: a byte of the range after its last whole word.
            unsafe {
                dst.add(i)
                    .write(AtomicU8::from_ptr(src.add(i)).load(Ordering::Relaxed))
            };
        }
    }

    /// Copies `src` into the segment at `offset` (8-aligned). Publish it with a release store
    /// afterwards.
    #[inline]
    pub(crate) fn write(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len(), 8);
        // SAFETY: as in `read`.
        let dst = unsafe { self.map.as_ptr().add(offset) };
        // SAFETY: as in `read`, the other way round.
        if unsafe { bulk_copy(dst, src.as_ptr(), src.len()) } {
            return;
        }
        let mut words = src.chunks_exact(8);
        for (i, chunk) in (&mut words).enumerate() {
            let value = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
            // SAFETY: as in `read`.
            unsafe { AtomicU64::from_ptr(dst.add(8 * i).cast()) }.store(value, Ordering::Relaxed);
        }
        let start = src.len() - src.len() % 8;
        for (i, b) in words.remainder().iter().enumerate() {
            // SAFETY: as in `read`.
            unsafe { AtomicU8::from_ptr(dst.add(start + i)) }.store(*b, Ordering::Relaxed);
        }
    }
}

impl View {
    /// Copies `src` into the segment at any `offset` (payload pieces written one by one: a
    /// length, then a string's bytes, ...): byte by byte up to the next 8-aligned offset, then
    /// as [`View::write`].
    #[inline]
    pub(crate) fn write_at(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len(), 1);
        let head = offset.wrapping_neg() % 8;
        if head == 0 {
            return self.write(offset, src);
        }
        let head = head.min(src.len());
        // SAFETY: `offset..offset + src.len()` is in bounds (checked above) and stays mapped
        // while `self` is borrowed.
        let dst = unsafe { self.map.as_ptr().add(offset) };
        for (i, b) in src[..head].iter().enumerate() {
            // SAFETY: a byte of the checked range; this process reaches payload bytes only
            // through these copies, never concurrently.
            unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(*b, Ordering::Relaxed);
        }
        if head < src.len() {
            self.write(offset + head, &src[head..]);
        }
    }

    /// Copies `dst.len()` bytes out of the segment from any `offset`: the counterpart of
    /// [`View::write_at`].
    #[inline]
    pub(crate) fn read_at(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len(), 1);
        // SAFETY: as in `read`.
        unsafe { self.copy_out(offset, dst.as_mut_ptr(), dst.len()) }
    }
}

/// Copies of at least this many bytes go through [`bulk_copy`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only the x86-64 copy uses it
const BULK: usize = 256;

/// On x86-64, copies `len` bytes between the segment and private memory with `rep movsb`,
/// which current CPUs run at full cache bandwidth, if `len` is at least [`BULK`]; whether it
/// did (if not, the caller copies word by word).
///
/// One exception, measured: on AMD Zen cores `rep movsb` runs about 20 times slower (64 KiB:
/// 38 µs instead of 1.6 µs) when the destination lies 1 to 31 bytes after the source modulo
/// 4 KiB (the store of one line aliases the load of the next). Such copies go through a loop of
/// 16-byte moves instead, which runs at full speed at any distance.
///
/// The memory model says nothing of an assembly block's accesses beyond what Rust code could
/// have done instead: this one reads and writes what a loop of relaxed atomic byte accesses
/// would (the first bytes of a copy into an unaligned destination twice, see below), which is all
/// a copy from memory another process writes may do. Within this
/// process, payload bytes are only ever reached through `read` and `write`, never concurrently.
///
/// # Safety
///
/// `src` must be valid for reads and `dst` for writes of `len` bytes, and the two ranges must
/// not overlap.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn bulk_copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    if len < BULK {
        return false;
    }
    if (1..32).contains(&((dst as usize).wrapping_sub(src as usize) % 4096)) {
        let whole = len - len % 64;
        // SAFETY: the caller's contract; the loop runs `whole / 64 >= 4` times (`len >= BULK`),
        // each moving the next 64 bytes through xmm0..xmm3 (declared clobbered); the tail of
        // fewer than 64 bytes is left to `rep movsb` (short, so the aliasing costs nothing), with
        // the direction flag clear as on entry to any asm block.
        unsafe {
            std::arch::asm!(
                "2:",
                "movdqu xmm0, [rsi]",
                "movdqu xmm1, [rsi + 16]",
                "movdqu xmm2, [rsi + 32]",
                "movdqu xmm3, [rsi + 48]",
                "movdqu [rdi], xmm0",
                "movdqu [rdi + 16], xmm1",
                "movdqu [rdi + 32], xmm2",
                "movdqu [rdi + 48], xmm3",
                "add rsi, 64",
                "add rdi, 64",
                "sub rdx, 64",
                "jnz 2b",
                "rep movsb",
                inout("rdx") whole => _,
                inout("rcx") len - whole => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                out("xmm0") _,
                out("xmm1") _,
                out("xmm2") _,
                out("xmm3") _,
                options(nostack)
            );
        }
        return true;
    }
    // `rep movsb` runs at full speed only into a cache-line-aligned destination (a 1 KiB echo
    // whose copies wrote 32 bytes into a line took 1.4-1.5x the spin floor instead of 1.2-1.3x,
    // on an Intel Xeon): if the destination is not aligned, the first 64 bytes are moved through
    // xmm registers, and the copy resumes at the destination's next line. Bytes `head..64` are
    // then read and written twice: each ends up with a value the source held at some moment,
    // which is all a copy from memory another process may write can promise anyway.
    let head = (dst as usize).wrapping_neg() % 64;
    if head != 0 {
        // SAFETY: the caller's contract, and `head < 64 <= len`: 64 bytes of each range, moved
        // through xmm0..xmm3 (declared clobbered); no stack, no flags.
        unsafe {
            std::arch::asm!(
                "movdqu xmm0, [rsi]",
                "movdqu xmm1, [rsi + 16]",
                "movdqu xmm2, [rsi + 32]",
                "movdqu xmm3, [rsi + 48]",
                "movdqu [rdi], xmm0",
                "movdqu [rdi + 16], xmm1",
                "movdqu [rdi + 32], xmm2",
                "movdqu [rdi + 48], xmm3",
                in("rdi") dst,
                in("rsi") src,
                out("xmm0") _,
                out("xmm1") _,
                out("xmm2") _,
                out("xmm3") _,
                options(nostack, preserves_flags)
            );
        }
    }
    // SAFETY: the caller's contract, and `head < len`: the `len - head` bytes from `head` on, with
    // the direction flag clear as on entry to an asm block (and left clear), so `rep movsb`
    // copies forwards; it touches no stack and no flags.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") len - head => _,
            inout("rdi") dst.add(head) => _,
            inout("rsi") src.add(head) => _,
            options(nostack, preserves_flags)
        );
    }
    true
}

/// Copies `src` into `dst` (private memory, equal lengths) as fast as the CPU allows at any
/// relative placement: `copy_from_slice` reaches `memcpy`, whose `rep movsb` path is the slow
/// case described at [`bulk_copy`].
#[inline]
pub(crate) fn copy_private(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_private: lengths differ");
    // SAFETY: two distinct live slices (one borrowed mutably, so they cannot overlap) of
    // `src.len()` bytes each.
    if !unsafe { bulk_copy(dst.as_mut_ptr(), src.as_ptr(), src.len()) } {
        dst.copy_from_slice(src);
    }
}

/// Elsewhere, never: the caller's word loop does every copy.
///
/// # Safety
///
/// None needed; `unsafe` only to match the x86-64 version.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
unsafe fn bulk_copy(_dst: *mut u8, _src: *const u8, _len: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of fresh shared memory, mapped.
    fn page() -> View {
        let memory = crate::sys::create_sealed("view-test", 4096).unwrap();
        View::new(Mapping::new(&memory, 4096).unwrap())
    }

    #[test]
    fn copies_round_trip_at_any_aligned_offset_and_length() {
        let view = page();
        let src: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        for offset in [0, 8, 64, 4000] {
            for len in [0, 1, 7, 8, 9, 63, 64, 200, BULK - 1, BULK, BULK + 13, 3000] {
                if offset + len > 4096 {
                    continue;
                }
                view.write(offset, &src[..len]);
                let mut dst = vec![0xAA; len];
                view.read(offset, &mut dst);
                assert_eq!(dst, src[..len]);
            }
        }
    }

    #[test]
    fn private_copies_are_exact_at_every_relative_placement() {
        let src: Vec<u8> = (0..9000u32).map(|i| (i % 253) as u8).collect();
        let mut dst = vec![0u8; 9000 + 4096];
        for distance in [0, 1, 7, 8, 9, 16, 24, 31, 32, 33, 64, 4000, 4095] {
            // Place the destination `distance` bytes after the source, modulo 4 KiB (the fast
            // path for 1..32 is taken only then).
            let shift =
                (distance + src.as_ptr() as usize).wrapping_sub(dst.as_ptr() as usize) % 4096;
            for len in [0, 1, 255, BULK, BULK + 1, 319, 320, 4096, 8191] {
                dst.fill(0xAA);
                copy_private(&mut dst[shift..shift + len], &src[..len]);
                assert_eq!(
                    dst[shift..shift + len],
                    src[..len],
                    "shift {shift} len {len}"
                );
                assert!(
                    dst[..shift].iter().all(|&b| b == 0xAA),
                    "before, shift {shift}"
                );
                assert!(
                    dst[shift + len..].iter().all(|&b| b == 0xAA),
                    "after, shift {shift}"
                );
            }
        }
    }

    /// Bulk copies first align their destination to a cache line: at every destination offset
    /// they copy exactly the bytes asked, and touch nothing around them.
    #[test]
    fn bulk_copies_are_exact_at_every_destination_offset_in_a_line() {
        let src: Vec<u8> = (0..2000u32).map(|i| (i % 247) as u8).collect();
        let mut dst = vec![0u8; 2200];
        let base = (dst.as_ptr() as usize).wrapping_neg() % 64;
        for offset in 0..64 {
            for len in [BULK, BULK + 1, BULK + 63, 1000, 1024] {
                let at = base + offset;
                dst.fill(0xAA);
                copy_private(&mut dst[at..at + len], &src[64 - offset..][..len]);
                assert_eq!(
                    dst[at..at + len],
                    src[64 - offset..][..len],
                    "{offset} {len}"
                );
                assert!(
                    dst[..at].iter().all(|&b| b == 0xAA),
                    "before: {offset} {len}"
                );
                assert!(
                    dst[at + len..].iter().all(|&b| b == 0xAA),
                    "after: {offset} {len}"
                );
            }
        }
    }

    #[test]
    fn unaligned_copies_round_trip() {
        let view = page();
        let src: Vec<u8> = (0..700u32).map(|i| (i % 249) as u8).collect();
        for offset in [1, 3, 7, 8, 9, 15, 4000] {
            for len in [0, 1, 2, 7, 8, 9, 63, BULK + 5, 700] {
                if offset + len > 4096 {
                    continue;
                }
                view.write_at(offset, &src[..len]);
                let mut dst = vec![0xAA; len];
                view.read_at(offset, &mut dst);
                assert_eq!(dst, src[..len], "offset {offset} len {len}");
                let mut aligned = vec![0; 8 + len];
                view.read(offset - offset % 8, &mut aligned[..offset % 8 + len]);
                assert_eq!(aligned[offset % 8..offset % 8 + len], src[..len]);
            }
        }
    }

    #[test]
    fn values_are_read_into_a_vector_from_any_offset() {
        let view = page();
        let src: Vec<u8> = (0..800u32).map(|i| (i % 241) as u8).collect();
        view.write_at(3, &src);
        let mut out: Vec<u16> = Vec::with_capacity(1);
        view.read_into_vec(3, 400, &mut out);
        assert_eq!(out.len(), 400);
        assert_eq!(zerocopy::IntoBytes::as_bytes(&out[..]), &src[..]);
        let mut bytes = vec![1u8; 5];
        view.read_into_vec(9, 7, &mut bytes);
        assert_eq!(bytes, src[6..13]);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn out_of_bounds_is_refused() {
        page().read(4096 - 8, &mut [0; 9]);
    }

    #[test]
    #[should_panic(expected = "misaligned")]
    fn unaligned_copies_are_refused() {
        page().write(13, &[1, 2, 3]);
    }
}
