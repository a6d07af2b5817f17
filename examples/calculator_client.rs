//! Calls every method of the calculator served under a name, then prints the results:
//!
//! ```text
//! cargo run --example calculator_client -- calc
//! ```

use std::time::Duration;

use shmrpc::ClientOptions;
use shmrpc_examples::CalculatorClient;

fn main() -> Result<(), shmrpc::Error> {
    let name = std::env::args().nth(1).unwrap_or_else(|| "calc".to_owned());
    let options = ClientOptions::default().timeout(Duration::from_secs(1));
    let client = CalculatorClient::connect_with(&name, options)?;
    println!("add(2, 3)        = {}", client.add(2, 3)?);
    println!("div(7, 2)        = {:?}", client.div(7, 2)?);
    println!("div(1, 0)        = {:?}", client.div(1, 0)?);
    let mut samples = [0.0; 32];
    samples[..4].copy_from_slice(&[1.0, 2.0, 3.0, 10.0]);
    println!("stats(1,2,3,10)  = {:?}", client.stats(samples, 4)?);
    println!("find(21)         = {:?}", client.find(21)?);
    println!("find(20)         = {:?}", client.find(20)?);
    client.reset()?;
    println!("reset()          = ()");
    Ok(())
}
