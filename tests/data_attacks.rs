//! Attacks on variable-size data, from an adversarial review: hostile clients and servers, size
//! limits, growing interfaces across restarts, forks in a `Reply` method, alignment. (The review
//! also found that values taking no bytes, `Vec<()>`, let a request of a few KiB make the server
//! decode millions of them: such sequences are now refused at compile time, see
//! `ui/layout/sequence-of-nothing.rs`, and by the reader.)
//!
//! Servers of services defined here run in a child process: this test executable run again
//! with `REVIEW_ROLE` set (see `role`), so that every attack crosses real processes.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shmrpc::__private::testing::{RawConnection, kick, raw_connect};
use shmrpc::{Error, ServerOptions};
use shmrpc_tests::*;

/// Slices of numbers after odd-sized values, and a method that forks.
#[shmrpc::shm_service]
pub trait Mix {
    fn ping(&self) -> u64;
    /// Alignment of the lent slices (bit 0: wide, 1: reals, 2: longs), then the sums.
    fn mix(&self, a: u8, wide: &[u128], b: u8, reals: &[f64], c: u16, longs: &[u64]) -> Vec<u64>;
    /// Forks; the child tries to send `n` bytes of 0xCC, the parent waits for it, then sends
    /// the child's wait status (4 bytes) and `n` bytes of 0xAA.
    fn fork_send(&self, n: u64, reply: shmrpc::Reply<'_, Vec<u8>>) -> shmrpc::Replied;
}

struct MixImpl;

impl Mix for MixImpl {
    fn ping(&self) -> u64 {
        42
    }
    fn mix(&self, a: u8, wide: &[u128], b: u8, reals: &[f64], c: u16, longs: &[u64]) -> Vec<u64> {
        let aligned = |p: usize| u64::from(p.is_multiple_of(16));
        let flags = aligned(wide.as_ptr() as usize)
            | aligned(reals.as_ptr() as usize) << 1
            | aligned(longs.as_ptr() as usize) << 2;
        vec![
            flags,
            u64::from(a) + u64::from(b) + u64::from(c),
            wide.iter().sum::<u128>() as u64,
            reals.iter().sum::<f64>() as u64,
            longs.iter().sum::<u64>(),
        ]
    }
    fn fork_send(&self, n: u64, reply: shmrpc::Reply<'_, Vec<u8>>) -> shmrpc::Replied {
        let child_bytes = vec![0xCCu8; n as usize];
        let mut parent_bytes = vec![0xAAu8; n as usize + 4];
        // SAFETY: the child only calls `send_slice` (which must end it) and `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let _replied = reply.send_slice(&child_bytes);
            // SAFETY: ends the child if `send_slice` did not.
            unsafe { libc::_exit(99) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        parent_bytes[..4].copy_from_slice(&status.to_le_bytes());
        reply.send_slice(&parent_bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// Roles: this executable, run again as a server (or a client that may crash).

fn role_env() -> Option<String> {
    std::env::var("REVIEW_ROLE").ok()
}

fn wait_for_stdin_to_close() {
    for line in std::io::BufRead::lines(std::io::stdin().lock()) {
        if line.is_err() {
            break;
        }
    }
}

/// Not a test: the body of a child process when `REVIEW_ROLE` is set.
#[test]
fn role() {
    let Some(role) = role_env() else { return };
    let args: Vec<&str> = role.split_whitespace().collect();
    match args.as_slice() {
        ["mix", name, workers, max] => {
            let options = ServerOptions::default()
                .workers(workers.parse().unwrap())
                .max_message(max.parse().unwrap());
            let handle = MixServer::bind_with(name, MixImpl, options)
                .unwrap()
                .spawn()
                .unwrap();
            println!("\nready");
            wait_for_stdin_to_close();
            handle.shutdown().unwrap();
        }
        ["scribble", name, max] => {
            let max: usize = max.parse().unwrap();
            let options = ServerOptions::default().max_message(max);
            let handle = DataServer::bind_with(name, DataImpl, options)
                .unwrap()
                .spawn()
                .unwrap();
            println!("\nready");
            std::thread::spawn(move || scribble(max));
            wait_for_stdin_to_close();
            handle.shutdown().unwrap();
        }
        ["huge-into", name, stack_mib] => {
            let name = name.to_string();
            let stack: usize = stack_mib.parse::<usize>().unwrap() << 20;
            let t = std::thread::Builder::new()
                .stack_size(stack)
                .spawn(move || {
                    let data = DataClient::connect(&name).unwrap();
                    let mut out: Box<[u8; HUGE]> =
                        vec![0u8; HUGE].into_boxed_slice().try_into().unwrap();
                    data.huge_into(7, &mut out).unwrap();
                    assert_eq!(out[1], 8);
                })
                .unwrap();
            t.join().unwrap();
            println!("ok");
        }
        other => panic!("unknown role {other:?}"),
    }
}

/// A hostile server's thread: flips bytes of every slot's response (count, payload, length
/// word) for ever, while clients decode replies straight out of the slot.
fn scribble(capacity: usize) {
    let round = |n: usize, to: usize| n.div_ceil(to) * to;
    let line = round(32 + capacity, 128);
    let response = 512 + line;
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    loop {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let starts: Vec<usize> = maps
            .lines()
            .filter(|l| l.contains("memfd:shmrpc-slot"))
            .filter_map(|l| usize::from_str_radix(l.split('-').next()?, 16).ok())
            .collect();
        for _ in 0..2000 {
            for &start in &starts {
                let base = (start + response) as *mut u8;
                // SAFETY: within the server's own mapping of the slot (the attacker's memory).
                unsafe {
                    match random() % 4 {
                        // The vector's count.
                        0 => base
                            .add(32)
                            .cast::<u32>()
                            .write_volatile(random() as u32 % (capacity as u32 + 64)),
                        // The length word.
                        1 => base
                            .add(12)
                            .cast::<u32>()
                            .write_volatile(random() as u32 % (capacity as u32 + 64)),
                        _ => base
                            .add(32 + (random() as usize % (1 << 20)))
                            .write_volatile(random() as u8),
                    }
                }
            }
            std::thread::yield_now();
        }
    }
}

/// This executable as `role` child; waits for `ready`.
fn start_role(role: &str, env: &[(&str, &str)]) -> Peer {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "role", "--nocapture", "--test-threads=1"])
        .env("REVIEW_ROLE", role)
        .envs(env.iter().copied())
        .stderr(Stdio::null());
    let mut peer = Peer::spawn(&mut command);
    peer.skip_to_line("ready");
    peer
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// A hostile client: requests written by hand into its own slot.

struct Raw {
    raw: RawConnection,
    map: *mut u8,
    seq: u64,
}

impl Raw {
    fn connect(name: &str) -> Raw {
        let raw = raw_connect(name).unwrap();
        // SAFETY: a fresh shared mapping of our own slot.
        let map = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                raw.slot_len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                &raw.memfd,
                0,
            )
        }
        .unwrap()
        .cast::<u8>();
        Raw { raw, map, seq: 0 }
    }

    /// Sends `bytes` for the server's method `tag`, claiming `len` bytes; the status and payload
    /// of the answer, or `None` if none came within `limit`.
    fn call_len(
        &mut self,
        tag: u32,
        len: u32,
        bytes: &[u8],
        limit: Duration,
    ) -> Option<(u32, Vec<u8>)> {
        self.seq += 1;
        let (raw, map, seq) = (&self.raw, self.map, self.seq);
        // SAFETY: offsets within our own mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.add(raw.payload), bytes.len());
            map.add(raw.request + 16).cast::<u32>().write_volatile(tag);
            map.add(raw.request + 20).cast::<u32>().write_volatile(len);
            std::sync::atomic::fence(Ordering::Release);
            map.add(raw.request).cast::<u64>().write_volatile(seq);
        }
        let _ = rustix::net::send(&raw.socket, &kick(0, seq), rustix::net::SendFlags::DONTWAIT);
        let start = Instant::now();
        // SAFETY: as above.
        while unsafe { map.add(raw.response).cast::<u64>().read_volatile() } != seq {
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: as above.
        unsafe {
            let status = map.add(raw.response + 8).cast::<u32>().read_volatile();
            let len = map.add(raw.response + 12).cast::<u32>().read_volatile() as usize;
            let mut out = vec![0u8; len.min(1 << 16)];
            std::ptr::copy_nonoverlapping(map.add(raw.response + 32), out.as_mut_ptr(), out.len());
            Some((status, out))
        }
    }

    fn call(&mut self, tag: u32, bytes: &[u8]) -> Option<(u32, Vec<u8>)> {
        self.call_len(tag, bytes.len() as u32, bytes, Duration::from_secs(60))
    }
}

const MIX: u32 = 1;

// ---------------------------------------------------------------------------------------------
// Promise 1: a hostile client.

/// HELD. Lengths that lie: the server refuses them, and others are served.
#[test]
fn lying_request_lengths_are_refused() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("lie");
    let _server = start_role(&format!("mix {name} 1 65536"), &[]);
    let mut raw = Raw::connect(&name);
    for len in [u32::MAX, 65537, 65536, 65535] {
        let answer = raw.call_len(MIX, len, &[0xFF; 64], Duration::from_secs(5));
        eprintln!("request_len {len}: {answer:?}");
        let (status, text) = answer.expect("an answer");
        assert_eq!(status, 1, "{}", String::from_utf8_lossy(&text));
    }
    // Vec<String>-like huge counts: `mix` with u32::MAX u128s.
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.resize(4096, 0);
    let (status, text) = raw.call(MIX, &bytes).unwrap();
    assert_eq!(status, 1, "{}", String::from_utf8_lossy(&text));
    assert_eq!(MixClient::connect(&name).unwrap().ping().unwrap(), 42);
}

/// HELD (figures). Eight connections sending 16 MiB requests at once to a server of 2 workers:
/// the server's private memory stays within workers x (request copy + result + allocator slack).
#[test]
fn many_max_size_requests_keep_the_servers_memory_bounded() {
    if role_env().is_some() {
        return;
    }
    let max = 16 << 20;
    let name = unique_name("maxsize");
    let server = Peer::start(&[
        "server",
        "data",
        &name,
        &format!("max-message={max}"),
        "workers=2",
    ]);
    let pid = server.pid();
    let base = status_kib(pid, "RssAnon:");
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let name = &name;
            s.spawn(move || {
                let data = DataClient::connect(name).unwrap();
                let bytes = vec![t; max - 64];
                for _ in 0..3 {
                    assert_eq!(data.echo(&bytes).unwrap().len(), max - 64);
                }
            });
        }
    });
    let (hwm, anon, shmem) = (
        status_kib(pid, "VmHWM:"),
        status_kib(pid, "RssAnon:"),
        status_kib(pid, "RssShmem:"),
    );
    eprintln!(
        "8 x 3 calls of 16 MiB, 2 workers: RssAnon {base} -> {anon} KiB, RssShmem {shmem} KiB, VmHWM {hwm} KiB"
    );
    // Per worker: the kept 16 MiB request copy, and what the allocator keeps of a result.
    assert!(
        anon < base + 2 * 3 * 16 * 1024 + 8 * 1024,
        "RssAnon {anon} KiB after"
    );
}

