//! Types the macros can tell are wrong just by reading them. Everything else is left to the
//! `ShmData` bound, whose message is ours too.

use syn::{GenericArgument, PathArguments, Type};

use crate::ctxt::Errors;

/// Records a mistake for every part of `ty` that can never cross a slot.
pub(crate) fn check(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::Path(p) => {
            if p.qself.is_none()
                && let Some(last) = p.path.segments.last()
            {
                let bits = |unsigned: bool| {
                    format!(
                        "`{}` differs between 32- and 64-bit processes (4 or 8 bytes), so it cannot cross \
                         a shared-memory slot; use `{}64` (or `{}32`)",
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
                        if let GenericArgument::Type(t) = arg {
                            check(t, errors);
                        }
                    }
                }
            }
        }
        Type::Array(a) => check(&a.elem, errors),
        Type::Paren(p) => check(&p.elem, errors),
        Type::Group(g) => check(&g.elem, errors),
        Type::Reference(_) => errors.at(
            ty,
            "a reference cannot be carried in a shared-memory slot: the memory it points to is not \
             shared; pass the value itself (for text or a list, a fixed array such as [u8; N])",
        ),
        Type::Ptr(_) => errors.at(
            ty,
            "a raw pointer cannot be carried in a shared-memory slot: an address means nothing in \
             another process; pass the value itself",
        ),
        Type::Slice(_) => errors.at(
            ty,
            "a slice has no fixed size and cannot be carried in a shared-memory slot; use a fixed \
             array such as [u8; N] with a length field",
        ),
        Type::Tuple(t) if t.elems.is_empty() => {}
        Type::Tuple(_) => errors.at(
            ty,
            "tuples cannot be carried in a shared-memory slot; define a #[repr(C)] struct with \
             #[derive(shmrpc::ShmData)], or pass the parts as separate arguments",
        ),
        Type::ImplTrait(_) | Type::TraitObject(_) => errors.at(
            ty,
            "a trait object or `impl Trait` cannot be carried in a shared-memory slot; name a \
             concrete ShmData type",
        ),
        Type::BareFn(_) => errors.at(
            ty,
            "a function pointer cannot be carried in a shared-memory slot: code addresses differ \
             between processes",
        ),
        Type::Never(_) | Type::Infer(_) => {
            errors.at(ty, "name a concrete ShmData type here");
        }
        _ => {}
    }
}
