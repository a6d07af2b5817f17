#[shmrpc::shm_service(capacity = 64, capacity = 128)]
pub trait Store {
    fn get(&self, key: u64) -> u64;
}

fn main() {}
