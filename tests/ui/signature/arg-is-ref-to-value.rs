#[shmrpc::shm_service]
pub trait Doubler {
    fn double(&self, x: &u64) -> u64;
}

fn main() {}
