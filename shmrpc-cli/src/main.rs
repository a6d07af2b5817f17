//! `shmrpc`: the shmrpc services of this machine, from a shell.
//!
//! ```text
//! shmrpc list                      services this user can reach, with their server and load
//! shmrpc inspect NAME              a service's interface, as Rust
//! shmrpc call NAME METHOD ARGS...  one call, arguments and result as JSON
//! shmrpc top [NAME]                calls/s, p50, p99 and errors per method, live
//! ```
//!
//! `--json` makes every subcommand print JSON. Exit codes: see [`EXIT_CODES`].

mod json;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use shmrpc::inspect::{self, Service, Stats, Type};
use shmrpc::{ClientOptions, Error};

const EXIT_CODES: &str = "Exit codes:
  0  done
  1  the call failed: the method panicked, the server refused the request, it timed out, or the
     server died during it
  2  bad usage: unknown subcommand or option, arguments that do not match the method
  3  no such service (no live server under the name) or no such method
  4  the server does not admit this user, or runs as a user this client does not trust
  5  anything else (an OS error)";

/// The shmrpc services of this machine: list them, read their interfaces, call their methods
/// with JSON, watch their calls live.
#[derive(Parser)]
#[command(name = "shmrpc", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON (one document; `top`: one per refresh, a line each).
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for a server, in milliseconds.
    #[arg(long, global = true, default_value_t = 5000, value_name = "MS")]
    timeout: u64,
}

#[derive(Subcommand)]
enum Command {
    /// The services this user can reach: name, server pid and user, trait, methods,
    /// connections, calls/s (measured over a quarter of a second).
    List,
    /// A service's interface, as Rust: its trait and the types it uses.
    Inspect {
        /// The service name.
        name: String,
    },
    /// Calls a method: each argument is a JSON value (a string argument may also be given
    /// bare); prints the result as JSON.
    Call {
        /// The service name.
        name: String,
        /// The method.
        method: String,
        /// The arguments, in order, as JSON: `2`, `-1.5`, `"text"`, `[1, 2]`, `{"field": 1}`,
        /// `null`.
        #[arg(allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// Calls/s, p50, p99 and errors per method, refreshed live.
    Top {
        /// Only this service (default: every one this user can reach).
        name: Option<String>,
        /// Time between refreshes, in milliseconds.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        interval: u64,
        /// Stop after this many refreshes (default: until interrupted).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
}

/// A failure, with its exit code.
struct Failure {
    code: u8,
    kind: &'static str,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let (code, kind) = match &e {
            Error::ServerNotRunning { .. } => (3, "ServerNotRunning"),
            Error::InterfaceMismatch { .. } => (3, "InterfaceMismatch"),
            Error::InvalidName { .. } => (2, "InvalidName"),
            Error::PermissionDenied { .. } => (4, "PermissionDenied"),
            Error::Timeout { .. } => (1, "Timeout"),
            Error::ServerDied { .. } => (1, "ServerDied"),
            Error::BadRequest { .. } => (1, "BadRequest"),
            Error::HandlerPanicked { .. } => (1, "HandlerPanicked"),
            Error::TooLarge { .. } => (1, "TooLarge"),
            _ => (5, "Other"),
        };
        Failure {
            code,
            kind,
            message: e.to_string(),
        }
    }
}