// ---------------------------------------------------------------------------------------------
// Promise 2: a hostile server.

/// HELD if only `Ok` or `Corrupted` come back. A server thread flips the count, the payload and
/// the length word of every response while clients decode 1 MiB replies out of the slot.
#[test]
fn a_reply_rewritten_while_the_client_decodes_it() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("scribble");
    let _server = start_role(&format!("scribble {name} 4194304"), &[]);
    let mut right = 0;
    let mut wrong = 0;
    let mut corrupted = 0;
    let mut other = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let data = DataClient::connect(&name).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    for i in 0..300 {
        let r = if i % 2 == 0 {
            data.fill(1 << 20)
        } else {
            data.fill_into(1 << 20, &mut out).map(|()| out.clone())
        };
        match r {
            Ok(v) if v.len() == 1 << 20 && v.iter().enumerate().all(|(i, &b)| b == i as u8) => {
                right += 1
            }
            Ok(_) => wrong += 1,
            Err(Error::Corrupted { .. }) => corrupted += 1,
            Err(e) => other.push(e.to_string()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let hwm = status_kib(std::process::id(), "VmHWM:");
    eprintln!(
        "300 calls in {:?}: right {right}, wrong {wrong}, corrupted {corrupted}, other {} {:?}; client VmHWM {hwm} KiB",
        start.elapsed(),
        other.len(),
        other.first()
    );
    assert!(other.is_empty(), "{other:?}");
}

/// Was broken: `huge_into` (`Box<[u8; 16 MiB]>` into the caller's box) decodes the array on the
/// stack: the client died of a stack overflow, with an honest server. Arrays now decode in
/// place.
#[test]
fn receiving_a_big_array_into_a_box_overflows_the_clients_stack() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("huge-into");
    let _server = Peer::start(&["server", "data", &name]);
    // `huge` itself, with a 256 KiB stack, works (tests/data.rs).
    for stack in ["8", "64"] {
        let mut client = Command::new(std::env::current_exe().unwrap());
        client
            .args(["--exact", "role", "--nocapture", "--test-threads=1"])
            .env("REVIEW_ROLE", format!("huge-into {name} {stack}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = client.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = stderr
            .lines()
            .find(|l| l.contains("overflow"))
            .unwrap_or("");
        eprintln!(
            "huge_into on a {stack} MiB stack: {:?} {said}",
            output.status
        );
        assert!(
            output.status.success(),
            "{stack} MiB: {:?} {said}",
            output.status
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Promise 3: TooLarge at the edges.

fn too_large<T: std::fmt::Debug>(r: Result<T, Error>) -> (u64, u64, bool) {
    match r {
        Err(Error::TooLarge {
            size,
            limit,
            response,
            ..
        }) => (size, limit, response),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// HELD. max_message 256: exactly 256 bytes cross each way; 257 fail, requests at once at the
/// client, results after the method ran; the server goes on.
#[test]
fn too_large_at_the_edges_of_256_bytes() {
    if role_env().is_some() {
        return;
    }
    let (name, _server) = {
        let name = unique_name("edge");
        let server = Peer::start(&["server", "data", &name, "max-message=256"]);
        (name, server)
    };
    let data = DataClient::connect(&name).unwrap();
    // Bytes: 4 of count, 12 of padding (under 256 bytes), then the bytes.
    assert_eq!(data.echo(&[1; 240]).unwrap().len(), 240);
    let start = Instant::now();
    assert_eq!(too_large(data.echo(&[1; 241])), (257, 256, false));
    assert!(start.elapsed() < Duration::from_millis(20));
    assert_eq!(data.fill(240).unwrap().len(), 240);
    assert_eq!(too_large(data.fill(241)), (257, 256, true));
    // Reply::send: 4 + 7 + 245 = 256 bytes, then one more.
    assert_eq!(data.greet(&"x".repeat(245)).unwrap().len(), 252);
    assert_eq!(too_large(data.greet(&"x".repeat(246))), (257, 256, true));
    // Reply::send_slice of a request exactly at the limit.
    assert_eq!(data.echo_sent(&[2; 240]).unwrap(), vec![2; 240]);
    // Many strings: the result only counts past the limit.
    let words: Vec<String> = (0..100).map(|i| format!("{i:03}")).collect();
    assert_eq!(too_large(data.reverse(words)), (704, 256, false));
    let words: Vec<String> = (0..36).map(|i| format!("{i:02}")).collect();
    assert_eq!(data.reverse(words.clone()).unwrap().len(), 36);
    assert_eq!(data.echo(b"still here").unwrap(), b"still here");
    // A _into call that is too large leaves the server serving too.
    let mut out = Vec::new();
    assert_eq!(too_large(data.fill_into(1000, &mut out)), (1032, 256, true));
    assert_eq!(data.fill(3).unwrap(), [0, 1, 2]);
}

// ---------------------------------------------------------------------------------------------
// Promise 4: interfaces that grow, across restarts of the server.

fn mismatch<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::InterfaceMismatch { .. }))
}

/// Was broken: a client of the new interface, connected to an old server, then the server is
/// upgraded: calls of the new method kept failing with InterfaceMismatch (the dead connection's
/// method map was consulted before anything noticed the server went away). A refused method now
/// looks whether the server is still there.
#[test]
fn an_upgraded_server_is_seen_by_a_client_that_only_calls_the_new_method() {
    if role_env().is_some() {
        return;
    }
    use shmrpc_tests::other_versions::extra_method;
    let name = unique_name("upgrade");
    let mut old = Peer::start(&["server", "work", &name]);
    let client = extra_method::WorkClient::connect(&name).unwrap();
    assert!(mismatch(client.reset()));
    old.close_stdin();
    assert_eq!(old.wait(Duration::from_secs(5)), Some(0));
    let _new = Peer::start(&["server", "work-extra", &name]);
    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(format!("{:?}", client.reset().map_err(|e| kind(&e))));
        std::thread::sleep(Duration::from_millis(50));
    }
    let after_add = client.add(1, 1).map_err(|e| kind(&e));
    let then = client.reset().map_err(|e| kind(&e));
    eprintln!(
        "reset x5 after the upgrade: {results:?}; then add: {after_add:?}; then reset: {then:?}"
    );
    assert!(
        results.iter().any(|r| r.starts_with("Ok")),
        "the new method never reached the new server: {results:?}"
    );
}

/// HELD. Old server -> new server for an old client, and new server -> old server for a new
/// client: calls keep working where they can, and the new method fails cleanly.
#[test]
fn clients_follow_servers_up_and_down() {
    if role_env().is_some() {
        return;
    }
    use shmrpc_tests::other_versions::extra_method;
    let name = unique_name("updown");
    let mut server = Peer::start(&["server", "work-extra", &name]);
    let new = extra_method::WorkClient::connect(&name).unwrap();
    let old = WorkClient::connect(&name).unwrap();
    assert!(new.reset().is_ok());
    assert_eq!(old.add(2, 3).unwrap(), 5 - 1000);
    server.close_stdin();
    assert_eq!(server.wait(Duration::from_secs(5)), Some(0));
    let mut server = Peer::start(&["server", "work", &name]);
    let r = new.reset();
    eprintln!("new client, old server: reset -> {r:?}");
    assert!(mismatch(r) || matches!(new.reset(), Err(Error::InterfaceMismatch { .. })));
    assert_eq!(new.add(40, 2).unwrap(), 42);
    assert_eq!(old.add(2, 3).unwrap(), 5);
    server.close_stdin();
    assert_eq!(server.wait(Duration::from_secs(5)), Some(0));
    let _server = Peer::start(&["server", "work-extra", &name]);
    assert_eq!(old.add(2, 3).unwrap(), 5 - 1000);
}

// ---------------------------------------------------------------------------------------------
// Promise 5: a method that forks.

/// HELD. The child of a `Reply` method tries to send first: it is ended at its first write, and
/// the caller gets the parent's bytes only.
#[test]
fn a_forked_child_never_writes_into_the_slot() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("forksend");
    let _server = start_role(&format!("mix {name} 2 67108864"), &[]);
    let client = MixClient::connect(&name).unwrap();
    for n in [0u64, 10, 5000, 1 << 20] {
        let got = client.fork_send(n).unwrap();
        let status = i32::from_le_bytes(got[..4].try_into().unwrap());
        let exit = libc::WEXITSTATUS(status);
        let ccs = got.iter().filter(|&&b| b == 0xCC).count();
        eprintln!(
            "fork_send({n}): child exit {exit}, {} bytes, {ccs} of the child's",
            got.len()
        );
        assert_eq!(got.len() as u64, n + 4);
        assert_eq!(ccs, 0);
        assert_eq!(exit, 70, "the child was ended by the writer's fork check");
    }
    assert_eq!(client.ping().unwrap(), 42);
}

// ---------------------------------------------------------------------------------------------
// Promise 6: alignment.

fn mix_request(pad: u8, with_padding: bool) -> Vec<u8> {
    let pad_to_16 = |b: &mut Vec<u8>| {
        if with_padding {
            while !b.len().is_multiple_of(16) {
                b.push(pad);
            }
        }
    };
    let mut b = vec![7u8]; // a
    b.extend_from_slice(&2u32.to_le_bytes()); // count of wide
    pad_to_16(&mut b);
    b.extend_from_slice(&1u128.to_le_bytes());
    b.extend_from_slice(&2u128.to_le_bytes());
    b.push(8); // b
    b.extend_from_slice(&1u32.to_le_bytes());
    pad_to_16(&mut b);
    b.extend_from_slice(&3.0f64.to_le_bytes());
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    pad_to_16(&mut b);
    b.extend_from_slice(&4u64.to_le_bytes());
    b
}

/// HELD. Slices of u128/f64/u64 after odd-sized values reach the method aligned; by hand, bytes
/// in the padding are skipped, a request without padding is refused.
#[test]
fn numbers_are_lent_aligned_and_bad_padding_is_harmless() {
    if role_env().is_some() {
        return;
    }
    let name = unique_name("align");
    let _server = start_role(&format!("mix {name} 1 67108864"), &[]);
    let client = MixClient::connect(&name).unwrap();
    for n in [0usize, 1, 3, 1000, 100_000] {
        let wide: Vec<u128> = (0..n as u128).collect();
        let reals = vec![0.5f64; n];
        let longs: Vec<u64> = (0..n as u64).collect();
        let r = client.mix(1, &wide, 2, &reals, 3, &longs).unwrap();
        assert_eq!(r[0], 0b111, "n {n}: {r:?}");
        assert_eq!(r[1], 6);
        assert_eq!(r[2], (n * n.saturating_sub(1) / 2) as u64);
    }
    let mut raw = Raw::connect(&name);
    let (status, payload) = raw.call(MIX, &mix_request(0, true)).unwrap();
    assert_eq!(status, 0);
    let decode = |p: &[u8]| -> Vec<u64> {
        // Count, padding to 16, the numbers.
        p[16..]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    assert_eq!(decode(&payload), [0b111, 24, 3, 3, 4]);
    let (status, payload) = raw.call(MIX, &mix_request(0xEE, true)).unwrap();
    eprintln!("padding of 0xEE: status {status}");
    assert!(status == 1 || decode(&payload) == [0b111, 24, 3, 3, 4]);
    let (status, text) = raw.call(MIX, &mix_request(0, false)).unwrap();
    eprintln!(
        "no padding: status {status} {}",
        String::from_utf8_lossy(&text)
    );
    assert_eq!(status, 1);
}
