#[derive(shmrpc::ShmData)]
#[repr(C)]
pub struct Sample {
    pub flag: u8,
    pub value: u64,
}

fn main() {}
