#[shmrpc::shm_service]
pub trait Store {
    fn put(&self, indices: [usize; 4]);
}

fn main() {}
