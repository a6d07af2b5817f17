// Every mistake is reported, each on its own span; the trait is still emitted as written, so the
// implementation below adds no errors of its own.
#[shmrpc::shm_service]
pub trait Messy {
    fn a(self) -> u64;
    async fn b(&self);
    fn c(&self, index: usize);
    fn connect(&self);
}

struct Impl;

impl Messy for Impl {
    fn a(self) -> u64 { 0 }
    async fn b(&self) {}
    fn c(&self, _index: usize) {}
    fn connect(&self) {}
}

fn main() {}
