// A count of values that take no bytes would be bounded by nothing.
#[shmrpc::shm_service]
pub trait Counter {
    fn units(&self, v: Vec<()>) -> u64;
}

fn main() {}
