//! shmrpc services across machines: the trait annotated with `#[shmrpc::shm_service]`, served
//! and called over [zenoh](https://zenoh.io) rather than this machine's shared memory.
//!
//! ```no_run
//! use shmrpc_zenoh::{ConnectRemote, ServeRemote};
//! # use shmrpc_examples::{CalculatorClient, CalculatorServer, MyCalc};
//!
//! # fn main() -> Result<(), shmrpc::Error> {
//! // On one machine:
//! let session = shmrpc_zenoh::open(&["tcp/0.0.0.0:7447"], &[])?;
//! let serving = CalculatorServer::serve_remote(&session, "shmrpc/calc", MyCalc::default())?;
//!
//! // On another (the same generated client type, the same methods and errors):
//! let session = shmrpc_zenoh::open(&[], &["tcp/10.0.0.1:7447"])?;
//! let calc = CalculatorClient::connect_remote(&session, "shmrpc/calc")?;
//! assert_eq!(calc.add(2, 3)?, 5);
//! # drop(serving);
//! # Ok(())
//! # }
//! ```
//!
//! A call is one zenoh query on the service's key, carrying the same request bytes a local call
//! writes into its slot, after a header with the interface fingerprint and the method (see
//! [`shmrpc::remote`]); the answer is one reply. The server validates every request as a local
//! server does. A server also declares a liveliness token under the key, which is how clients
//! know it is there (`ServerNotRunning` at once when it is not) and that it died during a call
//! (`ServerDied`, within milliseconds of its process's end; a call begun in the moment before the
//! token's removal arrives may wait up to half a second for a late answer, then fail so).
//!
//! Methods run on the server's own worker threads (`ServerOptions::workers`), never on zenoh's.
//! [`shmrpc::remote::remote_caller`] tells a method the zenoh id of the session that called.
//! That id is declared by the caller, not proven: zenoh's peers are not authenticated unless its
//! TLS or authentication features are configured (both off in this crate's build, and by
//! default in zenoh). Serve on a network you trust, or enable them.
//!
//! Zenoh's blocking API panics inside a tokio current-thread runtime: this crate's functions and
//! remote calls return an error there instead (`Io`, saying so); call them from a multi-thread
//! runtime, `spawn_blocking` or a plain thread. An async remote client is not provided yet.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shmrpc::remote::{Failure, RemoteClient, RemoteServer, Service, Transport};
use shmrpc::{ClientOptions, Error, ServerOptions};
use zenoh::key_expr::KeyExpr;
use zenoh::liveliness::LivelinessToken;
use zenoh::query::{ConsolidationMode, Query, QueryTarget, Queryable, Reply};
use zenoh::sample::SampleKind;
use zenoh::{Session, Wait};

pub use zenoh;

/// The chunk under a service's key where its servers declare their liveliness tokens.
const LIVE: &str = "_shmrpc_live";

/// How long a worker waits for a request before it looks whether the server stopped.
const WORKER_POLL: Duration = Duration::from_millis(50);

/// A zenoh configuration that stays off the network except where told: peer mode, no
/// multicast scouting, listening on exactly `listen` and connecting to exactly `connect`
/// (endpoints such as `tcp/127.0.0.1:7447`).
pub fn config(listen: &[&str], connect: &[&str]) -> Result<zenoh::Config, Error> {
    let mut config = zenoh::Config::default();
    let json = |endpoints: &[&str]| {
        let quoted: Vec<String> = endpoints.iter().map(|e| format!("{e:?}")).collect();
        format!("[{}]", quoted.join(","))
    };
    for (key, value) in [
        ("mode", "\"peer\"".to_owned()),
        ("scouting/multicast/enabled", "false".to_owned()),
        ("scouting/gossip/enabled", "true".to_owned()),
        ("listen/endpoints", json(listen)),
        ("connect/endpoints", json(connect)),
    ] {
        config
            .insert_json5(key, &value)
            .map_err(|e| invalid(format!("zenoh configuration `{key}`: {e}")))?;
    }
    Ok(config)
}

