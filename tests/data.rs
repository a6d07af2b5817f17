//! Variable-size data between processes: strings, byte buffers, sequences, nested values and big
//! ones; the size limit on both sides; hostile lengths written by hand.

use std::time::{Duration, Instant};

use shmrpc::Error;
use shmrpc_tests::*;

fn data_server(extra: &[&str]) -> (String, Peer) {
    let name = unique_name("data");
    let mut args = vec!["server", "data", &name];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let peer = Peer::start(&args);
    (name, peer)
}

#[test]
fn the_contracts_store_works_between_processes() {
    let name = unique_name("store");
    let _server = Peer::start(&["server", "store", &name]);
    let store = StoreClient::connect(&name).unwrap();
    assert_eq!(store.get("missing").unwrap(), None);
    assert_eq!(store.put("apple", b"red").unwrap(), Ok(()));
    assert_eq!(store.put("avocado", &[0u8; 5000]).unwrap(), Ok(()));
    assert_eq!(store.put("kiwi", b"").unwrap(), Ok(()));
    assert_eq!(store.put("ключ", "значение".as_bytes()).unwrap(), Ok(()));
    assert_eq!(
        store.put("", b"x").unwrap(),
        Err("an empty key".to_owned()),
        "the method's own error arrives inside Ok"
    );
    assert_eq!(store.get("apple").unwrap().as_deref(), Some(&b"red"[..]));
    assert_eq!(store.get("kiwi").unwrap(), Some(vec![]));
    assert_eq!(store.get("avocado").unwrap().unwrap().len(), 5000);
    assert_eq!(
        store.get("ключ").unwrap().as_deref(),
        Some("значение".as_bytes())
    );
    assert_eq!(store.keys("a".into()).unwrap(), ["apple", "avocado"]);
    assert_eq!(store.keys("zzz".into()).unwrap(), Vec::<String>::new());
    assert_eq!(store.sum(&[1.5, 2.5, -1.0]).unwrap(), 3.0);
    assert_eq!(store.sum(&[]).unwrap(), 0.0);
    // A result received into a value the caller keeps: its buffer is reused.
    let mut keys = Vec::with_capacity(16);
    store.keys_into("k".into(), &mut keys).unwrap();
    assert_eq!(keys, ["kiwi"]);
}

#[test]
fn every_kind_of_value_crosses() {
    let (name, _server) = data_server(&[]);
    let data = DataClient::connect(&name).unwrap();
    for len in [0, 1, 7, 4095, 4096, 65536, 1 << 20] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        assert_eq!(data.echo(&bytes).unwrap(), bytes, "echo of {len} bytes");
    }
    assert_eq!(
        data.concat("héllo, ", "wörld".into()).unwrap(),
        "héllo, wörld"
    );
    assert_eq!(data.concat("", String::new()).unwrap(), "");
    let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
    let mut reversed = words.clone();
    reversed.reverse();
    assert_eq!(data.reverse(words).unwrap(), reversed);
    assert_eq!(data.reverse(vec![]).unwrap(), Vec::<String>::new());
    let zipped = data.zip(&[1, 2, 3], vec![10, 20, 30]).unwrap().unwrap();
    assert_eq!(
        zipped.iter().map(|t| (t.client, t.seq)).collect::<Vec<_>>(),
        [(1, 10), (2, 20), (3, 30)]
    );
    assert_eq!(zipped[0].server_pid, _server.pid());
    assert_eq!(
        data.zip(&[1], vec![]).unwrap(),
        Err("1 ids but 0 seqs".to_owned())
    );
    assert_eq!(data.bump(Some(vec![1, 255])).unwrap(), Some(vec![2, 0]));
    assert_eq!(data.bump(None).unwrap(), None);
    let tagged = |seq| Tagged {
        client: 1,
        thread: 2,
        seq,
        server_pid: 3,
        _pad: 0,
    };
    assert_eq!(data.seqs(&[tagged(5), tagged(6)]).unwrap(), 11);
    assert_eq!(data.count(&[true, false, true, true]).unwrap(), 3);
    // `a` at 16 (its count at 0, then padding), 24 bytes; `b`'s count at 40, `b` at 48. Copied
    // into vectors of their own, they would be anywhere.
    assert_eq!(
        data.lent(&[1, 2, 3], &[4]).unwrap(),
        32,
        "a `&[u64]` is lent to the method out of the server's copy, not copied again"
    );
    // Received into a buffer the caller owns and reuses: no allocation once it is large enough.
    let mut out = Vec::with_capacity(1 << 20);
    let at = out.as_ptr();
    for n in [10u64, 1 << 20, 5] {
        data.fill_into(n, &mut out).unwrap();
        assert_eq!(out.len() as u64, n);
        assert_eq!(out.as_ptr(), at, "the caller's buffer is reused");
    }
}

