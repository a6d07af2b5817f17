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

/// The key-value cache of the `kv` example: text keys, byte values.
pub mod kv {
    use std::collections::BTreeMap;
    use std::sync::RwLock;

    use shmrpc::shm_service;

    /// The longest key the cache takes, in bytes.
    pub const MAX_KEY: usize = 256;
    /// The largest value the cache takes, in bytes.
    pub const MAX_VALUE: usize = 1 << 20;

    /// A cache of byte values under text keys.
    #[shm_service]
    pub trait Cache {
        /// The value under `key`, if any.
        fn get(&self, key: &str) -> Option<Vec<u8>>;
        /// Stores `value` under `key`; refuses keys and values that are too long.
        fn put(&self, key: &str, value: &[u8]) -> Result<(), String>;
        /// The keys that start with `prefix`, in order.
        fn keys(&self, prefix: String) -> Vec<String>;
        /// Forgets `key`; whether it was there.
        fn remove(&self, key: &str) -> bool;
    }

    /// The cache the example serves.
    #[derive(Debug, Default)]
    pub struct MemoryCache {
        entries: RwLock<BTreeMap<String, Vec<u8>>>,
    }

    impl Cache for MemoryCache {
        fn get(&self, key: &str) -> Option<Vec<u8>> {
            self.entries.read().unwrap().get(key).cloned()
        }

        fn put(&self, key: &str, value: &[u8]) -> Result<(), String> {
            if key.is_empty() || key.len() > MAX_KEY {
                return Err(format!(
                    "keys are 1 to {MAX_KEY} bytes, this one {}",
                    key.len()
                ));
            }
            if value.len() > MAX_VALUE {
                return Err(format!(
                    "values are at most {MAX_VALUE} bytes, this one {}",
                    value.len()
                ));
            }
            self.entries
                .write()
                .unwrap()
                .insert(key.to_owned(), value.to_vec());
            Ok(())
        }

        fn keys(&self, prefix: String) -> Vec<String> {
            let entries = self.entries.read().unwrap();
            entries
                .range(prefix.clone()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(&prefix))
                .cloned()
                .collect()
        }

        fn remove(&self, key: &str) -> bool {
            self.entries.write().unwrap().remove(key).is_some()
        }
    }
}

/// The camera of the `frames` example: 1280×720 RGB frames.
pub mod frames {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, RwLock};
    use std::time::Duration;

    use shmrpc::{Replied, Reply, shm_service};

    /// Width of a frame, in pixels.
    pub const WIDTH: usize = 1280;
    /// Height of a frame, in pixels.
    pub const HEIGHT: usize = 720;
    /// Bytes of a frame: 3 per pixel.
    pub const FRAME_LEN: usize = WIDTH * HEIGHT * 3;

    /// A camera: its latest frame, written by the server straight into the caller's slot.
    #[shm_service]
    pub trait Camera {
        /// The latest frame: `FRAME_LEN` bytes of RGB, row by row; its first 8 bytes are the
        /// frame's number (little-endian).
        fn latest(&self, reply: Reply<'_, Vec<u8>>) -> Replied;
        /// How many frames the camera has made.
        fn made(&self) -> u64;
    }

    /// A camera that makes a new frame every `period` on a thread of its own, and keeps the
    /// latest.
    #[derive(Debug)]
    pub struct TestCamera {
        frame: Arc<RwLock<Vec<u8>>>,
        made: Arc<AtomicU64>,
    }

    impl TestCamera {
        /// Starts making frames.
        pub fn start(period: Duration) -> Self {
            let frame = Arc::new(RwLock::new(vec![0u8; FRAME_LEN]));
            let made = Arc::new(AtomicU64::new(0));
            let (f, m) = (frame.clone(), made.clone());
            std::thread::spawn(move || {
                // Drawn off to the side, then swapped in: readers never wait for a drawing.
                let mut next = vec![0u8; FRAME_LEN];
                for n in 1u64.. {
                    for (i, px) in next.chunks_exact_mut(3).enumerate() {
                        let (x, y) = (i % WIDTH, i / WIDTH);
                        px.copy_from_slice(&[(x + n as usize) as u8, y as u8, n as u8]);
                    }
                    next[..8].copy_from_slice(&n.to_le_bytes());
                    std::mem::swap(&mut *f.write().unwrap(), &mut next);
                    m.store(n, Ordering::Relaxed);
                    std::thread::sleep(period);
                }
            });
            TestCamera { frame, made }
        }
    }

    impl Camera for TestCamera {
        fn latest(&self, reply: Reply<'_, Vec<u8>>) -> Replied {
            // One copy, from the frame into the caller's slot; no allocation.
            reply.send_slice(&self.frame.read().unwrap())
        }

        fn made(&self) -> u64 {
            self.made.load(Ordering::Relaxed)
        }
    }
}
