// The service of shmrpc's contract, as a user writes it.

#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Stats {
    pub mean: f64,
    pub max: f64,
    pub count: u32,
    pub _pad: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(u32)]
pub enum MathError {
    DivideByZero = 1,
    Overflow = 2,
}

/// Doc comments and `#[cfg]` on methods are carried through.
#[shm_service]
pub trait Calculator {
    fn add(&self, a: i64, b: i64) -> i64;
    fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    fn stats(&self, samples: [f64; 32], n: u32) -> Stats;
    fn find(&self, key: u64) -> Option<u64>;
    fn reset(&self);
}
