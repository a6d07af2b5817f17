use std::collections::HashMap;

#[derive(shmrpc::Wire)]
pub struct Index {
    pub name: String,
    pub entries: HashMap<String, u64>,
}

#[derive(shmrpc::Wire)]
pub enum Event {
    Tick(usize),
    Note { text: &'static str },
}

fn main() {}
