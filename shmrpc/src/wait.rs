//! How long to spin before sleeping.
//!
//! Waking a sleeping process costs microseconds (tens on a virtual machine); spinning costs a
//! core. Spinning pays when the event comes within the spin *and* the process it waits for has a
//! core to run on meanwhile. The adaptive policy watches how each wait ended:
//!
//! - it ended while spinning: spinning paid, keep spinning;
//! - it ended soon after the spin gave up and the waiter slept: spinning did not pay, and the
//!   event came just after the waiter let go of its core — what happens when the two processes
//!   share a core. Enough of these and the waiter stops spinning, retrying now and then;
//! - it ended long after: the other side was idle. Neutral: one spin per idle period is cheap.
//!
//! It also skips the spin when recent waits lasted far longer than the budget (a slow method):
//! the answer is not imminent, so the waiter sleeps at once.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::options::WaitStrategy;

/// Spin decisions of one waiter (shared by the threads of a client).
#[derive(Debug)]
pub(crate) struct SpinPolicy {
    strategy: WaitStrategy,
    budget: Duration,
    /// Moving average of recent wait times, in nanoseconds.
    typical_ns: AtomicU64,
    /// 0..=SCORE_MAX: high while spins pay off.
    score: AtomicU32,
    /// Counts waits while spinning is off, to retry spinning now and then.
    skipped: AtomicU32,
}

const SCORE_MAX: u32 = 16;
const SCORE_SPIN: u32 = 4;
const RETRY_EVERY: u32 = 32;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// While spinning.
    Spinning,
    /// While sleeping, this long after the wait began.
    Sleeping(Duration),
}

impl SpinPolicy {
    pub(crate) fn new(strategy: WaitStrategy, budget: Duration) -> Self {
        SpinPolicy {
            strategy,
            budget: budget.min(crate::options::LONGEST_SPIN_BUDGET),
            typical_ns: AtomicU64::new(0),
            score: AtomicU32::new(SCORE_MAX),
            skipped: AtomicU32::new(0),
        }
    }

    /// How long the next wait should spin before sleeping (`None`: spin until done).
    pub(crate) fn spin_for(&self) -> Option<Duration> {
        self.spin_with(self.budget)
    }

    /// How long the next wait of a call that moves `bytes` (request and expected reply) should
    /// spin: the budget, plus the time those bytes take to copy (at [`COPY_BYTES_PER_NS`], at
    /// most [`MAX_COPY_SPIN`] more). Its answer cannot come before the server has copied the
    /// request out and the reply in, and sleeping through that would add a wake-up to a call
    /// that ends a little later anyway: tens of microseconds, a good part of a megabyte's call.
    ///
    /// The cost, accepted: a method that computes for longer than the budget, called with that
    /// many bytes, is spun for up to the extra time on every call, as long as its answers come
    /// within the spin (at most [`MAX_COPY_SPIN`], and no longer than copying those bytes at
    /// [`COPY_BYTES_PER_NS`] takes); a few answers that come later make it sleep at once.
    pub(crate) fn spin_for_bytes(&self, bytes: u64) -> Option<Duration> {
        self.spin_with(self.budget.saturating_add(copy_time(bytes)))
    }

    fn spin_with(&self, budget: Duration) -> Option<Duration> {
        match self.strategy {
            WaitStrategy::SpinOnly => None,
            WaitStrategy::ParkOnly => Some(Duration::ZERO),
            WaitStrategy::Adaptive => {
                let retry = || {
                    self.skipped
                        .fetch_add(1, Ordering::Relaxed)
                        .is_multiple_of(RETRY_EVERY)
                };
                let typical = Duration::from_nanos(self.typical_ns.load(Ordering::Relaxed));
                // Against the budget alone: a call's bytes lengthen its spin, not the time
                // after which answers count as slow (`typical` is at most 8 budgets).
                if (self.score.load(Ordering::Relaxed) < SCORE_SPIN || typical > self.budget * 4)
                    && !retry()
                {
                    return Some(Duration::ZERO);
                }
                Some(budget)
            }
        }
    }

    /// Records how a wait that spun for `spun` went.
    pub(crate) fn record(&self, spun: Duration, ended: Ended) {
        if self.strategy != WaitStrategy::Adaptive {
            return;
        }
        let waited = match ended {
            // At most the budget: a large call's longer spin says nothing of how soon answers
            // come, and must not stop the spinning of the small calls after it.
            Ended::Spinning => spun.min(self.budget),
            Ended::Sleeping(d) => d,
        };
        // Clamped, so that one idle period does not stop the spinning in the burst after it.
        let ns = waited
            .min(self.budget * 8)
            .as_nanos()
            .min(u128::from(u64::MAX / 16)) as u64;
        let old = self.typical_ns.load(Ordering::Relaxed);
        // A 1/8 moving average.
        self.typical_ns
            .store(old - old / 8 + ns / 8, Ordering::Relaxed);
        let score = self.score.load(Ordering::Relaxed);
        let new = match ended {
            Ended::Spinning => (score + 1).min(SCORE_MAX),
            // The event came soon after the spin gave up: spinning did not pay.
            Ended::Sleeping(d) if spun > Duration::ZERO && d < spun + self.budget * 2 => {
                score.saturating_sub(2)
            }
            Ended::Sleeping(_) => score,
        };
        self.score.store(new, Ordering::Relaxed);
    }
}

