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

/// An async call that must wait sleeps in the reactor, also on a slot whose last call timed out
/// (the deadline's timer expired there): a timer expiry left untaken would keep the slot's wait
/// set readable, and every later wait on it would spin through its reactor.
#[test]
fn an_async_call_sleeps_also_after_a_timeout_on_its_slot() {
    let name = unique_name("async-waiting");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    futures::executor::block_on(async {
        let options = shmrpc::ClientOptions::default().timeout(Duration::from_millis(200));
        let client = WorkAsyncClient::connect_with(&name, options).await.unwrap();
        assert_eq!(client.sleep(1, 1).await.unwrap(), 1);
        let err = client.sleep(400, 2).await.unwrap_err();
        assert_eq!(kind(&err), "Timeout", "{err:?}");
        // The late answer lands; the slot is free again.
        std::thread::sleep(Duration::from_millis(300));
        let before = cpu_ticks(std::process::id());
        for token in 3..6 {
            assert_eq!(client.sleep(150, token).await.unwrap(), token);
        }
        let used = cpu_ticks(std::process::id()) - before;
        // 450 ms of waiting; clock ticks are 10 ms.
        assert!(
            used <= 6,
            "the waiting async client used {used} ticks of CPU in 450 ms"
        );
    });
}