#[test]
fn structs_and_enums_holding_text_and_lists_cross() {
    let (name, _server) = data_server(&[]);
    let data = DataClient::connect(&name).unwrap();
    let entry = |key: &str, n: usize| Entry {
        key: key.into(),
        value: vec![n as u8; n],
        ttl: n as u32,
        tags: (0..n % 4).map(|i| format!("t{i}")).collect(),
        owner: n.is_multiple_of(2).then_some(Tagged {
            client: 1,
            thread: 2,
            seq: n as u64,
            server_pid: 3,
            _pad: 0,
        }),
    };
    let entries: Vec<Entry> = (0..200).map(|n| entry(&format!("k{n}"), n)).collect();
    let doubled = data.entries(entries.clone()).unwrap().unwrap();
    assert_eq!(doubled.len(), 200);
    for (before, after) in entries.iter().zip(&doubled) {
        assert_eq!(after.ttl, before.ttl * 2);
        assert_eq!(
            (&after.key, &after.value, &after.tags, &after.owner),
            (&before.key, &before.value, &before.tags, &before.owner)
        );
    }
    assert_eq!(
        data.entries(vec![entry("", 1)]).unwrap(),
        Err("an empty key".to_owned())
    );
    assert_eq!(
        data.undo(Change::Put(entry("a", 3))).unwrap(),
        Change::Remove { key: "a".into() }
    );
    assert!(
        matches!(data.undo(Change::Remove { key: "b".into() }).unwrap(), Change::Put(e) if e.key == "b")
    );
    assert_eq!(data.undo(Change::Clear).unwrap(), Change::Clear);
    // A variant index that does not exist, written by hand (`undo` is method 15).
    let reply = raw_call(&name, 15, &hex(&[&7u32.to_le_bytes()]));
    assert_eq!(reply, "status=1 a variant of `Change` that does not exist");
}

#[test]
fn a_method_may_write_its_result_into_the_slot_itself() {
    let (name, _server) = data_server(&[]);
    let data = DataClient::connect(&name).unwrap();
    for len in [0, 5, 4097, 1 << 20] {
        let bytes = vec![9u8; len];
        assert_eq!(data.echo_sent(&bytes).unwrap(), bytes);
    }
    let mut out = Vec::with_capacity(1 << 20);
    data.echo_sent_into(b"reused", &mut out).unwrap();
    assert_eq!(out, b"reused");
    assert_eq!(data.greet("ann").unwrap(), "hello, ann");
    assert_eq!(data.tag(77).unwrap().seq, 77);
    // A client built from the trait without `Reply` sees the same interface.
    let plain = plain_data::DataClient::connect_with(
        &name,
        shmrpc::ClientOptions::default().exact_interface(),
    )
    .unwrap();
    assert_eq!(plain.echo_sent(vec![1, 2]).unwrap(), [1, 2]);
    assert_eq!(plain.greet("bo".into()).unwrap(), "hello, bo");
}

#[test]
fn a_16_mib_value_crosses_between_threads_with_256_kib_stacks() {
    // The server's threads get 256 KiB stacks, as does the calling thread.
    let name = unique_name("huge");
    let _server = Peer::start_with(&["server", "data", &name], &[("RUST_MIN_STACK", "262144")]);
    let client = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let data = DataClient::connect(&name).unwrap();
            let huge = data.huge(7).unwrap();
            assert_eq!(huge.len(), HUGE);
            assert!(
                huge.iter()
                    .enumerate()
                    .all(|(i, &b)| b == 7u8.wrapping_add(i as u8))
            );
            let expected: u64 = huge.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(data.weigh(huge).unwrap(), expected);
            let bytes = vec![3u8; HUGE];
            assert_eq!(data.echo(&bytes).unwrap().len(), HUGE);
        })
        .unwrap();
    client
        .join()
        .expect("the client thread did not overflow its stack");
}

