//! Behaviour 13: an idle server and an idle client use no CPU time (also after the client called
//! in a tight loop, so that the server was watching its slot).

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

/// A call to a slow method sleeps once its answer is no longer imminent: the waiting client uses
/// next to no CPU (a client spinning through the wait would use all of it).
#[test]
fn a_client_waiting_for_a_slow_method_sleeps() {
    let name = unique_name("waiting");
    let _server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.add(1, 1).unwrap(), 2);
    let before = cpu_ticks(std::process::id());
    for round in 0..3 {
        assert_eq!(client.sleep(300, round).unwrap(), round);
    }
    let used = cpu_ticks(std::process::id()) - before;
    // 900 ms of waiting; clock ticks are 10 ms.
    assert!(
        used <= 9,
        "the waiting client used {used} ticks of CPU in 900 ms"
    );
}
