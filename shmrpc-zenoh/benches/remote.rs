//! `cargo bench -p shmrpc-zenoh`: one trait called three ways in the same run, echoing 64 B and
//! 64 KiB: shmrpc on this machine (shared memory), shmrpc over zenoh (loopback TCP), and a bare
//! zenoh query echo, the floor of the latter (a queryable that replies with the query's payload,
//! no shmrpc at all). Each server is a separate process; rounds are interleaved so that every
//! row sees the same machine. Prints the table and writes `benches/results/remote.md` and
//! `remote.svg` at the workspace's root.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shmrpc::{ClientOptions, shm_service};
use shmrpc_benches::{Cpus, Histogram, Transport, measure, pin};
use shmrpc_zenoh::{ConnectRemote, ServeRemote};
use zenoh::{Session, Wait};

#[shm_service]
pub trait Bounce {
    fn bounce(&self, data: &[u8]) -> Vec<u8>;
}

struct BounceImpl;

impl Bounce for BounceImpl {
    fn bounce(&self, data: &[u8]) -> Vec<u8> {
        std::hint::black_box(data).to_vec()
    }
}

const ROLE: &str = "SHMRPC_ZENOH_BENCH_ROLE";
const ROUNDS: usize = 6;
const SLICE: Duration = Duration::from_millis(300);
const PAYLOADS: [(usize, &str); 2] = [(64, "64 B"), (64 << 10, "64 KiB")];

/// A server process, ended when dropped.
struct Peer(Child);

