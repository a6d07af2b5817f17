//! The client lock: one client at a time uses the slot, and a dead holder never blocks anyone.
//!
//! The lock is one 64-bit word in the segment. Its low half holds the owner's pid and three
//! bits, `WAITERS`, `WANT` and `HANDOFF`, and is the futex that waiters sleep on; its high half
//! holds the owner's process tag (its start time), so that a pid the kernel has since given to
//! another process is not mistaken for the owner. Zero pid bits mean free, whatever the other
//! bits say.
//!
//! Taking a free lock is one compare-and-swap; so is releasing it, and neither reads the clock
//! (a release does, to record the time, only when it hands the lock off).
//! Waking a sleeper costs the releaser a system call and, worse on a machine with few cores, a
//! context switch that takes a core from the server or from the client at work; so a release
//! wakes a sleeper only when a sleeper asked for a turn (`WANT`), and then *hands the lock off*:
//! it leaves it free but reserved (`HANDOFF`), and only a thread that has slept may take a
//! reserved lock. Sleepers wake every [`SLEEP_SLICE`] to look for themselves (in case the holder
//! released the lock for good without waking anyone) and ask for a turn only when the last
//! hand-off is [`HANDOFF_EVERY`] ago, so hand-offs are that far apart. In between, the client at
//! work takes the lock again and again at no cost, and everyone gets a turn within a bounded
//! time: about the number of waiters ahead times `HANDOFF_EVERY`. (Measured with 4 client
//! processes on 2 cores: waking at every release gave half the calls per second of one client;
//! a hand-off every 2 ms gives 80% or more. The releaser used to read the clock to space the
//! hand-offs itself, which cost every contended call ~25 ns.)
//!
//! Whenever [`PROBE_INTERVAL`] passes with the same owner, a waiter asks the kernel whether that
//! process still lives (`kill(pid, 0)`, then `/proc/<pid>/stat`). A dead owner's lock is taken
//! over with one compare-and-swap, so at most one waiter wins it. This works whatever the word
//! holds: a value written by garbage names a process that does not exist, or one whose start
//! time differs, and is taken over in turn; a reserved lock nobody takes is taken by the next
//! thread that has slept.
//!
//! A `pthread_mutex_t` with `PTHREAD_MUTEX_ROBUST` was rejected: glibc keeps a robust mutex on a
//! per-thread list linked *through the mutex*, so bytes written into the segment by another
//! process would become pointers that glibc follows and writes through.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys;
use crate::wait::Deadline;

/// How long a waiter sleeps before it checks that the owner is still alive.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// How long a waiter sleeps at most before it looks at the lock again by itself.
const SLEEP_SLICE: Duration = Duration::from_millis(1);
/// At most one hand-off (a sleeper woken) per this much time.
const HANDOFF_EVERY: Duration = Duration::from_millis(2);

/// Pids are below 2^22 (`PID_MAX_LIMIT`).
const PID_MASK: u64 = (1 << 22) - 1;
/// A sleeper asks for a turn: the next release hands the lock off.
const WANT: u64 = 1 << 29;
/// Free but reserved for a thread that has slept.
const HANDOFF: u64 = 1 << 30;
/// Someone sleeps (or slept) on the lock.
const WAITERS: u64 = 1 << 31;

/// Who holds the lock: a pid and the process's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner(u64);

impl Owner {
    /// This process.
    pub(crate) fn me() -> Self {
        let (pid, tag) = sys::identity();
        Owner((u64::from(tag) << 32) | (u64::from(pid) & PID_MASK))
    }

    fn of(word: u64) -> Self {
        Owner(word & !(WAITERS | HANDOFF | WANT))
    }

    fn pid(self) -> u32 {
        (self.0 & PID_MASK) as u32
    }

    fn tag(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn alive(self) -> bool {
        sys::process_alive(self.pid(), self.tag())
    }
}

/// How an attempt to take the lock ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Taken from a free lock.
    Free,
    /// Taken over from a holder that died (or from a word written by garbage).
    FromDeadOwner,
}

/// The lock in a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lock<'a> {
    word: &'a AtomicU64,
    /// The low half of `word`, as the kernel sees it.
    futex: &'a AtomicU32,
    /// When the last hand-off happened, in monotonic nanoseconds (the clock is system-wide).
    handoff_at: &'a AtomicU64,
}

impl<'a> Lock<'a> {
    /// `word` is the lock word; `futex` must be its low half.
    pub(crate) fn new(
        word: &'a AtomicU64,
        futex: &'a AtomicU32,
        handoff_at: &'a AtomicU64,
    ) -> Self {
        Lock {
            word,
            futex,
            handoff_at,
        }
    }

