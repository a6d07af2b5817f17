#[derive(Clone, Copy, shmrpc::ShmData)]
#[repr(u8)]
pub enum Oops { Bad = 1 }

#[shmrpc::shm_service]
pub trait Reader {
    fn read(&self, key: u64) -> Result<String, Oops>;
}

fn main() {}
