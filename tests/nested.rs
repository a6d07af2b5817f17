//! A call made on a thread while another call of that thread is under way (here from a tracing
//! subscriber, called as the outer call records its sequence number, just before it publishes
//! its request) is served: the outer call holds the thread's call state, so the inner one gets
//! a state of its own. Small results and large ones (returned by two different paths) alike.

use std::cell::Cell;
use std::sync::{Mutex, OnceLock};

use shmrpc_tests::*;
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The client the subscriber calls with, and the thread it calls from (the servers' threads
/// record fields too).
static INNER: OnceLock<(WorkClient, std::thread::ThreadId)> = OnceLock::new();
/// What the inner calls returned.
static ANSWERS: Mutex<Vec<i64>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while an outer call is under way on this thread.
    static OUTER: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread makes an inner call: its own records make none.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Whether a record holds the call's sequence number (recorded inside the call, not at its end).
struct HasSeq(bool);

impl tracing::field::Visit for HasSeq {
    fn record_debug(&mut self, field: &tracing::field::Field, _: &dyn std::fmt::Debug) {
        self.0 |= field.name() == "seq";
    }
}

/// Runs `outer` as an outer call.
fn as_outer<R>(call: impl FnOnce() -> R) -> R {
    OUTER.set(true);
    let result = call();
    OUTER.set(false);
    result
}

/// Makes a call each time a span records a field, outside the inner calls themselves.
struct CallingLayer;

impl<S: tracing::Subscriber> Layer<S> for CallingLayer {
    fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {}

    fn on_record(&self, _: &Id, record: &Record<'_>, _: Context<'_, S>) {
        let Some((client, thread)) = INNER.get() else {
            return;
        };
        let mut seq = HasSeq(false);
        record.record(&mut seq);
        if *thread != std::thread::current().id() || !seq.0 || !OUTER.get() {
            return;
        }
        if INSIDE.replace(true) {
            return;
        }
        let answer = client.add(20, 22).expect("the inner call");
        ANSWERS.lock().unwrap().push(answer);
        INSIDE.set(false);
    }
}

#[test]
fn a_call_made_during_another_on_the_same_thread_is_served() {
    let _watchdog = watchdog(std::time::Duration::from_secs(120));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CallingLayer))
        .unwrap();
    let (inner, outer) = (unique_name("nested-inner"), unique_name("nested-outer"));
    let inner_server = WorkServer::bind(&inner, WorkImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let outer_server = TypesServer::bind(&outer, TypesImpl::default())
        .unwrap()
        .spawn()
        .unwrap();
    let me = std::thread::current().id();
    INNER
        .set((WorkClient::connect(&inner).unwrap(), me))
        .ok()
        .unwrap();
    let client = TypesClient::connect(&outer).unwrap();
    for round in 0..3u8 {
        // A small result, then a large one.
        assert_eq!(
            as_outer(|| client.u64s(u64::from(round))).unwrap(),
            !u64::from(round)
        );
        let bytes = as_outer(|| client.bytes([round; 4096])).unwrap();
        assert!(bytes.iter().all(|&b| b == !round), "{round}");
        // And the thread's own calls on the inner service, with no call under way.
        assert_eq!(INNER.get().unwrap().0.add(1, 2).unwrap(), 3);
    }
    // One inner call per outer call, each made while the outer one held the thread's state.
    assert_eq!(*ANSWERS.lock().unwrap(), [42; 6]);
    outer_server.shutdown().unwrap();
    inner_server.shutdown().unwrap();
}
