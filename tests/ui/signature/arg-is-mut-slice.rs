// A method cannot write into its caller's memory.
#[shmrpc::shm_service]
pub trait Filler {
    fn fill(&self, out: &mut [u8]);
}

fn main() {}
