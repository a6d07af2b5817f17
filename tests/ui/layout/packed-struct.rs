#[derive(shmrpc::ShmData)]
#[repr(C, packed)]
pub struct Sample {
    pub flag: u8,
    pub value: u64,
}

fn main() {}
