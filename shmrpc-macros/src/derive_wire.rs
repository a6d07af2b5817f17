//! `#[derive(Wire)]`: a struct or an enum whose fields are any types that can cross a call
//! (strings, vectors, other such types), written field by field in declaration order; an enum
//! as a u32 variant index (declaration order) and then the variant's fields.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident};

use crate::ctxt::Errors;
use crate::types::{self, Position};
use crate::{derive, naming};

pub(crate) fn wire(input: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let krate = derive::krate(&input, &mut errors);
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        errors.at(
            &input.generics,
            "a Wire type cannot be generic or hold references: the interface needs one concrete \
             layout; define one type per concrete field type, with owned fields",
        );
    }
    let fields: Vec<&syn::Field> = match &input.data {
        Data::Struct(data) => data.fields.iter().collect(),
        Data::Enum(data) => data.variants.iter().flat_map(|v| v.fields.iter()).collect(),
        Data::Union(u) => {
            errors.at(
                u.union_token,
                "a union cannot derive Wire: which field holds the value cannot be checked; use \
                 an enum",
            );
            Vec::new()
        }
    };
    for field in &fields {
        types::check(&field.ty, Position::Inner, &mut errors);
    }
    if let Data::Enum(data) = &input.data
        && data.variants.is_empty()
    {
        errors.at(
            &input.ident,
            format!(
                "`{}` has no variants, so no value of it can be sent; add variants",
                input.ident
            ),
        );
    }
    if !errors.is_empty() {
        return errors.to_compile_errors();
    }
    let private = quote!(#krate::__private);
    let name = &input.ident;
    let name_str = name.unraw().to_string();
    // One codec per field, the only place its type must be `Wire`.
    let mut defs = Vec::new();
    let mut codec = |ty: &syn::Type| {
        let ident = naming::local(&format!("FIELD{}", defs.len()));
        let make = naming::respan(quote!(#private::codec::<#ty>), ty.span());
        defs.push(quote_spanned!(ty.span()=> const #ident: #private::WireCodec<#ty> = #make();));
        ident
    };
    let (w, r) = (naming::local("w"), naming::local("r"));
    let body = match &input.data {
        Data::Struct(data) => {
            let members: Vec<syn::Member> = data
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| derive::member(f, i))
                .collect();
            let codecs: Vec<Ident> = data.fields.iter().map(|f| codec(&f.ty)).collect();
            let shapes = field_shapes(&private, &data.fields, &codecs);
            quote! {
                const SHAPE: &'static #private::Shape = &#private::Shape::Record {
                    name: #name_str,
                    fields: &[#(#shapes),*],
                };
                const MIN_LEN: usize = 0 #(+ #codecs.min_len)*;
                #[inline]
                fn encode(&self, #w: &mut #private::Writer<'_>) {
                    let _ = &#w;
                    #((#codecs.encode)(&self.#members, #w);)*
                }
                #[inline]
                fn decode(
                    #r: &mut #private::Reader<'_>,
                ) -> #private::core::result::Result<Self, #private::Invalid> {
                    let _ = &#r;
                    #private::core::result::Result::Ok(#name {
                        #(#members: (#codecs.decode)(#r)?,)*
                    })
                }
            }
        }
        Data::Enum(data) => {
            let mut cases = Vec::new();
            let mut encodes = Vec::new();
            let mut decodes = Vec::new();
            for (index, v) in data.variants.iter().enumerate() {
                let index = index as u32;
                let ident = &v.ident;
                let case_name = ident.unraw().to_string();
                let codecs: Vec<Ident> = v.fields.iter().map(|f| codec(&f.ty)).collect();
                let shapes = field_shapes(&private, &v.fields, &codecs);
                cases.push(quote!(#private::Case { name: #case_name, fields: &[#(#shapes),*] }));
                let bindings: Vec<Ident> = (0..v.fields.len())
                    .map(|i| naming::local(&format!("f{i}")))
                    .collect();
                let (pattern, build) = match &v.fields {
                    Fields::Named(named) => {
                        let names: Vec<&Ident> = named
                            .named
                            .iter()
                            .filter_map(|f| f.ident.as_ref())
                            .collect();
                        (
                            quote!(#name::#ident { #(#names: #bindings),* }),
                            quote!(#name::#ident { #(#names: (#codecs.decode)(#r)?),* }),
                        )
                    }
                    Fields::Unnamed(_) => (
                        quote!(#name::#ident(#(#bindings),*)),
                        quote!(#name::#ident(#((#codecs.decode)(#r)?),*)),
                    ),
                    Fields::Unit => (quote!(#name::#ident), quote!(#name::#ident)),
                };
                encodes.push(quote! {
                    #pattern => {
                        #w.put(&#index.to_le_bytes());
                        #((#codecs.encode)(#bindings, #w);)*
                    }
                });
                decodes.push(quote!(#index => #private::core::result::Result::Ok(#build),));
            }
            let message = format!("a variant of `{name_str}` that does not exist");
            quote! {
                const SHAPE: &'static #private::Shape = &#private::Shape::Sum {
                    name: #name_str,
                    cases: &[#(#cases),*],
                };
                const MIN_LEN: usize = 4;
                #[inline]
                fn encode(&self, #w: &mut #private::Writer<'_>) {
                    match self {
                        #(#encodes)*
                    }
                }
                #[inline]
                fn decode(
                    #r: &mut #private::Reader<'_>,
                ) -> #private::core::result::Result<Self, #private::Invalid> {
                    let mut tag = [0u8; 4];
                    #r.read(&mut tag)?;
                    match u32::from_le_bytes(tag) {
                        #(#decodes)*
                        _ => #private::core::result::Result::Err(#private::Invalid(#message)),
                    }
                }
            }
        }
        Data::Union(_) => unreachable!("refused above"),
    };
    quote! {
        const _: () = {
            #(#defs)*
            impl #krate::Wire for #name {
                #body
            }
        };
    }
}

/// `Field { name, offset: <position>, shape }` for each field.
fn field_shapes(private: &TokenStream, fields: &Fields, codecs: &[Ident]) -> Vec<TokenStream> {
    fields
        .iter()
        .zip(codecs)
        .enumerate()
        .map(|(i, (f, codec))| {
            let name = f
                .ident
                .as_ref()
                .map_or_else(|| i.to_string(), |id| id.unraw().to_string());
            quote!(#private::Field { name: #name, offset: #i, shape: #codec.shape })
        })
        .collect()
}
