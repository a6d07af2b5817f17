//! From the trait's syntax to a plain model of the service. Nothing is rejected here unless it
//! cannot be modelled; `check` decides what is allowed.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, Ident, ItemTrait, LitInt, Pat, ReturnType, Signature, TraitItem, Type,
};

use crate::ctxt::Errors;

/// A service: the trait, its arguments and its methods.
pub(crate) struct Service {
    /// The trait as written; emitted unchanged.
    pub(crate) item: ItemTrait,
    pub(crate) ident: Ident,
    pub(crate) args: ServiceArgs,
    pub(crate) methods: Vec<Method>,
    /// Trait items other than methods (associated types, consts, macros), for `check`.
    pub(crate) other_items: Vec<TraitItem>,
}

/// `#[shm_service(capacity = N, crate = "path")]`
#[derive(Default)]
pub(crate) struct ServiceArgs {
    pub(crate) capacity: Option<LitInt>,
    pub(crate) krate: Option<syn::Path>,
}

/// One trait method.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    /// The method's name on the wire (a raw identifier's name without `r#`).
    pub(crate) wire_name: String,
    /// Position in the trait: the method tag.
    pub(crate) tag: u32,
    pub(crate) cfgs: Vec<Attribute>,
    pub(crate) docs: Vec<Attribute>,
    pub(crate) receiver: Receiver,
    pub(crate) args: Vec<Arg>,
    /// `None` for `()`. The `T` of a `Reply<'_, T>` argument, if the method has one.
    pub(crate) output: Option<Type>,
    /// The return type as written by a method that takes a `Reply<'_, T>` (its last argument,
    /// which is not in `args`): it must be `Replied`.
    pub(crate) reply: Option<ReturnType>,
    /// The signature as written, for checks and spans.
    pub(crate) sig: Signature,
}

/// What the method takes `self` as.
pub(crate) enum Receiver {
    /// `&self`
    SharedRef,
    /// `&mut self`
    MutRef(syn::Receiver),
    /// `self`, `mut self`, `self: Box<Self>` and the like.
    Other(syn::Receiver),
    /// No receiver: an associated function.
    Missing,
}

/// One argument.
pub(crate) struct Arg {
    /// `None` when the argument is a pattern other than a plain name.
    pub(crate) ident: Option<Ident>,
    pub(crate) pat: Pat,
    pub(crate) ty: Type,
}

/// Parses the attribute's arguments, recording mistakes.
pub(crate) fn service_args(args: TokenStream, errors: &mut Errors) -> ServiceArgs {
    let mut out = ServiceArgs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("capacity") {
            let value: LitInt = meta.value()?.parse()?;
            if out.capacity.replace(value).is_some() {
                return Err(meta.error("`capacity` is given twice; give it once"));
            }
            Ok(())
        } else if meta.path.is_ident("crate") {
            let value: syn::LitStr = meta.value()?.parse()?;
            if out.krate.replace(value.parse()?).is_some() {
                return Err(meta.error("`crate` is given twice; give it once"));
            }
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument; #[shm_service] takes `capacity = <bytes>` and `crate = \"<path to shmrpc>\"`",
            ))
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        errors.push(e);
    }
    out
}

/// Builds the model of `item`.
pub(crate) fn service(item: ItemTrait, args: ServiceArgs) -> Service {
    let mut methods = Vec::new();
    let mut other_items = Vec::new();
    for (index, trait_item) in item.items.iter().enumerate() {
        match trait_item {
            TraitItem::Fn(f) => methods.push(method(index as u32, &f.attrs, &f.sig)),
            other => other_items.push(other.clone()),
        }
    }
    // Tags count methods only.
    for (tag, m) in methods.iter_mut().enumerate() {
        m.tag = tag as u32;
    }
    Service {
        ident: item.ident.clone(),
        item,
        args,
        methods,
        other_items,
    }
}

fn method(tag: u32, attrs: &[Attribute], sig: &Signature) -> Method {
    let is = |a: &&Attribute, name| a.path().is_ident(name);
    let mut receiver = Receiver::Missing;
    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => receiver = receiver_kind(r),
            FnArg::Typed(t) => args.push(Arg {
                ident: match &*t.pat {
                    Pat::Ident(p)
                        if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() =>
                    {
                        Some(p.ident.clone())
                    }
                    _ => None,
                },
                pat: (*t.pat).clone(),
                ty: (*t.ty).clone(),
            }),
        }
    }
    // `reply: Reply<'_, T>` last: the method sends a `T` itself.
    let reply_of = args.last().and_then(|a: &Arg| reply_type(&a.ty));
    let reply = reply_of.as_ref().map(|_| sig.output.clone());
    if reply_of.is_some() {
        args.pop();
    }
    Method {
        ident: sig.ident.clone(),
        wire_name: sig.ident.unraw().to_string(),
        tag,
        cfgs: attrs.iter().filter(|a| is(a, "cfg")).cloned().collect(),
        docs: attrs.iter().filter(|a| is(a, "doc")).cloned().collect(),
        receiver,
        args,
        output: match (&reply_of, &sig.output) {
            (Some(ty), _) => (!is_unit(ty)).then(|| ty.clone()),
            (None, ReturnType::Default) => None,
            (None, ReturnType::Type(_, ty)) if is_unit(ty) => None,
            (None, ReturnType::Type(_, ty)) => Some((**ty).clone()),
        },
        reply,
        sig: sig.clone(),
    }
}

fn receiver_kind(r: &syn::Receiver) -> Receiver {
    match (&r.reference, r.colon_token) {
        (Some(_), None) if r.mutability.is_none() => Receiver::SharedRef,
        (Some(_), None) => Receiver::MutRef(r.clone()),
        _ => Receiver::Other(r.clone()),
    }
}

/// The `T` of `Reply<'_, T>` (any path ending in `Reply`).
fn reply_type(ty: &Type) -> Option<Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Reply" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    })
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}