/// A zenoh session with [`config`]`(listen, connect)`.
pub fn open(listen: &[&str], connect: &[&str]) -> Result<Session, Error> {
    refuse_current_thread("opening a zenoh session")?;
    zenoh::open(config(listen, connect)?)
        .wait()
        .map_err(|e| zenoh_error("opening a zenoh session".to_owned(), e))
}

/// Zenoh's blocking calls panic inside a tokio current-thread runtime: what to say instead.
const CURRENT_THREAD: &str = "zenoh's blocking calls cannot run inside a tokio current-thread \
    runtime; make remote calls from a multi-thread runtime, `tokio::task::spawn_blocking` or a \
    thread of your own";

fn in_current_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

fn refuse_current_thread(what: &str) -> Result<(), Error> {
    if in_current_thread_runtime() {
        return Err(shmrpc::remote::io_error(
            what,
            std::io::Error::other(CURRENT_THREAD),
        ));
    }
    Ok(())
}

fn invalid(what: String) -> Error {
    shmrpc::remote::io_error(
        what,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid"),
    )
}

fn zenoh_error(what: String, e: impl std::fmt::Display) -> Error {
    shmrpc::remote::io_error(what, std::io::Error::other(e.to_string()))
}

fn key_expr(key: &str) -> Result<KeyExpr<'static>, Error> {
    let k = KeyExpr::try_from(key.to_owned()).map_err(|e| {
        invalid(format!(
            "`{key}` is not a zenoh key expression ({e}); use a plain key such as `shmrpc/calc`"
        ))
    })?;
    if key.contains(['*', '$', '#', '?']) || key.split('/').any(|c| c == LIVE) {
        return Err(invalid(format!(
            "`{key}` names more than one service: use a key without wildcards (and without a \
             `{LIVE}` chunk)"
        )));
    }
    Ok(k)
}

/// Serves a generated server's service over zenoh: `CalculatorServer::serve_remote(..)`.
pub trait ServeRemote: RemoteServer {
    /// Serves `service` under `key` on `session`, with the default options (one worker).
    fn serve_remote(
        session: &Session,
        key: &str,
        service: Self::Service,
    ) -> Result<RemoteServing, Error> {
        Self::serve_remote_with(session, key, service, ServerOptions::default())
    }

    /// Serves `service` with `options`: `workers` threads run the methods, and requests and
    /// responses are limited to `max_message` bytes. Access rules by user (`allow_*`) and
    /// `stop_on_signals` are refused: they concern local processes (see the crate's
    /// documentation on remote callers).
    fn serve_remote_with(
        session: &Session,
        key: &str,
        service: Self::Service,
        options: ServerOptions,
    ) -> Result<RemoteServing, Error> {
        serve(session, key, Self::remote_service(service, &options)?)
    }
}

impl<T: RemoteServer> ServeRemote for T {}

/// A service served over zenoh; dropping it (or [`shutdown`](RemoteServing::shutdown)) stops
/// serving: the liveliness token goes, calls in flight finish, no new call is taken.
#[derive(Debug)]
pub struct RemoteServing {
    key: String,
    queryable: Option<Queryable<()>>,
    token: Option<LivelinessToken>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl RemoteServing {
    /// The key it serves under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Stops serving, and waits for the methods running to return.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        // No new call; the calls taken finish and their answers go out; only then does the
        // token go, which clients take for the server's end.
        if let Some(queryable) = self.queryable.take() {
            let _ = queryable.undeclare().wait();
        }
        self.stop.store(true, Ordering::Relaxed);
        let this = std::thread::current().id();
        for worker in self.workers.drain(..) {
            // Dropped by one of its own methods: that worker ends once the method returns.
            if worker.thread().id() != this {
                let _ = worker.join();
            }
        }
        if let Some(token) = self.token.take() {
            let _ = token.undeclare().wait();
        }
    }
}

