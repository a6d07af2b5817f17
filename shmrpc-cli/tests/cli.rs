//! The `shmrpc` command against real servers: this test process serves, the command runs as a
//! process of its own, as a user would run it.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use shmrpc::{ServerHandle, ShmData, Wire, shm_service};

#[derive(Clone, Copy, Debug, PartialEq, ShmData)]
#[repr(C)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub id: u32,
    pub flag: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ShmData)]
#[repr(u16)]
pub enum Color {
    Red = 1,
    Green = 7,
}

#[derive(Clone, Debug, PartialEq, Wire)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub tags: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Wire)]
pub enum Event {
    Started,
    Moved { x: i32, y: i32 },
    Named(String),
}

/// Every kind of type that can cross, each method returning what it was given (or derived from
/// it), so that a round trip through the command checks both directions.
#[shm_service]
pub trait Everything {
    #[allow(clippy::too_many_arguments)] // one of each integer type
    fn ints(&self, a: u8, b: u16, c: u32, d: u64, e: i8, f: i16, g: i32, h: i64) -> i64;
    fn wide(&self, a: u128, b: i128) -> u128;
    fn floats(&self, a: f32, b: f64) -> f64;
    fn flags(&self, yes: bool, letter: char) -> char;
    fn array(&self, a: [u16; 3]) -> [u16; 3];
    fn point(&self, p: Point) -> Point;
    fn color(&self, c: Color) -> Result<Color, Color>;
    fn maybe(&self, x: Option<u64>) -> Option<u64>;
    fn nothing(&self);
    fn text(&self, borrowed: &str, owned: String) -> String;
    fn bytes(&self, data: &[u8]) -> Vec<u8>;
    fn numbers(&self, values: &[f64]) -> Vec<f64>;
    fn words(&self, words: Vec<String>) -> Vec<String>;
    fn points(&self, points: Vec<Point>) -> Vec<Point>;
    fn entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>, String>;
    fn event(&self, e: Event) -> Event;
    fn boxed(&self, seed: u8) -> Box<[u8; 4]>;
    fn optional(&self, v: Option<Vec<u8>>) -> Option<Vec<u8>>;
    fn boom(&self);
}

#[derive(Default)]
struct Impl {
    calls: AtomicU64,
}

impl Everything for Impl {
    #[allow(clippy::too_many_arguments)]
    fn ints(&self, a: u8, b: u16, c: u32, d: u64, e: i8, f: i16, g: i32, h: i64) -> i64 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        i64::from(a)
            + i64::from(b)
            + i64::from(c)
            + d as i64
            + i64::from(e)
            + i64::from(f)
            + i64::from(g)
            + h
    }
    fn wide(&self, a: u128, b: i128) -> u128 {
        a.wrapping_add(b as u128)
    }
    fn floats(&self, a: f32, b: f64) -> f64 {
        f64::from(a) * b
    }
    fn flags(&self, yes: bool, letter: char) -> char {
        if yes { letter } else { '-' }
    }
    fn array(&self, a: [u16; 3]) -> [u16; 3] {
        [a[2], a[1], a[0]]
    }
    fn point(&self, p: Point) -> Point {
        Point {
            x: p.y,
            y: p.x,
            ..p
        }
    }
    fn color(&self, c: Color) -> Result<Color, Color> {
        if c == Color::Red { Ok(c) } else { Err(c) }
    }
    fn maybe(&self, x: Option<u64>) -> Option<u64> {
        x.map(|x| x + 1)
    }
    fn nothing(&self) {}
    fn text(&self, borrowed: &str, owned: String) -> String {
        format!("{borrowed}{owned}")
    }
    fn bytes(&self, data: &[u8]) -> Vec<u8> {
        data.iter().rev().copied().collect()
    }
    fn numbers(&self, values: &[f64]) -> Vec<f64> {
        values.iter().map(|v| v * 2.0).collect()
    }
    fn words(&self, mut words: Vec<String>) -> Vec<String> {
        words.reverse();
        words
    }
    fn points(&self, points: Vec<Point>) -> Vec<Point> {
        points
    }
    fn entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>, String> {
        if entries.is_empty() {
            Err("no entries".into())
        } else {
            Ok(entries)
        }
    }
    fn event(&self, e: Event) -> Event {
        e
    }
    fn boxed(&self, seed: u8) -> Box<[u8; 4]> {
        Box::new([seed, seed + 1, seed + 2, seed + 3])
    }
    fn optional(&self, v: Option<Vec<u8>>) -> Option<Vec<u8>> {
        v
    }
    fn boom(&self) {
        panic!("boom on purpose");
    }
}

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cli-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn serve(name: &str) -> ServerHandle {
    EverythingServer::bind(name, Impl::default())
        .unwrap()
        .spawn()
        .unwrap()
}

