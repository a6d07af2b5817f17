#[shmrpc::shm_service]
pub trait Summer {
    fn sum(&self, values: &[usize]) -> u64;
}

fn main() {}
