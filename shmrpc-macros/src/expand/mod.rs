//! `#[shm_service]`: parse, check, then one artefact per file, each walking the model.
//!
//! | file | writes |
//! |---|---|
//! | `wire.rs` | per-method codecs, request lengths, slot capacity and its assertions, the interface |
//! | `client.rs` | `XxxClient` and its methods |
//! | `server.rs` | `XxxServer<S>`, its methods and the dispatch function |

mod client;
mod server;
mod wire;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemTrait;

use crate::ctxt::Errors;
use crate::{check, parse};

/// Expands the attribute. On any mistake, emits the trait unchanged plus one error per mistake.
pub(crate) fn shm_service(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = parse::service_args(args, &mut errors);
    let item: ItemTrait = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            errors.at(&input, "#[shm_service] goes on a trait: `pub trait Calculator { fn add(&self, a: i64, b: i64) -> i64; }`");
            let errors = errors.to_compile_errors();
            return quote!(#input #errors);
        }
    };
    let service = parse::service(item, args);
    check::service(&service, &mut errors);
    let item = &service.item;
    if !errors.is_empty() {
        let errors = errors.to_compile_errors();
        return quote!(#item #errors);
    }
    let krate = service
        .args
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::shmrpc));
    let cx = Cx {
        service: &service,
        krate: &krate,
    };
    let wire = wire::expand(&cx);
    let (client_type, client_impl) = client::expand(&cx);
    let (server_type, server_impl) = server::expand(&cx);
    quote! {
        #item
        #client_type
        #server_type
        const _: () = {
            #wire
            #client_impl
            #server_impl
        };
    }
}

/// What every artefact needs: the model and the path to the runtime.
pub(crate) struct Cx<'a> {
    pub(crate) service: &'a parse::Service,
    pub(crate) krate: &'a syn::Path,
}

impl Cx<'_> {
    /// `::shmrpc::__private`
    pub(crate) fn private(&self) -> TokenStream {
        let krate = self.krate;
        quote!(#krate::__private)
    }
}
