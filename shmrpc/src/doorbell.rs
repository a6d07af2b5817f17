//! Doorbells: "exec" (client → server) and "done" (server → client).
//!
//! A doorbell is a 32-bit futex word used as a counter in steps of two; bit 0 says that someone
//! sleeps on it. Ringing is one atomic add, plus a `FUTEX_WAKE` only when bit 0 was set, so a
//! call between two spinning processes makes no system call at all. A sleeper sets bit 0 with a
//! compare-and-swap against the value it read *before* checking its condition, so a ring that
//! lands in between makes the swap fail instead of being lost.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::sys;

const SLEEPER: u32 = 1;

/// A doorbell word in the segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doorbell<'a> {
    word: &'a AtomicU32,
}

/// What ringing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rang {
    /// Nobody was asleep: nothing more to do.
    NoSleeper,
    /// Someone was asleep; this many were woken (0 means the sleeper was gone).
    Woke(usize),
}

impl<'a> Doorbell<'a> {
    pub(crate) fn new(word: &'a AtomicU32) -> Self {
        Doorbell { word }
    }

    /// The value to pass to [`Doorbell::sleep`]: read it before checking the condition.
    pub(crate) fn seen(&self) -> u32 {
        self.word.load(Ordering::Acquire)
    }

    /// Publishes everything written before it, and wakes a sleeper.
    pub(crate) fn ring(&self) -> Rang {
        let old = self.word.fetch_add(2, Ordering::AcqRel);
        if old & SLEEPER == 0 {
            return Rang::NoSleeper;
        }
        self.word.fetch_and(!SLEEPER, Ordering::Relaxed);
        Rang::Woke(sys::futex_wake(self.word, u32::MAX))
    }

    /// Wakes sleepers whether or not they said so: repairs a sleeper bit lost to garbage.
    pub(crate) fn knock(&self) -> usize {
        sys::futex_wake(self.word, u32::MAX)
    }

    /// Sleeps until rung, at most `timeout`, unless the bell rang since `seen` was read.
    /// Returns `true` if the timeout passed.
    pub(crate) fn sleep(&self, seen: u32, timeout: Option<Duration>) -> bool {
        let flagged = seen | SLEEPER;
        if seen & SLEEPER == 0
            && self
                .word
                .compare_exchange(seen, flagged, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return false;
        }
        sys::futex_wait(self.word, flagged, timeout) == sys::Wake::TimedOut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    #[test]
    fn ring_without_sleeper_makes_no_syscall_and_bumps() {
        let w = AtomicU32::new(0);
        let bell = Doorbell::new(&w);
        assert_eq!(bell.ring(), Rang::NoSleeper);
        assert_eq!(w.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_ring_after_seen_is_never_lost() {
        let w = AtomicU32::new(0);
        let bell = Doorbell::new(&w);
        let seen = bell.seen();
        bell.ring();
        let t = Instant::now();
        assert!(!bell.sleep(seen, Some(Duration::from_secs(5))));
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn sleeper_is_woken() {
        let w = Arc::new(AtomicU32::new(0));
        let flag = Arc::new(AtomicBool::new(false));
        let (w2, flag2) = (w.clone(), flag.clone());
        let t = std::thread::spawn(move || {
            let bell = Doorbell::new(&w2);
            loop {
                let seen = bell.seen();
                if flag2.load(Ordering::Acquire) {
                    return;
                }
                assert!(!bell.sleep(seen, Some(Duration::from_secs(5))), "not woken");
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        flag.store(true, Ordering::Release);
        Doorbell::new(&w).ring();
        t.join().unwrap();
    }
}