/// How fast a spin expects bytes to be copied: slower than any machine copies cached memory (a
/// 1 MiB echo copies 4 MiB in about 160 µs, 26 bytes/ns, on the machine of the README's
/// benchmark), so that the answer comes within the spin.
pub(crate) const COPY_BYTES_PER_NS: u64 = 4;

/// The most a call's bytes lengthen its spin: a wake-up (tens of microseconds) is a small part of
/// a call that moves more than a few megabytes.
pub(crate) const MAX_COPY_SPIN: Duration = Duration::from_millis(1);

/// The time `bytes` take to copy, as [`SpinPolicy::spin_for_bytes`] counts it.
fn copy_time(bytes: u64) -> Duration {
    Duration::from_nanos(bytes / COPY_BYTES_PER_NS).min(MAX_COPY_SPIN)
}

/// Spin rounds before the first look at the clock: most answers come within them, and a clock
/// read costs ~25 ns on a virtual machine, a good part of a whole call.
const FREE_SPINS: u32 = 64;

/// Spins `FREE_SPINS` rounds without reading the clock; whether `done()` became true.
#[inline]
pub(crate) fn spin_briefly(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..FREE_SPINS {
        if done() {
            return true;
        }
        std::hint::spin_loop();
    }
    done()
}

/// A call's deadline, fixed the first time something needs it: a call that never waits never
/// reads the clock. The call's time starts then, a few microseconds late at most.
#[derive(Debug)]
pub(crate) struct Deadline {
    timeout: Duration,
    at: std::cell::Cell<Option<Instant>>,
}

impl Deadline {
    pub(crate) fn new(timeout: Duration) -> Self {
        Deadline {
            timeout,
            at: std::cell::Cell::new(None),
        }
    }

    /// A deadline fixed already, at `at`, `timeout` after the call began.
    pub(crate) fn fixed(timeout: Duration, at: Instant) -> Self {
        Deadline {
            timeout,
            at: std::cell::Cell::new(Some(at)),
        }
    }

    /// The timeout the deadline was made from.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn get(&self) -> Instant {
        if let Some(at) = self.at.get() {
            return at;
        }
        let at = after(self.timeout);
        self.at.set(Some(at));
        at
    }
}

/// The instant `d` from now, or a year from now if `d` is longer (an `Instant` cannot hold any
/// duration).
pub(crate) fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(Duration::from_secs(86400 * 365)))
        .unwrap_or(now)
}

/// Spins until `done()` or until `limit` passes; returns whether `done()` became true.
///
/// Yields the CPU every [`YIELD_EVERY`]: the process this one waits for may be runnable on this
/// very CPU (the kernel tends to run a woken process where its waker runs), and would otherwise
/// wait for the spin to end. With nothing else to run, a yield returns at once.
#[inline]
pub(crate) fn spin_until(limit: Instant, mut done: impl FnMut() -> bool) -> bool {
    let mut i = 0u32;
    let mut next_yield: Option<Instant> = None;
    loop {
        if done() {
            return true;
        }
        std::hint::spin_loop();
        i = i.wrapping_add(1);
        // Reading the clock costs ~20 ns: look at it every few dozen spins.
        if i.is_multiple_of(32) {
            let now = Instant::now();
            if now >= limit {
                return false;
            }
            match next_yield {
                None => next_yield = Some(now + YIELD_EVERY),
                Some(at) if now >= at => {
                    std::thread::yield_now();
                    next_yield = Some(now + YIELD_EVERY);
                }
                Some(_) => {}
            }
        }
    }
}

