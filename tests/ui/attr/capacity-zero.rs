#[shmrpc::shm_service(capacity = 0)]
pub trait Store {
    fn get(&self, key: u64) -> u64;
}

fn main() {}
