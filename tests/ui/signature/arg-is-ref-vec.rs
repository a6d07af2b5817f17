#[shmrpc::shm_service]
pub trait Summer {
    fn sum(&self, values: &Vec<u64>) -> u64;
}

fn main() {}
