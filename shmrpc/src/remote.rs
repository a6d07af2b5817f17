//! The seam for calls carried by something other than this machine's shared memory: the same
//! trait, the same generated client and the same bytes, over a transport a separate crate
//! provides (`shmrpc-zenoh` carries them across machines).
//!
//! A transport moves opaque messages: the client hands it a [`request`](Transport::round_trip)
//! and gets back the response; the server side hands each request it receives to
//! [`Service::handle`] and sends back what that returns. Everything about the bytes, building
//! them, checking them and running the method, stays here, written once for every transport.
//!
//! # The messages
//!
//! Every number is little-endian (shmrpc builds for little-endian targets only, and a value's
//! bytes are its memory bytes, as in a slot). A request:
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 8 | `shmrpcQ\x02`: a request, version 2 |
//! | 8 | 16 | the client's interface fingerprint |
//! | 24 | 8 | the method's signature hash |
//! | 32 | 4 | the method's tag (its position in the client's trait) |
//! | 36 | 4 | `n`, the method name's length (1 to 1024) |
//! | 40 | `n` | the method's name, UTF-8 |
//! | 40 + `n` | rest | the arguments, as in a slot |
//!
//! The server runs the method whose tag the request names if the fingerprints are equal (the
//! same interface, built alike); otherwise the one with that name and signature hash, as a local
//! server matches a client's methods, and refuses the call if it has none ("interface
//! mismatch", per method). A response:
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 8 | `shmrpcA\x02`: a response, version 2 |
//! | 8 | 4 | status: 0 the result follows; 1 invalid request (a reason follows); 2 the method panicked (its message follows); 3 the result is too large (its size follows, u64, then the server's limit, u64); 4 no such method here (the reason follows) |
//! | 12 | rest | as the status says |
//!
//! A server checks every request exactly as a local one: a message too short, of another
//! version, a name that is not UTF-8, arguments that do not decode to the method's types are all
//! refused (status 1), and nothing runs.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::data::Invalid;
use crate::interface::{self, Interface};
use crate::server::Dispatch;
use crate::wire::{Private, Reader, Writer};
use crate::{Error, ServerOptions};

const REQUEST_MAGIC: [u8; 8] = *b"shmrpcQ\x02";
const RESPONSE_MAGIC: [u8; 8] = *b"shmrpcA\x02";
const REQUEST_HEADER: usize = 40;
const RESPONSE_HEADER: usize = 12;
const MAX_METHOD_NAME: usize = 1024;

/// The status of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Status {
    Ok = 0,
    BadRequest = 1,
    Panicked = 2,
    TooLarge = 3,
    NoMethod = 4,
}

/// How a transport failed to carry a call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// Nothing serves the address: the request was not delivered, nothing ran.
    NotRunning(String),
    /// The server went away while the call was in flight: the method may or may not have run.
    Died,
    /// No response by the deadline: the method may or may not have run.
    Timeout,
    /// The transport itself failed.
    Io(std::io::Error),
}

impl Failure {
    /// The error a call that failed so returns: `ServerNotRunning`, `ServerDied`, `Timeout`
    /// (after `timeout`) or `Io`.
    pub fn into_error(self, name: &str, method: &'static str, timeout: Duration) -> Error {
        match self {
            Failure::NotRunning(detail) => Error::ServerNotRunning {
                name: name.to_owned(),
                detail,
            },
            Failure::Died => Error::ServerDied {
                name: name.to_owned(),
                method,
            },
            Failure::Timeout => Error::Timeout {
                name: name.to_owned(),
                method,
                timeout,
            },
            Failure::Io(e) => Error::io(format!("calling `{method}` of `{name}`"), e),
        }
    }
}

/// An [`Error::Io`]: what a transport was doing (`context`) when it failed.
pub fn io_error(context: impl Into<String>, source: std::io::Error) -> Error {
    Error::io(context, source)
}