#[test]
fn a_message_over_the_limit_is_too_large_and_the_server_goes_on() {
    let (name, _server) = data_server(&["max-message=65536"]);
    let data = DataClient::connect(&name).unwrap();
    // A request over the limit fails at the client: nothing is sent.
    let start = Instant::now();
    match data.echo(&[0; 70_000]) {
        Err(e @ Error::TooLarge { .. }) => {
            let Error::TooLarge {
                size,
                limit,
                response,
                ..
            } = &e
            else {
                unreachable!()
            };
            // 4 bytes of count, 28 of padding (to a cache line of the slot, the message starting
            // 32 bytes into one: 256 bytes or more), the bytes.
            assert_eq!((*size, *limit, *response), (70_032, 65536, false));
            let message = e.to_string();
            assert!(message.contains("nothing was sent"), "{message}");
            assert!(message.contains("max_message"), "{message}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_millis(50));
    // Exactly at it crosses.
    assert_eq!(data.echo(&[1; 65504]).unwrap().len(), 65504);
    assert!(matches!(
        data.echo(&[1; 65505]),
        Err(Error::TooLarge { size: 65537, .. })
    ));
    // A result over it: the method ran, the caller is told so.
    match data.fill(100_000) {
        Err(e @ Error::TooLarge { response: true, .. }) => {
            let message = e.to_string();
            assert!(message.contains("100032 bytes"), "{message}");
            assert!(message.contains("the method ran"), "{message}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // And the server goes on serving.
    assert_eq!(data.echo(b"still here").unwrap(), b"still here");
}

#[test]
fn the_limit_is_checked_when_binding() {
    let name = unique_name("limit");
    for bad in [0, 255, (1 << 30) + 1] {
        let options = shmrpc::ServerOptions::default().max_message(bad);
        match DataServer::bind_with(&name, DataImpl, options) {
            Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("max_message"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// Little-endian bytes, as hex.
fn hex(parts: &[&[u8]]) -> String {
    parts.concat().iter().map(|b| format!("{b:02x}")).collect()
}

fn raw_call(name: &str, tag: u32, bytes: &str) -> String {
    let mut peer = Peer::spawn(std::process::Command::new(peer_program()).args([
        "raw-call",
        name,
        &tag.to_string(),
        bytes,
    ]));
    peer.line()
}

#[test]
fn hostile_lengths_and_bad_text_are_refused_not_trusted() {
    let (name, _server) = data_server(&[]);
    let u32le = |n: u32| n.to_le_bytes();
    // `concat` (method 1): text that is not UTF-8.
    let reply = raw_call(&name, 1, &hex(&[&u32le(2), &[0xC3, 0x28], &u32le(0)]));
    assert_eq!(reply, "status=1 text that is not valid UTF-8");
    // `echo` (method 0): a length past the end of the message.
    let reply = raw_call(&name, 0, &hex(&[&u32le(1000), &[1, 2, 3, 4]]));
    assert_eq!(
        reply,
        "status=1 a count that runs past the end of the message"
    );
    // `seqs` (method 8): 2^32 - 1 structs claimed in a 100-byte message. Believed, that would
    // be an allocation of 96 GiB.
    let reply = raw_call(&name, 8, &hex(&[&u32le(u32::MAX), &[0; 96]]));
    assert_eq!(
        reply,
        "status=1 a count that runs past the end of the message"
    );
    // `reverse` (method 2): as many strings as fit empty, each with a length running past.
    let reply = raw_call(&name, 2, &hex(&[&u32le(2), &u32le(1), b"a", &u32le(9)]));
    assert_eq!(
        reply,
        "status=1 a length that runs past the end of the message"
    );
    // `fill` (method 5): bytes after the last argument.
    let reply = raw_call(&name, 5, &hex(&[&8u64.to_le_bytes(), &[0]]));
    assert_eq!(reply, "status=1 bytes after the last value of the message");
    // `bump` (method 4): an Option tag of 2.
    let reply = raw_call(&name, 4, &hex(&[&[2]]));
    assert_eq!(reply, "status=1 an Option tag other than None or Some");
    // `count` (method 9): a bool of 2.
    let reply = raw_call(&name, 9, &hex(&[&u32le(2), &[1, 2]]));
    assert_eq!(reply, "status=1 a value out of range for its type");
    // The server is unharmed: a well-formed call by hand, and an honest client.
    let reply = raw_call(&name, 1, &hex(&[&u32le(2), b"ab", &u32le(1), b"c"]));
    assert_eq!(reply, format!("status=0 {}", "\u{3}\0\0\0abc"));
    let data = DataClient::connect(&name).unwrap();
    assert_eq!(data.concat("x", "y".into()).unwrap(), "xy");
}
