#[shmrpc::shm_service]
pub trait Greeter {
    fn greet(&self, name: &'static str) -> u32;
    fn wave<'a>(&self, name: &'a str) -> u32;
}

fn main() {}
