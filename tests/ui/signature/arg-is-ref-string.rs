#[shmrpc::shm_service]
pub trait Greeter {
    fn greet(&self, name: &String) -> u32;
}

fn main() {}