    /// Takes the lock for `me`, waiting until `deadline` at most. `None`: timed out.
    #[inline]
    pub(crate) fn acquire(&self, me: Owner, deadline: &Deadline) -> Option<Acquired> {
        // The common case, inlined into the call: free and not reserved for a sleeper.
        let cur = self.word.load(Ordering::Relaxed);
        if cur & (PID_MASK | HANDOFF) == 0 && self.cas(cur, me.0 | (cur & (WAITERS | WANT))) {
            return Some(Acquired::Free);
        }
        self.acquire_slowly(me, deadline)
    }

    #[inline(never)]
    fn acquire_slowly(&self, me: Owner, deadline: &Deadline) -> Option<Acquired> {
        let mut slept = false;
        // The owner seen when the current wait began, and since when.
        let mut watched: Option<(Owner, Instant)> = None;
        let mut spins = 0u32;
        loop {
            let cur = self.word.load(Ordering::Relaxed);
            // Free, and not reserved for a sleeper (or we are one).
            if Owner::of(cur).pid() == 0 && (cur & HANDOFF == 0 || slept) {
                // After sleeping, others may sleep too: keep WAITERS so that they get a turn
                // (and WANT, if one of them asked for it).
                let new = me.0 | (cur & WANT) | if slept { WAITERS } else { cur & WAITERS };
                if self.cas(cur, new) {
                    return Some(Acquired::Free);
                }
                continue;
            }
            if slept && cur & WANT == 0 && self.handoff_due() {
                // Waited long enough: ask the holder for a turn at its next release.
                let _ = self.cas(cur, cur | WANT);
                continue;
            }
            if spins < 64 {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            let deadline = deadline.get();
            if now >= deadline {
                return None;
            }
            let owner = Owner::of(cur);
            match watched {
                _ if owner.pid() == 0 => {}
                Some((o, since)) if o == owner => {
                    if now.duration_since(since) >= PROBE_INTERVAL {
                        if !owner.alive() {
                            if self.cas(cur, me.0 | WAITERS) {
                                return Some(Acquired::FromDeadOwner);
                            }
                            continue;
                        }
                        watched = Some((owner, now));
                    }
                }
                _ => watched = Some((owner, now)),
            }
            if cur & WAITERS == 0 && !self.cas(cur, cur | WAITERS) {
                continue;
            }
            sys::futex_wait(
                self.futex,
                (cur | WAITERS) as u32,
                Some(SLEEP_SLICE.min(deadline - now)),
            );
            slept = true;
        }
    }

    fn cas(&self, from: u64, to: u64) -> bool {
        self.word
            .compare_exchange(from, to, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Releases the lock if `me` still holds it; now and then hands it off to a sleeper.
    #[inline]
    pub(crate) fn release(&self, me: Owner) {
        // Every case is one compare-and-swap; the one without waiters is inlined into the call.
        let cur = self.word.load(Ordering::Relaxed);
        if cur != me.0
            || self
                .word
                .compare_exchange(cur, 0, Ordering::Release, Ordering::Relaxed)
                .is_err()
        {
            self.release_slowly(me);
        }
    }

    #[inline(never)]
    fn release_slowly(&self, me: Owner) {
        let mut cur = self.word.load(Ordering::Relaxed);
        loop {
            if Owner::of(cur) != me {
                // Taken over (we were thought dead) or overwritten: not ours to release.
                return;
            }
            let waiters = cur & WAITERS != 0;
            let wake = waiters && cur & WANT != 0;
            let new = match (waiters, wake) {
                (false, _) => 0,
                (true, false) => WAITERS,
                (true, true) => WAITERS | HANDOFF,
            };
            match self
                .word
                .compare_exchange(cur, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) if wake => {
                    self.handoff_at
                        .store(sys::monotonic_ns(), Ordering::Relaxed);
                    if sys::futex_wake(self.futex, 1) == 0 {
                        // Nobody sleeps any more (contention is over): clear the bits, or every
                        // later hand-off would reserve the lock for no one. A thread about to
                        // sleep meanwhile fails its futex wait (the word changed) and looks again.
                        let _ = self.word.compare_exchange(
                            WAITERS | HANDOFF,
                            0,
                            Ordering::Release,
                            Ordering::Relaxed,
                        );
                    }
                    return;
                }
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Whether the last hand-off is at least `HANDOFF_EVERY` ago (a sleeper's question; the
    /// releaser records the time of each hand-off).
    fn handoff_due(&self) -> bool {
        let now = sys::monotonic_ns();
        let last = self.handoff_at.load(Ordering::Relaxed);
        // A time in the future (written by garbage) counts as long ago.
        last > now || now - last >= HANDOFF_EVERY.as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A lock word in private memory, with its low half (little-endian only).
    struct Word(Box<AtomicU64>, AtomicU64);

    impl Word {
        fn new(v: u64) -> Self {
            Word(Box::new(AtomicU64::new(v)), AtomicU64::new(0))
        }
        fn lock(&self) -> Lock<'_> {
            let ptr: *const AtomicU64 = &*self.0;
            // SAFETY: (test only) the low half of an aligned AtomicU64 on a little-endian target.
            let futex = unsafe { AtomicU32::from_ptr(ptr.cast_mut().cast()) };
            Lock::new(&self.0, futex, &self.1)
        }
    }

    fn soon() -> Deadline {
        Deadline::new(Duration::from_secs(2))
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn free_lock_is_taken_and_released() {
        let w = Word::new(0);
        let me = Owner::me();
        assert_eq!(w.lock().acquire(me, &soon()), Some(Acquired::Free));
        assert_eq!(Owner::of(w.0.load(Ordering::Relaxed)), me);
        w.lock().release(me);
        assert_eq!(w.0.load(Ordering::Relaxed), 0);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn a_nonexistent_owner_is_taken_over() {
        // pid 0x3fff_fff0 exceeds any pid_max.
        let w = Word::new(0x3fff_fff0);
        let start = Instant::now();
        assert_eq!(
            w.lock().acquire(Owner::me(), &soon()),
            Some(Acquired::FromDeadOwner)
        );
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn a_live_pid_with_another_start_time_is_taken_over() {
        let me = Owner::me();
        let impostor = Owner(me.0 ^ (0xdead_u64 << 32));
        let w = Word::new(impostor.0);
        assert_eq!(w.lock().acquire(me, &soon()), Some(Acquired::FromDeadOwner));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn a_live_owner_makes_waiters_time_out() {
        let w = Word::new(Owner::me().0);
        let t = Instant::now();
        assert_eq!(
            w.lock()
                .acquire(Owner::me(), &Deadline::new(Duration::from_millis(30))),
            None
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn a_reserved_lock_is_taken_by_a_sleeper_not_by_a_newcomer() {
        // Free but reserved: a thread that never slept waits a slice before it may take it.
        let w = Word::new(HANDOFF | WAITERS);
        let t = Instant::now();
        assert_eq!(w.lock().acquire(Owner::me(), &soon()), Some(Acquired::Free));
        assert!(t.elapsed() >= SLEEP_SLICE / 2, "{:?}", t.elapsed());
        assert_eq!(Owner::of(w.0.load(Ordering::Relaxed)), Owner::me());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn every_waiter_gets_a_turn_while_one_thread_calls_in_a_loop() {
        let w = Arc::new(Word::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hog = {
            let (w, stop) = (w.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let lock = w.lock();
                    lock.acquire(Owner::me(), &soon()).unwrap();
                    lock.release(Owner::me());
                }
            })
        };
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || {
                    let t = Instant::now();
                    let lock = w.lock();
                    lock.acquire(Owner::me(), &soon()).unwrap();
                    lock.release(Owner::me());
                    t.elapsed()
                })
            })
            .collect();
        for waiter in waiters {
            let waited = waiter.join().unwrap();
            assert!(
                waited < Duration::from_millis(200),
                "a waiter starved for {waited:?}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        hog.join().unwrap();
    }

    #[test]
    fn a_waiters_bit_left_over_costs_a_lone_client_nothing() {
        // Contention ended without anyone asking for a turn: WAITERS stays, but no release
        // reserves the lock or asks for a hand-off, so a lone client never waits for a sleeper.
        let w = Word::new(WAITERS);
        let lock = w.lock();
        for _ in 0..1000 {
            assert_eq!(lock.acquire(Owner::me(), &soon()), Some(Acquired::Free));
            lock.release(Owner::me());
            assert_eq!(w.0.load(Ordering::Relaxed) & (PID_MASK | HANDOFF | WANT), 0);
        }
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn bits_left_by_contention_are_cleared_when_nobody_sleeps() {
        // WAITERS and a request for a turn left set after contention ended.
        let w = Word::new(WAITERS | WANT);
        let lock = w.lock();
        assert_eq!(lock.acquire(Owner::me(), &soon()), Some(Acquired::Free));
        lock.release(Owner::me());
        // Nobody was woken: the lock must be plainly free, not reserved for a sleeper that does
        // not exist (which made a lone client sleep a slice every hand-off).
        assert_eq!(w.0.load(Ordering::Relaxed), 0);
        let t = Instant::now();
        assert_eq!(lock.acquire(Owner::me(), &soon()), Some(Acquired::Free));
        assert!(t.elapsed() < SLEEP_SLICE / 2, "{:?}", t.elapsed());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn threads_exclude_each_other() {
        let w = Arc::new(Word::new(0));
        let inside = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (w, inside) = (w.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let lock = w.lock();
                        lock.acquire(Owner::me(), &soon()).unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::Relaxed), 0);
                        inside.fetch_sub(1, Ordering::Relaxed);
                        lock.release(Owner::me());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}
