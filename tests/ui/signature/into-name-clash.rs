// `get` returns a vector, so the client has `get_into`.
#[shmrpc::shm_service]
pub trait Store {
    fn get(&self, key: &str) -> Vec<u8>;
    fn get_into(&self, key: &str) -> u64;
}

fn main() {}
