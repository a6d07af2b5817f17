//! Types the macros can tell are wrong just by reading them, and how an argument crosses.
//! Everything else is left to the `Wire` and `ShmData` bounds, whose messages are ours too.

use syn::{GenericArgument, PathArguments, Type};

use crate::ctxt::Errors;

/// Where a type is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// A method argument: `&str` and `&[T]` are allowed here.
    Arg,
    /// A method's result.
    Result,
    /// Inside another type, or a field of a `ShmData` type.
    Inner,
}

/// How an argument crosses.
pub(crate) enum ArgKind {
    /// `&str`: written as text, lent to the method out of the server's copy.
    Str,
    /// `&[T]`: written as a sequence, lent to the method where `T` allows.
    Slice(Box<Type>),
    /// Any other type, by value.
    Owned,
}

/// How the argument of type `ty` (already checked) crosses.
pub(crate) fn arg_kind(ty: &Type) -> ArgKind {
    match strip(ty) {
        Type::Reference(r) => match strip(&r.elem) {
            Type::Slice(s) => ArgKind::Slice(s.elem.clone()),
            _ => ArgKind::Str,
        },
        _ => ArgKind::Owned,
    }
}

fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => strip(&p.elem),
        Type::Group(g) => strip(&g.elem),
        other => other,
    }
}

/// The last path segment's name, if `ty` is a path.
fn last_ident(ty: &Type) -> Option<String> {
    match strip(ty) {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// Whether the result type `ty` gets a `_into` client method: a vector, a string, a box or an
/// `Arc`, or an `Option` or `Result` of one, whose storage the caller can lend for the next
/// result.
pub(crate) fn reusable(ty: &Type) -> bool {
    match last_ident(ty).as_deref() {
        Some("Vec" | "String" | "Box" | "Arc") => true,
        Some("Option" | "Result") => first_type_arg(ty).is_some_and(reusable),
        _ => false,
    }
}

fn first_type_arg(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = strip(ty) else {
        return None;
    };
    let PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// Records a mistake for every part of `ty` that can never cross a call.
pub(crate) fn check(ty: &Type, position: Position, errors: &mut Errors) {
    match ty {
        Type::Path(p) => {
            if p.qself.is_none()
                && let Some(last) = p.path.segments.last()
            {
                let bits = |unsigned: bool| {
                    format!(
                        "`{}` differs between 32- and 64-bit processes (4 or 8 bytes), so it cannot cross \
                         a shmrpc call; use `{}64` (or `{}32`)",
                        last.ident,
                        if unsigned { "u" } else { "i" },
                        if unsigned { "u" } else { "i" },
                    )
                };
                if last.ident == "usize" {
                    errors.at(ty, bits(true));
                } else if last.ident == "isize" {
                    errors.at(ty, bits(false));
                }
            }
            for segment in p.path.segments.iter() {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        match arg {
                            GenericArgument::Type(t) => check(t, Position::Inner, errors),
                            GenericArgument::Lifetime(l) => errors.at(
                                l,
                                "a type with a lifetime cannot cross a shmrpc call; use an owned \
                                 type",
                            ),
                            _ => {}
                        }
                    }
                }
            }
        }
        Type::Array(a) => check(&a.elem, Position::Inner, errors),
        Type::Paren(p) => check(&p.elem, position, errors),
        Type::Group(g) => check(&g.elem, position, errors),
        Type::Reference(r) => reference(ty, r, position, errors),
        Type::Ptr(_) => errors.at(
            ty,
            "a raw pointer cannot cross a shmrpc call: an address means nothing in another \
             process; pass the value itself",
        ),
        Type::Slice(_) => errors.at(
            ty,
            "a bare slice has no size; take `&[T]` as an argument, or return `Vec<T>`",
        ),
        Type::Tuple(t) if t.elems.is_empty() => {}
        Type::Tuple(_) => errors.at(
            ty,
            "tuples cannot cross a shmrpc call; define a #[repr(C)] struct with \
             #[derive(shmrpc::ShmData)], or pass the parts as separate arguments",
        ),
        Type::ImplTrait(_) | Type::TraitObject(_) => errors.at(
            ty,
            "a trait object or `impl Trait` cannot cross a shmrpc call; name a concrete type",
        ),
        Type::BareFn(_) => errors.at(
            ty,
            "a function pointer cannot cross a shmrpc call: code addresses differ between \
             processes",
        ),
        Type::Never(_) | Type::Infer(_) => {
            errors.at(ty, "name a concrete type here");
        }
        _ => {}
    }
}

fn reference(ty: &Type, r: &syn::TypeReference, position: Position, errors: &mut Errors) {
    let owned = || match strip(&r.elem) {
        Type::Path(_) if last_ident(&r.elem).as_deref() == Some("str") => "String".to_owned(),
        Type::Slice(s) => {
            let elem = &s.elem;
            format!("Vec<{}>", quote::quote!(#elem))
        }
        other => quote::quote!(#other).to_string(),
    };
    match position {
        Position::Result => {
            return errors.at(
                ty,
                format!(
                    "a method cannot return a borrowed value: it would point into the server's \
                     memory; return `{}` instead",
                    owned()
                ),
            );
        }
        Position::Inner => {
            return errors.at(
                ty,
                format!(
                    "a reference cannot be carried inside another type; use `{}` instead",
                    owned()
                ),
            );
        }
        Position::Arg => {}
    }
    if r.mutability.is_some() {
        return errors.at(
            ty,
            "a method cannot write into its caller's memory through `&mut`: the server runs in \
             another process; return the data instead (`-> Vec<u8>`, or a struct of the results), \
             and take the input as `&[T]` or by value",
        );
    }
    if let Some(lifetime) = &r.lifetime {
        return errors.at(
            lifetime,
            "a named lifetime cannot cross a shmrpc call: the server lends an argument only for \
             the call; write `&str` or `&[T]` with the lifetime left out",
        );
    }
    match strip(&r.elem) {
        Type::Slice(s) => check(&s.elem, Position::Inner, errors),
        elem if last_ident(elem).as_deref() == Some("str") => {}
        elem if last_ident(elem).as_deref() == Some("String") => errors.at(
            ty,
            "take `&str` instead of `&String`: it crosses the same way, and callers can pass any \
             string slice",
        ),
        elem if last_ident(elem).as_deref() == Some("Vec") => errors.at(
            ty,
            "take `&[T]` instead of `&Vec<T>`: it crosses the same way, and callers can pass any \
             slice",
        ),
        elem => errors.at(
            ty,
            format!(
                "only `&str` and `&[T]` can be borrowed by a method; take `{}` by value",
                quote::quote!(#elem)
            ),
        ),
    }
}
