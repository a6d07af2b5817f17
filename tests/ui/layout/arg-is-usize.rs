#[shmrpc::shm_service]
pub trait Store {
    fn get(&self, index: usize) -> u64;
}

fn main() {}
