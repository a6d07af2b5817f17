//! The wire format: one codec constant per argument and result (the only place a type must be
//! `Wire`, so a wrong type is reported once, on its span), and the interface with its
//! fingerprint.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::Cx;
use crate::naming;
use crate::parse::Method;
use crate::types::{self, ArgKind};

pub(crate) fn expand(cx: &Cx<'_>) -> TokenStream {
    let methods = cx.service.methods.iter().map(|m| method(cx, m));
    let interface = interface(cx);
    quote! {
        #(#methods)*
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
    let mut shapes = Vec::new();
    let codecs: Vec<TokenStream> = m
        .args
        .iter()
        .enumerate()
        .filter_map(|(i, arg)| {
            let name = naming::arg_codec(tag, i);
            let ty = &arg.ty;
            match types::arg_kind(ty) {
                ArgKind::Str => {
                    shapes.push(quote!(#private::STR_SHAPE));
                    None
                }
                ArgKind::Slice(elem) => {
                    shapes.push(quote!(#name.shape));
                    let make = naming::respan(quote!(#private::slice_codec::<#elem>), elem.span());
                    Some(quote_spanned! {elem.span()=>
                        #cfgs
                        const #name: #private::SliceCodec<#elem> = #make();
                    })
                }
                ArgKind::Owned => {
                    shapes.push(quote!(#name.shape));
                    let make = naming::respan(quote!(#private::codec::<#ty>), ty.span());
                    Some(quote_spanned! {ty.span()=>
                        #cfgs
                        const #name: #private::WireCodec<#ty> = #make();
                    })
                }
            }
        })
        .collect();
    let reply = naming::reply_codec(tag);
    let out = output(m);
    let out_span = m
        .output
        .as_ref()
        .map_or_else(|| m.sig.ident.span(), |t| t.span());
    let shape = naming::method_shape(tag);
    let wire_name = &m.wire_name;
    // The `Reply` argument, if any, is not an argument on the wire.
    let arg_names: Vec<String> = m
        .args
        .iter()
        .take(shapes.len())
        .enumerate()
        .map(|(i, a)| {
            a.ident
                .as_ref()
                .map_or_else(|| format!("arg{i}"), |id| id.unraw().to_string())
        })
        .collect();
    let cfg_out = cfg_out(m).map(|cfg_out| {
        quote! {
            #cfg_out
            const #shape: #private::core::option::Option<#private::MethodShape> =
                #private::core::option::Option::None;
        }
    });
    let make = naming::respan(quote!(#private::codec::<#out>), out_span);
    let reply_codec = quote_spanned! {out_span=>
        #cfgs
        const #reply: #private::WireCodec<#out> = #make();
    };
    quote! {
        #(#codecs)*
        #reply_codec
        #cfgs
        const #shape: #private::core::option::Option<#private::MethodShape> =
            #private::core::option::Option::Some(#private::MethodShape {
                name: #wire_name,
                tag: #tag,
                args: &[#(#shapes),*],
                arg_names: &[#(#arg_names),*],
                reply: #reply.shape,
            });
        #cfg_out
    }
}

fn interface(cx: &Cx<'_>) -> TokenStream {
    let private = cx.private();
    let name = naming::interface();
    let trait_name = cx.service.ident.unraw().to_string();
    let shapes = cx
        .service
        .methods
        .iter()
        .map(|m| naming::method_shape(m.tag));
    quote! {
        static #name: #private::Interface = #private::Interface::new(#trait_name, &[#(#shapes),*]);
    }
}
