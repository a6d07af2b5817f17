//! The async clients (`XxxAsyncClient`), against servers in other processes: every kind of
//! value, under tokio (multi-thread and current-thread) and `futures::executor`; no thread held
//! while a call waits; cancellation by dropping futures at random points (0 crossed answers,
//! the connection still works); timeouts, dead and restarted servers.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, Error};
use shmrpc_tests::*;

fn assert_send_sync<T: Send + Sync>(_: &T) {}
fn assert_send<T: Send>(_: &T) {}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_kind_of_value_crosses_under_tokio() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-data");
    let _server = Peer::start(&["server", "data", &name]);
    multi_thread().block_on(async {
        let client = DataAsyncClient::connect(&name).await.unwrap();
        assert_send_sync(&client);
        let call = client.echo(b"hello");
        assert_send(&call);
        assert_eq!(call.await.unwrap(), b"hello");
        assert_eq!(
            client
                .concat("borrowed ", "owned".to_owned())
                .await
                .unwrap(),
            "borrowed owned"
        );
        let words = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(client.reverse(words).await.unwrap(), ["c", "b", "a"]);
        assert!(client.zip(&[1, 2], vec![7]).await.unwrap().is_err());
        assert_eq!(
            client.bump(Some(vec![1, 2])).await.unwrap(),
            Some(vec![2, 3])
        );
        // Large: decoded straight out of the slot, 1 MiB.
        let big = client.fill(1 << 20).await.unwrap();
        assert_eq!(big.len(), 1 << 20);
        assert!(big.iter().enumerate().all(|(i, &b)| b == i as u8));
        let mut out = Vec::with_capacity(16);
        client.fill_into(1000, &mut out).await.unwrap();
        assert_eq!(out.len(), 1000);
        assert_eq!(client.count(&[true, false, true]).await.unwrap(), 2);
    });
}

#[test]
fn fixed_size_values_service_errors_and_panics_arrive_as_from_the_blocking_client() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-types");
    let _server = Peer::start(&["server", "work", &name]);
    current_thread().block_on(async {
        let client = WorkAsyncClient::connect(&name).await.unwrap();
        assert_eq!(client.add(2, 3).await.unwrap(), 5);
        let tagged = client.echo(7, 8, 9).await.unwrap();
        assert_eq!((tagged.client, tagged.thread, tagged.seq), (7, 8, 9));
        match client.boom(3).await {
            Err(Error::HandlerPanicked { message, .. }) => assert!(message.contains("boom 3")),
            other => panic!("{other:?}"),
        }
        // The server goes on.
        assert_eq!(client.add(1, 1).await.unwrap(), 2);
    });
}

#[test]
fn connect_fails_at_once_without_a_server_and_waits_for_one_when_asked() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-connect");
    futures::executor::block_on(async {
        let start = Instant::now();
        let err = WorkAsyncClient::connect(&name).await.unwrap_err();
        assert!(matches!(err, Error::ServerNotRunning { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_millis(100));
    });
    let later = {
        let name = name.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            Peer::start(&["server", "work", &name])
        })
    };
    futures::executor::block_on(async {
        let options = ClientOptions::default().wait_for_server(Duration::from_secs(5));
        let client = WorkAsyncClient::connect_with(&name, options).await.unwrap();
        assert_eq!(client.add(40, 2).await.unwrap(), 42);
    });
    drop(later.join().unwrap());
}

