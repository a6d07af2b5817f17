//! Attacks from the review: async cancellation and slot waits, the wake-up thread, fork, a
//! hostile server's description against `shmrpc::inspect`, and `stop_on_signals`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shmrpc::{ClientOptions, Error, WaitStrategy};
use shmrpc_tests::*;

/// Held by every test of this file: some count this process's descriptors, threads and CPU
/// time, which tests running beside them would change.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// 200 tasks wait for the one slot of a client while a 1 s call holds it: waiting must not
/// burn the CPU.
#[test]
fn review_tasks_waiting_for_a_slot_burn_no_cpu() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-slotwait-cpu");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    multi_thread().block_on(async {
        let options = ClientOptions::default()
            .max_slots(1)
            .timeout(Duration::from_secs(10));
        let client = Arc::new(WorkAsyncClient::connect_with(&name, options).await.unwrap());
        let holder = tokio::spawn({
            let client = client.clone();
            async move { client.sleep(1000, 1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiters: Vec<_> = (0..200u64)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { client.sleep(0, 10 + i).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = cpu_time();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let burnt = cpu_time() - before;
        assert_eq!(holder.await.unwrap().unwrap(), 1);
        for (i, w) in waiters.into_iter().enumerate() {
            assert_eq!(w.await.unwrap().unwrap(), 10 + i as u64);
        }
        eprintln!("200 tasks waiting for a slot for 500 ms used {burnt:?} of CPU");
        assert!(
            burnt < Duration::from_millis(50),
            "waiting for a slot burnt {burnt:?} of CPU in 500 ms"
        );
    });
}

/// Many tasks on two slots, each call raced against a short random sleep in `select!` (dropped
/// while waiting for a slot, sleeping, or answered), on a multi-thread runtime: no crossed
/// answer, nothing hangs, and the connection still works.
#[test]
fn review_select_drops_many_tasks_on_few_slots() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-select");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let rt = multi_thread();
    rt.block_on(async {
        let options = ClientOptions::default().max_slots(2);
        let client = Arc::new(WorkAsyncClient::connect_with(&name, options).await.unwrap());
        let start = Instant::now();
        let tasks: Vec<_> = (0..32u32)
            .map(|task| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut rng = Rng::new(task as u64 + 1);
                    let (mut done, mut dropped) = (0, 0);
                    for seq in 0..200u64 {
                        let wait = Duration::from_micros(rng.below(400));
                        let call = client.echo(task, 0, seq);
                        tokio::select! {
                            r = call => {
                                let t = r.unwrap();
                                assert_eq!((t.client, t.seq), (task, seq), "crossed answer");
                                done += 1;
                            }
                            _ = tokio::time::sleep(wait) => dropped += 1,
                        }
                        if rng.below(4) == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    (done, dropped)
                })
            })
            .collect();
        let (mut done, mut dropped) = (0, 0);
        for t in tasks {
            let (d, x) = t.await.unwrap();
            done += d;
            dropped += x;
        }
        eprintln!("{done} done, {dropped} dropped in {:?}", start.elapsed());
        for i in 0..50 {
            let t = tokio::time::timeout(Duration::from_secs(2), client.echo(99, 0, i))
                .await
                .expect("hung after the drops")
                .unwrap();
            assert_eq!(t.seq, i);
        }
    });
}

/// Tasks wait for the one slot while the server is killed: each fails within 250 ms, under the
/// futures executor (shmrpc's own wake-up thread).
#[test]
fn review_server_killed_while_tasks_wait_for_a_slot() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-slotwait-kill");
    let mut server = Peer::start(&["server", "work", &name, "workers=2"]);
    let options = ClientOptions::default()
        .max_slots(1)
        .timeout(Duration::from_secs(10));
    let client =
        futures::executor::block_on(WorkAsyncClient::connect_with(&name, options)).unwrap();
    let client = Arc::new(client);
    let results: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                let r = futures::executor::block_on(client.sleep(3000, i));
                (r, Instant::now())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let killed = Instant::now();
    server.kill();
    for r in results {
        let (r, at) = r.join().unwrap();
        let after = at.saturating_duration_since(killed);
        assert!(
            matches!(
                r,
                Err(Error::ServerDied { .. } | Error::ServerNotRunning { .. })
            ),
            "{r:?}"
        );
        assert!(
            after < Duration::from_millis(250),
            "failed {after:?} after the kill"
        );
    }
}

/// A call waiting for the one slot times out at its deadline (+50 ms at most).
#[test]
fn review_a_call_waiting_for_a_slot_times_out_on_time() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-slotwait-timeout");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let options = ClientOptions::default()
        .max_slots(1)
        .timeout(Duration::from_millis(100))
        .wait(WaitStrategy::ParkOnly);
    let client = Arc::new(
        futures::executor::block_on(WorkAsyncClient::connect_with(&name, options)).unwrap(),
    );
    let holder = {
        let client = client.clone();
        std::thread::spawn(move || futures::executor::block_on(client.sleep(400, 1)))
    };
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..3 {
        let start = Instant::now();
        let r = futures::executor::block_on(client.add(1, 2));
        let took = start.elapsed();
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(150),
            "{took:?}"
        );
    }
    assert!(matches!(holder.join().unwrap(), Err(Error::Timeout { .. })));
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(futures::executor::block_on(client.add(1, 2)).unwrap(), 3);
}