/// Carries a client's requests to a server and its responses back.
///
/// Implemented by transport crates; a generated client built on one (with
/// [`RemoteClient::with_transport`]) calls [`round_trip`](Transport::round_trip) once per call,
/// from any thread, possibly several at once.
pub trait Transport: Send + Sync + std::panic::RefUnwindSafe + 'static {
    /// Sends `request` and returns the server's response, or why there is none, by `deadline`.
    fn round_trip(&self, request: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, Failure>;

    /// The largest arguments the server takes (its `max_message`), if the transport knows it:
    /// a call with larger ones fails with `TooLarge` before anything is sent.
    fn max_request(&self) -> Option<usize> {
        None
    }
}

/// A generated client (`XxxClient`) that a [`Transport`] can carry.
pub trait RemoteClient: Sized {
    /// A client whose calls go through `transport`, with `timeout` per call. `name` names the
    /// service in errors (an address, say).
    fn with_transport(name: &str, transport: Arc<dyn Transport>, timeout: Duration) -> Self;
}

/// A generated server (`XxxServer<S>`) whose service a transport can serve.
pub trait RemoteServer {
    /// The type that implements the trait.
    type Service;
    /// `service`, answering requests handed to [`Service::handle`], with `options`' workers and
    /// `max_message`. Fails with `Io` (`InvalidInput`) for options that cannot apply: no
    /// worker, a `max_message` out of range, access rules (they name local users; a transport
    /// has its own) or `stop_on_signals`.
    fn remote_service(service: Self::Service, options: &ServerOptions) -> Result<Service, Error>;
}

thread_local! {
    static REMOTE_CALLER: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Who makes the call a method is running for, when it came through a transport: the
/// identity the transport gives the remote peer (for zenoh, its session id).
/// [`Caller::current`](crate::Caller::current) is `None` then, since no local process calls.
pub fn remote_caller() -> Option<Arc<str>> {
    REMOTE_CALLER.with_borrow(Clone::clone)
}

/// A service object with its interface, answering requests as bytes.
pub struct Service {
    interface: &'static Interface,
    dispatch: Dispatch,
    max_message: usize,
    workers: usize,
}

// A method that panics leaves the service as a local server's does: the panic is caught, the
// caller told, and the service serves on (the documented behaviour of both). So a `Service`
// may be held across `catch_unwind` as a local server is, by an in-process transport say.
impl std::panic::RefUnwindSafe for Service {}
impl std::panic::UnwindSafe for Service {}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("interface", &self.interface.name)
            .finish_non_exhaustive()
    }
}

/// What a server thread keeps between requests: the aligned copy of the arguments.
#[derive(Default)]
struct Scratch {
    request: Private,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

impl Service {
    #[doc(hidden)]
    pub fn new(
        interface: &'static Interface,
        dispatch: Dispatch,
        options: &ServerOptions,
    ) -> Result<Self, Error> {
        let invalid = |what: &str| {
            Err(Error::io(
                format!("serving `{}` remotely", interface.name),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
            ))
        };
        if options.workers == 0 {
            return invalid("ServerOptions::workers(0): a server needs at least one worker");
        }
        if !(crate::server::MIN_MESSAGE..=crate::protocol::layout::MAX_CAPACITY)
            .contains(&options.max_message)
        {
            return invalid(
                "ServerOptions::max_message: the limit must be from 256 bytes to 1 GiB",
            );
        }
        if options.access != crate::options::Access::default() {
            return invalid(
                "ServerOptions::allow_uid/allow_gid/allow_any_user name users of this machine, \
                 who do not call a remote service: leave them out, and restrict remote callers \
                 with the transport's own authentication",
            );
        }
        if options.stop_on_signals {
            return invalid(
                "ServerOptions::stop_on_signals applies to a local server: stop a remote one by \
                 dropping it (from your own signal handling)",
            );
        }
        Ok(Service {
            interface,
            dispatch,
            max_message: options.max_message,
            workers: options.workers,
        })
    }

