#[shmrpc::shm_service]
pub trait Counter {
    fn take(self) -> u64;
}

fn main() {}
