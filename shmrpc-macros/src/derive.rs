//! `#[derive(ShmData)]`: checks the type, then writes how it turns into bytes and back, field by
//! field at the field's offset (or, for an enum, by checking the value against the declared
//! discriminants), its shape, and one layout assertion per field that names the padding, where it
//! is and how many bytes, if there is any.
//!
//! Each field type goes through one `const` codec, the only place it must be `ShmData`: a field
//! of a wrong type is one error, on that field, in shmrpc's words.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::ctxt::Errors;
use crate::{naming, types};

/// What `#[repr]` says.
#[derive(Default)]
struct Repr {
    c: bool,
    transparent: bool,
    packed: Option<Span>,
    int: Option<Ident>,
}

pub(crate) fn shm_data(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let repr = repr(&input, &mut errors);
    let krate = krate(&input, &mut errors);
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        errors.at(
            &input.generics,
            "a ShmData type cannot be generic: each instance would need its own checked layout; \
             define one type per concrete field type",
        );
    }
    let out = match &input.data {
        Data::Struct(data) => structure(&input, &data.fields, &repr, &krate, &mut errors),
        Data::Enum(data) => enumeration(&input, data, &repr, &krate, &mut errors),
        Data::Union(u) => {
            errors.at(
                u.union_token,
                "a union cannot derive ShmData: which field holds the value cannot be checked; use a \
                 struct with a tag field, or a field-less enum",
            );
            TokenStream::new()
        }
    };
    if errors.is_empty() {
        out
    } else {
        errors.to_compile_errors()
    }
}

