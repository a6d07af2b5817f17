//! `cargo bench -p shmrpc-benches` (add `--features peers` for iceoryx2).
//!
//! One run measures, for 8 B, 1 KiB and 64 KiB each way: the two floors (spinning and futex
//! ping-pong through a shared page), a Unix socket and a pipe ping-pong, shmrpc with adaptive,
//! spin-only and park-only waiting, and with `peers` iceoryx2's request-response; then shmrpc
//! with 1, 2 and 4 client processes; then the connections pass: what `connect` costs, a call
//! with 1,000 idle clients connected against one with none, and sporadic calls (1 ms apart)
//! against a Unix socket's. Every peer is a separate process. Criterion prints its
//! estimates; then a table pass measures every transport again in interleaved rounds (so that
//! all see the same machine) and gives p50 and p99 per call and the ratios, and
//! `benches/results/` receives the same table in Markdown and a latency plot (SVG).

use std::fmt::Write as _;
use std::time::Duration;

use criterion::Criterion;
use shmrpc::WaitStrategy;
use shmrpc_benches::*;

struct Row {
    payload: Payload,
    transport: &'static str,
    hist: Histogram,
}

type Starter = Box<dyn FnOnce() -> Box<dyn Transport>>;

fn transports(payload: Payload) -> Vec<(&'static str, Starter)> {
    #[allow(unused_mut)] // pushed to with the `peers` feature
    let mut list: Vec<(&'static str, Starter)> = vec![
        (
            "spin floor",
            Box::new(move || Box::new(Floor::start(payload, false, false))),
        ),
        (
            "spin floor, one line",
            Box::new(move || Box::new(Floor::start(payload, false, true))),
        ),
        (
            "futex floor",
            Box::new(move || Box::new(Floor::start(payload, true, false))),
        ),
        (
            "shmrpc adaptive",
            Box::new(move || Box::new(Shmrpc::start(payload, WaitStrategy::Adaptive))),
        ),
        (
            "shmrpc spin-only",
            Box::new(move || Box::new(Shmrpc::start(payload, WaitStrategy::SpinOnly))),
        ),
        (
            "shmrpc park-only",
            Box::new(move || Box::new(Shmrpc::start(payload, WaitStrategy::ParkOnly))),
        ),
        (
            "shmrpc allocating",
            Box::new(move || Box::new(Shmrpc::allocating(payload))),
        ),
        (
            "unix socket",
            Box::new(move || Box::new(Stream::unix_socket(payload))),
        ),
        ("pipe", Box::new(move || Box::new(Stream::pipe(payload)))),
    ];
    #[cfg(feature = "peers")]
    list.push((
        "iceoryx2 busy-poll",
        Box::new(move || shmrpc_benches::iceoryx::start(payload)),
    ));
    list
}

/// Rounds of the table pass: every transport of a payload is measured in each round, in turn, so
/// that all of them see the same machine (on a shared VM the cores' placement drifts over
/// seconds).
const ROUNDS: usize = 8;
const SLICE: Duration = Duration::from_millis(60);

