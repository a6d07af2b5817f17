#[shmrpc::shm_service]
pub trait Greeter {
    fn greet(&self, name: &str) -> u32;
}

fn main() {}