fn repr(input: &DeriveInput, errors: &mut Errors) -> Repr {
    let mut repr = Repr::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let result = attr.parse_nested_meta(|meta| {
            let ident = meta
                .path
                .get_ident()
                .map(|i| i.unraw().to_string())
                .unwrap_or_default();
            match ident.as_str() {
                "C" => repr.c = true,
                "transparent" => repr.transparent = true,
                "packed" => {
                    repr.packed = Some(meta.path.span());
                    if meta.input.peek(syn::token::Paren) {
                        let _content;
                        syn::parenthesized!(_content in meta.input);
                    }
                }
                "align" => {
                    let _content;
                    syn::parenthesized!(_content in meta.input);
                }
                _ => repr.int = meta.path.get_ident().cloned(),
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    repr
}

pub(crate) fn krate(input: &DeriveInput, errors: &mut Errors) -> syn::Path {
    let mut krate: syn::Path = syn::parse_quote!(::shmrpc);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("shmrpc")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let value: syn::LitStr = meta.value()?.parse()?;
                krate = value.parse()?;
                Ok(())
            } else {
                Err(meta
                    .error("unknown argument; #[shmrpc(...)] takes `crate = \"<path to shmrpc>\"`"))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    krate
}

/// The field's name in messages and shapes: `mean`, or `0` for a tuple struct.
fn field_name(field: &syn::Field, index: usize) -> String {
    field
        .ident
        .as_ref()
        .map_or_else(|| index.to_string(), |i| i.unraw().to_string())
}

/// `mean`, or `0`, as a member expression.
pub(crate) fn member(field: &syn::Field, index: usize) -> syn::Member {
    match &field.ident {
        Some(ident) => syn::Member::Named(ident.clone()),
        None => syn::Member::Unnamed(syn::Index {
            index: index as u32,
            span: field.span(),
        }),
    }
}

fn structure(
    input: &DeriveInput,
    fields: &Fields,
    repr: &Repr,
    krate: &syn::Path,
    errors: &mut Errors,
) -> TokenStream {
    let name = &input.ident;
    if let Some(span) = repr.packed {
        errors.at_span(
            span,
            "a packed struct cannot derive ShmData; remove `packed` and make the padding explicit \
             with `_pad: [u8; N]` fields",
        );
    } else if !repr.c && !repr.transparent {
        errors.at(
            name,
            format!(
                "`{name}` needs a fixed field order and layout to be shared between processes: add \
                 #[repr(C)] to it"
            ),
        );
    }
    let fields: Vec<&syn::Field> = fields.iter().collect();
    if fields.is_empty() {
        errors.at(
            name,
            format!("`{name}` has no fields, so it carries nothing; add fields or remove it"),
        );
    }
    for field in &fields {
        types::check(&field.ty, types::Position::Inner, errors);
    }
    if !errors.is_empty() {
        return TokenStream::new();
    }
    let private = quote!(#krate::__private);
    let tys: Vec<&Type> = fields.iter().map(|f| &f.ty).collect();
    let members: Vec<syn::Member> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| member(f, i))
        .collect();
    let names: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| field_name(f, i))
        .collect();
    let codecs: Vec<Ident> = (0..fields.len())
        .map(|i| naming::local(&format!("FIELD{i}")))
        .collect();
    let codec_defs = codecs.iter().zip(&tys).map(|(codec, ty)| {
        let codec_fn = naming::respan(quote!(#private::field::<#ty>), ty.span());
        quote_spanned!(ty.span()=> const #codec: #private::Codec<#ty> = #codec_fn();)
    });
    let offsets: Vec<TokenStream> = members
        .iter()
        .map(|m| quote!(#private::core::mem::offset_of!(#name, #m)))
        .collect();
    let layout = padding_checks(name, &members, &tys, &private);
    let name_str = name.unraw().to_string();
    let wire = wire_impl(name, krate);
    quote! {
        const _: () = {
            #(#codec_defs)*

            impl #krate::ShmData for #name {
                const SIZE: usize = 0 #(+ #codecs.size)*;
                const SHAPE: &'static #private::Shape = &#private::Shape::Struct {
                    name: #name_str,
                    size: #private::core::mem::size_of::<Self>(),
                    fields: &[#(#private::Field { name: #names, offset: #offsets, shape: #codecs.shape }),*],
                };
                #[inline]
                fn encode(&self, out: &mut [u8]) {
                    #((#codecs.encode)(&self.#members, &mut out[#offsets..][..#codecs.size]);)*
                }
                #[inline]
                fn decode(bytes: &[u8]) -> #private::core::result::Result<Self, #private::Invalid> {
                    if bytes.len() != <Self as #krate::ShmData>::SIZE {
                        return #private::core::result::Result::Err(#private::Invalid("wrong length"));
                    }
                    #private::core::result::Result::Ok(#name {
                        #(#members: (#codecs.decode)(&bytes[#offsets..][..#codecs.size])?,)*
                    })
                }
                // Field by field: `repr(C)` without padding puts them back to back.
                #[inline]
                fn encode_to(&self, w: &mut #private::Writer<'_>) {
                    #((#codecs.encode_to)(&self.#members, w);)*
                }
            }

            #wire
        };
        #layout
    }
}

/// A fixed type crosses calls as its `SIZE` bytes.
fn wire_impl(name: &Ident, krate: &syn::Path) -> TokenStream {
    let private = quote!(#krate::__private);
    quote! {
        impl #krate::Wire for #name {
            const SHAPE: &'static #private::Shape = <Self as #krate::ShmData>::SHAPE;
            const MIN_LEN: usize = <Self as #krate::ShmData>::SIZE;
            #[inline]
            fn encode(&self, w: &mut #private::Writer<'_>) {
                <Self as #krate::ShmData>::encode_to(self, w);
            }
            #[inline]
            fn decode(
                r: &mut #private::Reader<'_>,
            ) -> #private::core::result::Result<Self, #private::Invalid> {
                #private::decode_fixed::<Self>(r)
            }
        }
    }
}

/// One assertion per field that there is no padding before it, and one for the end. The
/// messages (with the gap in bytes and the field to add) are in the runtime's `const fn`s, which
/// report at the call: the field.
fn padding_checks(
    name: &Ident,
    members: &[syn::Member],
    tys: &[&Type],
    private: &TokenStream,
) -> TokenStream {
    let size = |ty: &Type| quote!(#private::core::mem::size_of::<#ty>());
    let offset = |m: &syn::Member| quote!(#private::core::mem::offset_of!(#name, #m));
    let mut checks = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let here = offset(member);
        // These tokens get the field's span, so lints see them as the user's: keep them plain.
        let gap = if i == 0 {
            here
        } else {
            let (o, s) = (offset(&members[i - 1]), size(tys[i - 1]));
            quote!(#here - (#o + #s))
        };
        let check = quote!(const _: () = #private::no_padding_before(#gap););
        checks.push(naming::respan(check, member.span()));
    }
    let last = members.last().expect("fields");
    let (o, s) = (offset(last), size(tys[tys.len() - 1]));
    let check = quote!(const _: () = #private::no_padding_after(#private::core::mem::size_of::<#name>() - (#o + #s)););
    checks.push(naming::respan(check, last.span()));
    quote!(#(#checks)*)
}

fn enumeration(
    input: &DeriveInput,
    data: &syn::DataEnum,
    repr: &Repr,
    krate: &syn::Path,
    errors: &mut Errors,
) -> TokenStream {
    let name = &input.ident;
    let int = repr
        .int
        .as_ref()
        .filter(|i| matches!(i.to_string().as_str(), "u8" | "u16" | "u32" | "u64"));
    if int.is_none() {
        errors.at(
            name,
            format!(
                "`{name}` needs a fixed size to be shared between processes: add #[repr(u8)], \
                 #[repr(u16)], #[repr(u32)] or #[repr(u64)] to it"
            ),
        );
    }
    if data.variants.is_empty() {
        errors.at(
            name,
            format!("`{name}` has no variants, so no value of it can be sent; add variants"),
        );
    }
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            errors.at(
                &v.fields,
                format!(
                    "variant `{}` carries data; a ShmData enum must be field-less. Use a #[repr(C)] \
                     struct with a tag field and the data instead",
                    v.ident
                ),
            );
        }
    }
    let Some(int) = int.filter(|_| errors.is_empty()) else {
        return TokenStream::new();
    };
    let private = quote!(#krate::__private);
    let variants: Vec<&Ident> = data.variants.iter().map(|v| &v.ident).collect();
    let values: Vec<Ident> = (0..variants.len())
        .map(|i| naming::local(&format!("VALUE{i}")))
        .collect();
    let variant_names: Vec<String> = variants.iter().map(|v| v.unraw().to_string()).collect();
    let name_str = name.unraw().to_string();
    let message = format!("a value that is none of the variants of `{name_str}`");
    let wire = wire_impl(name, krate);
    quote! {
        const _: () = {
            #(const #values: #int = #name::#variants as #int;)*

            impl #krate::ShmData for #name {
                const SIZE: usize = <#int as #krate::ShmData>::SIZE;
                const SHAPE: &'static #private::Shape = &#private::Shape::Enum {
                    name: #name_str,
                    repr: <#int as #krate::ShmData>::SHAPE,
                    variants: &[#(#private::Variant { name: #variant_names, value: #values as u64 }),*],
                };
                #[inline]
                fn encode(&self, out: &mut [u8]) {
                    let value: #int = match self { #(#name::#variants => #values,)* };
                    <#int as #krate::ShmData>::encode(&value, out);
                }
                #[inline]
                fn decode(bytes: &[u8]) -> #private::core::result::Result<Self, #private::Invalid> {
                    match <#int as #krate::ShmData>::decode(bytes)? {
                        #(#values => #private::core::result::Result::Ok(#name::#variants),)*
                        _ => #private::core::result::Result::Err(#private::Invalid(#message)),
                    }
                }
            }

            #wire
        };
    }
}
