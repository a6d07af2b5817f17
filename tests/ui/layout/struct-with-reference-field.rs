#[derive(shmrpc::ShmData)]
#[repr(C)]
pub struct Label<'a> {
    pub text: &'a str,
}

fn main() {}
