#[shmrpc::shm_service]
pub trait Finder {
    fn find(&self, key: Option<&str>) -> u64;
    fn all(&self, keys: Vec<&[u8]>) -> u64;
}

fn main() {}