/// A current-thread runtime keeps running its other tasks while a call waits for a 300 ms
/// method: the call holds no thread.
#[test]
fn a_waiting_call_does_not_hold_the_thread_it_was_polled_on() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-nonblocking");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    current_thread().block_on(async {
        let client = Arc::new(WorkAsyncClient::connect(&name).await.unwrap());
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let start = Instant::now();
        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.sleep(300, 11).await }
        });
        // Fast calls on the same thread meanwhile, through another slot.
        for i in 0..20 {
            assert_eq!(client.add(i, 1).await.unwrap(), i + 1);
        }
        assert_eq!(slow.await.unwrap().unwrap(), 11);
        let took = start.elapsed();
        ticker.abort();
        let ticks = ticks.load(Ordering::Relaxed);
        eprintln!("a 300 ms call took {took:?}; the ticker ticked {ticks} times meanwhile");
        // A 1 ms ticker sleeps at least 1 ms a tick; blocked, it would not tick at all.
        assert!(ticks >= 50, "{ticks} ticks in {took:?}");
    });
}

/// Many tasks share one client with two slots: they take turns, and each gets its own answer.
#[test]
fn many_tasks_share_a_client_and_each_gets_its_own_answer() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-many");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    multi_thread().block_on(async {
        let options = ClientOptions::default().max_slots(2);
        let client = Arc::new(WorkAsyncClient::connect_with(&name, options).await.unwrap());
        let tasks: Vec<_> = (0..64u32)
            .map(|task| {
                let client = client.clone();
                tokio::spawn(async move {
                    for seq in 0..50u64 {
                        let t = client.echo(task, 0, seq).await.unwrap();
                        assert_eq!((t.client, t.seq), (task, seq), "crossed answer");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Polls `future` `polls` times, `pause` apart, then drops it; its output if it finished first.
fn poll_then_drop<F: Future>(future: F, polls: u32, pause: Duration) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..polls {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Some(out);
        }
        let until = Instant::now() + pause;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
    None
}

/// 10,000 calls, each dropped after a pseudo-random number of polls (0 to 7, with a pause of
/// 0 to 20 µs between them: before it is sent, while it sleeps, before or after the server took
/// it, after it was answered), half of them on a client that spins in its first poll and half
/// on one that never spins (its first poll sends the request and returns); every call that
/// completes gets its own answer, and afterwards both connections still work. The calls echo
/// 8 B to 2 KiB, unique to each call: answers over 256 B are written over the request, so a
/// late answer let into a slot that holds a newer request would garble it.
#[test]
fn dropping_futures_at_random_points_never_crosses_answers() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-cancel");
    let _server = Peer::start(&["server", "data", &name, "workers=2"]);
    let connect = |wait| {
        let options = ClientOptions::default().max_slots(2).wait(wait);
        futures::executor::block_on(DataAsyncClient::connect_with(&name, options)).unwrap()
    };
    let clients = [
        connect(shmrpc::WaitStrategy::Adaptive),
        connect(shmrpc::WaitStrategy::ParkOnly),
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut finished, mut dropped_in_flight) = (0, 0);
    for seq in 0..10_000u64 {
        let client = &clients[(seq % 2) as usize];
        let polls = (next() % 8) as u32;
        let pause = Duration::from_micros(next() % 21);
        let len = 8 + (next() % 2041) as usize;
        let request: Vec<u8> = (0..len).map(|i| (seq as usize * 7 + i) as u8).collect();
        match poll_then_drop(client.echo(&request), polls, pause) {
            Some(Ok(answer)) => {
                assert!(answer == request, "call {seq}: crossed or garbled answer");
                finished += 1;
            }
            Some(Err(e)) => panic!("call {seq}: {e}"),
            None if polls > 0 => dropped_in_flight += 1,
            None => {}
        }
    }
    eprintln!("{finished} calls finished, {dropped_in_flight} dropped after being sent");
    assert!(
        dropped_in_flight > 500 && finished > 1000,
        "{finished} finished, {dropped_in_flight} dropped in flight"
    );
    // The connections still work, every slot of them, and answers are the caller's own.
    for client in &clients {
        futures::executor::block_on(async {
            let requests: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 1000]).collect();
            let calls = requests.iter().map(|r| client.echo(r));
            for (request, answer) in requests.iter().zip(futures::future::join_all(calls).await) {
                assert_eq!(&answer.unwrap(), request);
            }
        });
    }
}

/// A call dropped while its method runs: the method finishes in the server, its answer goes
/// nowhere, and the next calls on the same slot get their own answers.
#[test]
fn a_call_dropped_while_its_method_runs_never_answers_a_later_call() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-drop-running");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    multi_thread().block_on(async {
        let options = ClientOptions::default().max_slots(1);
        let client = WorkAsyncClient::connect_with(&name, options).await.unwrap();
        let dropped = tokio::time::timeout(Duration::from_millis(50), client.sleep(200, 1)).await;
        assert!(dropped.is_err(), "the call was not cut short");
        // One slot: this call waits until the late answer to the dropped one is in.
        let start = Instant::now();
        assert_eq!(client.sleep(1, 2).await.unwrap(), 2);
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        for i in 0..100 {
            assert_eq!(client.add(i, 1).await.unwrap(), i + 1);
        }
    });
}

