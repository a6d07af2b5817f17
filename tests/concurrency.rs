//! Behaviour 2: calls from many threads and processes at once are all served, and each caller
//! gets the answer to its own request.

use std::time::Duration;

use shmrpc_tests::*;

#[test]
fn eight_processes_of_two_threads_each_get_their_own_answers() {
    let name = unique_name("crowd");
    let _server = Peer::start(&["server", "work", &name]);
    let mut clients: Vec<Peer> = (0..8)
        .map(|id| {
            Peer::spawn(std::process::Command::new(peer_program()).args([
                "echo",
                &name,
                &id.to_string(),
                "2",
                "2000",
            ]))
        })
        .collect();
    for (id, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.line(), "ok 4000", "client process {id}");
        assert_eq!(client.wait(Duration::from_secs(10)), Some(0));
    }
    let client = WorkClient::connect(&name).unwrap();
    assert_eq!(client.served().unwrap(), 8 * 4000);
}

#[test]
fn one_client_shared_by_many_threads() {
    let name = unique_name("threads");
    let handle = WorkServer::bind(&name, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let client = WorkClient::connect(&name).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let client = &client;
            s.spawn(move || {
                for seq in 0..1000u64 {
                    let r = client.echo(99, t, seq).unwrap();
                    assert_eq!((r.client, r.thread, r.seq), (99, t, seq));
                }
            });
        }
    });
    assert_eq!(client.served().unwrap(), 8000);
    handle.shutdown().unwrap();
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn clients_are_send_and_sync() {
    assert_send_sync::<WorkClient>();
    assert_send_sync::<TypesClient>();
}

/// The client lock hands itself from the process at work to a sleeping one every few
/// milliseconds, so processes that call in a tight loop all get turns. Counted, not timed: with
/// hand-offs every 2 ms two processes make about half the calls each; without them one process
/// may make nearly all (measured: 7% for the other one).
#[test]
fn processes_calling_in_a_loop_all_get_turns() {
    use std::io::Write;
    let name = unique_name("share");
    let _server = Peer::start(&["server", "work", &name]);
    let mut clients: Vec<Peer> = (0..2)
        .map(|_| Peer::start(&["share", &name, "1000"]))
        .collect();
    for client in &mut clients {
        writeln!(client.child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let calls: Vec<u64> = clients
        .iter_mut()
        .map(|c| {
            let line = c.line();
            line.strip_prefix("calls=")
                .unwrap_or_else(|| panic!("client said {line:?}"))
                .parse()
                .unwrap()
        })
        .collect();
    let total: u64 = calls.iter().sum();
    assert!(total > 0);
    for (i, n) in calls.iter().enumerate() {
        assert!(
            *n * 5 >= total,
            "client {i} made {n} of {total} calls: {calls:?}"
        );
    }
}
