#[derive(shmrpc::ShmData)]
#[repr(C)]
pub struct Pair<T> {
    pub a: T,
    pub b: T,
}

fn main() {}
