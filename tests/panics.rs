//! Behaviour 8: a panicking method yields `HandlerPanicked` to its caller; the server keeps
//! serving.

use shmrpc_tests::*;

#[test]
fn a_panic_is_reported_and_the_server_goes_on() {
    let name = unique_name("panic");
    let _server = Peer::start(&["server", "work", &name]);
    let client = WorkClient::connect(&name).unwrap();
    for code in [1, 2, 3] {
        match client.boom(code) {
            Err(shmrpc::Error::HandlerPanicked {
                method, message, ..
            }) => {
                assert_eq!(method, "boom");
                assert_eq!(message, format!("boom {code}"));
            }
            other => panic!("expected HandlerPanicked, got {other:?}"),
        }
        assert_eq!(client.add(code.into(), 1).unwrap(), i64::from(code) + 1);
    }
    let message = client.boom(7).unwrap_err().to_string();
    assert!(
        message.contains("boom 7") && message.contains("panicked"),
        "{message}"
    );
}

#[test]
fn a_panic_message_longer_than_the_slot_arrives_cut_at_a_character_boundary() {
    let name = unique_name("panic-long");
    // Messages up to 1 KiB: the panic message is 80 KB.
    let _server = Peer::start(&["server", "work", &name, "max-message=1024"]);
    let client = WorkClient::connect(&name).unwrap();
    let full = format!("x{}", "é".repeat(40_000));
    match client.boom(u32::MAX) {
        Err(shmrpc::Error::HandlerPanicked { message, .. }) => {
            assert!(
                message.len() > 1000 && message.len() <= 1024 && full.starts_with(&message),
                "{} bytes: {:?}...",
                message.len(),
                &message[..message.len().min(16)]
            );
        }
        other => panic!("expected HandlerPanicked, got {other:?}"),
    }
    assert_eq!(client.add(1, 1).unwrap(), 2);
}
