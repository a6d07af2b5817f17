//! Behaviour 7 of the connections issue, behaviour 15 of the contract: with one worker, calls
//! are served one at a time in the order they arrive, so a fast call waits at most for the
//! calls ahead of it; with several, calls from different connections (and different threads of
//! one client) run in parallel.

use std::process::Command;
use std::time::{Duration, Instant};

use shmrpc::ClientOptions;
use shmrpc_tests::*;

const SLOW_MS: u32 = 200;

/// Held by each test for its whole run: these tests measure latencies, and one that keeps both
/// cores busy (back-to-back calls) must not run beside one that times wake-ups.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `n` processes calling a 200 ms method in a loop.
fn slow_callers(name: &str, n: usize) -> Vec<Peer> {
    (0..n)
        .map(|_| {
            let mut peer = Peer::spawn(Command::new(peer_program()).args([
                "slow",
                name,
                &SLOW_MS.to_string(),
            ]));
            peer.expect_line("ready");
            peer
        })
        .collect()
}

/// Calls `add` every 10 ms for `calls` calls; each call's latency, sorted.
fn fast_caller(name: &str, calls: usize) -> Vec<Duration> {
    let client = WorkClient::connect_with(
        name,
        ClientOptions::default().timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let mut latencies: Vec<Duration> = (0..calls)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(10));
            let start = Instant::now();
            assert_eq!(client.add(i as i64, 1).unwrap(), i as i64 + 1);
            start.elapsed()
        })
        .collect();
    latencies.sort();
    latencies
}

/// Stops the slow callers; how many calls each made.
fn stop(callers: Vec<Peer>) -> Vec<u64> {
    callers
        .into_iter()
        .map(|mut peer| {
            drop(peer.child.stdin.take());
            let line = peer.line();
            line.strip_prefix("calls=")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("slow caller said {line:?}"))
        })
        .collect()
}

#[test]
fn with_one_worker_a_fast_call_waits_at_most_for_the_calls_ahead_of_it() {
    let _serial = one_at_a_time();
    let name = unique_name("fair");
    let _server = Peer::start(&["server", "work", &name]);
    let slow = slow_callers(&name, 3);
    // Each fast call waits for slow ones: a dozen show the worst case.
    let latencies = fast_caller(&name, 12);
    let worst = *latencies.last().unwrap();
    let counts = stop(slow);
    eprintln!(
        "one worker: fast call p50 {:?}, worst {worst:?}; slow calls made {counts:?}",
        latencies[latencies.len() / 2]
    );
    // Ahead of a fast call: at most the call being served and one from each other caller.
    assert!(
        worst <= Duration::from_millis(3 * u64::from(SLOW_MS) + 20),
        "worst fast call {worst:?}"
    );
    // The slow callers took turns too.
    assert!(counts.iter().all(|&n| n >= 2), "{counts:?}");
}

#[test]
fn with_four_workers_slow_calls_run_in_parallel_and_a_fast_caller_is_not_held_up() {
    let _serial = one_at_a_time();
    let name = unique_name("parallel");
    let _server = Peer::start(&["server", "work", &name, "workers=4"]);
    let slow = slow_callers(&name, 3);
    let start = Instant::now();
    // 1,000 calls, so that the p99 is that of ten calls, not of a few hiccups of the machine
    // (this shared virtual machine stalls a process for 2-5 ms now and then).
    let latencies = fast_caller(&name, 1000);
    let elapsed = start.elapsed();
    let p99 = latencies[latencies.len() * 99 / 100];
    let counts = stop(slow);
    eprintln!(
        "four workers: fast call p50 {:?}, p99 {p99:?}, slowest {:?}; slow calls made {counts:?} \
         in {elapsed:?}",
        latencies[latencies.len() / 2],
        &latencies[latencies.len() - 12..]
    );
    assert!(p99 <= Duration::from_millis(1), "fast call p99 {p99:?}");
    // In parallel, each slow caller makes about elapsed / 200 ms calls; in turn, a third of it.
    let alone = (elapsed.as_millis() / u128::from(SLOW_MS)) as u64;
    assert!(
        counts.iter().all(|&n| n * 10 >= alone * 8),
        "{counts:?} in {elapsed:?}: not in parallel"
    );
}