#[test]
fn a_call_times_out_at_its_deadline_and_its_late_answer_is_never_delivered() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-timeout");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    current_thread().block_on(async {
        let options = ClientOptions::default().timeout(Duration::from_millis(100));
        let client = WorkAsyncClient::connect_with(&name, options).await.unwrap();
        let start = Instant::now();
        let err = client.sleep(300, 1).await.unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(150),
            "{took:?}"
        );
        for token in 2..20 {
            assert_eq!(client.sleep(1, token).await.unwrap(), token);
        }
    });
}

#[test]
fn a_killed_server_fails_the_call_at_once_and_a_restarted_one_is_used_again() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-restart");
    let mut server = Peer::start(&["server", "work", &name]);
    multi_thread().block_on(async {
        let client = WorkAsyncClient::connect(&name).await.unwrap();
        assert_eq!(client.add(1, 2).await.unwrap(), 3);
        let pid = server.pid();
        let call = tokio::spawn(async move {
            let start = Instant::now();
            let result = client.sleep(2000, 1).await;
            (result, start.elapsed(), client)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let killed = Instant::now();
        server.kill();
        let (result, _, client) = call.await.unwrap();
        let noticed = killed.elapsed();
        assert!(
            matches!(result, Err(Error::ServerDied { .. })),
            "{result:?} (server {pid})"
        );
        assert!(
            noticed < Duration::from_millis(25),
            "noticed after {noticed:?}"
        );
        assert!(matches!(
            client.add(1, 2).await,
            Err(Error::ServerNotRunning { .. })
        ));
        let _again = Peer::start(&["server", "work", &name]);
        assert_eq!(client.add(2, 2).await.unwrap(), 4);
    });
}

/// Sleeps, then echoes: a late answer over 256 bytes is written over the request area.
#[shmrpc::shm_service]
pub trait SlowEcho {
    fn echo_slow(&self, us: u32, data: Vec<u8>) -> Vec<u8>;
}

struct SlowEchoImpl;

impl SlowEcho for SlowEchoImpl {
    fn echo_slow(&self, us: u32, data: Vec<u8>) -> Vec<u8> {
        std::thread::sleep(Duration::from_micros(us.into()));
        data
    }
}

/// A call dropped while its method runs, its slot at once used by the next call: the slot rests
/// until the late answer is in, or that answer, written over the request area, would garble the
/// next request (one slot, so the next call must use it).
#[test]
fn the_slot_of_a_call_dropped_while_its_method_runs_rests_until_its_late_answer() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-rest");
    let _handle = SlowEchoServer::bind(&name, SlowEchoImpl)
        .unwrap()
        .spawn()
        .unwrap();
    let options = ClientOptions::default()
        .max_slots(1)
        .wait(shmrpc::WaitStrategy::ParkOnly);
    let client =
        futures::executor::block_on(SlowEchoAsyncClient::connect_with(&name, options)).unwrap();
    let mut in_flight = 0;
    for round in 0..50u8 {
        let early = vec![round; 1000];
        // One poll sends it; the server takes it and sleeps 2 ms in the method; 0.3 ms later
        // the call is dropped. (If this thread was held up for 2 ms within the poll, the answer
        // came in it: the round drops nothing.)
        match poll_then_drop(
            client.echo_slow(2000, early.clone()),
            1,
            Duration::from_micros(300),
        ) {
            None => in_flight += 1,
            Some(answer) => assert!(answer.is_ok_and(|a| a == early), "round {round}"),
        }
        let next = vec![round.wrapping_add(100); 1000];
        let answer = futures::executor::block_on(client.echo_slow(0, next.clone()));
        assert!(
            answer.as_ref().is_ok_and(|a| *a == next),
            "round {round}: {answer:?}"
        );
    }
    assert!(
        in_flight >= 40,
        "only {in_flight} of 50 calls were dropped in flight"
    );
}

