#[derive(shmrpc::ShmData)]
#[repr(C)]
pub struct Slice {
    pub start: usize,
    pub len: u64,
}

fn main() {}