impl Peer {
    fn start(role: String) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Peer(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(role: &str) -> ! {
    pin(Cpus::Peer);
    let args: Vec<&str> = role.split(' ').collect();
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    match args[..] {
        ["local", name] => {
            let handle = BounceServer::bind(name, BounceImpl)
                .unwrap()
                .spawn()
                .unwrap();
            keep.push(Box::new(handle));
        }
        ["remote", endpoint, key] => {
            let session = shmrpc_zenoh::open(&[], &[endpoint]).unwrap();
            keep.push(Box::new(
                BounceServer::serve_remote(&session, key, BounceImpl).unwrap(),
            ));
            keep.push(Box::new(session));
        }
        ["bare", endpoint, key] => {
            let session = shmrpc_zenoh::open(&[], &[endpoint]).unwrap();
            let queryable = session
                .declare_queryable(key)
                .callback(|query| {
                    let payload = query.payload().map(|p| p.to_bytes().into_owned());
                    let _ = query
                        .reply(query.key_expr().clone(), payload.unwrap_or_default())
                        .wait();
                })
                .wait()
                .unwrap();
            keep.push(Box::new(queryable));
            keep.push(Box::new(session));
        }
        _ => panic!("unknown role {role:?}"),
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_line(&mut String::new());
    std::process::exit(0);
}

struct Local {
    client: BounceClient,
    data: Vec<u8>,
    _peer: Peer,
}

struct Remote {
    client: BounceClient,
    data: Vec<u8>,
    _peer: Peer,
}

struct Bare {
    session: Session,
    key: String,
    data: Vec<u8>,
    _peer: Peer,
}

impl Transport for Local {
    fn round_trip(&mut self) {
        let reply = self.client.bounce(&self.data).unwrap();
        assert_eq!(reply.len(), self.data.len());
    }
    fn peer_pid(&self) -> Option<u32> {
        None
    }
}

impl Transport for Remote {
    fn round_trip(&mut self) {
        let reply = self.client.bounce(&self.data).unwrap();
        assert_eq!(reply.len(), self.data.len());
    }
    fn peer_pid(&self) -> Option<u32> {
        None
    }
}

impl Transport for Bare {
    fn round_trip(&mut self) {
        let replies = self
            .session
            .get(&self.key)
            .payload(self.data.clone())
            .wait()
            .unwrap();
        let reply = replies.recv().unwrap();
        let bytes = reply.result().unwrap().payload().to_bytes();
        assert_eq!(bytes.len(), self.data.len());
    }
    fn peer_pid(&self) -> Option<u32> {
        None
    }
}

/// Connects once the server's liveliness token reached this session.
fn connect(session: &Session, key: &str) -> BounceClient {
    for _ in 0..1000 {
        if let Ok(client) = BounceClient::connect_remote_with(
            session,
            key,
            ClientOptions::default().timeout(Duration::from_secs(10)),
        ) {
            return client;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no remote server at {key}");
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

const ROWS: [&str; 3] = [
    "shmrpc, this machine (shared memory)",
    "shmrpc over zenoh",
    "bare zenoh query echo",
];

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        serve(&role);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once, quickly.
    let quick = !std::env::args().any(|a| a == "--bench");
    pin(Cpus::Measuring);
    let endpoint = format!(
        "tcp/127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let session = shmrpc_zenoh::open(&[&endpoint], &[]).unwrap();
    let pid = std::process::id();
    let mut table: Vec<(&str, &str, Histogram)> = Vec::new();
    for (size, label) in PAYLOADS {
        let data = vec![7u8; size];
        let name = format!("bench-remote-{pid}-{size}");
        let key = format!("shmrpc-bench/{pid}/{size}");
        let bare_key = format!("shmrpc-bench/{pid}/{size}/bare");
        let local_peer = Peer::start(format!("local {name}"));
        let mut transports: Vec<Box<dyn Transport>> = vec![
            Box::new(Local {
                client: BounceClient::connect(&name).unwrap(),
                data: data.clone(),
                _peer: local_peer,
            }),
            {
                let peer = Peer::start(format!("remote {endpoint} {key}"));
                Box::new(Remote {
                    client: connect(&session, &key),
                    data: data.clone(),
                    _peer: peer,
                })
            },
            {
                let peer = Peer::start(format!("bare {endpoint} {bare_key}"));
                // The bare server has no token: wait until it answers.
                while session
                    .get(&bare_key)
                    .payload(vec![0u8])
                    .timeout(Duration::from_millis(200))
                    .wait()
                    .unwrap()
                    .recv()
                    .map_or(true, |r| r.result().is_err())
                {}
                Box::new(Bare {
                    session: session.clone(),
                    key: bare_key,
                    data: data.clone(),
                    _peer: peer,
                })
            },
        ];
        let mut hists = vec![Histogram::default(); transports.len()];
        let (rounds, slice) = if quick {
            (1, Duration::from_millis(20))
        } else {
            (ROUNDS, SLICE)
        };
        for _ in 0..rounds {
            for (t, h) in transports.iter_mut().zip(&mut hists) {
                h.merge(&measure(t.as_mut(), slice));
            }
        }
        for (row, h) in ROWS.into_iter().zip(hists) {
            table.push((label, row, h));
        }
    }
    let mut md = format!(
        "# shmrpc across machines, over zenoh (loopback TCP)\n\n\
         Measured by `cargo bench -p shmrpc-zenoh`: one echo method (`fn bounce(&self, data: &[u8]) -> Vec<u8>`), \
         {ROUNDS} interleaved rounds of {SLICE:?} per row; every server a separate process.\n\n\
         | payload each way | what | p50 | p99 | p50 vs bare zenoh |\n|---|---|---|---|---|\n"
    );
    for (label, _, _) in table.iter().step_by(3) {
        let rows: Vec<_> = table.iter().filter(|(l, ..)| l == label).collect();
        let bare = rows[2].2.percentile(0.5).as_nanos() as f64;
        for (l, row, h) in rows {
            let p50 = h.percentile(0.5);
            let line = format!(
                "| {l} | {row} | {} | {} | {:.2}× |",
                fmt(p50),
                fmt(h.percentile(0.99)),
                p50.as_nanos() as f64 / bare
            );
            println!("{line}");
            let _ = writeln!(md, "{line}");
        }
    }
    if quick {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("remote.md"), md).unwrap();
    std::fs::write(dir.join("remote.svg"), plot(&table)).unwrap();
    println!("wrote {}/remote.md and remote.svg", dir.display());
}

/// Bars of p50 per payload and row, log scale.
fn plot(table: &[(&str, &str, Histogram)]) -> String {
    let colors = ["#1565c0", "#ef6c00", "#9e9e9e"];
    let (w, h, left, top, bottom) = (700.0, 380.0, 70.0, 40.0, 90.0);
    let (lo, hi) = (100f64.log10(), 10_000_000f64.log10());
    let y = |ns: f64| top + (h - top - bottom) * (1.0 - (ns.max(100.0).log10() - lo) / (hi - lo));
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='22' font-size='15' text-anchor='middle'>One call, p50 (log scale; lower is better)</text>\n",
        w / 2.0
    );
    for (i, label) in ["100 ns", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms"]
        .iter()
        .enumerate()
    {
        let yy = y(100.0 * 10f64.powi(i as i32));
        let _ = writeln!(
            svg,
            "<line x1='{left}' x2='{}' y1='{yy}' y2='{yy}' stroke='#e0e0e0'/>\n<text x='{}' y='{}' text-anchor='end'>{label}</text>",
            w - 20.0,
            left - 6.0,
            yy + 4.0
        );
    }
    let group_w = (w - left - 20.0) / PAYLOADS.len() as f64;
    let bar_w = (group_w - 40.0) / 3.0;
    for (g, (_, label)) in PAYLOADS.iter().enumerate() {
        let x0 = left + g as f64 * group_w + 20.0;
        let _ = writeln!(
            svg,
            "<text x='{}' y='{}' text-anchor='middle' font-size='13'>{label} each way</text>",
            x0 + (group_w - 40.0) / 2.0,
            h - bottom + 20.0
        );
        for (s, (_, row, hist)) in table.iter().filter(|(l, ..)| l == label).enumerate() {
            let ns = hist.percentile(0.5).as_nanos() as f64;
            let (x, yy) = (x0 + s as f64 * bar_w, y(ns));
            let _ = writeln!(
                svg,
                "<rect x='{x:.1}' y='{yy:.1}' width='{:.1}' height='{:.1}' fill='{}'><title>{row}: {}</title></rect>",
                bar_w - 4.0,
                h - bottom - yy,
                colors[s],
                fmt(hist.percentile(0.5))
            );
        }
    }
    for (s, row) in ROWS.iter().enumerate() {
        let yy = h - 35.0 + (s as f64 - 1.0) * 0.0;
        let x = left + s as f64 * 200.0;
        let _ = writeln!(
            svg,
            "<rect x='{x}' y='{}' width='12' height='12' fill='{}'/><text x='{}' y='{}'>{row}</text>",
            yy - 10.0,
            colors[s],
            x + 16.0,
            yy
        );
    }
    svg.push_str("</svg>\n");
    svg
}
