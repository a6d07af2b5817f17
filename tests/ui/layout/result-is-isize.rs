#[shmrpc::shm_service]
pub trait Store {
    fn delta(&self) -> isize;
}

fn main() {}
