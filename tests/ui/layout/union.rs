#[derive(shmrpc::ShmData)]
#[repr(C)]
pub union Bits {
    pub int: u32,
    pub float: f32,
}

fn main() {}
