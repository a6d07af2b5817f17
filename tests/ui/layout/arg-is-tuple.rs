#[shmrpc::shm_service]
pub trait Geometry {
    fn area(&self, size: (u32, u32)) -> u64;
}

fn main() {}
