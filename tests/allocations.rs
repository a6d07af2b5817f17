//! No allocation larger than the message: a server refusing hostile lengths allocates nothing
//! near what they claim. The server runs in this process, under an allocator that records the
//! largest allocation; the hostile requests come from another process, written by hand.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use shmrpc_tests::*;

struct Recording;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
static RECORDING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if RECORDING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if RECORDING.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

fn hex(parts: &[&[u8]]) -> String {
    parts.concat().iter().map(|b| format!("{b:02x}")).collect()
}

fn raw_call(name: &str, tag: u32, bytes: &str) -> String {
    let mut peer =
        Peer::spawn(Command::new(peer_program()).args(["raw-call", name, &tag.to_string(), bytes]));
    peer.line()
}

#[test]
fn refusing_hostile_counts_allocates_nothing_near_what_they_claim() {
    let name = unique_name("alloc");
    let handle = DataServer::bind(&name, DataImpl).unwrap().spawn().unwrap();
    let max = u32::MAX.to_le_bytes();
    // (method, request): each claims gigabytes in a few bytes.
    let hostile: [(u32, Vec<u8>); 5] = [
        // `echo`: 4 GiB of bytes.
        (0, [&max[..], &[0; 60]].concat()),
        // `reverse`: 4 billion strings, each claiming 4 GiB.
        (2, [&max[..], &max, &max, &[0; 52]].concat()),
        // `seqs`: 4 billion 24-byte structs (96 GiB).
        (8, [&max[..], &[0; 96]].concat()),
        // `zip`: 4 billion u32 then u64.
        (3, [&max[..], &max, &[0; 8]].concat()),
        // `entries`: 4 billion entries, whose first claims a 4 GiB key.
        (14, [&max[..], &max, &[0; 40]].concat()),
    ];
    LARGEST.store(0, Ordering::Relaxed);
    RECORDING.store(true, Ordering::Relaxed);
    for (tag, request) in &hostile {
        let reply = raw_call(&name, *tag, &hex(&[request]));
        assert!(reply.starts_with("status=1 "), "method {tag}: {reply}");
    }
    RECORDING.store(false, Ordering::Relaxed);
    let largest = LARGEST.load(Ordering::Relaxed);
    // What this process allocated meanwhile, server and test together: a connection's
    // bookkeeping and a control message buffer (64 KiB), nothing near a claimed length.
    assert!(
        largest <= 64 << 10,
        "the largest allocation while refusing was {largest} bytes"
    );
    handle.shutdown().unwrap();
}
