//! How long to spin before sleeping.
//!
//! Waking a sleeping process costs microseconds; spinning costs a core. Spinning pays only when
//! the answer comes within the spin *and* the other side has a core to run on meanwhile. The
//! adaptive policy keeps, per client or server, a moving average of how long waits lasted and a
//! score of whether recent spins paid off; it spins for about twice the usual wait, never more
//! than the budget, and stops spinning altogether while spins keep failing (a sign that the
//! waiting process shares a core with the one it waits for), trying again now and then.

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
    /// 0..=SCORE_MAX: high while spins succeed.
    score: AtomicU32,
    /// Counts waits while spinning is off, to retry spinning now and then.
    skipped: AtomicU32,
}

const SCORE_MAX: u32 = 8;
const SCORE_SPIN: u32 = 2;
const RETRY_EVERY: u32 = 64;

impl SpinPolicy {
    pub(crate) fn new(strategy: WaitStrategy, budget: Duration) -> Self {
        SpinPolicy {
            strategy,
            budget,
            typical_ns: AtomicU64::new(budget.as_nanos() as u64 / 4),
            score: AtomicU32::new(SCORE_MAX),
            skipped: AtomicU32::new(0),
        }
    }

    pub(crate) fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// How long the next wait should spin before sleeping (`None`: spin until done).
    pub(crate) fn spin_for(&self) -> Option<Duration> {
        match self.strategy {
            WaitStrategy::SpinOnly => None,
            WaitStrategy::ParkOnly => Some(Duration::ZERO),
            WaitStrategy::Adaptive => {
                if self.score.load(Ordering::Relaxed) < SCORE_SPIN
                    && self.skipped.fetch_add(1, Ordering::Relaxed) % RETRY_EVERY != 0
                {
                    return Some(Duration::ZERO);
                }
                let typical = Duration::from_nanos(self.typical_ns.load(Ordering::Relaxed));
                Some((typical * 2 + Duration::from_micros(1)).min(self.budget))
            }
        }
    }

    /// Records how a wait went: how long it took, and whether it ended while spinning.
    pub(crate) fn record(&self, waited: Duration, while_spinning: bool) {
        if self.strategy != WaitStrategy::Adaptive {
            return;
        }
        let ns = waited.as_nanos().min(u128::from(u64::MAX / 2)) as u64;
        let old = self.typical_ns.load(Ordering::Relaxed);
        // A 1/8 moving average.
        self.typical_ns
            .store(old - old / 8 + ns / 8, Ordering::Relaxed);
        let score = self.score.load(Ordering::Relaxed);
        let new = if while_spinning {
            (score + 1).min(SCORE_MAX)
        } else {
            score.saturating_sub(2)
        };
        self.score.store(new, Ordering::Relaxed);
    }
}

/// Spins until `done()` or until `limit` passes; returns whether `done()` became true.
#[inline]
pub(crate) fn spin_until(limit: Option<Instant>, mut done: impl FnMut() -> bool) -> bool {
    let mut i = 0u32;
    loop {
        if done() {
            return true;
        }
        std::hint::spin_loop();
        i = i.wrapping_add(1);
        // Reading the clock costs ~20 ns: look at it every few dozen spins.
        if i % 32 == 0
            && let Some(limit) = limit
            && Instant::now() >= limit
        {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_spins_turn_spinning_off_and_it_comes_back() {
        let p = SpinPolicy::new(WaitStrategy::Adaptive, Duration::from_micros(50));
        assert!(p.spin_for().unwrap() > Duration::ZERO);
        for _ in 0..8 {
            p.record(Duration::from_micros(30), false);
        }
        let spins = (0..RETRY_EVERY * 2)
            .filter(|_| p.spin_for().unwrap() > Duration::ZERO)
            .count();
        assert!((1..=3).contains(&spins), "{spins}");
        for _ in 0..8 {
            p.record(Duration::from_micros(1), true);
        }
        assert!(p.spin_for().unwrap() > Duration::ZERO);
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
