//! What a server counts per method, for `shmrpc top` and `shmrpc list`: calls, errors, and a
//! latency histogram.
//!
//! At no measurable cost on a call's path: each server thread counts into counters of its own
//! (a load and a store, no atomic read-modify-write, no cache line shared with another thread),
//! and times one call in [`SAMPLE_EVERY`] (two clock reads, ~40 ns on a Linux virtual machine
//! and ~170 ns under Wine, are a good part of a call), plus every call it takes after
//! sleeping, whose wake-up costs far more than a clock read. Readers add the threads' counters
//! up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// One call in this many is timed (per thread), besides those after a sleep.
pub(crate) const SAMPLE_EVERY: u64 = 64;

/// Latency buckets: four per power of two of nanoseconds, from 1 ns to about 18 minutes.
pub(crate) const BUCKETS: usize = 40 * 4;

/// The bucket of a latency.
pub(crate) fn bucket(d: Duration) -> usize {
    let ns = d.as_nanos().clamp(1, u128::from(u64::MAX)) as u64;
    let log = 63 - ns.leading_zeros() as usize;
    let sub = if log >= 2 {
        ((ns >> (log - 2)) & 3) as usize
    } else {
        0
    };
    (log * 4 + sub).min(BUCKETS - 1)
}

/// The smallest latency of a bucket.
pub(crate) fn bucket_floor(bucket: usize) -> Duration {
    let (log, sub) = (bucket / 4, bucket % 4);
    let ns = if log >= 2 {
        (4 + sub as u64) << (log - 2)
    } else {
        1 << log
    };
    Duration::from_nanos(ns)
}

/// One method's counters, in one thread.
#[derive(Debug)]
struct Counters {
    calls: AtomicU64,
    errors: AtomicU64,
    latency: Box<[AtomicU64]>,
}

