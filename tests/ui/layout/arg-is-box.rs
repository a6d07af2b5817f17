#[shmrpc::shm_service]
pub trait Holder {
    fn hold(&self, value: Box<u64>);
}

fn main() {}
