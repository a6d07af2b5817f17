//! A camera-frame service: 1280×720 RGB frames (2.7 MB each) served over shared memory, and a
//! client that fetches them as fast as it can and shows the rate live.
//!
//! ```text
//! cargo run --release --example frames [-- --seconds 5]
//! ```
//!
//! The server writes each frame straight into the client's slot (`Reply::send_slice`: one copy,
//! no allocation); the client receives it into a buffer it reuses (`latest_into`: one copy).
//! The program runs itself again as the server (`frames --serve <name>`), so the frames really
//! cross processes.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use shmrpc::ClientOptions;
use shmrpc_examples::frames::{CameraClient, CameraServer, FRAME_LEN, TestCamera};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--serve") => serve(&args[1]),
        _ => {
            let seconds = args
                .iter()
                .position(|a| a == "--seconds")
                .and_then(|i| args.get(i + 1)?.parse().ok())
                .unwrap_or(5u64);
            watch(seconds)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("frames: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves a camera making 30 frames a second, until standard input closes.
fn serve(name: &str) -> Result<(), shmrpc::Error> {
    let camera = TestCamera::start(Duration::from_millis(33));
    let handle = CameraServer::bind(name, camera)?.spawn()?;
    println!("serving");
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    handle.shutdown()
}

fn watch(seconds: u64) -> Result<(), shmrpc::Error> {
    let name = format!("frames-example-{}", std::process::id());
    let mut server = Command::new(std::env::current_exe().expect("this program"))
        .args(["--serve", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("piped"))
        .read_line(&mut ready)
        .expect("the server starts");
    let result = fetch(&name, seconds);
    // Closing its standard input stops the server.
    drop(server.stdin.take());
    let _ = server.wait();
    result
}

fn fetch(name: &str, seconds: u64) -> Result<(), shmrpc::Error> {
    let camera = CameraClient::connect_with(name, ClientOptions::default())?;

    let mut frame = Vec::with_capacity(FRAME_LEN);
    let start = Instant::now();
    let (mut total, mut this_second, mut second_start) = (0u64, 0u64, Instant::now());
    let mut best = 0.0f64;
    while start.elapsed() < Duration::from_secs(seconds) {
        camera.latest_into(&mut frame)?;
        assert_eq!(frame.len(), FRAME_LEN);
        total += 1;
        this_second += 1;
        let elapsed = second_start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            let rate = this_second as f64 / elapsed.as_secs_f64();
            best = best.max(rate);
            let number = u64::from_le_bytes(frame[..8].try_into().expect("8 bytes"));
            println!(
                "{rate:>7.0} frames/s  {:>6.2} GB/s  (camera frame #{number})",
                rate * FRAME_LEN as f64 / 1e9
            );
            (this_second, second_start) = (0, Instant::now());
        }
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    println!(
        "{total} frames of {FRAME_LEN} bytes in {:.1} s: {rate:.0} frames/s on average, best second {best:.0}",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
