//! A slot's memory: a section backed by the pagefile, created by the server and mapped by both
//! sides.
//!
//! Unlike a file, a section cannot shrink: no process can make an access within the size it was
//! created with fault (what `SIGBUS` is on Linux, where memfds need seals for this). A process
//! cannot map more than the section holds either: `MapViewOfFile` refuses.

use std::io;
use std::ptr::NonNull;

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FILE_MAP_READ, FILE_MAP_WRITE, MEMORY_MAPPED_VIEW_ADDRESS, MapViewOfFile,
    PAGE_READWRITE, UnmapViewOfFile,
};

use super::{owned, raw};
use crate::sys::Owned;

/// Creates an unnamed section of `len` bytes (zeroed), backed by the pagefile. `name` is for
/// Linux's memfds; a section without a name cannot be opened by anyone this process does not
/// give a handle.
pub(crate) fn create_sealed(_name: &str, len: usize) -> io::Result<Owned> {
    let len = len as u64;
    // SAFETY: a fresh unnamed section backed by the pagefile; no attributes.
    let section = unsafe {
        CreateFileMappingW(
            INVALID_HANDLE_VALUE,
            std::ptr::null(),
            PAGE_READWRITE,
            (len >> 32) as u32,
            len as u32,
            std::ptr::null(),
        )
    };
    owned(section)
}

/// Nothing to check on Windows: no process can resize a section, and [`Mapping::new`] fails
/// rather than map more than the section holds.
pub(crate) fn check_sealed(_section: &Owned, _len: usize) -> io::Result<()> {
    Ok(())
}

/// A shared, read-write view of the first bytes of a section. Unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the view is plain memory owned by this value; every access to it goes through atomics
// (see `view`), so sharing the pointer between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` only hands out atomics and atomic copies.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `section`, read-write. Fails if the section is smaller.
    pub(crate) fn new(
        section: impl std::os::windows::io::AsHandle,
        len: usize,
    ) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map 0 bytes",
            ));
        }
        // SAFETY: a fresh view chosen by the system cannot alias any Rust object; the handle
        // is live for the call.
        let view = unsafe {
            MapViewOfFile(
                raw(section.as_handle()),
                FILE_MAP_READ | FILE_MAP_WRITE,
                0,
                0,
                len,
            )
        };
        let ptr = NonNull::new(view.Value.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
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
        let view = MEMORY_MAPPED_VIEW_ADDRESS {
            Value: self.ptr.as_ptr().cast(),
        };
        // SAFETY: `ptr` is a view made in `new` and not unmapped since; no reference into it
        // outlives `self` (views borrow the mapping).
        unsafe { UnmapViewOfFile(view) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::windows::io::{AsRawHandle, FromRawHandle};
    use std::sync::atomic::{AtomicU64, Ordering};

    const CHILD: &str = "SHMRPC_TEST_SECTION";

    fn word(mapping: &Mapping, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= mapping.len());
        // SAFETY: in bounds (checked), 8-aligned (views are page-aligned), and only ever
        // accessed atomically while `mapping` lives.
        unsafe { &*mapping.as_ptr().add(i * 8).cast::<AtomicU64>() }
    }

    #[test]
    fn two_views_of_a_section_share_memory_and_it_cannot_be_overmapped() {
        let section = create_sealed("test", 65536).unwrap();
        check_sealed(&section, 65536).unwrap();
        let (a, b) = (
            Mapping::new(&section, 65536).unwrap(),
            Mapping::new(&section, 4096).unwrap(),
        );
        assert_eq!(word(&b, 7).load(Ordering::SeqCst), 0, "zeroed");
        word(&a, 7).store(0xfeed, Ordering::SeqCst);
        assert_eq!(word(&b, 7).load(Ordering::SeqCst), 0xfeed);
        drop(section);
        // The views keep the section alive.
        word(&b, 8).store(1, Ordering::SeqCst);
        assert_eq!(word(&a, 8).load(Ordering::SeqCst), 1);
        let small = create_sealed("test", 4096).unwrap();
        assert!(
            Mapping::new(&small, 3 * 65536).is_err(),
            "mapped past the end"
        );
        assert!(Mapping::new(&small, 0).is_err());
    }

    /// The other process's side of the test below: maps the section it was given, checks the
    /// parent's word, answers in the next one.
    #[test]
    fn child_side_of_a_section_shared_with_another_process() {
        let Ok(value) = std::env::var(CHILD) else {
            return;
        };
        let handle: usize = value.parse().unwrap();
        // SAFETY: the parent duplicated this handle into this process for this test.
        let section = unsafe { Owned::from_raw_handle(handle as _) };
        let view = Mapping::new(&section, 4096).unwrap();
        assert_eq!(word(&view, 0).load(Ordering::SeqCst), 0x5eed);
        word(&view, 1).store(0xa115e, Ordering::SeqCst);
    }

    #[test]
    fn a_section_is_shared_with_another_process() {
        use windows_sys::Win32::Foundation::{HANDLE_FLAG_INHERIT, SetHandleInformation};
        if std::env::var_os(CHILD).is_some() {
            return;
        }
        let section = create_sealed("test", 4096).unwrap();
        let view = Mapping::new(&section, 4096).unwrap();
        word(&view, 0).store(0x5eed, Ordering::SeqCst);
        // Inherited by the child (std starts children inheriting inheritable handles), under
        // the same value.
        let inherited = section.try_clone().unwrap();
        // SAFETY: a live handle owned by `inherited`.
        let ok = unsafe {
            SetHandleInformation(
                inherited.as_raw_handle(),
                HANDLE_FLAG_INHERIT,
                HANDLE_FLAG_INHERIT,
            )
        };
        assert_ne!(ok, 0);
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sys::windows::memory::tests::child_side_of_a_section_shared_with_another_process",
                "--test-threads=1",
            ])
            .env(CHILD, (inherited.as_raw_handle() as usize).to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        drop(inherited);
        assert!(status.success(), "the other process failed: {status}");
        assert_eq!(word(&view, 1).load(Ordering::SeqCst), 0xa115e);
    }
}
