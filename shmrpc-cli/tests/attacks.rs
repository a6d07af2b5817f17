//! Review: the `shmrpc` command against a hostile server, whose description is crafted (through
//! the `Shape`s its interface is made of). Each case must end in an error (exit status 5 for a
//! reply it cannot read, 2 for arguments that cannot match), never a panic (101), an abort or a
//! hang. The command runs with its address space limited to 2 GB and a 10 s limit.
//!
//! Unix only: the limits are set with `ulimit -v` and `timeout`. What they check, the command's
//! reading of descriptions and replies, is the same code on every platform.
#![cfg(unix)]

use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shmrpc::__private::{Dispatch, Field, Interface, MethodShape, Server, Shape, Variant};
use shmrpc::ServerHandle;

fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cli-review-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Serves one method `f` of `args` and `reply`, answering `answer` whatever it is sent.
fn hostile(
    name: &str,
    args: &'static [&'static Shape],
    reply: &'static Shape,
    answer: &'static [u8],
) -> ServerHandle {
    let methods: &'static [Option<MethodShape>] = Box::leak(Box::new([Some(MethodShape {
        name: "f",
        tag: 0,
        args,
        arg_names: &[],
        reply,
    })]));
    let interface: &'static Interface = Box::leak(Box::new(Interface::new("Evil", methods)));
    let dispatch: Dispatch = Arc::new(move |_, _, mut w| {
        w.put(answer);
        Ok(w.finish())
    });
    Server::bind(name, shmrpc::ServerOptions::default(), interface, dispatch)
        .unwrap()
        .spawn()
        .unwrap()
}

/// Runs the command, limited to 2 GB of address space and 10 s.
fn shmrpc_limited(args: &[&str]) -> Output {
    let mut line = String::from("ulimit -v 2000000; exec timeout 10 \"$0\"");
    for (i, _) in args.iter().enumerate() {
        line += &format!(" \"${}\"", i + 1);
    }
    Command::new("sh")
        .arg("-c")
        .arg(line)
        .arg(env!("CARGO_BIN_EXE_shmrpc"))
        .args(args)
        .output()
        .unwrap()
}

fn check(out: &Output, expected: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(expected),
        "status {:?}; stderr: {}",
        out.status,
        &stderr[..stderr.len().min(2000)]
    );
}

static U8: Shape = Shape::Primitive {
    name: "u8",
    size: 1,
};
static U128: Shape = Shape::Primitive {
    name: "u128",
    size: 16,
};

/// An enum whose repr is u128 (no `ShmData` enum has one, but a server may say so): its 16
/// bytes are read whole, not past an 8-byte buffer.
#[test]
fn review_a_u128_enum_in_a_reply_is_read_not_a_panic() {
    static E: Shape = Shape::Enum {
        name: "E",
        repr: &U128,
        variants: &[Variant {
            name: "A",
            value: 1,
        }],
    };
    let name = unique("enum128");
    let _server = hostile(
        &name,
        &[],
        &E,
        &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    let out = shmrpc_limited(&["call", &name, "f"]);
    check(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"A\"");
}

/// A reply of type `[(); 4000000000]`: zero bytes on the wire, four billion JSON values.
#[test]
fn review_an_array_of_four_billion_units_is_an_error_not_an_abort() {
    static A: Shape = Shape::Array {
        element: &Shape::Unit,
        len: 4_000_000_000,
    };
    let name = unique("units");
    let _server = hostile(&name, &[], &A, &[]);
    let out = shmrpc_limited(&["call", &name, "f"]);
    check(&out, 5);
}

/// An argument struct said to be 2^50 bytes: the command must refuse it, not allocate it.
#[test]
fn review_a_struct_of_a_petabyte_is_an_error_not_an_abort() {
    static S: Shape = Shape::Struct {
        name: "S",
        size: 1 << 50,
        fields: &[Field {
            name: "a",
            offset: 0,
            shape: &U8,
        }],
    };
    static ARGS: [&Shape; 1] = [&S];
    let name = unique("huge-struct");
    let _server = hostile(&name, &ARGS, &U8, &[0]);
    let out = shmrpc_limited(&["call", &name, "f", r#"{"a": 1}"#]);
    check(&out, 2);
}
