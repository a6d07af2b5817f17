//! Named checks over the service model. Each records its mistakes with the fix in the message;
//! all of them run, so every mistake is reported at once.

use syn::{TraitItem, Type};

use crate::ctxt::Errors;
use crate::naming;
use crate::parse::{Method, Receiver, Service};
use crate::types::{self, Position};

/// Runs every check.
pub(crate) fn service(service: &Service, errors: &mut Errors) {
    trait_is_plain(service, errors);
    only_methods(service, errors);
    capacity_is_gone(service, errors);
    for method in &service.methods {
        receiver_is_shared_ref(method, errors);
        signature_is_plain(method, errors);
        name_is_free(method, errors);
        into_is_free(service, method, errors);
        arguments_are_named(method, errors);
        types_can_cross(method, errors);
    }
}

fn trait_is_plain(service: &Service, errors: &mut Errors) {
    let item = &service.item;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.at(
            &item.generics,
            "a service trait cannot be generic: the slot needs one fixed layout; write one trait per \
             concrete type",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        errors.at(
            unsafety,
            "a service trait cannot be `unsafe`; remove `unsafe`",
        );
    }
    if let Some(auto) = &item.auto_token {
        errors.at(
            auto,
            "a service trait cannot be an auto trait; remove `auto`",
        );
    }
}

fn only_methods(service: &Service, errors: &mut Errors) {
    for item in &service.other_items {
        let what = match item {
            TraitItem::Type(_) => "associated types",
            TraitItem::Const(_) => "associated constants",
            TraitItem::Macro(_) => "macro invocations",
            _ => "items other than methods",
        };
        errors.at(
            item,
            format!(
                "{what} are not allowed in a service trait: client and server need one fixed \
                 interface; use concrete types, or move the item out of the trait"
            ),
        );
    }
}

fn capacity_is_gone(service: &Service, errors: &mut Errors) {
    if let Some(lit) = &service.args.capacity {
        errors.at(
            lit,
            "`capacity` is gone: a connection's slot holds any message up to the server's \
             `ServerOptions::max_message` (64 MiB unless set); remove `capacity = ...`",
        );
    }
}

fn receiver_is_shared_ref(method: &Method, errors: &mut Errors) {
    match &method.receiver {
        Receiver::SharedRef => {}
        Receiver::MutRef(receiver) => errors.at(
            receiver,
            "a service method takes `&self`, not `&mut self`: the server calls it through a shared \
             reference; keep mutable state behind a Mutex or atomics inside the service",
        ),
        Receiver::Other(receiver) => errors.at(
            receiver,
            "a service method takes `&self`: the server keeps the service and calls it by reference; \
             change the receiver to `&self`",
        ),
        Receiver::Missing => errors.at(
            &method.sig.ident,
            "a service method takes `&self`: add `&self` as the first parameter",
        ),
    }
}

fn signature_is_plain(method: &Method, errors: &mut Errors) {
    let sig = &method.sig;
    if let Some(asyncness) = &sig.asyncness {
        errors.at(
            asyncness,
            "`async fn` is not supported: shmrpc calls are blocking, with a deadline; make the method \
             synchronous",
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.at(
            &sig.generics,
            "a service method cannot be generic or have lifetimes: each method needs one fixed \
             layout; use concrete types",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.at(
            unsafety,
            "a service method cannot be `unsafe`; remove `unsafe`",
        );
    }
    if let Some(constness) = &sig.constness {
        errors.at(
            constness,
            "a service method cannot be `const`; remove `const`",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.at(
            abi,
            "a service method cannot have an `extern` ABI; remove it",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.at(variadic, "a service method cannot be variadic");
    }
}

fn name_is_free(method: &Method, errors: &mut Errors) {
    let name = method.wire_name.as_str();
    if naming::CLIENT_ITEMS.contains(&name) {
        errors.at(
            &method.ident,
            format!(
                "a method named `{name}` would clash with the generated client's own `{name}`; \
                 rename the method"
            ),
        );
    } else if name.starts_with(naming::RESERVED_PREFIX) {
        errors.at(
            &method.ident,
            "names starting with `__shmrpc` are reserved for shmrpc; rename the method",
        );
    }
}

/// A method returning a vector, a string or a box gets a client method `<name>_into`: no other
/// method may be called that.
fn into_is_free(service: &Service, method: &Method, errors: &mut Errors) {
    let taken_by = service.methods.iter().find(|m| {
        m.output.as_ref().is_some_and(types::reusable)
            && format!("{}_into", m.wire_name) == method.wire_name
    });
    if let Some(m) = taken_by {
        errors.at(
            &method.ident,
            format!(
                "a method named `{}` would clash with the client's `{}` (which receives the result \
                 of `{}` into a value the caller reuses); rename the method",
                method.wire_name, method.wire_name, m.wire_name
            ),
        );
    }
}

fn arguments_are_named(method: &Method, errors: &mut Errors) {
    for arg in &method.args {
        match &arg.ident {
            None => errors.at(
                &arg.pat,
                "a service method's argument must be a plain name (no pattern, `mut` or `ref`); \
                 destructure it inside the implementation",
            ),
            Some(ident) if ident.to_string().starts_with(naming::RESERVED_PREFIX) => {
                errors.at(
                    ident,
                    "names starting with `__shmrpc` are reserved for shmrpc; rename the argument",
                );
            }
            Some(_) => {}
        }
    }
}

fn types_can_cross(method: &Method, errors: &mut Errors) {
    for arg in &method.args {
        if matches!(&arg.ty, Type::Tuple(t) if t.elems.is_empty()) {
            errors.at(
                &arg.ty,
                "an argument of type `()` carries nothing; remove it",
            );
        }
        types::check(&arg.ty, Position::Arg, errors);
    }
    if let Some(output) = &method.output {
        types::check(output, Position::Result, errors);
    }
    let returns_replied = |ty: &Type| matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Replied"));
    match &method.reply {
        Some(syn::ReturnType::Type(_, ty)) if returns_replied(ty) => {}
        Some(other) => {
            let at: &dyn quote::ToTokens = match other {
                syn::ReturnType::Type(_, ty) => ty,
                syn::ReturnType::Default => &method.sig.ident,
            };
            errors.at(
                at,
                "a method that takes a `Reply` sends its result through it: return \
                 `shmrpc::Replied`, what `reply.send(..)` returns",
            );
        }
        None => {}
    }
}
