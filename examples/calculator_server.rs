//! Serves the calculator under a name, until killed. Run in one terminal:
//!
//! ```text
//! cargo run --example calculator_server -- calc
//! ```
//! then `cargo run --example calculator_client -- calc` in another.

use shmrpc_examples::{CalculatorServer, MyCalc};

fn main() -> Result<(), shmrpc::Error> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "calc".to_owned());
    let server = CalculatorServer::bind(&name, MyCalc::default())?;
    println!(
        "serving `{name}` (pid {}); stop with Ctrl-C",
        std::process::id()
    );
    server.run()
}
