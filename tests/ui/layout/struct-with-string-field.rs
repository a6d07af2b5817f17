#[derive(shmrpc::ShmData)]
#[repr(C)]
pub struct Person {
    pub age: u64,
    pub name: String,
}

fn main() {}