/// A client idle while its server is killed and another starts: its next call goes to the new
/// server and succeeds (the request, found untaken on the dead connection, is sent again, once).
#[test]
fn a_client_idle_through_a_restart_calls_the_new_server_at_once() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-idle-restart");
    let mut server = Peer::start(&["server", "work", &name]);
    for rt in [multi_thread(), current_thread()] {
        rt.block_on(async {
            let client = WorkAsyncClient::connect(&name).await.unwrap();
            assert!(format!("{client:?}").contains(&name), "{client:?}");
            assert_eq!(client.add(1, 2).await.unwrap(), 3);
            server.kill();
            server = Peer::start(&["server", "work", &name]);
            assert_eq!(client.add(2, 2).await.unwrap(), 4);
            let served = client.served().await.unwrap();
            assert_eq!(served, 1, "the new server ran the call once");
        });
    }
}

/// One client used in one tokio runtime, which is then dropped, and in another: a slot's wait
/// set keeps its registration with a runtime between calls, and must not keep a dead one.
#[test]
fn a_client_outlives_the_runtime_it_first_slept_in() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-runtimes");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let options = ClientOptions::default().wait(shmrpc::WaitStrategy::ParkOnly);
    let client = {
        let first = current_thread();
        let client = first
            .block_on(WorkAsyncClient::connect_with(&name, options))
            .unwrap();
        assert_eq!(first.block_on(client.sleep(5, 1)).unwrap(), 1);
        client
    };
    for rt in [multi_thread(), current_thread()] {
        for token in 2..5 {
            assert_eq!(rt.block_on(client.sleep(5, token)).unwrap(), token);
        }
    }
    assert_eq!(
        futures::executor::block_on(client.sleep(5, 9)).unwrap(),
        9,
        "and outside any runtime"
    );
}

/// One client's calls take turns between two current-thread runtimes, both alive, each idle
/// (nobody drives its reactor) while the other runs: a call must sleep in the reactor of the
/// runtime it runs in, not in the one its slot's wait set was registered with last.
#[test]
fn calls_taking_turns_between_two_live_runtimes_each_wake_in_their_own() {
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("async-two-runtimes");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let options = ClientOptions::default()
        .wait(shmrpc::WaitStrategy::ParkOnly)
        .timeout(Duration::from_secs(2));
    let (a, b) = (current_thread(), current_thread());
    let client = a
        .block_on(WorkAsyncClient::connect_with(&name, options))
        .unwrap();
    for token in 0..20 {
        let rt = if token % 2 == 0 { &a } else { &b };
        // A call asleep in the other runtime's reactor would never wake, not even at its
        // deadline (its timer is in the same wait set): this runtime's own timer ends the wait
        // (and, polling the call once more, finds its answer, late).
        let started = Instant::now();
        let call = client.sleep(5, token);
        let answer =
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(300), call).await });
        assert!(
            matches!(answer, Ok(Ok(t)) if t == token),
            "call {token}: {answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "call {token} (a 5 ms method) took {:?}: it was not woken by its answer",
            started.elapsed()
        );
    }
}
