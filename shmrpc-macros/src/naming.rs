//! Every name the macros generate, in one place.

use proc_macro2::{Ident, Span};
use quote::format_ident;

/// `CalculatorClient`
pub(crate) fn client(service: &Ident) -> Ident {
    format_ident!("{}Client", service)
}

/// `CalculatorAsyncClient`
pub(crate) fn async_client(service: &Ident) -> Ident {
    format_ident!("{}AsyncClient", service)
}

/// `CalculatorServer`
pub(crate) fn server(service: &Ident) -> Ident {
    format_ident!("{}Server", service)
}

/// Inherent items of the generated client: a trait method may not take these names.
pub(crate) const CLIENT_ITEMS: &[&str] = &["connect", "connect_with"];

/// Prefix reserved for generated identifiers.
pub(crate) const RESERVED_PREFIX: &str = "__shmrpc";

fn hidden(name: String) -> Ident {
    // Mixed-site hygiene: a user's identifier can never resolve to (or shadow) these.
    Ident::new(&name, Span::mixed_site())
}

/// The codec of argument `index` of method `tag`.
pub(crate) fn arg_codec(tag: u32, index: usize) -> Ident {
    hidden(format!("__SHMRPC_M{tag}_ARG{index}"))
}

/// The codec of the result of method `tag`.
pub(crate) fn reply_codec(tag: u32) -> Ident {
    hidden(format!("__SHMRPC_M{tag}_REPLY"))
}

/// The shape of method `tag` (`None` when compiled out).
pub(crate) fn method_shape(tag: u32) -> Ident {
    hidden(format!("__SHMRPC_M{tag}_SHAPE"))
}

/// The interface static.
pub(crate) fn interface() -> Ident {
    hidden("__SHMRPC_INTERFACE".into())
}

/// The dispatch function.
pub(crate) fn dispatch() -> Ident {
    hidden("__shmrpc_dispatch".into())
}

/// A generated local variable.
pub(crate) fn local(name: &str) -> Ident {
    hidden(format!("__shmrpc_{name}"))
}

/// The decoded argument `index`.
pub(crate) fn decoded_arg(index: usize) -> Ident {
    hidden(format!("__shmrpc_arg{index}"))
}

/// `tokens` with every span set to `span`, so that an error raised inside them (a failed
/// `const` assertion, a missing trait) points at the user's code that caused it.
pub(crate) fn respan(tokens: proc_macro2::TokenStream, span: Span) -> proc_macro2::TokenStream {
    use proc_macro2::{Group, TokenTree};
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(g) = &tree {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tree = TokenTree::Group(group);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
