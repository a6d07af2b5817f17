#![doc = include_str!("../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Unsafe code lives in three modules only: `sys` (calls into the OS), `view` (typed access to
// mapped memory) and `fork_local` (a value a forked child replaces). Everything else is safe.
mod fork_local;
mod sys;
mod view;

mod caller;
mod client;
mod data;
mod error;
mod fault;
pub mod inspect;
mod interface;
mod name;
mod options;
mod protocol;
pub mod remote;
mod server;
mod trace;
mod transport;
mod wait;
mod wire;

pub use caller::Caller;
pub use data::ShmData;
pub use error::Error;
pub use name::MAX_NAME_LEN;
pub use options::{
    CONNECT_PATIENCE, ClientOptions, DEFAULT_CLIENT_SPIN_BUDGET, DEFAULT_MAX_MESSAGE,
    DEFAULT_MAX_SLOTS, DEFAULT_SERVER_SPIN_BUDGET, LONGEST_SPIN_BUDGET, ServerOptions,
    WaitStrategy,
};
pub use server::ServerHandle;
pub use wire::{Replied, Reply, Wire};

/// Locks a mutex whether or not a thread panicked while holding it: shmrpc's locks guard data
/// that stays consistent at every step.
trait MutexExt<T> {
    fn lock_anyway(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> MutexExt<T> for std::sync::Mutex<T> {
    fn lock_anyway(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Turns a trait into a shared-memory service: a typed client, a server, and their wire format.
///
/// ```
/// #[shmrpc::shm_service]
/// pub trait Greeter {
///     /// Adds one.
///     fn bump(&self, x: u64) -> u64;
/// }
/// ```
///
/// The trait itself is kept exactly as written; the server's type implements it.
///
/// # Generated items
///
/// For `trait Calculator`, with the trait's visibility:
///
/// | item | what it is |
/// |---|---|
/// | `struct CalculatorClient` | the client; `Send + Sync` and `Debug` |
/// | `CalculatorClient::connect(name: &str) -> Result<Self, Error>` | connects with [`ClientOptions::default()`] (timeout 5 s) |
/// | `CalculatorClient::connect_with(name: &str, options: ClientOptions) -> Result<Self, Error>` | connects with `options` |
/// | `CalculatorClient::<method>(&self, <args>) -> Result<R, Error>` | one per trait method: same name, arguments and docs; one blocking call |
/// | `CalculatorClient::<method>_into(&self, <args>, out: &mut R) -> Result<(), Error>` | for a method returning a `Vec`, `String`, `Box` or `Arc` (or an `Option`/`Result` of one): receives the result into `out`, reusing its storage |
/// | `struct CalculatorAsyncClient` | the async client: the same `connect`, `connect_with` and methods as `async fn`; `Send + Sync`, `Send` futures; dropping a call's future cancels the call |
/// | `struct CalculatorServer<S>` | the server of a `S: Calculator + Send + Sync + 'static` (methods run on worker threads, several at once with `ServerOptions::workers`); `Debug` |
/// | `CalculatorServer::bind(name: &str, service: S) -> Result<Self, Error>` | takes the name with [`ServerOptions::default()`] (only this user may connect, one worker) |
/// | `CalculatorServer::bind_with(name: &str, service: S, options: ServerOptions) -> Result<Self, Error>` | takes the name with `options` |
/// | `CalculatorServer::spawn(self) -> Result<ServerHandle, Error>` | serves on threads of its own until the [`ServerHandle`] is shut down or dropped |
/// | `CalculatorServer::run(self) -> Result<(), Error>` | serves on this thread (one of the workers), for ever |
/// | `CalculatorServer::name(&self) -> &str` | the service name |
///
/// A method may take `reply: Reply<'_, T>` as its last argument and return [`Replied`] (what
/// `reply.send(..)` returns), writing its result straight into the caller's slot; its client
/// method returns `T`, as for a method written `-> T`.
///
/// Everything else (argument and result codecs, the interface fingerprint and description, the
/// dispatch function) is in a `const _: () = { ... };` block: nothing else is added to your
/// module's namespace.
///
/// # Arguments of the attribute
///
/// - `crate = "<path>"`: where the runtime is, if you renamed the `shmrpc` dependency
///   (`#[shm_service(crate = "::rpc")]`).
///
/// (`capacity = <bytes>` is gone: a message may be as large as the server's
/// [`ServerOptions::max_message`].)
///
/// # Rules, and the compile error for each
///
/// | rule | if broken |
/// |---|---|
/// | the attribute is on a trait | "#[shm_service] goes on a trait" |
/// | no generics, lifetimes or `where` on the trait or its methods | "a service trait cannot be generic", "a service method cannot be generic or have lifetimes" |
/// | only methods: no associated types, constants or macros | "associated types are not allowed in a service trait" |
/// | every method takes `&self` | "a service method takes `&self`" (`&mut self`: keep state behind a `Mutex` or atomics) |
/// | no `async`, `unsafe`, `const` or `extern` methods | "`async fn` is not supported: shmrpc calls are blocking, with a deadline" |
/// | arguments are plain names | "a service method's argument must be a plain name" |
/// | no method named `connect` or `connect_with`, nothing starting with `__shmrpc` | "would clash with the generated client's own `connect`" |
/// | argument and result types implement [`Wire`] (see the README's "What can cross") | "`HashMap<String, u64>` cannot cross a shmrpc call", with the list of what can |
/// | no `usize`/`isize` anywhere in a signature | "`usize` differs between 32- and 64-bit processes ...; use `u64`" |
/// | the only references are `&str` and `&[T]` arguments, without named lifetimes | a message per kind: `&mut` ("return the data instead"), `&String` ("take `&str`"), `&Vec<T>` ("take `&[T]`"), `&u64` ("take `u64` by value"), `-> &str` ("return `String`"), `&'a str`, `Option<&str>` |
/// | no pointers, bare slices, tuples, `impl Trait`, `dyn Trait` or function pointers | a message per kind, saying what to pass instead |
/// | a method taking a `Reply` returns `Replied` | "a method that takes a `Reply` sends its result through it" |
/// | no method named `<m>_into` when `<m>` has an `_into` client method | "would clash with the client's `<m>_into`" |
///
/// Every mistake is reported at once, each on its own span, and the trait is still emitted as
/// written, so that its `impl` does not fail as well:
///
/// ```compile_fail
/// #[shmrpc::shm_service]
/// pub trait Store {
///     fn get(&self, index: usize) -> u64;          // error: `usize` differs between 32- and 64-bit processes
///     fn put(&mut self, key: u64, value: String);  // errors: `&mut self`, and `String`
/// }
/// ```
///
/// # What a call can return
///
/// Every client method returns `Result<R, shmrpc::Error>`; a method's own error (the `E` of a
/// `Result<T, E>` result) arrives inside `Ok`. See [`Error`] for each variant.
///
/// # On the wire
///
/// A request is the method's tag and the arguments' values back to back, little-endian; a
/// response is the result's (the README's "What can cross" gives each type's bytes). The server
/// validates the tag, every length and every value before calling the method. At `connect`,
/// client and server compare a 128-bit fingerprint of the whole interface; if it differs, the
/// client matches its methods to the server's by name and signature hash (argument and result
/// types, and every type's size, field names and offsets, recursively), and a call to a method
/// the server lacks or has otherwise is [`Error::InterfaceMismatch`] naming the difference.
pub use shmrpc_macros::shm_service;

/// Derives [`ShmData`](trait@ShmData): for a `#[repr(C)]`/`#[repr(transparent)]` struct of
/// `ShmData` fields without padding, or a field-less enum with `#[repr(u8|u16|u32|u64)]`.
///
/// ```
/// use shmrpc::ShmData;
///
/// #[derive(Clone, Copy, Debug, ShmData)]
/// #[repr(C)]
/// pub struct Reading { pub at_ns: u64, pub value: f32, pub sensor: u16, pub ok: bool, pub _pad: u8 }
///
/// #[derive(Clone, Copy, Debug, ShmData)]
/// #[repr(u16)]
/// pub enum Unit { Celsius = 1, Kelvin = 2 }
/// ```
///
/// Padding is refused because its bytes are undefined; the error says where it is, how many
/// bytes, and the field to add:
///
/// ```compile_fail
/// #[derive(shmrpc::ShmData)]
/// #[repr(C)]
/// pub struct Sample {
///     pub flag: u8,
///     pub value: u64, // error: 7 bytes of padding before this field: ... add a field `_pad: [u8; 7]` just before it
/// }
/// ```
///
/// Also refused, each with a message saying what to write instead: a missing `#[repr(C)]`,
/// `#[repr(packed)]`, generics, fields that are not `ShmData` (`usize`, `String`, references,
/// pointers, ...), enums with data or without an unsigned integer `#[repr]`, and unions. When
/// values are read from shared memory, an enum value that is none of its variants is refused.
///
/// If you renamed the `shmrpc` dependency, say where it is: `#[shmrpc(crate = "::rpc")]`.
pub use shmrpc_macros::ShmData;

/// Derives [`Wire`](trait@Wire) for a struct or an enum that holds strings, vectors or any other
/// type that can cross a call: written field by field in declaration order (an enum as its
/// variant's index, a `u32`, then that variant's fields). No `#[repr]` needed; no padding to
/// think about. Fixed-size types of `#[derive(ShmData)]` keep their zero-parse layout; use this
/// for the others.
///
/// ```
/// use shmrpc::Wire;
///
/// #[derive(Clone, Debug, PartialEq, Wire)]
/// pub struct Entry { pub key: String, pub value: Vec<u8>, pub ttl_s: u32 }
///
/// #[derive(Clone, Debug, PartialEq, Wire)]
/// pub enum Change { Put(Entry), Remove { key: String }, Clear }
///
/// #[shmrpc::shm_service]
/// pub trait Journal {
///     fn apply(&self, changes: Vec<Change>) -> Result<u64, String>;
///     fn scan(&self, prefix: &str) -> Vec<Entry>;
/// }
/// ```
///
/// Every field's type must itself cross calls (the error names the field otherwise); generic
/// and recursive types are not supported. Changing a field (its name, type or position) changes
/// the signature of every method that uses the type: a client and a server that disagree get
/// `InterfaceMismatch` for those methods, with both definitions in the message.
pub use shmrpc_macros::Wire;

/// What generated code needs. Not part of the API: it changes in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::client::{AsyncClient, Client};
    pub use crate::data::{Codec, Invalid, field, max, no_padding_after, no_padding_before};
    pub use crate::fault::Step as FaultStep;
    pub use crate::interface::{Case, Field, Interface, MethodShape, Shape, Variant};
    pub use crate::server::{Dispatch, Server};
    pub use crate::wire::{
        Reader, STR_SHAPE, Seq, SliceCodec, WireCodec, Writer, Written, codec, decode_fixed,
        put_str, send, slice_codec,
    };
    pub use ::core;
    pub use ::std;
    pub use ::zerocopy;

    /// Hooks for the behaviour tests, which attack the protocol from a hostile client's seat.
    /// Compiled in only with the test-only `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub mod testing {
        pub use crate::transport::testing::*;
    }
}
