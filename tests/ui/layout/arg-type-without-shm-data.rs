pub struct Point { pub x: f64, pub y: f64 }

#[shmrpc::shm_service]
pub trait Plotter {
    fn plot(&self, at: Point);
}

fn main() {}
