// Variable-size data, as the contract's `Store` writes it, plus a big boxed result.

#[shm_service]
pub trait Store {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn put(&self, key: &str, value: &[u8]) -> Result<(), String>;
    fn keys(&self, prefix: String) -> Vec<String>;
    fn sum(&self, values: &[f64]) -> f64;
    fn frame(&self) -> Box<[u8; 4096]>;
    fn latest(&self, at: u64, reply: shmrpc::Reply<'_, Vec<u8>>) -> shmrpc::Replied;
}
