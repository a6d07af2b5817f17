#[derive(shmrpc::ShmData)]
pub enum Color {
    Red,
    Green,
}

fn main() {}
