//! A key-value cache served over shared memory: text keys, byte values of any length.
//!
//! ```text
//! cargo run --example kv                  # serves in a child process and talks to it
//! cargo run --example kv -- serve cache   # or: serve under a name, until Ctrl-C ...
//! cargo run --example kv -- put cache greeting "hello there"   # ... and call it
//! cargo run --example kv -- get cache greeting
//! cargo run --example kv -- keys cache gr
//! ```

use std::io::BufRead;
use std::process::{Command, ExitCode, Stdio};

use shmrpc::ClientOptions;
use shmrpc_examples::kv::{CacheClient, CacheServer, MemoryCache};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args[..] {
        [] => session(),
        ["serve", name] => serve(name),
        ["put", name, key, value] => CacheClient::connect(name)
            .and_then(|c| c.put(key, value.as_bytes()))
            .map(|stored| println!("{stored:?}")),
        ["get", name, key] => CacheClient::connect(name)
            .and_then(|c| c.get(key))
            .map(|v| {
                println!("{:?}", v.map(|v| String::from_utf8_lossy(&v).into_owned()));
            }),
        ["keys", name, prefix] => CacheClient::connect(name)
            .and_then(|c| c.keys(prefix.to_owned()))
            .map(|keys| println!("{keys:?}")),
        _ => {
            eprintln!(
                "usage: kv | kv serve NAME | kv put NAME KEY VALUE | kv get NAME KEY | kv keys NAME PREFIX"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kv: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until standard input closes (or Ctrl-C).
fn serve(name: &str) -> Result<(), shmrpc::Error> {
    let handle = CacheServer::bind(name, MemoryCache::default())?.spawn()?;
    println!("serving `{name}`");
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    handle.shutdown()
}

/// Starts a server in a child process and makes a few calls.
fn session() -> Result<(), shmrpc::Error> {
    let name = format!("kv-example-{}", std::process::id());
    let mut server = Command::new(std::env::current_exe().expect("this program"))
        .args(["serve", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the server");
    let result = talk(&name);
    // Closing its standard input stops the server.
    drop(server.stdin.take());
    let _ = server.wait();
    result
}

fn talk(name: &str) -> Result<(), shmrpc::Error> {
    let options = ClientOptions::default().wait_for_server(std::time::Duration::from_secs(5));
    let cache = CacheClient::connect_with(name, options)?;

    println!(
        "put(\"fruit/apple\", b\"red\")   -> {:?}",
        cache.put("fruit/apple", b"red")?
    );
    println!(
        "put(\"fruit/kiwi\", b\"green\")  -> {:?}",
        cache.put("fruit/kiwi", b"green")?
    );
    let photo = vec![0xAB; 300_000];
    println!(
        "put(\"photo\", 300 KB)        -> {:?}",
        cache.put("photo", &photo)?
    );
    println!(
        "put(\"\", b\"x\")                -> {:?}",
        cache.put("", b"x")?
    );
    let apple = cache.get("fruit/apple")?;
    println!(
        "get(\"fruit/apple\")           -> {:?}",
        apple.map(|v| String::from_utf8_lossy(&v).into_owned())
    );
    println!(
        "get(\"fruit/pear\")            -> {:?}",
        cache.get("fruit/pear")?
    );
    // A buffer kept across calls: received into, not allocated per call.
    let mut value = Some(Vec::with_capacity(1 << 20));
    cache.get_into("photo", &mut value)?;
    println!(
        "get_into(\"photo\")            -> {} bytes",
        value.as_ref().map_or(0, Vec::len)
    );
    println!(
        "keys(\"fruit/\")               -> {:?}",
        cache.keys("fruit/".into())?
    );
    println!(
        "remove(\"fruit/kiwi\")         -> {:?}",
        cache.remove("fruit/kiwi")?
    );
    println!(
        "keys(\"\")                     -> {:?}",
        cache.keys(String::new())?
    );
    Ok(())
}
