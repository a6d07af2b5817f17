#[derive(shmrpc::ShmData)]
#[repr(i32)]
pub enum Level {
    Low = -1,
    High = 1,
}

fn main() {}
