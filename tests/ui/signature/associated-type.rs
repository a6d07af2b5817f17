#[shmrpc::shm_service]
pub trait Store {
    type Key;
    fn get(&self, key: u64) -> u64;
}

fn main() {}