impl Counters {
    fn new() -> Self {
        Counters {
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Adds one to a counter only this thread writes.
#[inline]
fn bump(counter: &AtomicU64) -> u64 {
    let n = counter.load(Ordering::Relaxed) + 1;
    counter.store(n, Ordering::Relaxed);
    n
}

/// Every thread's counters.
#[derive(Debug)]
pub(crate) struct Stats {
    /// Per thread, per method tag.
    threads: Box<[Box<[Counters]>]>,
    next: AtomicUsize,
}

/// Sums, as a reader sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MethodTotals {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) latency: Vec<u64>,
}

impl Stats {
    pub(crate) fn new(threads: usize, methods: usize) -> Self {
        Stats {
            threads: (0..threads)
                .map(|_| (0..methods).map(|_| Counters::new()).collect())
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The counters of a thread that starts serving.
    pub(crate) fn thread(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len().max(1)
    }

    /// Counts a call of method `tag` by thread `thread`; whether to time it (`idle`: the thread
    /// slept before it).
    #[inline]
    pub(crate) fn call(&self, thread: usize, tag: u32, idle: bool) -> bool {
        match self.counters(thread, tag) {
            Some(c) => bump(&c.calls).is_multiple_of(SAMPLE_EVERY) || idle,
            None => false,
        }
    }

    /// Records a timed call's latency.
    #[inline]
    pub(crate) fn latency(&self, thread: usize, tag: u32, d: Duration) {
        if let Some(c) = self.counters(thread, tag) {
            bump(&c.latency[bucket(d)]);
        }
    }

    /// Counts a failed call (a bad request, a panic, a result too large).
    #[inline]
    pub(crate) fn error(&self, thread: usize, tag: u32) {
        if let Some(c) = self.counters(thread, tag) {
            bump(&c.errors);
        }
    }

    #[inline]
    fn counters(&self, thread: usize, tag: u32) -> Option<&Counters> {
        self.threads.get(thread)?.get(tag as usize)
    }

    /// Every method's sums over the threads.
    pub(crate) fn totals(&self) -> Vec<MethodTotals> {
        let methods = self.threads.first().map_or(0, |t| t.len());
        (0..methods)
            .map(|m| {
                let mut total = MethodTotals {
                    calls: 0,
                    errors: 0,
                    latency: vec![0; BUCKETS],
                };
                for thread in &*self.threads {
                    let c = &thread[m];
                    total.calls += c.calls.load(Ordering::Relaxed);
                    total.errors += c.errors.load(Ordering::Relaxed);
                    for (sum, n) in total.latency.iter_mut().zip(&*c.latency) {
                        *sum += n.load(Ordering::Relaxed);
                    }
                }
                total
            })
            .collect()
    }
}

/// The `Stats` message's fields: pid, uid, connections, methods (u32 each), uptime in
/// microseconds (u64), then per method: tag (u32), calls, errors (u64), the number of non-empty
/// latency buckets (u16) and each as bucket (u16) and count (u64). Methods that would not fit a
/// message are left out.
pub(crate) fn encode(shared: &super::Shared, connections: usize) -> Vec<u8> {
    let totals = shared.stats.totals();
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(&std::process::id().to_le_bytes());
    b.extend_from_slice(&shared.uid.to_le_bytes());
    b.extend_from_slice(&(connections as u32).to_le_bytes());
    let count_at = b.len();
    b.extend_from_slice(&0u32.to_le_bytes());
    let uptime = shared.started.elapsed().as_micros() as u64;
    b.extend_from_slice(&uptime.to_le_bytes());
    let mut count = 0u32;
    for (tag, total) in totals.iter().enumerate() {
        let buckets: Vec<(usize, u64)> = total
            .latency
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .collect();
        if b.len() + 22 + buckets.len() * 10 > crate::protocol::messages::MAX_DESCRIPTION {
            break;
        }
        b.extend_from_slice(&(tag as u32).to_le_bytes());
        b.extend_from_slice(&total.calls.to_le_bytes());
        b.extend_from_slice(&total.errors.to_le_bytes());
        b.extend_from_slice(&(buckets.len() as u16).to_le_bytes());
        for (bucket, n) in buckets {
            b.extend_from_slice(&(bucket as u16).to_le_bytes());
            b.extend_from_slice(&n.to_le_bytes());
        }
        count += 1;
    }
    b[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    b
}

/// A `Stats` message, read back by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) connections: u32,
    pub(crate) uptime: Duration,
    /// Per method: tag and totals.
    pub(crate) methods: Vec<(u32, MethodTotals)>,
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, &'static str> {
    let mut at = 0;
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        let part = bytes.get(at..at + n).ok_or("statistics cut short")?;
        at += n;
        Ok(part)
    };
    let mut u32_ = || take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4")));
    let (pid, uid, connections, count) = (u32_()?, u32_()?, u32_()?, u32_()?);
    let uptime = Duration::from_micros(u64::from_le_bytes(take(8)?.try_into().expect("8")));
    let mut methods = Vec::new();
    for _ in 0..count {
        let tag = u32::from_le_bytes(take(4)?.try_into().expect("4"));
        let calls = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let errors = u64::from_le_bytes(take(8)?.try_into().expect("8"));
        let n = u16::from_le_bytes(take(2)?.try_into().expect("2"));
        let mut latency = vec![0; BUCKETS];
        for _ in 0..n {
            let bucket = u16::from_le_bytes(take(2)?.try_into().expect("2")) as usize;
            let count = u64::from_le_bytes(take(8)?.try_into().expect("8"));
            *latency
                .get_mut(bucket)
                .ok_or("a latency bucket out of range")? = count;
        }
        methods.push((
            tag,
            MethodTotals {
                calls,
                errors,
                latency,
            },
        ));
    }
    if at != bytes.len() {
        return Err("statistics with bytes left over");
    }
    Ok(Decoded {
        pid,
        uid,
        connections,
        uptime,
        methods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_cover_their_latencies() {
        let mut last = 0;
        for ns in [1u64, 2, 3, 4, 5, 7, 8, 100, 1000, 123_456, 10_000_000_000] {
            let b = bucket(Duration::from_nanos(ns));
            assert!(b >= last, "{ns}");
            last = b;
            assert!(bucket_floor(b) <= Duration::from_nanos(ns), "{ns}");
            // Below 4 ns there are fewer buckets than sub-buckets: none is that fast anyway.
            assert!(
                ns < 4 || bucket_floor(b + 1) > Duration::from_nanos(ns),
                "{ns}"
            );
        }
    }

    #[test]
    fn threads_count_apart_and_add_up() {
        let stats = Stats::new(2, 3);
        let (a, b) = (stats.thread(), stats.thread());
        assert_ne!(a, b);
        let busy = 2 * SAMPLE_EVERY;
        let timed = (0..busy).filter(|_| stats.call(a, 1, false)).count();
        assert_eq!(timed, 2);
        assert!(stats.call(b, 1, true), "a call after a sleep is timed");
        stats.error(b, 1);
        stats.latency(a, 1, Duration::from_micros(3));
        // A tag the service does not have counts nowhere.
        assert!(!stats.call(a, 7, true));
        let totals = stats.totals();
        assert_eq!((totals[1].calls, totals[1].errors), (busy + 1, 1));
        assert_eq!(totals[1].latency.iter().sum::<u64>(), 1);
        assert_eq!(totals[0].calls + totals[2].calls, 0);
    }
}
