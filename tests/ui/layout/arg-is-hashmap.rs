use std::collections::HashMap;

#[shmrpc::shm_service]
pub trait Index {
    fn load(&self, entries: HashMap<String, u64>) -> u64;
    fn dump(&self) -> HashMap<String, u64>;
}

fn main() {}
