#[shmrpc::shm_service]
pub trait Geometry {
    fn area(&self, [w, h]: [u32; 2]) -> u64 {
        u64::from(w) * u64::from(h)
    }
}

fn main() {}