#[test]
fn calls_wait_in_the_order_they_arrived() {
    let _serial = one_at_a_time();
    let name = unique_name("order");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let busy = WorkClient::connect(&name).unwrap();
    let clients: Vec<WorkClient> = (0..4)
        .map(|_| WorkClient::connect(&name).unwrap())
        .collect();
    let finished = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| busy.sleep(300, 0).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        // Clients call in the reverse order of their connections, 20 ms apart.
        for (i, client) in clients.iter().enumerate().rev() {
            let finished = &finished;
            s.spawn(move || {
                client.sleep(1, i as u64).unwrap();
                finished.lock().unwrap().push(i);
            });
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert_eq!(*finished.lock().unwrap(), vec![3, 2, 1, 0]);
    handle.shutdown().unwrap();
}

#[test]
fn one_client_calls_from_several_threads_in_parallel_up_to_its_slots() {
    let _serial = one_at_a_time();
    let name = unique_name("slots");
    let _server = Peer::start(&["server", "work", &name, "workers=4"]);
    for (slots, rounds) in [(4, 1), (2, 2)] {
        let client =
            WorkClient::connect_with(&name, ClientOptions::default().max_slots(slots)).unwrap();
        let start = Instant::now();
        std::thread::scope(|s| {
            for token in 0..4 {
                let client = &client;
                s.spawn(move || assert_eq!(client.sleep(200, token).unwrap(), token));
            }
        });
        let took = start.elapsed();
        eprintln!("4 threads, {slots} slots: 4 calls of 200 ms took {took:?}");
        assert!(
            took >= Duration::from_millis(200 * rounds)
                && took < Duration::from_millis(200 * rounds + 150),
            "{slots} slots: {took:?}"
        );
    }
}

/// Kicks that arrive together are read by one thread in one go: it must wake other workers for
/// the requests it does not serve itself, or they would run one after another. To make them
/// arrive together, the server's second accept sleeps 300 ms in the thread that handles
/// connections, so the kicks of four calls made meanwhile wait in their socket until then
/// (stopping the whole server instead would not do: `SIGCONT` wakes every thread).
#[test]
fn requests_whose_kicks_arrive_together_still_run_in_parallel() {
    let _serial = one_at_a_time();
    let name = unique_name("together");
    let _server = Peer::start_with(
        &["server", "work", &name, "workers=4"],
        &[("SHMRPC_FAULT", "server-accepted:sleep-300:2")],
    );
    let client = WorkClient::connect_with(&name, ClientOptions::default().max_slots(4)).unwrap();
    // Four slots, made while the server handles connections at once.
    std::thread::scope(|s| {
        for token in 0..4 {
            let client = &client;
            s.spawn(move || assert_eq!(client.sleep(50, token).unwrap(), token));
        }
    });
    let took = std::thread::scope(|s| {
        // The second accept: the server's connection handling sleeps from now on.
        let slow_accept = s.spawn(|| WorkClient::connect(&name).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        let calls: Vec<_> = (0..4)
            .map(|token| {
                let client = &client;
                s.spawn(move || assert_eq!(client.sleep(200, token).unwrap(), token))
            })
            .collect();
        for call in calls {
            call.join().unwrap();
        }
        drop(slow_accept.join().unwrap());
        start.elapsed()
    });
    eprintln!("4 calls of 200 ms whose kicks arrived together took {took:?}");
    // The accept's sleep (250 ms left of it), then the four calls side by side.
    assert!(
        took < Duration::from_millis(250 + 200 + 100),
        "{took:?}: not in parallel"
    );
}

/// A client calling back to back has its slot watched by the spinning server thread, so it does
/// not kick for its calls; when that thread runs a slow method for someone else, the client's
/// next request waits untaken, and the client kicks after its spin budget, so that another
/// worker serves it. Without that late kick, it would wait for the slow method to end.
#[test]
fn a_watched_client_is_not_held_up_by_a_slow_method_its_watcher_runs() {
    let _serial = one_at_a_time();
    let name = unique_name("watched");
    // Two workers, one slow caller: a worker is always free for the fast calls.
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let slow = slow_callers(&name, 1);
    let client = WorkClient::connect(&name).unwrap();
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    let mut calls = 0i64;
    while start.elapsed() < Duration::from_millis(1200) {
        let call = Instant::now();
        assert_eq!(client.add(calls, 1).unwrap(), calls + 1);
        worst = worst.max(call.elapsed());
        calls += 1;
    }
    let counts = stop(slow);
    eprintln!("two workers: {calls} back-to-back calls, worst {worst:?}; slow calls {counts:?}");
    // A slow method lasts 200 ms; a late kick costs the spin budget and a wake-up.
    assert!(worst < Duration::from_millis(20), "worst call {worst:?}");
}
