//! What works on every platform shmrpc builds for, run on each: on Linux with `cargo test`, on
//! Windows under Wine (`cargo test --target x86_64-pc-windows-gnu -p shmrpc`).
//!
//! A service defined with the macro, its types crossing through the remote seam with an
//! in-process transport (the data layer, interfaces, errors and panics, exactly as over shared
//! memory), and the local transport: a round trip where it is built, a clear error where it is
//! not (Windows, for now).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shmrpc::remote::{Failure, RemoteClient, RemoteServer, Service, Transport};
use shmrpc::{Error, ServerOptions, ShmData, Wire, shm_service};

#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Stats {
    pub mean: f64,
    pub max: f64,
    pub count: u32,
    pub _pad: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(u32)]
pub enum MathError {
    DivideByZero = 1,
    Overflow = 2,
}

#[derive(Clone, Debug, PartialEq, Wire)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
}

#[shm_service]
pub trait Everything {
    fn add(&self, a: i64, b: i64) -> i64;
    fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    fn stats(&self, samples: [f64; 32], n: u32) -> Stats;
    fn find(&self, key: u64) -> Option<u64>;
    fn upper(&self, text: &str) -> String;
    fn entries(&self, keys: Vec<String>) -> Vec<Entry>;
    fn sum(&self, values: &[f64]) -> f64;
    fn boom(&self, what: String);
}

struct Impl;

impl Everything for Impl {
    fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
    fn div(&self, a: i64, b: i64) -> Result<i64, MathError> {
        match b {
            0 => Err(MathError::DivideByZero),
            _ => a.checked_div(b).ok_or(MathError::Overflow),
        }
    }
    fn stats(&self, samples: [f64; 32], n: u32) -> Stats {
        let s = &samples[..n as usize];
        Stats {
            mean: s.iter().sum::<f64>() / f64::from(n),
            max: s.iter().copied().fold(f64::MIN, f64::max),
            count: n,
            _pad: 0,
        }
    }
    fn find(&self, key: u64) -> Option<u64> {
        (key == 42).then_some(7)
    }
    fn upper(&self, text: &str) -> String {
        text.to_uppercase()
    }
    fn entries(&self, keys: Vec<String>) -> Vec<Entry> {
        keys.into_iter()
            .map(|key| Entry {
                value: key.bytes().rev().collect(),
                key,
            })
            .collect()
    }
    fn sum(&self, values: &[f64]) -> f64 {
        values.iter().sum()
    }
    fn boom(&self, what: String) {
        panic!("{what}")
    }
}

/// The seam without a network: each request goes straight to the service, on this thread.
struct InProcess(Arc<Service>);

impl Transport for InProcess {
    fn round_trip(&self, request: Vec<u8>, _deadline: Instant) -> Result<Vec<u8>, Failure> {
        Ok(self.0.handle(&request, "in-process"))
    }
}

fn in_process() -> EverythingClient {
    let service =
        <EverythingServer<Impl> as RemoteServer>::remote_service(Impl, &ServerOptions::default())
            .unwrap();
    EverythingClient::with_transport(
        "in-process",
        Arc::new(InProcess(Arc::new(service))),
        Duration::from_secs(5),
    )
}

#[test]
fn every_kind_of_value_errors_and_panics_cross_the_seam() {
    let c = in_process();
    assert_eq!(c.add(40, 2).unwrap(), 42);
    assert_eq!(c.div(7, 2).unwrap(), Ok(3));
    assert_eq!(c.div(7, 0).unwrap(), Err(MathError::DivideByZero));
    assert_eq!(c.div(i64::MIN, -1).unwrap(), Err(MathError::Overflow));
    let mut samples = [0.0; 32];
    samples[..3].copy_from_slice(&[1.0, 5.0, 3.0]);
    assert_eq!(
        c.stats(samples, 3).unwrap(),
        Stats {
            mean: 3.0,
            max: 5.0,
            count: 3,
            _pad: 0
        }
    );
    assert_eq!(c.find(42).unwrap(), Some(7));
    assert_eq!(c.find(1).unwrap(), None);
    assert_eq!(c.upper("grüße").unwrap(), "GRÜSSE");
    assert_eq!(
        c.entries(vec!["ab".into(), String::new()]).unwrap(),
        vec![
            Entry {
                key: "ab".into(),
                value: b"ba".to_vec()
            },
            Entry {
                key: String::new(),
                value: vec![]
            }
        ]
    );
    let big: Vec<f64> = (0..100_000).map(f64::from).collect();
    assert_eq!(c.sum(&big).unwrap(), 4_999_950_000.0);
    match c.boom("on purpose".into()) {
        Err(Error::HandlerPanicked { message, .. }) => assert_eq!(message, "on purpose"),
        other => panic!("{other:?}"),
    }
    // The service goes on after the panic.
    assert_eq!(c.add(1, 1).unwrap(), 2);
}

/// The local transport, where it is built: a round trip between threads of this process.
#[cfg(target_os = "linux")]
#[test]
fn the_local_transport_serves_a_call() {
    let name = format!("platforms-{}", std::process::id());
    let server = EverythingServer::bind(&name, Impl)
        .unwrap()
        .spawn()
        .unwrap();
    let client = EverythingClient::connect(&name).unwrap();
    assert_eq!(client.upper("shm").unwrap(), "SHM");
    server.shutdown().unwrap();
}

/// Where the local transport is not built yet, `bind` and `connect` say so, and nothing else
/// breaks.
#[cfg(windows)]
#[test]
fn the_local_transport_says_it_is_not_built_yet() {
    let name = format!("platforms-{}", std::process::id());
    for err in [
        EverythingServer::bind(&name, Impl).map(drop).unwrap_err(),
        EverythingClient::connect(&name).map(drop).unwrap_err(),
    ] {
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(
            err.to_string().contains("not built for Windows yet"),
            "{err}"
        );
    }
}