impl Drop for RemoteServing {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Tokens of the servers of one process, kept apart.
static NEXT_SERVER: AtomicU64 = AtomicU64::new(0);

/// Requests waiting for a worker, at most: past it, a request is refused at once.
const QUEUE: usize = 1024;

fn serve(session: &Session, key: &str, service: Service) -> Result<RemoteServing, Error> {
    refuse_current_thread(&format!("serving `{key}`"))?;
    let key_expr = key_expr(key)?;
    let (send, receive) = mpsc::sync_channel::<Query>(QUEUE);
    let receive = Arc::new(Mutex::new(receive));
    let service = Arc::new(service);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::with_capacity(service.workers());
    for _ in 0..service.workers() {
        let (receive, service, stop) = (receive.clone(), service.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("shmrpc-zenoh-{key}"))
            .spawn(move || work(&receive, &service, &stop))
            .map_err(|e| shmrpc::remote::io_error("starting a server thread", e))?;
        threads.push(thread);
    }
    let refuse = service.clone();
    let queryable = session
        .declare_queryable(key_expr.clone())
        .complete(true)
        .callback(move |query| {
            // Methods never run on zenoh's threads: a worker takes the request. One too long
            // or past a full queue is refused here, at once, and costs no worker anything.
            let len = query.payload().map_or(0, |p| p.len());
            let refusal = if len > refuse.max_message().saturating_add(4096) {
                Some("the request is longer than the server's max_message; nothing ran")
            } else {
                None
            };
            let query = match refusal {
                Some(why) => Err((query, why)),
                None => send.try_send(query).map_err(|e| {
                    let query = match e {
                        mpsc::TrySendError::Full(q) | mpsc::TrySendError::Disconnected(q) => q,
                    };
                    (
                        query,
                        "the server has too many requests waiting; nothing ran: try again later",
                    )
                }),
            };
            if let Err((query, why)) = query {
                let _ = query
                    .reply(query.key_expr().clone(), refuse.refusal(why))
                    .wait();
            }
        })
        .wait()
        .map_err(|e| zenoh_error(format!("declaring the queryable `{key}`"), e))?;
    // The key says the server's limit, so that clients refuse larger requests before sending.
    let token_key = format!(
        "{key}/{LIVE}/{}-{}-{}-{}",
        session.zid(),
        std::process::id(),
        NEXT_SERVER.fetch_add(1, Ordering::Relaxed),
        service.max_message()
    );
    let token = session
        .liveliness()
        .declare_token(token_key)
        .wait()
        .map_err(|e| zenoh_error(format!("declaring the liveliness token of `{key}`"), e))?;
    Ok(RemoteServing {
        key: key.to_owned(),
        queryable: Some(queryable),
        token: Some(token),
        stop,
        workers: threads,
    })
}

/// A worker: answers requests until the server stops.
fn work(receive: &Mutex<mpsc::Receiver<Query>>, service: &Service, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let next = receive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(WORKER_POLL);
        let query = match next {
            Ok(query) => query,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let request = query.payload().map(|p| p.to_bytes()).unwrap_or_default();
        let caller = query
            .attachment()
            .and_then(|a| a.try_to_string().ok().map(|s| s.into_owned()))
            .unwrap_or_default();
        let response = service.handle(&request, &caller);
        // A caller that gave up is gone: nothing to do about a reply nobody takes.
        let _ = query.reply(query.key_expr().clone(), response).wait();
    }
}

/// Connects a generated client over zenoh: `CalculatorClient::connect_remote(..)`.
pub trait ConnectRemote: RemoteClient {
    /// A client of the service under `key`, with the default options (timeout 5 s). Fails
    /// at once with `ServerNotRunning` if no server serves the key.
    fn connect_remote(session: &Session, key: &str) -> Result<Self, Error> {
        Self::connect_remote_with(session, key, ClientOptions::default())
    }

    /// As [`connect_remote`](ConnectRemote::connect_remote), with the options' timeout per call.
    fn connect_remote_with(
        session: &Session,
        key: &str,
        options: ClientOptions,
    ) -> Result<Self, Error> {
        let timeout = options.get_timeout();
        let transport = ZenohTransport::open(session, key)?;
        if !transport.live.any() {
            return Err(
                Failure::NotRunning(transport.not_running()).into_error(key, "connect", timeout)
            );
        }
        Ok(Self::with_transport(key, Arc::new(transport), timeout))
    }
}

impl<T: RemoteClient> ConnectRemote for T {}

/// What a call in flight hears.
enum Event {
    Reply(Reply),
    /// Zenoh let go of the query: every reply (if any) came before.
    Finished,
    /// A server's liveliness token went away.
    ServerGone,
}

/// The live servers of a key, as their liveliness tokens say, and the calls to tell when one
/// goes.
#[derive(Default)]
struct Liveness {
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    tokens: HashSet<String>,
    /// Tokens seen to go: a server's token is never declared again (a new server has a new
    /// one), so a late report of one of these (the look-up at connect racing the removal) is
    /// not taken for a live server.
    gone: HashSet<String>,
    in_flight: HashMap<u64, Sender<Event>>,
    next: u64,
}

impl Liveness {
    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn any(&self) -> bool {
        !self.lock().tokens.is_empty()
    }

