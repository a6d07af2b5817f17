//! A service's name on the machine: how a server takes it, how a client finds the server, and
//! how each side learns who the other is.
//!
//! A server of user `uid` listens on the socket `shmrpc/u<uid>/<name>` (an abstract name on
//! Linux, a file under `/tmp` on macOS, a named pipe on Windows: see `sys`), so that two users
//! may both run a service `calc`. A server whose access rules admit other users also
//! listens on `shmrpc/public/<name>`, where those users look. A client tries its own user's
//! name first, then the public one.
//!
//! Any local user may take any name first, so holding a name proves nothing: a client reads
//! the server's user from the kernel (`SO_PEERCRED`) and refuses one it does not trust (its own
//! user and root by default), before it sends anything. A server reads each client's user the
//! same way and applies its access rules.
//!
//! The kernel lets one socket hold a name, so two servers cannot both bind it; the loser
//! connects to the winner to learn its pid (`AlreadyRunning`). A name is freed the moment its
//! socket closes, however its process died; a restarting server retries for a moment, since
//! the kernel takes up to a few milliseconds to free the name of a killed process. It also
//! waits out a child that this process was starting when it gave the name up: that child holds
//! a copy of the socket until its `exec`, and the socket's credentials name this process.

use std::io;
use std::time::{Duration, Instant};

use crate::Error;
use crate::name::ServiceName;
use crate::options::ClientOptions;
use crate::sys::{self, Credentials, Listener, ProcessHandle, Stream};

/// How long `bind` retries a name whose holder is gone or going.
const BIND_RETRY: Duration = Duration::from_millis(200);

/// Takes the service's name(s): the user's own, and the public one if `public`.
pub(crate) fn bind(name: &ServiceName, public: bool) -> Result<Vec<Listener>, Error> {
    let mut listeners = vec![bind_one(name, &name.user_address(sys::euid()))?];
    if public {
        // On failure, dropping `listeners` gives the first name back.
        listeners.push(bind_one(name, &name.public_address())?);
    }
    Ok(listeners)
}

/// Who holds a name that `bind` found taken.
enum Holder {
    /// A live process listening on it.
    Live(Credentials),
    /// Nobody listens (the holder is closing it, or binding it right now).
    Gone,
    /// A socket whose listening process is dead: a process forked from it holds a copy.
    Orphan(Credentials),
    /// A socket this process listened on and gave up: a child it was starting at that moment
    /// holds a copy until its `exec` (or for good, if it never calls one).
    Copy,
}