fn main() {
    play_role_if_any();
    pin(Cpus::Measuring);
    if let Ok(spec) = std::env::var("SHMRPC_BENCH_QUICK") {
        quick(&spec);
        return;
    }
    let filtered = std::env::args().skip(1).any(|a| !a.starts_with('-'));
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
        .configure_from_args();
    for payload in Payload::ALL {
        let mut group = c.benchmark_group(format!("round trip {}", payload.label()));
        for (name, start) in transports(payload) {
            let mut transport = start();
            group.bench_function(name, |b| {
                b.iter(|| transport.round_trip());
            });
        }
        group.finish();
    }
    c.final_summary();
    if filtered {
        return; // a criterion filter was given: no table
    }
    println!("\nTable pass: {ROUNDS} interleaved rounds of {SLICE:?} per transport...");
    let mut rows = Vec::new();
    for payload in Payload::ALL {
        let mut running: Vec<(&'static str, Box<dyn Transport>, Histogram)> = transports(payload)
            .into_iter()
            .map(|(name, start)| (name, start(), Histogram::default()))
            .collect();
        interleave(&mut running);
        rows.extend(running.into_iter().map(|(transport, _, hist)| Row {
            payload,
            transport,
            hist,
        }));
    }
    let connections = connections_pass();
    report(&rows, &clients_pass(), &connections);
}

/// What connecting costs, whether 1,000 idle connections slow a call down, and sporadic calls
/// (1 ms apart: each side sleeps between calls) against a Unix socket's.
struct Connections {
    connect: Histogram,
    alone: Histogram,
    crowded: Histogram,
    sporadic: Vec<(&'static str, Histogram)>,
}

fn connections_pass() -> Connections {
    const ROUNDS: usize = 4;
    const IDLE: usize = 1000;
    let mut crowd = Crowd::start();
    let mut connect = Histogram::default();
    let (mut alone, mut crowded) = (Histogram::default(), Histogram::default());
    for _ in 0..ROUNDS {
        connect.merge(&crowd.connects(250));
        crowd.idle(0);
        alone.merge(&measure(&mut crowd.client(), SLICE));
        crowd.idle(IDLE);
        crowded.merge(&measure(&mut crowd.client(), SLICE));
    }
    crowd.idle(0);
    let mut sporadic: Vec<(&'static str, Box<dyn Transport>, Histogram)> = vec![
        (
            "shmrpc adaptive",
            Box::new(Shmrpc::start(Payload::B8, WaitStrategy::Adaptive)),
            Histogram::default(),
        ),
        (
            "unix socket",
            Box::new(Stream::unix_socket(Payload::B8)),
            Histogram::default(),
        ),
    ];
    for _ in 0..ROUNDS {
        for (_, transport, hist) in &mut sporadic {
            hist.merge(&measure_sporadic(
                transport.as_mut(),
                100,
                Duration::from_millis(1),
            ));
        }
    }
    Connections {
        connect,
        alone,
        crowded,
        sporadic: sporadic.into_iter().map(|(n, _, h)| (n, h)).collect(),
    }
}

/// 1, 2 and 4 client processes calling one server, 8 B, adaptive: interleaved rounds, so that
/// each count sees the same machine (the host's load here swings calls/s 3x within a minute).
fn clients_pass() -> Vec<(usize, f64, Histogram)> {
    const CLIENT_ROUNDS: usize = 8;
    let mut many: Vec<(usize, f64, Histogram)> = [1, 2, 4]
        .into_iter()
        .map(|n| (n, 0.0, Histogram::default()))
        .collect();
    for _ in 0..CLIENT_ROUNDS {
        for (n, rate, hist) in &mut many {
            let (r, h) = many_clients(
                *n,
                Payload::B8,
                WaitStrategy::Adaptive,
                Duration::from_millis(250),
            );
            *rate += r / CLIENT_ROUNDS as f64;
            hist.merge(&h);
        }
    }
    many
}

/// Measures every transport in each of `ROUNDS` rounds, in turn. Only the one measured runs:
/// the other processes are frozen, since several of them spin for ever and would take the cores.
fn interleave(running: &mut [(&'static str, Box<dyn Transport>, Histogram)]) {
    for (_, transport, _) in running.iter() {
        set_running(transport.as_ref(), false);
    }
    for _ in 0..ROUNDS {
        for (_, transport, hist) in running.iter_mut() {
            set_running(transport.as_ref(), true);
            hist.merge(&measure(transport.as_mut(), SLICE));
            set_running(transport.as_ref(), false);
        }
    }
    for (_, transport, _) in running.iter() {
        set_running(transport.as_ref(), true);
    }
}

/// `SHMRPC_BENCH_QUICK=8B[:name,name...]`: only the table pass, for one payload and the
/// transports whose names contain one of the given words; prints p50 and p99 and writes nothing.
/// `SHMRPC_BENCH_QUICK=clients`: only the many-clients pass; `=connections`: only the
/// connections pass (connect, 1,000 idle clients, sporadic calls).
/// For trying a change to the protocol in seconds rather than minutes.
fn quick(spec: &str) {
    if spec == "connections" {
        let c = connections_pass();
        print!("{}", connections_table(&c));
        return;
    }
    if spec == "clients" {
        for (n, rate, hist) in clients_pass() {
            println!(
                "{n} clients: {:.2} M calls/s, p50 {}, p99 {}",
                rate / 1e6,
                fmt(hist.percentile(0.5)),
                fmt(hist.percentile(0.99))
            );
        }
        return;
    }
    let (payload, names) = spec.split_once(':').unwrap_or((spec, ""));
    let payload = Payload::ALL
        .into_iter()
        .find(|p| p.label().replace(' ', "").eq_ignore_ascii_case(payload))
        .unwrap_or_else(|| {
            panic!("SHMRPC_BENCH_QUICK: no payload `{payload}` (8B, 1KiB, 64KiB, 1MiB)")
        });
    let wanted = |name: &str| names.is_empty() || names.split(',').any(|w| name.contains(w));
    let mut running: Vec<(&'static str, Box<dyn Transport>, Histogram)> = transports(payload)
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, start)| (name, start(), Histogram::default()))
        .collect();
    interleave(&mut running);
    let floor = running
        .iter()
        .find(|(name, ..)| *name == "spin floor")
        .map(|(.., h)| h.percentile(0.5).as_nanos() as f64);
    for (name, _, hist) in &running {
        let p50 = hist.percentile(0.5);
        let ratio = floor.map_or(String::new(), |f| {
            format!("  {:.2}× spin floor", p50.as_nanos() as f64 / f)
        });
        println!(
            "{:<22} p50 {:>9}  p99 {:>9}{ratio}",
            name,
            fmt(p50),
            fmt(hist.percentile(0.99))
        );
    }
}

fn p50(rows: &[Row], payload: Payload, transport: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.payload == payload && r.transport == transport)
        .map(|r| r.hist.percentile(0.5).as_nanos() as f64)
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // Not `available_parallelism`: this process is pinned to one CPU.
    let cores = online_cpus();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} × {cpu}, Linux {}", kernel.trim())
}

fn connections_table(c: &Connections) -> String {
    let mut md = String::new();
    let ratio = |a: &Histogram, b: &Histogram| {
        a.percentile(0.5).as_nanos() as f64 / b.percentile(0.5).as_nanos() as f64
    };
    let _ = writeln!(md, "\nConnections (8 B, adaptive):\n");
    let _ = writeln!(md, "| measure | p50 | p99 | ratio |");
    let _ = writeln!(md, "|---|---|---|---|");
    let _ = writeln!(
        md,
        "| `connect` (socket, handshake, checks, slot mapping) | {} | {} | |",
        fmt(c.connect.percentile(0.5)),
        fmt(c.connect.percentile(0.99))
    );
    let _ = writeln!(
        md,
        "| a call, no other client connected | {} | {} | |",
        fmt(c.alone.percentile(0.5)),
        fmt(c.alone.percentile(0.99))
    );
    let _ = writeln!(
        md,
        "| a call, 1,000 idle clients connected | {} | {} | {:.2}× alone |",
        fmt(c.crowded.percentile(0.5)),
        fmt(c.crowded.percentile(0.99)),
        ratio(&c.crowded, &c.alone)
    );
    let socket = c
        .sporadic
        .iter()
        .find(|(n, _)| *n == "unix socket")
        .map(|(_, h)| h);
    for (name, h) in &c.sporadic {
        let vs = socket.map_or(String::new(), |s| {
            format!("{:.2}× unix socket", ratio(h, s))
        });
        let _ = writeln!(
            md,
            "| sporadic calls, 1 ms apart: {name} | {} | {} | {vs} |",
            fmt(h.percentile(0.5)),
            fmt(h.percentile(0.99))
        );
    }
    md
}

fn report(rows: &[Row], many: &[(usize, f64, Histogram)], connections: &Connections) {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Machine: {}. Command: `cargo bench -p shmrpc-benches`.\n",
        machine()
    );
    let _ = writeln!(
        md,
        "| payload | transport | p50 | p99 | p50 vs spin floor | vs spin floor, one line | vs futex floor |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in rows {
        let p = r.hist.percentile(0.5).as_nanos() as f64;
        let ratio = |floor: &str| {
            p50(rows, r.payload, floor).map_or("".into(), |f| format!("{:.2}×", p / f))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.payload.label(),
            r.transport,
            fmt(r.hist.percentile(0.5)),
            fmt(r.hist.percentile(0.99)),
            ratio("spin floor"),
            ratio("spin floor, one line"),
            ratio("futex floor")
        );
    }
    let _ = writeln!(md, "\nshmrpc (adaptive) is faster than, at p50:\n");
    let _ = writeln!(md, "| payload | unix socket | pipe | iceoryx2 busy-poll |");
    let _ = writeln!(md, "|---|---|---|---|");
    for payload in Payload::ALL {
        let ours = p50(rows, payload, "shmrpc adaptive").unwrap_or(f64::NAN);
        let vs = |t: &str| {
            p50(rows, payload, t).map_or("not measured".into(), |p| format!("{:.1}×", p / ours))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            payload.label(),
            vs("unix socket"),
            vs("pipe"),
            vs("iceoryx2 busy-poll")
        );
    }
    let _ = writeln!(
        md,
        "\nshmrpc (adaptive), 8 B, several client processes calling one server:\n"
    );
    let _ = writeln!(md, "| clients | calls/s (all) | vs 1 client | p50 | p99 |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    let one = many.first().map_or(1.0, |m| m.1);
    for (n, rate, hist) in many {
        let _ = writeln!(
            md,
            "| {n} | {:.0} | {:.0}% | {} | {} |",
            rate,
            rate / one * 100.0,
            fmt(hist.percentile(0.5)),
            fmt(hist.percentile(0.99))
        );
    }
    md.push_str(&connections_table(connections));
    println!("\n{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("latest.md"), &md).unwrap();
    std::fs::write(dir.join("latency.svg"), plot(rows)).unwrap();
    println!("wrote {}/latest.md and latency.svg", dir.display());
}

/// Grouped bars of p50 latency per payload, log scale.
fn plot(rows: &[Row]) -> String {
    let series: Vec<(&str, &str)> = vec![
        ("spin floor, one line", "#cfcfcf"),
        ("spin floor", "#9e9e9e"),
        ("shmrpc adaptive", "#1565c0"),
        ("shmrpc allocating", "#90caf9"),
        ("shmrpc park-only", "#64b5f6"),
        ("futex floor", "#616161"),
        ("iceoryx2 busy-poll", "#2e7d32"),
        ("unix socket", "#e65100"),
        ("pipe", "#ffb74d"),
    ];
    let series: Vec<_> = series
        .into_iter()
        .filter(|(s, _)| rows.iter().any(|r| r.transport == *s))
        .collect();
    let (w, h, left, top, bottom) = (900.0, 440.0, 70.0, 40.0, 80.0);
    let (lo, hi) = (100f64.log10(), 1_000_000f64.log10());
    let y = |ns: f64| top + (h - top - bottom) * (1.0 - (ns.max(100.0).log10() - lo) / (hi - lo));
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='22' font-size='15' text-anchor='middle'>Round trip between two processes, p50 (log scale; lower is better)</text>\n",
        w / 2.0
    );
    for (i, label) in ["100 ns", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms"]
        .iter()
        .enumerate()
    {
        let yy = y(100.0 * 10f64.powi(i as i32));
        let _ = writeln!(
            svg,
            "<line x1='{left}' x2='{}' y1='{yy}' y2='{yy}' stroke='#e0e0e0'/>",
            w - 20.0
        );
        let _ = writeln!(
            svg,
            "<text x='{}' y='{}' text-anchor='end'>{label}</text>",
            left - 6.0,
            yy + 4.0
        );
    }
    let group_w = (w - left - 20.0) / Payload::ALL.len() as f64;
    let bar_w = (group_w - 30.0) / series.len() as f64;
    for (g, payload) in Payload::ALL.into_iter().enumerate() {
        let x0 = left + g as f64 * group_w + 15.0;
        let _ = writeln!(
            svg,
            "<text x='{}' y='{}' text-anchor='middle' font-size='13'>{} each way</text>",
            x0 + (group_w - 30.0) / 2.0,
            h - bottom + 20.0,
            payload.label()
        );
        for (s, (name, color)) in series.iter().enumerate() {
            if let Some(ns) = p50(rows, payload, name) {
                let (x, yy) = (x0 + s as f64 * bar_w, y(ns));
                let _ = writeln!(
                    svg,
                    "<rect x='{x:.1}' y='{yy:.1}' width='{:.1}' height='{:.1}' fill='{color}'><title>{name}: {}</title></rect>",
                    bar_w - 2.0,
                    h - bottom - yy,
                    fmt(Duration::from_nanos(ns as u64))
                );
            }
        }
    }
    for (s, (name, color)) in series.iter().enumerate() {
        let (row, col) = (s / 4, s % 4);
        let x = left + col as f64 * ((w - left) / 4.0);
        let y = h - 40.0 + row as f64 * 18.0;
        let _ = writeln!(
            svg,
            "<rect x='{x:.1}' y='{}' width='10' height='10' fill='{color}'/>",
            y - 9.0
        );
        let _ = writeln!(svg, "<text x='{:.1}' y='{y}'>{name}</text>", x + 14.0);
    }
    svg.push_str("</svg>\n");
    svg
}
