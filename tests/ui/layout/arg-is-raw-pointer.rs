#[shmrpc::shm_service]
pub trait Poker {
    fn poke(&self, at: *const u8);
}

fn main() {}
