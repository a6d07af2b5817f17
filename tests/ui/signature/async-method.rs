#[shmrpc::shm_service]
pub trait Fetcher {
    async fn fetch(&self, key: u64) -> u64;
}

fn main() {}
