#[shmrpc::shm_service]
pub trait Store<T> {
    fn get(&self, key: u64) -> u64;
}

fn main() {}
