#[shmrpc::shm_service(crate = "::shmrpc", crate = "::rpc")]
pub trait Store {
    fn get(&self, key: u64) -> u64;
}

fn main() {}
