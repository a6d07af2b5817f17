//! The fast path of a call (issue 5): once warm, a call allocates nothing on either side, a
//! call between two spinning processes never sleeps and makes no system call, and a server
//! rings a client's wake-up socket only for a client that sleeps.
//!
//! These assert counts, not times, so a loaded machine cannot make them fail: an allocation is
//! counted by this test binary's global allocator, and a sleep is a voluntary context switch of
//! the calling thread (a preemption is an involuntary one and is not counted).
//!
//! No test harness (`harness = false`): the allocator counts every thread of the process, so
//! nothing else may run meanwhile, not even the harness printing another test's result.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use shmrpc::{ClientOptions, WaitStrategy};
use shmrpc_tests::*;

/// Counts every allocation of this process, on every thread.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; counting has no effect on the
// memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Voluntary context switches of the calling thread so far: each sleep in the kernel is one.
fn voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .expect("a Linux /proc")
        .trim()
        .parse()
        .unwrap()
}

fn main() {
    a_warm_call_allocates_nothing_on_either_side();
    println!("a_warm_call_allocates_nothing_on_either_side ... ok");
    the_allocation_free_forms_of_bytes_allocate_nothing_warm();
    println!("the_allocation_free_forms_of_bytes_allocate_nothing_warm ... ok");
    a_call_between_spinning_processes_never_sleeps();
    println!("a_call_between_spinning_processes_never_sleeps ... ok");
    the_server_wakes_a_client_only_when_it_sleeps();
    println!("the_server_wakes_a_client_only_when_it_sleeps ... ok");
    a_call_between_spinning_processes_makes_no_system_call();
    println!("a_call_between_spinning_processes_makes_no_system_call ... ok");
}

/// The client runs in a process of its own whose every system call from the measured calls on
/// is trapped by a seccomp filter and counted (`peer syscalls`). A call whose request the server
/// has not taken after the client's spin budget (50 µs: the server was preempted) kicks it, a
/// system call: that may happen a few times; a fast path that made a system call would make
/// one per call, or one per call that took more than a microsecond or two.
fn a_call_between_spinning_processes_makes_no_system_call() {
    const CALLS: usize = 50_000;
    let name = unique_name("nosyscall");
    let server = Peer::start(&["server", "work", &name, "wait=spin"]);
    let mut client = Peer::start(&["syscalls", &name, &CALLS.to_string()]);
    let line = client.line();
    drop(client);
    drop(server);
    let trapped: usize = line
        .strip_prefix("syscalls=")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("peer said {line:?}"));
    eprintln!("{CALLS} calls between spinning processes: {line} (system calls by number)");
    assert!(
        trapped <= CALLS / 1000,
        "{line}: system calls (by number) in {CALLS} calls between spinning processes"
    );
}

/// Bytes waiting to be read on this process's sockets. A wake-up the server sends a client that
/// does not sleep is never read: it stays there.
fn unread_socket_bytes() -> usize {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // the directory's own descriptor, closed meanwhile
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let fd: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
        // SAFETY: `fd` is one of this process's open sockets, and no thread of this test closes
        // a descriptor while it runs (the client and the peer outlive this call).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        total += rustix::io::ioctl_fionread(fd).unwrap_or(0) as usize;
    }
    total
}

fn the_server_wakes_a_client_only_when_it_sleeps() {
    let name = unique_name("noring");
    let server = Peer::start(&["server", "work", &name, "wait=spin"]);
    // Adaptive: the slow calls put the client to sleep (and the server must wake it), the fast
    // ones find it spinning (and the server must not).
    let client = WorkClient::connect(&name).unwrap();
    for round in 0..3u64 {
        assert_eq!(client.sleep(20, round).unwrap(), round);
        for i in 0..5_000 {
            assert_eq!(client.add(i, 1).unwrap(), i + 1);
        }
    }
    let unread = unread_socket_bytes();
    drop(client);
    drop(server);
    assert_eq!(
        unread, 0,
        "{unread} bytes of wake-ups nobody waited for: the server rang a spinning client"
    );
}

fn a_warm_call_allocates_nothing_on_either_side() {
    let name = unique_name("noalloc");
    // Server and client in this process, so that one allocator counts both sides; the default
    // (adaptive) waiting, so that sleeping and waking are covered too.
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    for i in 0..1_000 {
        assert_eq!(client.add(i, 1).unwrap(), i + 1);
    }
    // Long enough for the server's periodic checks of its segment (every 25 ms when busy,
    // before sleeping when idle) to run several times.
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = std::time::Instant::now();
    let mut calls = 0i64;
    while calls < 20_000 || start.elapsed() < std::time::Duration::from_millis(200) {
        assert_eq!(client.add(calls, 1).unwrap(), calls + 1);
        calls += 1;
        if calls % 5_000 == 0 {
            // An idle moment: the server goes to sleep and is woken again.
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    }
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
    handle.shutdown().unwrap();
    assert_eq!(allocated, 0, "{allocated} allocations in {calls} calls");
}

/// `&[u8]` in, `Reply::send_slice` in the server, `_into` in the client: small replies (copied
/// out whole) and large ones (read straight out of the slot).
fn the_allocation_free_forms_of_bytes_allocate_nothing_warm() {
    let name = unique_name("noalloc-bytes");
    let handle = DataServer::bind(&name, DataImpl).unwrap().spawn().unwrap();
    let client = DataClient::connect(&name).unwrap();
    let mut out = Vec::new();
    for len in [8, 1024, 65536, 1 << 20] {
        let bytes = vec![5u8; len];
        for _ in 0..100 {
            client.echo_sent_into(&bytes, &mut out).unwrap();
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..1_000 {
            client.echo_sent_into(&bytes, &mut out).unwrap();
        }
        let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(out, bytes);
        assert_eq!(
            allocated, 0,
            "{allocated} allocations in 1,000 calls of {len} bytes"
        );
    }
    handle.shutdown().unwrap();
}

fn a_call_between_spinning_processes_never_sleeps() {
    let name = unique_name("nosleep");
    let server = Peer::start(&["server", "work", &name, "wait=spin"]);
    let client =
        WorkClient::connect_with(&name, ClientOptions::default().wait(WaitStrategy::SpinOnly))
            .unwrap();
    for i in 0..1_000 {
        assert_eq!(client.add(i, 1).unwrap(), i + 1);
    }
    let before = voluntary_switches();
    for i in 0..20_000 {
        assert_eq!(client.add(i, 1).unwrap(), i + 1);
    }
    let slept = voluntary_switches() - before;
    drop(client);
    drop(server);
    assert_eq!(
        slept, 0,
        "the calling thread slept {slept} times in 20000 calls"
    );
}
