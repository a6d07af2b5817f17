#[shmrpc::shm_service]
pub trait Store {
    const SIZE: u64;
    fn get(&self, key: u64) -> u64;
}

fn main() {}
