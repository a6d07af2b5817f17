// A method that takes a `Reply` sends its result through it, and returns what `send` returns.
use shmrpc::Reply;

#[shmrpc::shm_service]
pub trait Camera {
    fn latest(&self, reply: Reply<'_, Vec<u8>>) -> Vec<u8>;
    fn peek(&self, reply: Reply<'_, u64>);
}

fn main() {}