fn shmrpc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmrpc"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Calls `method` with JSON `args`; the result as JSON.
#[track_caller]
fn call(name: &str, method: &str, args: &[&str]) -> Value {
    let mut all = vec!["call", name, method];
    all.extend_from_slice(args);
    let out = shmrpc(&all);
    assert!(
        out.status.success(),
        "shmrpc {all:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

#[test]
fn every_type_that_can_cross_can_be_called_with_json() {
    let name = unique("types");
    let _server = serve(&name);
    let c = |method, args: &[&str]| call(&name, method, args);
    assert_eq!(
        c("ints", &["1", "2", "3", "4", "-5", "-6", "-7", "-8"]),
        json!(-16)
    );
    // 128-bit values past 2^53 travel as strings.
    assert_eq!(
        c(
            "wide",
            &[r#""340282366920938463463374607431768211455""#, "1"]
        ),
        json!(0)
    );
    assert_eq!(
        c(
            "wide",
            &[r#""340282366920938463463374607431768211455""#, "0"]
        ),
        json!("340282366920938463463374607431768211455")
    );
    assert_eq!(c("wide", &["5", "-2"]), json!(3));
    assert_eq!(c("floats", &["1.5", "2"]), json!(3.0));
    assert_eq!(c("flags", &["true", r#""é""#]), json!("é"));
    assert_eq!(c("array", &["[1, 2, 3]"]), json!([3, 2, 1]));
    assert_eq!(
        c("point", &[r#"{"x": 1.5, "y": -2, "id": 7, "flag": 1}"#]),
        json!({"x": -2.0, "y": 1.5, "id": 7, "flag": 1})
    );
    assert_eq!(c("color", &[r#""Red""#]), json!({"Ok": "Red"}));
    assert_eq!(c("color", &["7"]), json!({"Err": "Green"}));
    assert_eq!(c("maybe", &["41"]), json!(42));
    assert_eq!(c("maybe", &["null"]), json!(null));
    assert_eq!(c("nothing", &[]), json!(null));
    // A string argument may be given bare.
    assert_eq!(c("text", &["bare", r#""quoted""#]), json!("barequoted"));
    assert_eq!(c("bytes", &["[1, 2, 255]"]), json!([255, 2, 1]));
    // Numbers are aligned in the message: 3 of them (16-aligned) and 40 (64-aligned).
    assert_eq!(c("numbers", &["[0.5, 1, 2]"]), json!([1.0, 2.0, 4.0]));
    let forty: Vec<f64> = (0..40).map(f64::from).collect();
    let doubled: Vec<f64> = forty.iter().map(|v| v * 2.0).collect();
    assert_eq!(
        c("numbers", &[&serde_json::to_string(&forty).unwrap()]),
        json!(doubled)
    );
    assert_eq!(c("words", &[r#"["a", "bb", ""]"#]), json!(["", "bb", "a"]));
    let points =
        r#"[{"x": 1.5, "y": 2.0, "id": 3, "flag": 0}, {"x": 4.0, "y": -5.5, "id": 6, "flag": 1}]"#;
    assert_eq!(
        c("points", &[points]),
        serde_json::from_str::<Value>(points).unwrap()
    );
    let entries =
        r#"[{"key": "k", "value": [1, 2], "tags": ["x"]}, {"key": "", "value": [], "tags": null}]"#;
    assert_eq!(
        c("entries", &[entries]),
        json!({"Ok": serde_json::from_str::<Value>(entries).unwrap()})
    );
    assert_eq!(c("entries", &["[]"]), json!({"Err": "no entries"}));
    assert_eq!(c("event", &[r#""Started""#]), json!("Started"));
    assert_eq!(
        c("event", &[r#"{"Moved": {"x": -1, "y": 2}}"#]),
        json!({"Moved": {"x": -1, "y": 2}})
    );
    assert_eq!(c("event", &[r#"{"Named": "n"}"#]), json!({"Named": ["n"]}));
    assert_eq!(c("boxed", &["10"]), json!([10, 11, 12, 13]));
    assert_eq!(c("optional", &["[9]"]), json!([9]));
    assert_eq!(c("optional", &["null"]), json!(null));
    // --json wraps the result.
    let out = shmrpc(&["--json", "call", &name, "maybe", "1"]);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        json!({"result": 2})
    );
}

#[test]
fn inspect_shows_the_interface_as_rust() {
    let name = unique("inspect");
    let _server = serve(&name);
    let out = shmrpc(&["inspect", &name]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "trait Everything {",
        &format!("served by pid {}", std::process::id()),
        "    fn ints(&self, a: u8, b: u16, c: u32, d: u64, e: i8, f: i16, g: i32, h: i64) -> i64;",
        // `&str` and `String` cross alike: the interface does not tell them apart.
        "    fn text(&self, borrowed: String, owned: String) -> String;",
        "    fn nothing(&self);",
        "    fn entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>, String>;",
        "struct Point { x: f64, y: f64, id: u32, flag: u32 } // 24 bytes",
        "#[repr(u16)] enum Color { Red = 1, Green = 7 }",
        "struct Entry { key: String, value: Vec<u8>, tags: Option<Vec<String>> }",
        "enum Event { Started, Moved { x: i32, y: i32 }, Named(String) }",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    let out = shmrpc(&["inspect", &name, "--json"]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["trait"], "Everything");
    assert_eq!(doc["pid"], std::process::id());
    assert_eq!(doc["methods"][1]["name"], "wide");
    assert_eq!(doc["methods"][1]["args"], json!(["u128", "i128"]));
}

#[test]
fn list_and_top_show_live_services_and_their_calls() {
    let _listing = listing();
    let name = unique("live");
    let _server = serve(&name);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Stops the caller however this scope ends: a failed assertion fails the test, it does
        // not leave the scope waiting for the caller for ever.
        let _stop = StopOnDrop(&stop);
        s.spawn(|| {
            let client = EverythingClient::connect(&name).unwrap();
            while !stop.load(Ordering::Relaxed) {
                client.ints(1, 1, 1, 1, 1, 1, 1, 1).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        std::thread::sleep(Duration::from_millis(100));

        let out = shmrpc(&["list"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let line = stdout(&out)
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{name} not listed:\n{}", stdout(&out)));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[1], std::process::id().to_string(), "{line}");
        assert_eq!(cells[3], "Everything", "{line}");
        assert_eq!(cells[4], "19", "{line}");
        assert_eq!(cells[5], "1", "{line}: one client connected");
        assert!(cells[6].parse::<u64>().unwrap() > 100, "{line}: calls/s");

        let out = shmrpc(&["list", "--json"]);
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let me = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name.as_str())
            .unwrap();
        assert_eq!(me["trait"], "Everything");
        assert!(me["calls_per_second"].as_u64().unwrap() > 100, "{me}");

        let out = shmrpc(&["top", &name, "--json", "--count", "2", "--interval", "200"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let reports: Vec<Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(reports.len(), 2);
        let ints = &reports[1]["services"][0]["methods"][0];
        assert_eq!(ints["method"], "ints");
        assert!(ints["calls_per_second"].as_u64().unwrap() > 100, "{ints}");
        let (p50, p99) = (
            ints["p50_us"].as_f64().unwrap(),
            ints["p99_us"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p50 <= p99, "{ints}");
        assert_eq!(ints["errors"], 0);

        let out = shmrpc(&["top", &name, "--count", "1", "--interval", "100"]);
        let text = stdout(&out);
        assert!(
            text.contains("METHOD") && text.contains("CALLS/S") && text.contains("  ints"),
            "{text}"
        );
    });
    // Failed calls count as errors.
    let _ = shmrpc(&["call", &name, "boom"]);
    let out = shmrpc(&["top", &name, "--json", "--count", "1", "--interval", "10"]);
    let report: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    let boom = report["services"][0]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "boom")
        .unwrap()
        .clone();
    assert_eq!(boom["calls_total"], 1, "{boom}");
}

/// Held by the tests that run `shmrpc list`, which connects to every service of this user: one
/// test's listing would count as a connection in another's.
fn listing() -> std::sync::MutexGuard<'static, ()> {
    static LISTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LISTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Run as a process of its own by the test below (this test binary again): serves `name`,
/// forks with a raw fork system call (no atfork handler runs, as in a program calling clone(2)
/// itself: the child keeps the listening socket, and with it the name), prints `ready <child
/// pid>`, then waits to be killed. The child pauses for ever.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "a helper process of a_name_held_by_a_dead_servers_forked_child_is_a_row_saying_so"]
fn forking_server_process() {
    let Ok(name) = std::env::var("SHMRPC_CLI_FORKING_SERVER") else {
        return;
    };
    let _server = serve(&name);
    // A fork (clone with only the exit signal: the same on every architecture), its variadic
    // arguments as wide as the system call reads them.
    const ZERO: libc::c_long = 0;
    // SAFETY: the child only closes its output (so that it holds no reader's pipe open) and
    // calls pause(2), all async-signal-safe.
    let child = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_long::from(libc::SIGCHLD),
            ZERO,
            ZERO,
            ZERO,
            ZERO,
        )
    };
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            libc::close(1);
            libc::close(2);
        }
        loop {
            // SAFETY: as above.
            unsafe { libc::pause() };
        }
    }
    assert!(child > 0, "fork: {}", std::io::Error::last_os_error());
    // On a line of its own: the test harness may have written the test's name before it.
    println!("\nready {child}");
    std::thread::sleep(Duration::from_secs(600));
}

/// Kills a process by pid when dropped (when the test is done with it, or fails before).
#[cfg(target_os = "linux")]
struct KillOnDrop(String);

#[cfg(target_os = "linux")]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-9", &self.0]).status();
    }
}

/// A name held only by a dead server's forked child is listed as a row saying so, not left out
/// (the server is not running, but nobody can bind the name) and not a failed listing.
#[cfg(target_os = "linux")]
#[test]
fn a_name_held_by_a_dead_servers_forked_child_is_a_row_saying_so() {
    use std::io::BufRead;
    let _listing = listing();
    let name = unique("forked");
    let mut server = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "forking_server_process",
            "--nocapture",
        ])
        .env("SHMRPC_CLI_FORKING_SERVER", &name)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let child = loop {
        let line = lines
            .next()
            .expect("the server ended before it forked")
            .unwrap();
        if let Some(pid) = line.strip_prefix("ready ") {
            let pid: u32 = pid.trim().parse().unwrap();
            break KillOnDrop(pid.to_string());
        }
    };
    server.kill().unwrap();
    server.wait().unwrap();

    let out = shmrpc(&["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let row = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not listed: {doc}"))
        .clone();
    let error = row["error"].as_str().unwrap_or_else(|| panic!("{row}"));
    assert!(error.contains("forked"), "{error}");
    let out = shmrpc(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = stdout(&out);
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not listed:\n{listed}"));
    assert!(line.contains("forked"), "{line}");
    drop(child);
}

/// A service that ends while `list` reads it (the window between its two readings) is left out,
/// and the others are listed: once, a service of another test ending at that moment made the
/// whole listing fail.
#[test]
fn a_service_ending_while_listed_is_left_out_and_the_others_are_listed() {
    let _listing = listing();
    let staying = unique("staying");
    let _staying = serve(&staying);
    for round in 0..5 {
        let leaving = unique("leaving");
        let server = serve(&leaving);
        let list = Command::new(env!("CARGO_BIN_EXE_shmrpc"))
            .args(["list", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Within the listing's quarter of a second, most rounds; before it connects or after
        // it read, in the others. Every one must list the staying service and succeed.
        std::thread::sleep(Duration::from_millis(40 * round + 20));
        drop(server);
        let out = list.wait_with_output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let names: Vec<&str> = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&staying.as_str()),
            "round {round}: {names:?}"
        );
        let gone = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == leaving.as_str());
        // Read before it ended: listed in full; never as an error.
        assert!(
            gone.is_none_or(|s| s.get("error").is_none()),
            "round {round}: {gone:?}"
        );
    }
}

#[test]
fn failures_are_told_in_plain_words_with_documented_exit_codes() {
    let name = unique("errors");
    let _server = serve(&name);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["call", "cli-nobody-here", "x"],
            3,
            "no server is serving `cli-nobody-here`",
        ),
        (&["inspect", "cli-nobody-here"], 3, "no server is serving"),
        (
            &["call", &name, "nope"],
            3,
            "has no method `nope` (it has: ints, wide",
        ),
        (
            &["call", &name, "maybe"],
            2,
            "`maybe` takes 1 argument(s), 0 given: fn maybe(&self, x: Option<u64>)",
        ),
        (
            &["call", &name, "maybe", "{"],
            2,
            "argument 1 of `maybe` (a `Option<u64>`) is not JSON",
        ),
        (
            &[
                "call", &name, "ints", "1", "2", "3", "4", "5", "6", "7", "true",
            ],
            2,
            "expected a `i64`, got true",
        ),
        (
            &[
                "call", &name, "ints", "256", "2", "3", "4", "5", "6", "7", "8",
            ],
            2,
            "256 does not fit a `u8`",
        ),
        (
            &["call", &name, "point", r#"{"x": 1}"#],
            2,
            "field `y` of `Point` is missing",
        ),
        (
            &["call", &name, "color", r#""Blue""#],
            2,
            "`Color` has no variant `Blue` (it has: Red, Green)",
        ),
        (&["call", &name, "boom"], 1, "panicked: boom on purpose"),
        (
            &["call", "bad name!", "x"],
            2,
            "invalid service name \"bad name!\"",
        ),
        (&["frobnicate"], 2, "unrecognized subcommand"),
    ];
    for (args, code, message) in cases {
        let out = shmrpc(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(*code), "shmrpc {args:?}: {err}");
        assert!(err.contains(message), "shmrpc {args:?}: {err}");
    }
    // With --json, the error is also a document on standard output.
    let out = shmrpc(&["--json", "call", "cli-nobody-here", "x"]);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["error"]["kind"], "ServerNotRunning");
}