/// How often a long spin yields the CPU.
pub(crate) const YIELD_EVERY: Duration = Duration::from_micros(20);

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_micros(50);

    fn spins(p: &SpinPolicy, n: u32) -> usize {
        (0..n)
            .filter(|_| p.spin_for().unwrap() > Duration::ZERO)
            .count()
    }

    #[test]
    fn idle_periods_do_not_turn_spinning_off() {
        let p = SpinPolicy::new(WaitStrategy::Adaptive, BUDGET);
        for _ in 0..100 {
            // A burst of quick calls after each idle period.
            p.record(BUDGET, Ended::Sleeping(Duration::from_millis(10)));
            assert!(p.spin_for().unwrap() > Duration::ZERO);
            for _ in 0..10 {
                p.record(Duration::from_micros(1), Ended::Spinning);
            }
        }
        assert_eq!(spins(&p, 10), 10);
    }

    #[test]
    fn events_just_after_giving_up_turn_spinning_off_and_it_comes_back() {
        // Just after, or up to two budgets after the spin gave up.
        for after in [
            Duration::from_micros(10),
            BUDGET * 2 - Duration::from_micros(1),
        ] {
            let p = SpinPolicy::new(WaitStrategy::Adaptive, BUDGET);
            for _ in 0..10 {
                p.record(BUDGET, Ended::Sleeping(BUDGET + after));
            }
            let n = spins(&p, RETRY_EVERY * 2);
            assert!((1..=3).contains(&n), "{n}");
            for _ in 0..SCORE_MAX {
                p.record(Duration::from_micros(1), Ended::Spinning);
            }
            assert_eq!(spins(&p, 10), 10);
        }
    }

    /// An answer that came well after the spin gave up says nothing against spinning (the other
    /// side was busy, not kept off its core): only one that came just after it counts.
    #[test]
    fn answers_long_after_the_spin_do_not_turn_spinning_off() {
        let p = SpinPolicy::new(WaitStrategy::Adaptive, BUDGET);
        for _ in 0..4 * SCORE_MAX {
            p.record(
                BUDGET,
                Ended::Sleeping(BUDGET * 3 + Duration::from_micros(10)),
            );
        }
        assert_eq!(spins(&p, 10), 10);
    }

    #[test]
    fn slow_answers_are_not_spun_for() {
        let p = SpinPolicy::new(WaitStrategy::Adaptive, BUDGET);
        for _ in 0..64 {
            p.record(Duration::ZERO, Ended::Sleeping(Duration::from_millis(5)));
        }
        assert!(spins(&p, RETRY_EVERY * 2) <= 2);
    }

    #[test]
    fn a_call_that_moves_many_bytes_spins_for_their_copies_too() {
        let p = SpinPolicy::new(WaitStrategy::Adaptive, BUDGET);
        assert_eq!(p.spin_for_bytes(0), Some(BUDGET));
        let two_mib = Duration::from_nanos((2 << 20) / COPY_BYTES_PER_NS);
        assert_eq!(p.spin_for_bytes(2 << 20), Some(BUDGET + two_mib));
        assert_eq!(p.spin_for_bytes(1 << 30), Some(BUDGET + MAX_COPY_SPIN));
        // Megabyte calls answered within their long spin keep spinning, and so do the small
        // calls after them.
        for _ in 0..64 {
            let spun = p.spin_for_bytes(2 << 20).unwrap();
            p.record(spun, Ended::Spinning);
        }
        assert_eq!(p.spin_for_bytes(2 << 20), Some(BUDGET + two_mib));
        assert_eq!(spins(&p, 10), 10);
        assert_eq!(
            SpinPolicy::new(WaitStrategy::ParkOnly, BUDGET).spin_for_bytes(2 << 20),
            Some(Duration::ZERO)
        );
        assert_eq!(
            SpinPolicy::new(WaitStrategy::SpinOnly, BUDGET).spin_for_bytes(2 << 20),
            None
        );
    }

    /// A slow method is not spun for, however many bytes its call moves (or the slot's last
    /// reply moved).
    #[test]
    fn slow_answers_are_not_spun_for_whatever_the_bytes() {
        let p = SpinPolicy::new(WaitStrategy::Adaptive, BUDGET);
        for _ in 0..64 {
            p.record(BUDGET, Ended::Sleeping(Duration::from_millis(100)));
        }
        let n = (0..RETRY_EVERY * 2)
            .filter(|_| p.spin_for_bytes(4 << 20).unwrap() > Duration::ZERO)
            .count();
        assert!(n <= 2, "{n}");
    }

    #[test]
    fn the_longest_budgets_do_not_overflow() {
        for strategy in [
            WaitStrategy::Adaptive,
            WaitStrategy::SpinOnly,
            WaitStrategy::ParkOnly,
        ] {
            let p = SpinPolicy::new(strategy, Duration::MAX);
            let spin = p.spin_for_bytes(u64::MAX);
            p.record(
                spin.unwrap_or(Duration::MAX),
                Ended::Sleeping(Duration::MAX),
            );
            p.record(Duration::MAX, Ended::Spinning);
            let _ = p.spin_for_bytes(1 << 30);
        }
    }

    #[test]
    fn fixed_strategies_ignore_history() {
        assert_eq!(
            SpinPolicy::new(WaitStrategy::SpinOnly, Duration::ZERO).spin_for(),
            None
        );
        assert_eq!(
            SpinPolicy::new(WaitStrategy::ParkOnly, Duration::MAX).spin_for(),
            Some(Duration::ZERO)
        );
    }
}