    fn changed(&self, token: &str, alive: bool) {
        let mut state = self.lock();
        if alive {
            if !state.gone.contains(token) {
                state.tokens.insert(token.to_owned());
            }
            return;
        }
        state.gone.insert(token.to_owned());
        if state.tokens.remove(token) {
            for call in state.in_flight.values() {
                let _ = call.send(Event::ServerGone);
            }
        }
    }

    /// The smallest `max_message` of the live servers (their tokens' last field).
    fn limit(&self) -> Option<usize> {
        self.lock()
            .tokens
            .iter()
            .filter_map(|t| t.rsplit('-').next()?.parse().ok())
            .min()
    }
}

/// Sends `Finished` when zenoh drops the query's callback.
struct OnFinish(Sender<Event>);

impl Drop for OnFinish {
    fn drop(&mut self) {
        let _ = self.0.send(Event::Finished);
    }
}

/// One client's way to the servers of a key.
struct ZenohTransport {
    session: Session,
    key: KeyExpr<'static>,
    caller: String,
    live: Arc<Liveness>,
    _watch: zenoh::pubsub::Subscriber<()>,
}

impl ZenohTransport {
    fn open(session: &Session, key: &str) -> Result<Self, Error> {
        refuse_current_thread(&format!("connecting to `{key}`"))?;
        let key_expr = key_expr(key)?;
        let live = Arc::new(Liveness::default());
        let watch = {
            let live = live.clone();
            session
                .liveliness()
                .declare_subscriber(format!("{key}/{LIVE}/*"))
                .history(true)
                .callback(move |sample| {
                    live.changed(sample.key_expr().as_str(), sample.kind() == SampleKind::Put)
                })
                .wait()
                .map_err(|e| zenoh_error(format!("watching the servers of `{key}`"), e))?
        };
        // The tokens already there: asked for once, so that `connect` knows at once.
        let replies = session
            .liveliness()
            .get(format!("{key}/{LIVE}/*"))
            .timeout(Duration::from_millis(500))
            .wait()
            .map_err(|e| zenoh_error(format!("looking for the servers of `{key}`"), e))?;
        while let Ok(reply) = replies.recv() {
            if let Ok(sample) = reply.result() {
                live.changed(sample.key_expr().as_str(), true);
            }
        }
        Ok(ZenohTransport {
            session: session.clone(),
            key: key_expr,
            caller: session.zid().to_string(),
            live,
            _watch: watch,
        })
    }

    fn not_running(&self) -> String {
        format!(
            "no server's liveliness token is under the zenoh key `{}/{LIVE}` (is the server's \
             session connected to this one?)",
            self.key
        )
    }
}

// A panic in `round_trip` (none is known) would leave at most an entry of a call in flight, which
// only ever receives notices nobody reads: nothing a caller could observe as broken.
impl std::panic::RefUnwindSafe for ZenohTransport {}

impl Transport for ZenohTransport {
    fn max_request(&self) -> Option<usize> {
        self.live.limit()
    }

