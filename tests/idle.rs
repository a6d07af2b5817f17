//! Behaviour 13: an idle server and an idle client use no CPU time.

use std::time::Duration;

use shmrpc_tests::*;

#[test]
fn idle_server_and_idle_client_use_no_cpu() {
    let name = unique_name("idle");
    let server = Peer::start(&["server", "work", &name]);
    let client = Peer::start(&["idle", &name]);
    // Let both finish any spinning that follows the last call.
    std::thread::sleep(Duration::from_millis(100));
    let before = (cpu_ticks(server.pid()), cpu_ticks(client.pid()));
    std::thread::sleep(Duration::from_millis(1500));
    let after = (cpu_ticks(server.pid()), cpu_ticks(client.pid()));
    assert_eq!(after.0 - before.0, 0, "the idle server used CPU");
    assert_eq!(after.1 - before.1, 0, "the idle client used CPU");
}
