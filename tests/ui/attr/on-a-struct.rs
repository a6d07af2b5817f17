#[shmrpc::shm_service]
pub struct Store {
    pub key: u64,
}

fn main() {}
