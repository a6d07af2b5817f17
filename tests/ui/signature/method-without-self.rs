#[shmrpc::shm_service]
pub trait Counter {
    fn make() -> u64;
}

fn main() {}
