//! Every example runs and ends well. `cargo test` builds the examples (it does not run them);
//! these tests run the built programs.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use shmrpc_tests::*;

fn example(name: &str) -> PathBuf {
    let path = peer_program().with_file_name("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

#[test]
fn demo_runs_and_leaves_nothing() {
    let out = Command::new(example("demo"))
        .args(["--seconds", "1", "--clients", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("calls/s") && stdout.contains("p99"),
        "{stdout}"
    );
    assert!(stdout.contains("its name is free: yes"), "{stdout}");
}

#[test]
fn calculator_server_and_client_talk() {
    let name = unique_name("example-calc");
    let mut server = Peer::spawn(Command::new(example("calculator_server")).arg(&name));
    assert!(server.line().starts_with(&format!("serving `{name}`")));
    let out = Command::new(example("calculator_client"))
        .arg(&name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("add(2, 3)        = 5"), "{stdout}");
    assert!(stdout.contains("Err(DivideByZero)"), "{stdout}");
    server.kill();
    // A killed server leaves nothing: the next one binds the name at once.
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
    let mut server = Peer::spawn(Command::new(example("calculator_server")).arg(&name));
    assert!(server.line().starts_with("serving"));
    // Ctrl-C stops it cleanly: `run()` returns, the name is free.
    server.signal("INT");
    assert_eq!(server.line(), "stopped");
    assert_eq!(server.wait(Duration::from_secs(1)), Some(0));
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
}

/// `fn main() -> Result<(), shmrpc::Error>` prints the error's message, not its fields.
#[test]
fn a_failing_main_prints_a_readable_error() {
    let name = unique_name("example-none");
    let out = Command::new(example("calculator_client"))
        .arg(&name)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "Error: ServerNotRunning: no server is serving `{name}`; start the server first"
        )),
        "{stderr}"
    );
}

#[test]
fn monitor_first_instance_serves_and_a_client_takes_over() {
    let name = unique_name("example-monitor");
    let mut first =
        Peer::spawn(Command::new(example("monitor")).args(["--name", &name, "--seconds", "4"]));
    assert!(first.line().contains("I am the monitor"));
    let mut second =
        Peer::spawn(Command::new(example("monitor")).args(["--name", &name, "--seconds", "3"]));
    assert!(second.line().contains("reporting to it"));
    assert!(second.line().contains("heartbeat 1 delivered"));
    first.kill();
    let mut lines = Vec::new();
    loop {
        let line = second.line();
        if line.is_empty() || line.contains("I am the monitor") {
            lines.push(line);
            break;
        }
        lines.push(line);
    }
    assert!(
        lines.last().unwrap().contains("I am the monitor"),
        "{lines:?}"
    );
    assert_eq!(second.wait(Duration::from_secs(5)), Some(0));
    assert!(leftovers(&name).is_empty());
}

#[test]
fn the_key_value_cache_example_stores_and_finds() {
    let out = Command::new(example("kv")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("get(\"fruit/apple\")           -> Some(\"red\")"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Err(\"keys are 1 to 256 bytes, this one 0\")"),
        "{stdout}"
    );
    assert!(
        stdout.contains("get_into(\"photo\")            -> 300000 bytes"),
        "{stdout}"
    );
    assert!(stdout.contains("[\"fruit/apple\", \"photo\"]"), "{stdout}");
}

#[test]
fn the_frames_example_shows_frames_per_second() {
    let out = Command::new(example("frames"))
        .args(["--seconds", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("frames/s"), "{stdout}");
    assert!(stdout.contains("frames of 2764800 bytes"), "{stdout}");
}
