//! The wire format: one codec constant per argument and result (the only place a type must be
//! `ShmData`, so a wrong type is reported once, on its span), request lengths, the slot
//! capacity with one assertion per method, and the interface with its fingerprint.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::Cx;
use crate::naming;
use crate::parse::Method;

pub(crate) fn expand(cx: &Cx<'_>) -> TokenStream {
    let methods = cx.service.methods.iter().map(|m| method(cx, m));
    let capacity = capacity(cx);
    let interface = interface(cx);
    quote! {
        #(#methods)*
        #capacity
        #interface
    }
}

/// `#[cfg(..)]` attributes of the method, as written.
pub(crate) fn cfgs(m: &Method) -> TokenStream {
    let cfgs = &m.cfgs;
    quote!(#(#cfgs)*)
}

/// The `#[cfg]` under which the method is compiled out, if it has any.
fn cfg_out(m: &Method) -> Option<TokenStream> {
    if m.cfgs.is_empty() {
        return None;
    }
    let predicates = m.cfgs.iter().filter_map(|a| match &a.meta {
        syn::Meta::List(list) => Some(list.tokens.clone()),
        _ => None,
    });
    Some(quote!(#[cfg(not(all(#(#predicates),*)))]))
}

/// The result type, `()` for none.
pub(crate) fn output(m: &Method) -> TokenStream {
    match &m.output {
        Some(ty) => quote!(#ty),
        None => quote!(()),
    }
}

fn method(cx: &Cx<'_>, m: &Method) -> TokenStream {
    let private = cx.private();
    let cfgs = cfgs(m);
    let tag = m.tag;
    let codecs = m.args.iter().enumerate().map(|(i, arg)| {
        let name = naming::arg_codec(tag, i);
        let ty = &arg.ty;
        quote_spanned! {ty.span()=>
            #cfgs
            const #name: #private::Codec<#ty> = #private::codec::<#ty>();
        }
    });
    let arg_names: Vec<_> = (0..m.args.len())
        .map(|i| naming::arg_codec(tag, i))
        .collect();
    let reply = naming::reply_codec(tag);
    let out = output(m);
    let out_span = m
        .output
        .as_ref()
        .map_or_else(|| m.sig.ident.span(), |t| t.span());
    let request_len = naming::request_len(tag);
    let need = naming::slot_need(tag);
    let shape = naming::method_shape(tag);
    let wire_name = &m.wire_name;
    let cfg_out = cfg_out(m).map(|cfg_out| {
        quote! {
            #cfg_out
            const #need: usize = 0;
            #cfg_out
            const #shape: #private::core::option::Option<#private::MethodShape> =
                #private::core::option::Option::None;
        }
    });
    let reply_codec = quote_spanned! {out_span=>
        #cfgs
        const #reply: #private::ReplyCodec<#out> = #private::reply::<#out>();
    };
    quote! {
        #(#codecs)*
        #reply_codec
        #cfgs
        const #request_len: usize = 0 #(+ #arg_names.size)*;
        #cfgs
        const #need: usize = #private::max(#request_len, #reply.size);
        #cfgs
        const #shape: #private::core::option::Option<#private::MethodShape> =
            #private::core::option::Option::Some(#private::MethodShape {
                name: #wire_name,
                tag: #tag,
                args: &[#(#arg_names.shape),*],
                reply: #reply.shape,
            });
        #cfg_out
    }
}

fn capacity(cx: &Cx<'_>) -> TokenStream {
    let private = cx.private();
    let name = naming::capacity();
    let needs: Vec<_> = cx
        .service
        .methods
        .iter()
        .map(|m| naming::slot_need(m.tag))
        .collect();
    let Some(lit) = &cx.service.args.capacity else {
        return largest(&private, &name, &needs);
    };
    let asserts = cx.service.methods.iter().map(|m| {
        let need = naming::slot_need(m.tag);
        let message = format!(
            "method `{}` does not fit the slot: its request or response is larger than \
             #[shm_service(capacity = {})] bytes; raise the capacity, or leave it out to size the \
             slot for the largest method",
            m.wire_name, lit
        );
        let assert = naming::respan(quote!(#private::core::assert!), m.sig.ident.span());
        quote_spanned! {m.sig.ident.span()=>
            const _: () = #assert(#need <= #name, #message);
        }
    });
    quote! {
        const #name: usize = #lit;
        #(#asserts)*
    }
}

fn largest(private: &TokenStream, name: &syn::Ident, needs: &[syn::Ident]) -> TokenStream {
    let mut expr = quote!(0usize);
    for need in needs {
        expr = quote!(#private::max(#expr, #need));
    }
    quote!(const #name: usize = #expr;)
}

fn interface(cx: &Cx<'_>) -> TokenStream {
    let private = cx.private();
    let name = naming::interface();
    let capacity = naming::capacity();
    let trait_name = cx.service.ident.unraw().to_string();
    let shapes = cx
        .service
        .methods
        .iter()
        .map(|m| naming::method_shape(m.tag));
    quote! {
        static #name: #private::Interface = #private::Interface::new(#trait_name, &[#(#shapes),*], #capacity);
    }
}