/// A process that made async calls forks; the child makes async calls of its own (with its
/// own wake-up thread), the parent goes on.
#[test]
fn review_a_forked_child_of_an_async_caller_makes_async_calls() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-async-fork");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let mut peer = Peer::start(&["review-async-fork", &name]);
    assert_eq!(peer.line(), "child ok");
    assert_eq!(peer.line(), "parent ok");
}

/// The server killed while a call sleeps, under the futures executor: `ServerDied` within
/// 250 ms.
#[test]
fn review_futures_executor_notices_a_killed_server() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-futures-kill");
    let mut server = Peer::start(&["server", "work", &name]);
    let options = ClientOptions::default().wait(WaitStrategy::ParkOnly);
    let client =
        futures::executor::block_on(WorkAsyncClient::connect_with(&name, options)).unwrap();
    let call = std::thread::spawn(move || {
        let r = futures::executor::block_on(client.sleep(3000, 1));
        (r, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    server.kill();
    let (r, at) = call.join().unwrap();
    assert!(matches!(r, Err(Error::ServerDied { .. })), "{r:?}");
    assert!(at.saturating_duration_since(killed) < Duration::from_millis(250));
}

// ---- A hostile server's description against `shmrpc::inspect` ----

use shmrpc::__private::{Dispatch, Interface, MethodShape, Server, Shape};

/// A server whose interface "name" carries the lines of the description it publishes.
fn hostile_server(name: &str, description: &'static str) -> shmrpc::ServerHandle {
    static U8: Shape = Shape::Primitive {
        name: "u8",
        size: 1,
    };
    let methods: &'static [Option<MethodShape>] = Box::leak(Box::new([Some(MethodShape {
        name: "x",
        tag: 0,
        args: &[],
        arg_names: &[],
        reply: &U8,
    })]));
    let interface: &'static Interface = Box::leak(Box::new(Interface::new(description, methods)));
    let dispatch: Dispatch = Arc::new(|_, _, mut w| {
        w.put(&[0]);
        Ok(w.finish())
    });
    Server::bind(name, shmrpc::ServerOptions::default(), interface, dispatch)
        .unwrap()
        .spawn()
        .unwrap()
}

/// A 731-byte description whose types refer twice each to the next (T0 { a: T1, b: T1 }, ...):
/// reading it must not take exponential time and memory.
#[test]
fn review_inspect_reads_a_description_of_doubling_types_quickly() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-blowup");
    let mut text = String::from("Evil\nmethod 0 0000000000000000 f(T0) -> u8\n");
    let levels = 20;
    for i in 0..levels {
        text += &format!("type record T{i} {{ a: T{}, b: T{} }}\n", i + 1, i + 1);
    }
    text += &format!("type record T{levels}\n");
    eprintln!("a description of {} bytes", text.len());
    let _server = hostile_server(&name, Box::leak(text.into_boxed_str()));
    let (tx, rx) = std::sync::mpsc::channel();
    let n = name.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        let r = shmrpc::inspect::Service::connect(&n, ClientOptions::default()).map(|_| ());
        let _ = tx.send((r, start.elapsed()));
    });
    match rx.recv_timeout(Duration::from_secs(2)) {
        Ok((r, took)) => {
            eprintln!("connect: {r:?} in {took:?}");
            assert!(took < Duration::from_millis(500), "took {took:?}");
        }
        Err(_) => panic!("Service::connect still reading a description of 731 bytes after 2 s"),
    }
}

// ---- stop_on_signals ----

/// A server that stops on signals, shut down by hand: a SIGTERM then ends the process as it
/// would by default (killed by the signal, not an exit status of 143).
#[test]
fn review_after_shutdown_a_signal_acts_as_by_default() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-sig-shutdown");
    let mut peer = Peer::start(&["review-signals", &name, "shutdown"]);
    assert_eq!(peer.line(), "shut");
    peer.signal("TERM");
    assert_eq!(peer.killed_by(Duration::from_millis(500)), Some(15));
}

/// A process that ignores SIGINT, whose server (stopping on signals) was shut down: a SIGINT
/// is ignored, as it would be without shmrpc.
#[test]
fn review_after_shutdown_an_ignored_signal_stays_ignored() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-sig-ignored");
    let mut peer = Peer::start(&["review-signals", &name, "ignored"]);
    assert_eq!(peer.line(), "shut");
    std::thread::sleep(Duration::from_millis(50));
    peer.signal("INT");
    assert_eq!(peer.line(), "alive");
    assert_eq!(peer.wait(Duration::from_secs(1)), Some(0));
}

