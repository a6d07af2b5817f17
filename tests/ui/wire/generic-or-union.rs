#[derive(shmrpc::Wire)]
pub struct Named<T> {
    pub value: T,
}

#[derive(shmrpc::Wire)]
pub union Bits {
    pub a: u32,
    pub b: f32,
}

fn main() {}
