#[shmrpc::shm_service(size = 64)]
pub trait Store {
    fn get(&self, key: u64) -> u64;
}

fn main() {}