/// A process with its own SIGINT handler, whose server (stopping on signals) was shut down:
/// the next SIGINT is the application's to handle, as it would be without shmrpc.
#[test]
fn review_after_shutdown_the_applications_own_handler_runs() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-sig-own");
    let mut peer = Peer::start(&["review-signals", &name, "own"]);
    assert_eq!(peer.line(), "shut");
    std::thread::sleep(Duration::from_millis(50));
    peer.signal("INT");
    assert_eq!(peer.line(), "handled");
    assert_eq!(peer.wait(Duration::from_secs(1)), Some(0));
}

/// Two servers in one process, both stopping on signals: one SIGINT stops both.
#[test]
fn review_one_signal_stops_every_server_of_the_process() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-sig-two");
    let mut peer = Peer::start(&["review-signals", &name, "two"]);
    peer.signal("INT");
    assert_eq!(peer.line(), "returned a");
    assert_eq!(peer.line(), "returned b");
    assert_eq!(peer.wait(Duration::from_millis(500)), Some(0));
}

// ---- Leaks and idle cost ----

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// CPU ticks (user + system) of this process's thread called `comm`.
fn thread_ticks(comm: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.trim() == comm {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split(' ').collect();
            return Some(f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap());
        }
    }
    None
}

/// Clients made, used for sleeping calls (under tokio and the futures executor) and dropped:
/// no descriptor or thread stays behind, and the wake-up thread costs nothing when idle.
#[test]
fn review_async_clients_leak_nothing_and_the_wakeup_thread_idles() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-leaks");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let options = ClientOptions::default()
        .wait(WaitStrategy::ParkOnly)
        .max_slots(4);
    let round = |rt: &tokio::runtime::Runtime| {
        let client = rt
            .block_on(WorkAsyncClient::connect_with(&name, options.clone()))
            .unwrap();
        rt.block_on(async {
            let calls = (0..4).map(|i| client.sleep(2, i));
            futures::future::join_all(calls).await
        });
        let c2 = futures::executor::block_on(WorkAsyncClient::connect_with(&name, options.clone()))
            .unwrap();
        futures::executor::block_on(async {
            let calls = (0..4).map(|i| c2.sleep(2, i));
            futures::future::join_all(calls).await
        });
    };
    let rt = multi_thread();
    round(&rt);
    std::thread::sleep(Duration::from_millis(100));
    let (fds, threads_before) = (open_fds(), threads());
    for _ in 0..30 {
        round(&rt);
    }
    // Descriptors of dropped slots are closed on a thread of their own: give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let (fds_after, threads_after) = (open_fds(), threads());
    eprintln!("fds {fds} -> {fds_after}, threads {threads_before} -> {threads_after}");
    assert!(fds_after <= fds + 2, "fds {fds} -> {fds_after}");
    assert!(
        threads_after <= threads_before + 1,
        "threads {threads_before} -> {threads_after}"
    );
    let before = thread_ticks("shmrpc-wakeups").expect("the wake-up thread runs");
    std::thread::sleep(Duration::from_millis(1000));
    let idle = thread_ticks("shmrpc-wakeups").unwrap() - before;
    assert!(
        idle <= 2,
        "the idle wake-up thread used {idle} ticks in 1 s"
    );
}

/// A hostile client asks for the server's statistics as fast as it can, from two threads: a
/// fair client's calls are not held up.
#[test]
fn review_a_get_stats_flood_does_not_hold_up_calls() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-stats-flood");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let (name, stop) = (name.clone(), stop.clone());
            std::thread::spawn(move || {
                let s = shmrpc::inspect::Service::connect(&name, ClientOptions::default()).unwrap();
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    s.stats().unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let client = WorkClient::connect(&name).unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..2000 {
        let start = Instant::now();
        assert_eq!(client.add(i, 1).unwrap(), i + 1);
        worst = worst.max(start.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let asked: u64 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    eprintln!("{asked} GetStats meanwhile; the slowest of 2000 calls took {worst:?}");
    assert!(worst < Duration::from_millis(50), "{worst:?}");
}

/// A tokio runtime built without I/O (timers only), with the `tokio` feature: a call that
/// must sleep panics with tokio's own message saying what to do, as every tokio I/O type does
/// (the README says so). Without the feature, or outside tokio, any executor works.
#[test]
fn a_tokio_runtime_without_io_is_told_to_enable_it() {
    let _serial = serial();
    let _watchdog = watchdog(Duration::from_secs(120));
    let name = unique_name("review-tokio-noio");
    let _server = Peer::start(&["server", "work", &name, "workers=2"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let options = ClientOptions::default().wait(WaitStrategy::ParkOnly);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let client = WorkAsyncClient::connect_with(&name, options).await.unwrap();
            client.sleep(5, 7).await
        })
    }));
    let message = r
        .err()
        .and_then(|p| p.downcast::<String>().ok())
        .expect("a panic with a message");
    assert!(message.contains("enable_io"), "{message}");
}