    fn round_trip(&self, request: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, Failure> {
        if in_current_thread_runtime() {
            return Err(Failure::Io(std::io::Error::other(CURRENT_THREAD)));
        }
        let (send, receive) = mpsc::channel();
        let id = {
            let mut state = self.live.lock();
            if state.tokens.is_empty() {
                return Err(Failure::NotRunning(self.not_running()));
            }
            let id = state.next;
            state.next += 1;
            state.in_flight.insert(id, send.clone());
            id
        };
        let result = self.wait(request, deadline, send, &receive);
        self.live.lock().in_flight.remove(&id);
        result
    }
}

impl ZenohTransport {
    fn wait(
        &self,
        request: Vec<u8>,
        deadline: Instant,
        send: Sender<Event>,
        receive: &mpsc::Receiver<Event>,
    ) -> Result<Vec<u8>, Failure> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        // After a server's token goes, how long an answer may still come (its last answers
        // can arrive after the token's removal); a dead server's link ends the query sooner.
        const GRACE: Duration = Duration::from_millis(500);
        let mut gone_by: Option<Instant> = None;
        let finish = OnFinish(send);
        self.session
            .get(self.key.clone())
            .payload(request)
            .attachment(self.caller.clone())
            .target(QueryTarget::BestMatching)
            .consolidation(ConsolidationMode::None)
            // Zenoh's own timeout a little after the call's: the call's deadline, checked
            // here, is what ends it (as `Timeout`), never zenoh's error reply racing it.
            .timeout(left + Duration::from_millis(100))
            .callback(move |reply| {
                let _ = finish.0.send(Event::Reply(reply));
            })
            .wait()
            .map_err(|e| Failure::Io(std::io::Error::other(e.to_string())))?;
        loop {
            let until = gone_by.map_or(deadline, |g| g.min(deadline));
            let left = until.saturating_duration_since(Instant::now());
            match receive.recv_timeout(left) {
                Ok(Event::Reply(reply)) => match reply.into_result() {
                    Ok(sample) => return Ok(sample.payload().to_bytes().into_owned()),
                    // Zenoh's own timeout, or an error reply (never sent by a shmrpc server).
                    Err(_) if Instant::now() >= deadline => return Err(Failure::Timeout),
                    Err(e) => {
                        return Err(Failure::Io(std::io::Error::other(format!(
                            "the query failed: {}",
                            e.payload().try_to_string().unwrap_or_default()
                        ))));
                    }
                },
                Ok(Event::ServerGone) => {
                    // Ours, if no other is left: its answer may still come, or the query end.
                    if !self.live.any() && gone_by.is_none() {
                        gone_by = Some(Instant::now() + GRACE);
                    }
                }
                Ok(Event::Finished) => {
                    // Zenoh let go of the query without an answer before the deadline: the
                    // server was there when the call began (its token was), and is gone, or
                    // its link went down, perhaps after it ran the method. The liveliness
                    // token's removal may come a moment after; either way the call may have
                    // taken effect.
                    return Err(if Instant::now() >= deadline {
                        Failure::Timeout
                    } else {
                        Failure::Died
                    });
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    return Err(Failure::Died);
                }
                Err(RecvTimeoutError::Timeout) => return Err(Failure::Timeout),
                Err(RecvTimeoutError::Disconnected) => return Err(Failure::Died),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_stays_off_the_network_but_where_told() {
        let c = config(&["tcp/127.0.0.1:7447"], &["tcp/127.0.0.1:7448"]).unwrap();
        let get = |key: &str| c.get_json(key).unwrap().replace(' ', "");
        assert_eq!(get("mode"), "\"peer\"");
        assert_eq!(get("scouting/multicast/enabled"), "false");
        assert!(get("listen/endpoints").contains("tcp/127.0.0.1:7447"));
        assert!(get("connect/endpoints").contains("tcp/127.0.0.1:7448"));
        assert!(config(&["not an endpoint"], &[]).is_err());
    }

    #[test]
    fn a_token_reported_after_its_removal_is_not_taken_for_a_live_server() {
        let live = Liveness::default();
        live.changed("k/_shmrpc_live/a-1-0-1024", true);
        live.changed("k/_shmrpc_live/b-1-0-4096", true);
        assert_eq!(live.limit(), Some(1024));
        live.changed("k/_shmrpc_live/a-1-0-1024", false);
        live.changed("k/_shmrpc_live/a-1-0-1024", true);
        assert_eq!(live.limit(), Some(4096));
        live.changed("k/_shmrpc_live/b-1-0-4096", false);
        assert!(!live.any());
        // Removed before it was ever seen (the look-up lagging behind the subscriber).
        live.changed("k/_shmrpc_live/c-1-0-64", false);
        live.changed("k/_shmrpc_live/c-1-0-64", true);
        assert!(!live.any());
    }
}
