#[shmrpc::shm_service]
pub trait Namer {
    fn name(&self, id: u64) -> &str;
    fn bytes(&self, id: u64) -> &[u8];
}

fn main() {}
