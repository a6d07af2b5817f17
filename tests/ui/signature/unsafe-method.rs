#[shmrpc::shm_service]
pub trait Raw {
    unsafe fn poke(&self, value: u64);
}

fn main() {}