    /// How many threads should run its methods (`ServerOptions::workers`).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The largest arguments or result it takes, in bytes (`ServerOptions::max_message`).
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The response refusing a request without running anything, for a transport that cannot
    /// take it (`why`: overloaded, say). The caller gets `BadRequest` with `why`.
    pub fn refusal(&self, why: &str) -> Vec<u8> {
        let mut response = RESPONSE_MAGIC.to_vec();
        response.extend_from_slice(&(Status::BadRequest as u32).to_le_bytes());
        let end = floor_char_boundary(why, self.max_message);
        response.extend_from_slice(&why.as_bytes()[..end]);
        response
    }

    /// The trait's name.
    pub fn interface_name(&self) -> &'static str {
        self.interface.name
    }

    /// The interface as `shmrpc inspect` shows it (the same text a local server publishes).
    pub fn description(&self) -> String {
        interface::describe(self.interface)
    }

    /// Answers one request, whatever its bytes: runs the method it names (on this thread, as
    /// `caller`) if the request is valid, and returns the response to send back. Never panics
    /// for a bad request or a panicking method.
    pub fn handle(&self, request: &[u8], caller: &str) -> Vec<u8> {
        let mut response = Vec::new();
        let (status, len) = self.run(request, caller, &mut response);
        response[8..12].copy_from_slice(&(status as u32).to_le_bytes());
        debug_assert_eq!(response.len(), RESPONSE_HEADER + len);
        response
    }

    fn run(&self, request: &[u8], caller: &str, response: &mut Vec<u8>) -> (Status, usize) {
        let refuse = |response: &mut Vec<u8>, status: Status, why: &str| {
            response.truncate(RESPONSE_HEADER);
            let end = floor_char_boundary(why, self.max_message.max(64));
            response.extend_from_slice(&why.as_bytes()[..end]);
            (status, end)
        };
        response.clear();
        response.extend_from_slice(&RESPONSE_MAGIC);
        response.extend_from_slice(&[0; 4]);
        let header = match Header::parse(request) {
            Ok(header) => header,
            Err(why) => return refuse(response, Status::BadRequest, why),
        };
        let args = &request[header.args..];
        if args.len() > self.max_message {
            return refuse(
                response,
                Status::BadRequest,
                "the request is longer than the server's max_message",
            );
        }
        let tag = match self.server_tag(&header) {
            Ok(tag) => tag,
            Err(why) => return refuse(response, Status::NoMethod, &why),
        };
        let caller: Arc<str> = Arc::from(caller);
        // Out of the thread-local for the call: a method may call another service through
        // an in-process transport, which comes back here on this thread.
        let mut scratch = SCRATCH.with_borrow_mut(std::mem::take);
        // An aligned private copy, as a local server's: methods may borrow aligned slices.
        let copy = scratch.request.bytes(args.len());
        copy.copy_from_slice(args);
        let copy = &*copy;
        let mut reply = Vec::new();
        let dispatch = &self.dispatch;
        let previous = REMOTE_CALLER.with_borrow_mut(|c| c.replace(caller));
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let writer = Writer::buf_limited(&mut reply, self.max_message);
            dispatch(tag, copy, writer)
        }));
        REMOTE_CALLER.with_borrow_mut(|c| *c = previous);
        if scratch.request.capacity() <= KEEP_REQUEST {
            SCRATCH.with_borrow_mut(|kept| *kept = scratch);
        }
        let ran = ran.map(|r| r.map(|written| (written, reply)));
        match ran {
            Ok(Ok((written, _))) if written.too_large => {
                response.extend_from_slice(&(written.len as u64).to_le_bytes());
                response.extend_from_slice(&(self.max_message as u64).to_le_bytes());
                (Status::TooLarge, 16)
            }
            Ok(Ok((written, reply))) => {
                response.extend_from_slice(&reply);
                (Status::Ok, written.len)
            }
            Ok(Err(Invalid(why))) => refuse(response, Status::BadRequest, why),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                refuse(response, Status::Panicked, &message)
            }
        }
    }

    /// The tag of this server's method that the request names, or why there is none.
    fn server_tag(&self, header: &Header<'_>) -> Result<u32, String> {
        let by_tag = self
            .interface
            .methods
            .get(header.tag as usize)
            .and_then(Option::as_ref);
        if header.fingerprint == self.interface.fingerprint
            && let Some(m) = by_tag
        {
            return Ok(m.tag);
        }
        let found = self
            .interface
            .methods
            .iter()
            .flatten()
            .find(|m| m.name == header.name);
        match found {
            Some(m) if m.hash() == header.hash => Ok(m.tag),
            Some(m) => Err(format!(
                "the server has `{}`, with other types than this client's; nothing ran",
                interface::signature(m)
            )),
            None => Err(format!(
                "the server (trait `{}`) has no method `{}`; nothing ran",
                self.interface.name, header.name
            )),
        }
    }
}

