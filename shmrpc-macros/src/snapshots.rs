//! Expansion snapshots: each `snapshots/<name>.rs` holds items as a user writes them; the macros'
//! output for them, formatted with prettyplease, must equal `snapshots/<name>.expanded.rs`.
//! Review a changed snapshot like code; accept it with `SHMRPC_BLESS=1 cargo test -p shmrpc-macros`.

use std::path::Path;

use quote::ToTokens;

fn expand_file(source: &str) -> String {
    let file: syn::File = syn::parse_str(source).expect("snapshot input parses");
    let mut out = proc_macro2::TokenStream::new();
    for mut item in file.items {
        let attrs = match &mut item {
            syn::Item::Trait(t) => &mut t.attrs,
            syn::Item::Struct(s) => &mut s.attrs,
            syn::Item::Enum(e) => &mut e.attrs,
            other => panic!("unexpected item {}", other.to_token_stream()),
        };
        if let Some(i) = attrs.iter().position(|a| a.path().is_ident("shm_service")) {
            let attr = attrs.remove(i);
            let args = match attr.meta {
                syn::Meta::List(list) => list.tokens,
                _ => proc_macro2::TokenStream::new(),
            };
            out.extend(crate::expand::shm_service(args, item.to_token_stream()));
        } else {
            // A derive sees the item without its own `#[derive]` attribute.
            attrs.retain(|a| !a.path().is_ident("derive"));
            out.extend(item.to_token_stream());
            out.extend(crate::derive::shm_data(item.to_token_stream()));
        }
    }
    let file: syn::File = syn::parse2(out).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    let source = std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap();
    let expanded = expand_file(&source);
    let path = dir.join(format!("{name}.expanded.rs"));
    if std::env::var_os("SHMRPC_BLESS").is_some() {
        std::fs::write(&path, &expanded).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != expanded {
        let first = expected
            .lines()
            .zip(expanded.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "the expansion of snapshots/{name}.rs changed (first at line {}):\n  was: {:?}\n  now: {:?}\n\
             review it, then accept it with SHMRPC_BLESS=1",
            first + 1,
            expected.lines().nth(first).unwrap_or(""),
            expanded.lines().nth(first).unwrap_or("")
        );
    }
}

#[test]
fn calculator() {
    check("calculator");
}

#[test]
fn options() {
    check("options");
}

#[test]
fn store() {
    check("store");
}