fn bind_one(name: &ServiceName, address: &[u8]) -> Result<Listener, Error> {
    let start = Instant::now();
    loop {
        let err = match Listener::bind(address) {
            Ok(listener) => return Ok(listener),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => e,
            Err(e) => {
                return Err(Error::io(
                    format!("binding `{}` (socket {})", name.as_str(), show(address)),
                    e,
                ));
            }
        };
        let holder = probe(address);
        if let Holder::Live(cred) = holder {
            return Err(Error::AlreadyRunning {
                name: name.as_str().to_owned(),
                pid: cred.pid,
                uid: cred.uid,
            });
        }
        if start.elapsed() >= BIND_RETRY {
            return Err(match holder {
                Holder::Orphan(cred) => Error::NameTaken {
                    name: name.as_str().to_owned(),
                    detail: format!(
                        "its server (pid {}, uid {}) is dead, and a process it forked without \
                         exec still holds its socket ({})",
                        cred.pid,
                        cred.uid,
                        find_holder(address)
                    ),
                },
                Holder::Copy => Error::NameTaken {
                    name: name.as_str().to_owned(),
                    detail: "this process gave it up, but a process it started (without exec, \
                             bypassing fork handlers) still holds a copy of its socket"
                        .to_owned(),
                },
                _ => Error::io(
                    format!("binding `{}` (socket {})", name.as_str(), show(address)),
                    err,
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Connects to a taken name to learn who holds it.
fn probe(address: &[u8]) -> Holder {
    let Ok(stream) = Stream::connect(address) else {
        return Holder::Gone;
    };
    let Ok(cred) = stream.peer_credentials() else {
        return Holder::Gone;
    };
    if cred.pid == std::process::id() && !sys::holds_name(address) {
        return Holder::Copy;
    }
    match stream.peer_process(cred.pid) {
        Ok(process) if process.is_alive() => Holder::Live(cred),
        _ => Holder::Orphan(cred),
    }
}

/// A connection to a server the client trusts, before any message.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) stream: Stream,
    pub(crate) process: ProcessHandle,
}

/// Finds the server of `name`: its own user's first, then a public one; waits up to `wait` for
/// one to bind the name, and up to `busy_until` for one whose queue of waiting connections is
/// full (a flood of connections, perhaps from another user) to take this one.
pub(crate) fn connect(
    name: &ServiceName,
    options: &ClientOptions,
    wait: Duration,
    busy_until: Instant,
    method: &'static str,
) -> Result<Found, Error> {
    let addresses = [name.user_address(sys::euid()), name.public_address()];
    let give_up = crate::wait::after(wait);
    let mut pause = Duration::from_micros(100);
    loop {
        let mut busy = false;
        for address in &addresses {
            match Stream::connect(address) {
                Ok(stream) => return check_server(name, address, stream, options),
                // Nobody holds this name.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                // Its server's queue is full for the moment.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    busy = true;
                    break;
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("connecting to `{}` ({})", name.as_str(), show(address)),
                        e,
                    ));
                }
            }
        }
        let now = Instant::now();
        let until = if busy {
            busy_until.max(give_up)
        } else {
            give_up
        };
        if now >= until {
            return Err(if busy {
                Error::Timeout {
                    name: name.as_str().to_owned(),
                    method,
                    timeout: options.timeout,
                }
            } else {
                Error::ServerNotRunning {
                    name: name.as_str().to_owned(),
                    detail: String::new(),
                }
            });
        }
        std::thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Whom the client trusts: its own user, root, and those the options name.
fn trusts(options: &ClientOptions, uid: u32) -> bool {
    uid == sys::euid() || uid == 0 || options.trusted.contains(&uid)
}

fn check_server(
    name: &ServiceName,
    address: &[u8],
    stream: Stream,
    options: &ClientOptions,
) -> Result<Found, Error> {
    let io = |e| Error::io(format!("connecting to `{}`", name.as_str()), e);
    let server = stream.peer_credentials().map_err(io)?;
    if !trusts(options, server.uid) {
        return Err(Error::PermissionDenied {
            name: name.as_str().to_owned(),
            detail: format!(
                "the process holding this name (pid {}) runs as uid {}, which this client does \
                 not trust (it trusts its own user, uid {}, and root): it may be another user \
                 impersonating the service. If that user's server is expected, trust it with \
                 ClientOptions::trust_uid({})",
                server.pid,
                server.uid,
                sys::euid(),
                server.uid
            ),
        });
    }
    let dead = |server: Credentials| Error::ServerNotRunning {
        name: name.as_str().to_owned(),
        detail: format!(
            "the process that holds its name is not the server that bound it: that server (pid \
             {}) is dead, and a process it forked without exec still holds its socket; end that \
             process ({}) before a server can bind the name",
            server.pid,
            find_holder(address)
        ),
    };
    let process = match stream.peer_process(server.pid) {
        Ok(process) if process.is_alive() => process,
        Ok(_) => return Err(dead(server)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(dead(server)),
        Err(e) => return Err(io(e)),
    };
    Ok(Found { stream, process })
}

/// A socket name as `ss -x` shows it.
fn show(address: &[u8]) -> String {
    format!("@{}", String::from_utf8_lossy(address))
}

/// How to find the processes that hold the socket at `address` (as its user, or as root).
fn find_holder(address: &[u8]) -> String {
    if cfg!(target_os = "linux") {
        format!("`ss -xlp src {}` names it", show(address))
    } else if cfg!(target_os = "macos") {
        // The holder keeps the lock file beside the socket open (see `sys::unix::macos`).
        format!(
            "`lsof /tmp/{}=lock` names it",
            String::from_utf8_lossy(address)
        )
    } else {
        "no process of this name's server is left, but one still holds its name".to_owned()
    }
}
