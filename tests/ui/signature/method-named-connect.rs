#[shmrpc::shm_service]
pub trait Network {
    fn connect(&self, port: u16) -> bool;
}

fn main() {}
