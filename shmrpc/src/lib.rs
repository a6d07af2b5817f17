#![doc = include_str!("../../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Unsafe code lives in two modules only: `sys` (calls into the OS) and `view` (typed access to
// mapped memory). Everything else is safe.
mod sys;
mod view;

mod client;
mod data;
mod doorbell;
mod error;
mod fault;
mod interface;
mod layout;
mod lock;
mod name;
mod options;
mod segment;
mod server;
mod wait;

pub use data::ShmData;
pub use error::Error;
pub use name::MAX_NAME_LEN;
pub use options::{ClientOptions, DEFAULT_SPIN_BUDGET, ServerOptions, WaitStrategy};
pub use server::ServerHandle;

/// Turns a trait into a shared-memory service: a typed client, a server and their wire format.
///
/// ```
/// #[shmrpc::shm_service]
/// pub trait Greeter {
///     /// Adds one.
///     fn bump(&self, x: u64) -> u64;
/// }
/// ```
///
/// # What it generates
///
/// For `trait Calculator` (the trait itself is kept as written; the server's type implements it):
///
/// | item | what it is |
/// |---|---|
/// | `CalculatorClient` | `Send + Sync` client; `connect(name)`, `connect_with(name, ClientOptions)`, and one method per trait method, same name and arguments, returning `Result<R, shmrpc::Error>` |
/// | `CalculatorServer<S>` | `bind(name, service)`, `bind_with(name, service, ServerOptions)`, `spawn() -> ServerHandle`, `run()`, `name()` |
///
/// The wire format (argument and result encodings, the interface fingerprint and description)
/// lives in a `const _: () = { … };` block and is not nameable.
///
/// # Rules
///
/// - Methods take `&self` and arguments by value, each of a type that implements [`ShmData`];
///   they return `()`, a `ShmData` type, or `Result<T, E>` / `Option<T>` of `ShmData` types.
/// - No generics, lifetimes, associated items, `async fn`, `unsafe fn`, default bodies, patterns
///   as arguments, or methods named like the client's own items (`connect`, `connect_with`).
/// - `usize` and `isize` are refused: their size differs between 32- and 64-bit processes.
/// - The largest request or response must fit the slot: `#[shm_service(capacity = N)]` sets the
///   slot size in bytes (default: what the largest method needs), and a method that does not fit
///   is a compile error naming it.
/// - Doc comments and `#[cfg]` on methods are carried through; a method's tag is its position in
///   the trait, compiled in or not.
///
/// Every mistake is reported at once, each on its own span, and the trait is still emitted so
/// that the `impl` of it does not fail as well.
pub use shmrpc_macros::shm_service;

/// Derives [`ShmData`] for a `#[repr(C)]`/`#[repr(transparent)]` struct of `ShmData` fields
/// without padding, or a field-less enum with `#[repr(u8|u16|u32|u64)]`.
///
/// See [`ShmData`](trait@ShmData) for an example. Padding, a missing `#[repr]`, `usize` fields,
/// generics and data-carrying enums are compile errors that say what to write instead.
pub use shmrpc_macros::ShmData;

/// What generated code needs. Not part of the API: it changes in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::client::Client;
    pub use crate::data::{
        Codec, Invalid, Reply, ReplyCodec, codec, no_padding_after, no_padding_before, reply,
    };
    pub use crate::fault::Step as FaultStep;
    pub use crate::interface::{Field, Interface, MethodShape, ReplyShape, Shape, Variant};
    pub use crate::server::{Dispatch, Server};
    pub use ::core;
    pub use ::std;
    pub use ::zerocopy;

    /// Writes one argument at `offset`.
    #[inline]
    pub fn put<T>(codec: &crate::data::Codec<T>, value: &T, buf: &mut [u8], offset: usize) {
        (codec.encode)(value, &mut buf[offset..offset + codec.size]);
    }

    /// Reads one argument at `offset`.
    #[inline]
    pub fn get<T>(codec: &crate::data::Codec<T>, buf: &[u8], offset: usize) -> Result<T, Invalid> {
        (codec.decode)(&buf[offset..offset + codec.size])
    }

    /// Checks a request's length before decoding its arguments.
    #[inline]
    pub fn check_len(buf: &[u8], len: usize) -> Result<(), Invalid> {
        if buf.len() == len {
            Ok(())
        } else {
            Err(Invalid("a request of the wrong length for its method"))
        }
    }

    /// The larger of two sizes, in `const`.
    pub const fn max(a: usize, b: usize) -> usize {
        if a > b { a } else { b }
    }
}
