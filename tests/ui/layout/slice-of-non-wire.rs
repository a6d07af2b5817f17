#[shmrpc::shm_service]
pub trait Summer {
    fn total(&self, values: &[std::time::Duration]) -> u64;
}

fn main() {}
