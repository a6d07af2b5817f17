// `capacity` is gone: slots hold any message up to the server's `max_message`.
#[shmrpc::shm_service(capacity = 4096)]
pub trait Store {
    fn get(&self, key: u64) -> u64;
}

fn main() {}
