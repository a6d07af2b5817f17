#[shmrpc::shm_service]
pub trait Counter {
    fn bump(&mut self) -> u64;
}

fn main() {}
