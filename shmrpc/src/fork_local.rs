//! A value that belongs to one process: a forked child that reaches it gets a fresh one.
//!
//! A client's connection state holds locks and sockets of the process that made it. After a
//! `fork` without exec, the child has a copy of that memory but only the one thread that forked:
//! a lock another thread held is held for ever in the child, and a slot the parent is calling
//! through must not be written by the child. So the child must not touch any of it. This cell
//! notices the fork (by the process's fork epoch, one relaxed load) and builds the child a new
//! value; the parent's copy is left alone, never freed in the child.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::sys;

struct Entry<T> {
    epoch: u64,
    value: T,
}

/// See the module docs.
pub(crate) struct ForkLocal<T> {
    /// Points to a leaked `Box<Entry<T>>`. Replaced only in a forked child, which leaks the
    /// entry it replaces; freed only by `Drop`.
    entry: AtomicPtr<Entry<T>>,
}

// SAFETY: the cell hands out `&T` to any thread, and moves a `T` with it: both need `T` to be
// `Send + Sync`.
unsafe impl<T: Send + Sync> Send for ForkLocal<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for ForkLocal<T> {}

impl<T> ForkLocal<T> {
    pub(crate) fn new(value: T) -> Self {
        let epoch = sys::fork_epoch();
        ForkLocal {
            entry: AtomicPtr::new(Box::into_raw(Box::new(Entry { epoch, value }))),
        }
    }

    /// This process's value: the one given to `new`, or in a forked child one made by `make`.
    pub(crate) fn get(&self, make: impl FnOnce() -> T) -> &T {
        let current = self.entry.load(Ordering::Acquire);
        let epoch = sys::fork_epoch();
        // SAFETY: `entry` always points to a live entry: entries are freed only in `drop`,
        // which has `&mut self`, so none is freed while `&self` is borrowed.
        let entry = unsafe { &*current };
        if entry.epoch == epoch {
            return &entry.value;
        }
        let fresh = Box::into_raw(Box::new(Entry {
            epoch,
            value: make(),
        }));
        match self
            .entry
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            // The replaced entry is leaked: another thread of the child may be reading it.
            // SAFETY: `fresh` is live until `drop` (as above).
            Ok(_) => unsafe { &(*fresh).value },
            Err(winner) => {
                // SAFETY: `fresh` was never shared: this thread owns it.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: `winner` is live until `drop` (as above).
                unsafe { &(*winner).value }
            }
        }
    }

    /// The value, if this process made it (not in a forked child): for `Drop` impls that must
    /// not act on a parent's value.
    pub(crate) fn get_mut_if_own(&mut self) -> Option<&mut T> {
        let current = *self.entry.get_mut();
        // SAFETY: live (as in `get`), and `&mut self` excludes every other access.
        let entry = unsafe { &mut *current };
        (entry.epoch == sys::fork_epoch()).then_some(&mut entry.value)
    }
}

impl<T> Drop for ForkLocal<T> {
    fn drop(&mut self) {
        let current = *self.entry.get_mut();
        // SAFETY: the current entry is live and owned by this cell (entries it replaced were
        // leaked, not freed); nothing borrows it any more.
        let entry = unsafe { Box::from_raw(current) };
        if entry.epoch != sys::fork_epoch() {
            // The parent's value in a forked child: its drop could act on the parent's behalf
            // (shut down its sockets). Leak it.
            std::mem::forget(entry);
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ForkLocal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: live (as in `get`).
        let entry = unsafe { &*self.entry.load(Ordering::Acquire) };
        f.debug_struct("ForkLocal")
            .field("epoch", &entry.epoch)
            .field("value", &entry.value)
            .finish()
    }
}