fn usage(message: String) -> Failure {
    Failure {
        code: 2,
        kind: "Usage",
        message,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = ClientOptions::default().timeout(Duration::from_millis(cli.timeout));
    let result = match &cli.command {
        Command::List => list(&options, cli.json),
        Command::Inspect { name } => inspect(name, &options, cli.json),
        Command::Call { name, method, args } => call(name, method, args, &options, cli.json),
        Command::Top {
            name,
            interval,
            count,
        } => top(
            name.as_deref(),
            Duration::from_millis((*interval).max(10)),
            *count,
            &options,
            cli.json,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                println!(
                    "{}",
                    json!({ "error": { "kind": f.kind, "message": f.message } })
                );
            }
            eprintln!("shmrpc: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// User names by uid, from `/etc/passwd` (the uid itself if it has no name there).
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut parts = line.split(':');
                let name = parts.next()?;
                (parts.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn total_calls(stats: &Stats) -> u64 {
    stats.methods.iter().map(|m| m.calls).sum()
}

fn list(options: &ClientOptions, as_json: bool) -> Result<(), Failure> {
    let names = inspect::services().map_err(|e| Failure {
        code: 5,
        kind: "Other",
        message: format!("cannot list the services of this machine: {e}"),
    })?;
    // Read each service's counters twice, a quarter of a second apart, many services at once:
    // one that does not answer costs the listing its timeout once, not once per service. A
    // service that ends meanwhile is not listed (it is no longer live); one that fails otherwise
    // (it refuses this user, does not answer in time, or its name is held by a dead server's
    // forked child) is a row saying so.
    let window = Duration::from_millis(250);
    let read = |name: String| -> Option<Value> {
        let read = || -> Result<Value, Error> {
            let service = Service::connect(&name, options.clone())?;
            let before = service.stats()?;
            let start = Instant::now();
            std::thread::sleep(window);
            let after = service.stats()?;
            let calls = total_calls(&after).saturating_sub(total_calls(&before));
            let rate = calls as f64 / start.elapsed().as_secs_f64();
            Ok(json!({
                "name": name,
                "pid": after.pid,
                "uid": after.uid,
                "user": user_name(after.uid),
                "trait": service.interface().name,
                "methods": service.interface().methods.len(),
                // Not counting this one.
                "connections": after.connections.saturating_sub(1),
                "calls_per_second": rate.round() as u64,
            }))
        };
        match read() {
            Ok(row) => Some(row),
            Err(Error::ServerNotRunning { detail, .. }) if detail.is_empty() => None,
            Err(Error::ServerDied { .. }) => None,
            Err(e) => Some(json!({ "name": name, "error": e.to_string() })),
        }
    };
    // At most this many at once (threads with 1 MiB stacks); a service whose thread cannot be
    // started is read on this one.
    const AT_ONCE: usize = 64;
    let mut rows: Vec<Value> = Vec::new();
    for group in names.chunks(AT_ONCE) {
        std::thread::scope(|s| {
            let readers: Vec<_> = group
                .iter()
                .map(|name| {
                    std::thread::Builder::new()
                        .stack_size(1 << 20)
                        .spawn_scoped(s, || read(name.clone()))
                        .map_err(|_| name)
                })
                .collect();
            for reader in readers {
                let row = match reader {
                    Ok(reader) => reader.join().expect("a listing thread panicked"),
                    Err(name) => read(name.clone()),
                };
                rows.extend(row);
            }
        });
    }
    if as_json {
        println!("{}", json!({ "services": rows }));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no shmrpc service is running that this user can reach");
        return Ok(());
    }
    let mut table = vec![
        [
            "NAME",
            "PID",
            "USER",
            "TRAIT",
            "METHODS",
            "CONNECTIONS",
            "CALLS/S",
        ]
        .map(str::to_owned),
    ];
    for row in &rows {
        let s = |k: &str| match &row[k] {
            Value::String(s) => s.clone(),
            Value::Null => "-".to_owned(),
            v => v.to_string(),
        };
        if row.get("error").is_some() {
            table.push([
                s("name"),
                "-".into(),
                "-".into(),
                format!("({})", s("error")),
                String::new(),
                String::new(),
                String::new(),
            ]);
        } else {
            table.push(
                [
                    "name",
                    "pid",
                    "user",
                    "trait",
                    "methods",
                    "connections",
                    "calls_per_second",
                ]
                .map(s),
            );
        }
    }
    print_table(&table);
    Ok(())
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn inspect(name: &str, options: &ClientOptions, as_json: bool) -> Result<(), Failure> {
    let service = Service::connect(name, options.clone())?;
    let stats = service.stats()?;
    let interface = service.interface();
    let types = interface.user_types();
    if as_json {
        let methods: Vec<Value> = interface
            .methods
            .iter()
            .map(|m| {
                json!({
                    "name": m.name,
                    "tag": m.tag,
                    "args": m.args.iter().map(Type::name).collect::<Vec<_>>(),
                    "reply": m.reply.name(),
                    "signature": m.signature(),
                })
            })
            .collect();
        let types: Vec<String> = types.iter().filter_map(Type::definition).collect();
        println!(
            "{}",
            json!({
                "name": name,
                "trait": interface.name,
                "pid": stats.pid,
                "uid": stats.uid,
                "user": user_name(stats.uid),
                "methods": methods,
                "types": types,
            })
        );
        return Ok(());
    }
    println!(
        "// `{name}`: served by pid {} (user {}), {} other connection(s)",
        stats.pid,
        user_name(stats.uid),
        stats.connections.saturating_sub(1)
    );
    println!("trait {} {{", interface.name);
    for m in &interface.methods {
        println!("    {};", m.signature());
    }
    println!("}}");
    for t in &types {
        if let Some(definition) = t.definition() {
            println!("\n{definition}");
        }
    }
    Ok(())
}

fn call(
    name: &str,
    method: &str,
    args: &[String],
    options: &ClientOptions,
    as_json: bool,
) -> Result<(), Failure> {
    let service = Service::connect(name, options.clone())?;
    let Some(m) = service.interface().method(method) else {
        // The library says which methods there are.
        return Err(service.call(method, &[]).err().map_or_else(
            || usage(format!("`{name}` has no method `{method}`")),
            Failure::from,
        ));
    };
    if args.len() != m.args.len() {
        return Err(usage(format!(
            "`{}` takes {} argument(s), {} given: {}",
            m.name,
            m.args.len(),
            args.len(),
            m.signature()
        )));
    }
    let mut request = Vec::new();
    for (i, (text, ty)) in args.iter().zip(&m.args).enumerate() {
        let value = match (serde_json::from_str::<Value>(text), ty) {
            (Ok(value), _) => value,
            // A bare word for a string argument.
            (Err(_), Type::Str) => Value::String(text.clone()),
            (Err(e), _) => {
                return Err(usage(format!(
                    "argument {} of `{}` (a `{}`) is not JSON: {e}",
                    i + 1,
                    m.name,
                    ty.name()
                )));
            }
        };
        json::encode(ty, &value, &mut request).map_err(|why| {
            usage(format!(
                "argument {} of `{}` does not match: {why}",
                i + 1,
                m.name
            ))
        })?;
    }
    let reply = service.call(method, &request)?;
    let mut at = 0;
    let value = json::decode(&m.reply, &reply, &mut at)
        .and_then(|v| {
            if at == reply.len() {
                Ok(v)
            } else {
                Err("bytes left over after the result".into())
            }
        })
        .map_err(|why| Failure {
            code: 5,
            kind: "Corrupted",
            message: format!("the reply of `{}` could not be read: {why}", m.name),
        })?;
    if as_json {
        println!("{}", json!({ "result": value }));
    } else {
        println!("{value}");
    }
    Ok(())
}

/// One service's counters at one moment.
struct Sample {
    at: Instant,
    stats: Stats,
}

fn top(
    only: Option<&str>,
    interval: Duration,
    count: Option<u64>,
    options: &ClientOptions,
    as_json: bool,
) -> Result<(), Failure> {
    let names = match only {
        Some(name) => vec![name.to_owned()],
        None => inspect::services().map_err(|e| Failure {
            code: 5,
            kind: "Other",
            message: format!("cannot list the services of this machine: {e}"),
        })?,
    };
    let mut services: BTreeMap<String, (Service, Sample)> = BTreeMap::new();
    for name in names {
        match Service::connect(&name, options.clone()).and_then(|s| {
            let stats = s.stats()?;
            Ok((s, stats))
        }) {
            Ok((service, stats)) => {
                let sample = Sample {
                    at: Instant::now(),
                    stats,
                };
                services.insert(name, (service, sample));
            }
            // The one asked for must be there; of all, those that can be read.
            Err(e) if only.is_some() => return Err(e.into()),
            Err(_) => {}
        }
    }
    let terminal = !as_json && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut refreshes = 0;
    loop {
        std::thread::sleep(interval);
        let mut report = Vec::new();
        for (name, (service, last)) in &mut services {
            let stats = match service.stats() {
                Ok(stats) => stats,
                Err(e) => {
                    report.push(json!({ "name": name, "error": e.to_string() }));
                    continue;
                }
            };
            let now = Instant::now();
            let seconds = now.duration_since(last.at).as_secs_f64();
            let methods: Vec<Value> = stats
                .methods
                .iter()
                .map(|m| {
                    let before = last.stats.methods.iter().find(|b| b.name == m.name);
                    let calls = m.calls - before.map_or(0, |b| b.calls.min(m.calls));
                    let errors = m.errors - before.map_or(0, |b| b.errors.min(m.errors));
                    let latency = before.map_or(m.latency.clone(), |b| m.latency.since(&b.latency));
                    let micros = |p| latency.percentile(p).map(|d| d.as_secs_f64() * 1e6);
                    json!({
                        "method": m.name,
                        "calls_per_second": (calls as f64 / seconds).round() as u64,
                        "p50_us": micros(0.5),
                        "p99_us": micros(0.99),
                        "errors": errors,
                        "calls_total": m.calls,
                    })
                })
                .collect();
            report.push(json!({
                "name": name,
                "pid": stats.pid,
                "connections": stats.connections.saturating_sub(1),
                "methods": methods,
            }));
            *last = Sample { at: now, stats };
        }
        if as_json {
            println!("{}", json!({ "services": report }));
        } else {
            if terminal {
                // Clear the screen, cursor home.
                print!("\x1b[2J\x1b[H");
            }
            print_top(&report, interval);
        }
        refreshes += 1;
        if count.is_some_and(|n| refreshes >= n) {
            return Ok(());
        }
    }
}

fn print_top(report: &[Value], interval: Duration) {
    if report.is_empty() {
        println!("no shmrpc service is running that this user can reach");
    }
    let micros = |v: &Value| match v.as_f64() {
        Some(us) if us < 1000.0 => format!("{us:.1} µs"),
        Some(us) => format!("{:.2} ms", us / 1000.0),
        None => "-".to_owned(),
    };
    for service in report {
        let name = service["name"].as_str().unwrap_or("?");
        if let Some(e) = service.get("error") {
            println!("{name}: {}", e.as_str().unwrap_or("?"));
            continue;
        }
        println!(
            "{name} (pid {}, {} connection(s)), over {:?}:",
            service["pid"], service["connections"], interval
        );
        let mut table = vec![["METHOD", "CALLS/S", "P50", "P99", "ERRORS"].map(str::to_owned)];
        for m in service["methods"].as_array().into_iter().flatten() {
            table.push([
                format!("  {}", m["method"].as_str().unwrap_or("?")),
                m["calls_per_second"].to_string(),
                micros(&m["p50_us"]),
                micros(&m["p99_us"]),
                m["errors"].to_string(),
            ]);
        }
        print_table(&table);
    }
    println!();
}
