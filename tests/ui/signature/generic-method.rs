#[shmrpc::shm_service]
pub trait Converter {
    fn convert<T>(&self, value: u64) -> u64;
}

fn main() {}
