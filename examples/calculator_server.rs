//! Serves the calculator under a name until Ctrl-C (or SIGTERM), which stops it cleanly: the
//! call in progress finishes, the name is freed, and `run()` returns. Run in one terminal:
//!
//! ```text
//! cargo run --example calculator_server -- calc
//! ```
//! then `cargo run --example calculator_client -- calc` in another.

use shmrpc::ServerOptions;
use shmrpc_examples::{CalculatorServer, MyCalc};

fn main() -> Result<(), shmrpc::Error> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "calc".to_owned());
    let options = ServerOptions::default().stop_on_signals();
    let server = CalculatorServer::bind_with(&name, MyCalc::default(), options)?;
    println!(
        "serving `{name}` (pid {}); stop with Ctrl-C",
        std::process::id()
    );
    server.run()?;
    println!("stopped");
    Ok(())
}
