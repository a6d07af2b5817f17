#[shmrpc::shm_service(capacity = 64)]
pub trait Bulk {
    fn small(&self, x: u64) -> u64;
    fn large(&self, data: [u8; 128]) -> u64;
}

fn main() {}