/// A thread keeps an argument copy up to this size between requests (16 MiB messages, plus the
/// line a private copy starts into).
const KEEP_REQUEST: usize = (16 << 20) + 64;

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// A request's header, checked.
#[derive(Debug)]
struct Header<'a> {
    fingerprint: u128,
    hash: u64,
    tag: u32,
    name: &'a str,
    /// Where the arguments start.
    args: usize,
}

impl<'a> Header<'a> {
    fn parse(request: &'a [u8]) -> Result<Self, &'static str> {
        if request.len() < REQUEST_HEADER {
            return Err("the request is shorter than its header");
        }
        if request[..8] != REQUEST_MAGIC {
            return Err(if request[..7] == REQUEST_MAGIC[..7] {
                "the request is of another version of shmrpc's remote protocol"
            } else {
                "the request is not a shmrpc request"
            });
        }
        let u32_at = |at: usize| u32::from_le_bytes(request[at..at + 4].try_into().expect("4"));
        let fingerprint = u128::from_le_bytes(request[8..24].try_into().expect("16"));
        let hash = u64::from_le_bytes(request[24..32].try_into().expect("8"));
        let tag = u32_at(32);
        let len = u32_at(36) as usize;
        if len == 0 || len > MAX_METHOD_NAME {
            return Err("the request's method name is empty or too long");
        }
        let Some(name) = request.get(REQUEST_HEADER..REQUEST_HEADER + len) else {
            return Err("the request is shorter than its method name");
        };
        let name = std::str::from_utf8(name).map_err(|_| "the method name is not UTF-8")?;
        Ok(Header {
            fingerprint,
            hash,
            tag,
            name,
            args: REQUEST_HEADER + len,
        })
    }
}

/// A client's side: its transport and what it needs to build requests and read responses.
pub(crate) struct Link {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) interface: &'static Interface,
    pub(crate) timeout: Duration,
    /// Per method tag: its signature hash.
    hashes: Vec<u64>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("interface", &self.interface.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(
        transport: Arc<dyn Transport>,
        interface: &'static Interface,
        timeout: Duration,
    ) -> Self {
        let hashes = interface
            .methods
            .iter()
            .map(|m| m.as_ref().map_or(0, |m| m.hash()))
            .collect();
        Link {
            transport,
            interface,
            timeout,
            hashes,
        }
    }

    /// Makes one call through the transport.
    pub(crate) fn call<R>(
        &self,
        name: &str,
        tag: u32,
        method: &'static str,
        encode: impl Fn(&mut Writer<'_>),
        decode: impl FnOnce(&mut Reader<'_>) -> Result<R, Invalid>,
    ) -> Result<R, Error> {
        let deadline = crate::wait::after(self.timeout);
        let mut request = Vec::with_capacity(64);
        request.extend_from_slice(&REQUEST_MAGIC);
        request.extend_from_slice(&self.interface.fingerprint.to_le_bytes());
        let hash = self.hashes.get(tag as usize).copied().unwrap_or(0);
        request.extend_from_slice(&hash.to_le_bytes());
        request.extend_from_slice(&tag.to_le_bytes());
        request.extend_from_slice(&(method.len() as u32).to_le_bytes());
        request.extend_from_slice(method.as_bytes());
        let mut args = Vec::new();
        let mut w = Writer::buf(&mut args);
        encode(&mut w);
        if w.too_large() {
            return Err(Error::TooLarge {
                name: name.to_owned(),
                method,
                size: w.len() as u64,
                limit: u32::MAX as u64,
                response: false,
            });
        }
        if let Some(limit) = self.transport.max_request()
            && args.len() > limit
        {
            return Err(Error::TooLarge {
                name: name.to_owned(),
                method,
                size: args.len() as u64,
                limit: limit as u64,
                response: false,
            });
        }
        request.extend_from_slice(&args);
        let response = self
            .transport
            .round_trip(request, deadline)
            .map_err(|failure| failure.into_error(name, method, self.timeout))?;
        let corrupted = |detail: &str| Error::Corrupted {
            name: name.to_owned(),
            detail: format!("the response to `{method}` {detail}"),
        };
        if response.len() < RESPONSE_HEADER || response[..8] != RESPONSE_MAGIC {
            return Err(corrupted("is not a shmrpc response of this version"));
        }
        let status = u32::from_le_bytes(response[8..12].try_into().expect("4"));
        let body = &response[RESPONSE_HEADER..];
        let text = || String::from_utf8_lossy(body).into_owned();
        match status {
            s if s == Status::Ok as u32 => {
                // An aligned copy, as from a slot: replies may hold aligned slices.
                let mut copy = Private::default();
                let bytes = copy.bytes(body.len());
                bytes.copy_from_slice(body);
                let mut r = Reader::new(bytes);
                let value = decode(&mut r)
                    .and_then(|v| r.finish().map(|()| v))
                    .map_err(|Invalid(why)| corrupted(&format!("does not decode: {why}")))?;
                Ok(value)
            }
            s if s == Status::BadRequest as u32 => Err(Error::BadRequest {
                name: name.to_owned(),
                method,
                reason: text(),
            }),
            s if s == Status::Panicked as u32 => Err(Error::HandlerPanicked {
                name: name.to_owned(),
                method,
                message: text(),
            }),
            s if s == Status::TooLarge as u32 => {
                let (Some(size), Some(limit)) = (body.get(..8), body.get(8..16)) else {
                    return Err(corrupted("is cut short"));
                };
                Err(Error::TooLarge {
                    name: name.to_owned(),
                    method,
                    size: u64::from_le_bytes(size.try_into().expect("8")),
                    limit: u64::from_le_bytes(limit.try_into().expect("8")),
                    response: true,
                })
            }
            s if s == Status::NoMethod as u32 => Err(Error::InterfaceMismatch {
                name: name.to_owned(),
                difference: format!("method `{method}`: {}", text()),
            }),
            _ => Err(corrupted("has an unknown status")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_checked_field_by_field() {
        let mut ok = Vec::new();
        ok.extend_from_slice(&REQUEST_MAGIC);
        ok.extend_from_slice(&7u128.to_le_bytes());
        ok.extend_from_slice(&9u64.to_le_bytes());
        ok.extend_from_slice(&2u32.to_le_bytes());
        ok.extend_from_slice(&3u32.to_le_bytes());
        ok.extend_from_slice(b"add");
        ok.extend_from_slice(&[1, 2]);
        let h = Header::parse(&ok).unwrap();
        assert_eq!(
            (h.fingerprint, h.hash, h.tag, h.name, h.args),
            (7, 9, 2, "add", 43)
        );
        for cut in 0..43 {
            assert!(Header::parse(&ok[..cut]).is_err(), "{cut}");
        }
        let mut other = ok.clone();
        other[7] = 1;
        assert!(
            Header::parse(&other)
                .unwrap_err()
                .contains("another version")
        );
        let mut long = ok.clone();
        long[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Header::parse(&long).is_err());
        let mut bad = ok;
        bad[40] = 0xff;
        assert!(Header::parse(&bad).unwrap_err().contains("UTF-8"));
    }
}
