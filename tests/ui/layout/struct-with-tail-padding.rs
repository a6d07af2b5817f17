#[derive(shmrpc::ShmData)]
#[repr(C)]
pub struct Sample {
    pub value: u64,
    pub flag: u8,
}

fn main() {}
