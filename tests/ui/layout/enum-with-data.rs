#[derive(shmrpc::ShmData)]
#[repr(u32)]
pub enum Shape {
    Circle(f64),
    Square { side: f64 },
    Nothing,
}

fn main() {}
