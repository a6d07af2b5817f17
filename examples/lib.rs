//! The service the examples share: the calculator of shmrpc's contract.
//!
//! Server and client programs are separate binaries; both use these definitions, so they agree
//! on the interface.

use std::sync::atomic::{AtomicU64, Ordering};

use shmrpc::{ShmData, shm_service};

/// Summary statistics of up to 32 samples.
#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Stats {
    /// Mean of the samples.
    pub mean: f64,
    /// Largest sample.
    pub max: f64,
    /// How many samples.
    pub count: u32,
    /// Explicit padding: every byte of a shared type is defined.
    pub _pad: u32,
}

/// Why a division failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(u32)]
pub enum MathError {
    /// The divisor was zero.
    DivideByZero = 1,
    /// The result does not fit an `i64`.
    Overflow = 2,
}

/// A calculator served over shared memory.
#[shm_service]
pub trait Calculator {
    /// `a + b`, wrapping.
    fn add(&self, a: i64, b: i64) -> i64;
    /// `a / b`, or why not.
    fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    /// Mean, max and count of the first `n` samples.
    fn stats(&self, samples: [f64; 32], n: u32) -> Stats;
    /// The value stored under `key`, if any (keys are even numbers; the value is twice the key).
    fn find(&self, key: u64) -> Option<u64>;
    /// Forgets the call count.
    fn reset(&self);
}

/// The calculator the example servers serve. Counts calls.
#[derive(Debug, Default)]
pub struct MyCalc {
    calls: AtomicU64,
}

impl MyCalc {
    /// Calls served since the last reset.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl Calculator for MyCalc {
    fn add(&self, a: i64, b: i64) -> i64 {
        self.count();
        a.wrapping_add(b)
    }

    fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        self.count();
        if b == 0 {
            return Err(MathError::DivideByZero);
        }
        a.checked_div(b).ok_or(MathError::Overflow)
    }

    fn stats(&self, samples: [f64; 32], n: u32) -> Stats {
        self.count();
        let used = &samples[..(n as usize).min(32)];
        let max = used.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = if used.is_empty() {
            0.0
        } else {
            used.iter().sum::<f64>() / used.len() as f64
        };
        Stats {
            mean,
            max,
            count: used.len() as u32,
            _pad: 0,
        }
    }

    fn find(&self, key: u64) -> Option<u64> {
        self.count();
        key.is_multiple_of(2).then(|| key.wrapping_mul(2))
    }

    fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
    }
}
