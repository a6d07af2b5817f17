//! Procedural macros of [shmrpc](https://docs.rs/shmrpc). Depend on `shmrpc`, which re-exports
//! them and documents them; this crate's API is only what `shmrpc` re-exports.
//!
//! The attribute reads like a small compiler: `parse` turns the trait into a model, `check`
//! runs named checks over it, and `expand` writes one artefact per file from the model.

mod check;
mod ctxt;
mod derive;
mod derive_wire;
mod expand;
mod naming;
mod parse;
mod types;

#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

/// See `shmrpc::shm_service`.
#[proc_macro_attribute]
pub fn shm_service(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::shm_service(args.into(), input.into()).into()
}

/// See `shmrpc::ShmData`.
#[proc_macro_derive(ShmData, attributes(shmrpc))]
pub fn derive_shm_data(input: TokenStream) -> TokenStream {
    derive::shm_data(input.into()).into()
}

/// See `shmrpc::Wire`.
#[proc_macro_derive(Wire, attributes(shmrpc))]
pub fn derive_wire(input: TokenStream) -> TokenStream {
    derive_wire::wire(input.into()).into()
}
