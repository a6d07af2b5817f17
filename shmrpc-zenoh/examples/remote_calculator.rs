//! The contract's calculator across machines, over zenoh.
//!
//! ```sh
//! # on the server's machine (listens on port 7447 of every interface):
//! cargo run -p shmrpc-zenoh --example remote_calculator -- serve tcp/0.0.0.0:7447
//! # on the client's (connects to the server's address):
//! cargo run -p shmrpc-zenoh --example remote_calculator -- call tcp/192.0.2.10:7447
//! ```
//!
//! On one machine, use `tcp/127.0.0.1:7447` for both.

use shmrpc_examples::{CalculatorClient, CalculatorServer, MathError, MyCalc};
use shmrpc_zenoh::{ConnectRemote, ServeRemote};

const KEY: &str = "shmrpc/calc";

fn main() -> Result<(), shmrpc::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", endpoint] => {
            let session = shmrpc_zenoh::open(&[endpoint], &[])?;
            let _serving = CalculatorServer::serve_remote(&session, KEY, MyCalc::default())?;
            println!(
                "serving `{KEY}` on {endpoint} (zenoh id {}); Ctrl-C stops",
                session.zid()
            );
            loop {
                std::thread::park();
            }
        }
        ["call", endpoint] => {
            let session = shmrpc_zenoh::open(&[], &[endpoint])?;
            // The session connects in the background: give it a moment to see the server.
            let calc = (0..100)
                .find_map(|_| match CalculatorClient::connect_remote(&session, KEY) {
                    Ok(calc) => Some(Ok(calc)),
                    Err(shmrpc::Error::ServerNotRunning { .. }) => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        None
                    }
                    Err(e) => Some(Err(e)),
                })
                .unwrap_or_else(|| CalculatorClient::connect_remote(&session, KEY))?;
            println!("add(2, 3)   = {}", calc.add(2, 3)?);
            println!("div(7, 2)   = {:?}", calc.div(7, 2)?);
            assert_eq!(calc.div(1, 0)?, Err(MathError::DivideByZero));
            println!("div(1, 0)   = Err(DivideByZero)");
            println!("find(4)     = {:?}", calc.find(4)?);
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: remote_calculator serve ENDPOINT | call ENDPOINT (e.g. tcp/127.0.0.1:7447)"
            );
            std::process::exit(2);
        }
    }
}
