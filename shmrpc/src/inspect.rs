//! Services seen from outside: which run, what they offer, how they are doing, and calls whose
//! bytes the caller makes. For tools such as the `shmrpc` command (`shmrpc-cli`); applications
//! use the clients `#[shm_service]` generates.
//!
//! ```no_run
//! use shmrpc::inspect::{self, Service};
//!
//! for name in inspect::services()? {
//!     let service = Service::connect(&name, Default::default())?;
//!     for method in &service.interface().methods {
//!         println!("{name}: {}", method.signature());
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The bytes of a call follow the wire format in [`Wire`](crate::Wire)'s documentation: the
//! arguments back to back, little-endian; [`Type`] says how each is laid out.

use std::time::Duration;

use crate::Error;
use crate::client::Client;
use crate::interface::Interface;
use crate::name::ServiceName;
use crate::options::ClientOptions;
use crate::server::stats;

/// Zero bytes of padding before the elements of a sequence of numbers (a [`Type::Seq`] of a
/// number type) that take `bytes` bytes, when its count ends at offset `pos` of a message: the
/// rule of the wire format, for tools that write or read messages themselves (as `shmrpc call`
/// does). Elements start on a multiple of 16 bytes (64 from 256 bytes of elements on), counted
/// from 32 bytes before the message, where a slot's cache line starts.
pub fn number_padding(pos: usize, bytes: usize) -> usize {
    crate::wire::number_padding(pos, bytes)
}

/// The names of the services this user can reach on this machine (on Linux, in this network
/// namespace): its own and those served to any user, sorted, each once.
///
/// Where they are found: on Linux the kernel's table of Unix sockets (`/proc/net/unix`), on
/// macOS the socket directories under `/tmp/shmrpc`, on Windows the mutexes that hold names, in
/// this session's directory of named objects. A name listed may belong to a server that is
/// ending: connecting tells.
pub fn services() -> std::io::Result<Vec<String>> {
    Ok(reachable(crate::sys::listening()?, crate::sys::euid()))
}

/// The service names among listening addresses (`shmrpc/u<uid>/<name>`,
/// `shmrpc/public/<name>`) that user `uid` can reach.
fn reachable(addresses: Vec<String>, uid: u32) -> Vec<String> {
    let own = format!("shmrpc/u{uid}/");
    let mut names: Vec<String> = addresses
        .iter()
        .filter_map(|address| {
            let name = address
                .strip_prefix(own.as_str())
                .or_else(|| address.strip_prefix("shmrpc/public/"))?;
            ServiceName::new(name).ok().map(|_| name.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The interface any server serves: connecting with it checks nothing and learns the server's.
pub(crate) static ANY: Interface = Interface::new("", &[]);

/// A connection to a service, whatever its interface.
#[derive(Debug)]
pub struct Service {
    client: Client,
    interface: ServiceInterface,
    /// The method names, for errors (which name methods by `&'static str`): interned, each
    /// distinct name made once per process.
    names: Vec<&'static str>,
}

impl Service {
    /// Connects to the server of `name` and reads its interface.
    pub fn connect(name: &str, options: ClientOptions) -> Result<Self, Error> {
        let client = Client::connect(name, options, &ANY)?;
        let text = client.server_description()?;
        let interface = ServiceInterface::parse(&text).map_err(|why| Error::Corrupted {
            name: name.to_owned(),
            detail: format!("the server described its interface with {why}"),
        })?;
        let names = interface.methods.iter().map(|m| intern(&m.name)).collect();
        Ok(Service {
            client,
            interface,
            names,
        })
    }

    /// The service name.
    pub fn name(&self) -> &str {
        self.client.name()
    }

    /// What the server offers.
    pub fn interface(&self) -> &ServiceInterface {
        &self.interface
    }

    /// The server's counters now.
    pub fn stats(&self) -> Result<Stats, Error> {
        let decoded = self.client.server_stats()?;
        let methods = decoded
            .methods
            .into_iter()
            .map(|(tag, totals)| MethodStats {
                name: self
                    .interface
                    .methods
                    .iter()
                    .find(|m| m.tag == tag)
                    .map_or_else(|| format!("#{tag}"), |m| m.name.clone()),
                calls: totals.calls,
                errors: totals.errors,
                latency: Latency(totals.latency),
            })
            .collect();
        Ok(Stats {
            pid: decoded.pid,
            uid: decoded.uid,
            connections: decoded.connections,
            uptime: decoded.uptime,
            methods,
        })
    }

    /// Calls `method` with `request`, the arguments' bytes; the result's bytes.
    pub fn call(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, Error> {
        let index = self.interface.methods.iter().position(|m| m.name == method);
        let found = index.map(|i| &self.interface.methods[i]).ok_or_else(|| {
            let names: Vec<&str> = self
                .interface
                .methods
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            Error::InterfaceMismatch {
                name: self.name().to_owned(),
                difference: format!(
                    "the server has no method `{method}` (it has: {})",
                    names.join(", ")
                ),
            }
        })?;
        let method = index.map_or("", |i| self.names[i]);
        self.client.call(
            found.tag,
            method,
            |w| w.put(request),
            |r| {
                let mut out = vec![0; r.remaining()];
                r.read(&mut out)?;
                Ok(out)
            },
        )
    }
}

/// `name`, for as long as the process lives: each distinct name is allocated once.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let new: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(new);
    new
}

/// A service's interface, as its server describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInterface {
    /// The trait's name.
    pub name: String,
    /// Its methods, in declaration order.
    pub methods: Vec<Method>,
}

/// One method.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    pub name: String,
    /// Its number in the server's interface.
    pub tag: u32,
    pub args: Vec<Type>,
    /// The arguments' names, as the trait has them (`arg0`, ... from a server that does not
    /// say).
    pub arg_names: Vec<String>,
    pub reply: Type,
}

/// The type of an argument or a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// A number, `bool` or `char`: its name (`u8` ... `i128`, `f32`, `f64`, `bool`, `char`) and
    /// size in bytes.
    Primitive {
        name: String,
        size: usize,
    },
    /// `[T; N]`
    Array(Box<Type>, usize),
    /// A `#[derive(ShmData)]` struct: its bytes, each field at its offset.
    Struct {
        name: String,
        size: usize,
        fields: Vec<Field>,
    },
    /// A `#[derive(ShmData)]` enum: its integer value, of the repr's size.
    Enum {
        name: String,
        repr: Box<Type>,
        variants: Vec<(String, u64)>,
    },
    /// `()`
    Unit,
    /// `&str`, `String`
    Str,
    /// `&[T]`, `Vec<T>`
    Seq(Box<Type>),
    Option(Box<Type>),
    Result(Box<Type>, Box<Type>),
    /// A `#[derive(Wire)]` struct: its fields one after another.
    Record {
        name: String,
        fields: Vec<Field>,
    },
    /// A `#[derive(Wire)]` enum: a u32 variant index, then the variant's fields.
    Sum {
        name: String,
        cases: Vec<Case>,
    },
}

/// A field of a struct or a variant (`0`, `1`, ... for a tuple's).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// Where it starts in a [`Type::Struct`] (0 elsewhere).
    pub offset: usize,
    pub ty: Type,
}

/// A variant of a [`Type::Sum`].
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub fields: Vec<Field>,
}

impl Type {
    /// How the type is written in Rust.
    pub fn name(&self) -> String {
        match self {
            Type::Primitive { name, .. }
            | Type::Struct { name, .. }
            | Type::Enum { name, .. }
            | Type::Record { name, .. }
            | Type::Sum { name, .. } => name.clone(),
            Type::Array(t, n) => format!("[{}; {n}]", t.name()),
            Type::Unit => "()".into(),
            Type::Str => "String".into(),
            Type::Seq(t) => format!("Vec<{}>", t.name()),
            Type::Option(t) => format!("Option<{}>", t.name()),
            Type::Result(t, e) => format!("Result<{}, {}>", t.name(), e.name()),
        }
    }

    /// Whether a sequence of it is written in bulk and aligned (numbers, but not `bool` or
    /// `char`): see the wire format.
    pub fn is_number(&self) -> bool {
        matches!(self, Type::Primitive { name, .. } if name != "bool" && name != "char")
    }

    /// The Rust definition of a user type (`None` for others).
    pub fn definition(&self) -> Option<String> {
        let fields = |fields: &[Field]| -> String {
            let tuple = fields.first().is_some_and(|f| f.name == "0");
            let parts: Vec<String> = fields
                .iter()
                .map(|f| {
                    if tuple {
                        f.ty.name()
                    } else {
                        format!("{}: {}", f.name, f.ty.name())
                    }
                })
                .collect();
            match (parts.is_empty(), tuple) {
                (true, _) => String::new(),
                (false, true) => format!("({})", parts.join(", ")),
                (false, false) => format!(" {{ {} }}", parts.join(", ")),
            }
        };
        match self {
            Type::Struct {
                name,
                fields: f,
                size,
            } => Some(format!("struct {name}{} // {size} bytes", fields(f))),
            Type::Record { name, fields: f } => Some(format!("struct {name}{}", fields(f))),
            Type::Enum {
                name,
                repr,
                variants,
            } => {
                let v: Vec<String> = variants.iter().map(|(n, v)| format!("{n} = {v}")).collect();
                Some(format!(
                    "#[repr({})] enum {name} {{ {} }}",
                    repr.name(),
                    v.join(", ")
                ))
            }
            Type::Sum { name, cases } => {
                let c: Vec<String> = cases
                    .iter()
                    .map(|c| format!("{}{}", c.name, fields(&c.fields)))
                    .collect();
                Some(format!("enum {name} {{ {} }}", c.join(", ")))
            }
            _ => None,
        }
    }

    /// Every user type this one uses, itself included, each once, innermost first.
    pub fn user_types(&self, out: &mut Vec<Type>) {
        let inner: Vec<&Type> = match self {
            Type::Array(t, _) | Type::Seq(t) | Type::Option(t) => vec![t],
            Type::Result(t, e) => vec![t, e],
            Type::Struct { fields, .. } | Type::Record { fields, .. } => {
                fields.iter().map(|f| &f.ty).collect()
            }
            Type::Sum { cases, .. } => cases
                .iter()
                .flat_map(|c| &c.fields)
                .map(|f| &f.ty)
                .collect(),
            _ => Vec::new(),
        };
        for t in inner {
            t.user_types(out);
        }
        if self.definition().is_some() && !out.contains(self) {
            out.push(self.clone());
        }
    }
}

impl Method {
    /// `fn add(&self, a: i64, b: i64) -> i64`
    pub fn signature(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .zip(&self.arg_names)
            .map(|(t, name)| format!(", {name}: {}", t.name()))
            .collect();
        let reply = match &self.reply {
            Type::Unit => String::new(),
            t => format!(" -> {}", t.name()),
        };
        format!("fn {}(&self{}){reply}", self.name, args.concat())
    }
}

impl ServiceInterface {
    /// The method called `name`.
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// Every user type the methods use, each once.
    pub fn user_types(&self) -> Vec<Type> {
        let mut out = Vec::new();
        for m in &self.methods {
            for t in m.args.iter().chain([&m.reply]) {
                t.user_types(&mut out);
            }
        }
        out
    }

    /// Reads a server's description (see `interface::describe`).
    fn parse(text: &str) -> Result<Self, String> {
        let mut name = String::new();
        let mut signatures = Vec::new();
        let mut arg_names = std::collections::HashMap::new();
        let mut definitions = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("interface ") {
                n.clone_into(&mut name);
            } else if let Some(rest) = line.strip_prefix("method ") {
                let mut parts = rest.splitn(3, ' ');
                let tag = parts.next().and_then(|t| t.parse::<u32>().ok());
                let sig = parts.nth(1);
                match (tag, sig) {
                    (Some(tag), Some(sig)) => signatures.push((tag, sig)),
                    _ => return Err(format!("a method line it cannot read: `{line}`")),
                }
            } else if let Some(rest) = line.strip_prefix("args ") {
                let mut words = rest.split(' ');
                if let Some(Ok(tag)) = words.next().map(str::parse::<u32>) {
                    arg_names.insert(tag, words.map(str::to_owned).collect::<Vec<_>>());
                }
            } else if let Some(def) = line.strip_prefix("type ") {
                let name = def.split([' ', ':', '(', '{']).nth(1).unwrap_or("");
                definitions.entry(name.to_owned()).or_insert(def);
            }
        }
        let parser = Parser {
            definitions: definitions
                .into_iter()
                .map(|(name, def)| (name, tokens(def)))
                .collect(),
            _text: std::marker::PhantomData,
            budget: std::cell::Cell::new(MAX_TYPE_NODES),
        };
        let methods = signatures
            .into_iter()
            .map(|(tag, sig)| {
                let mut m = parser.method(tag, sig)?;
                match arg_names.remove(&tag) {
                    Some(names) if names.len() == m.args.len() => m.arg_names = names,
                    _ => m.arg_names = (0..m.args.len()).map(|i| format!("arg{i}")).collect(),
                }
                Ok(m)
            })
            .collect::<Result<_, String>>()?;
        Ok(ServiceInterface { name, methods })
    }
}

/// Reads type expressions and definitions of a description.
struct Parser<'a> {
    /// Each user type's definition, as tokens.
    definitions: std::collections::HashMap<String, Vec<String>>,
    _text: std::marker::PhantomData<&'a str>,
    /// Types it may still build: a type used twice by another, and so on, would otherwise
    /// double the work at each level (a hostile server's 1 KiB description could take hours).
    budget: std::cell::Cell<usize>,
}

/// Most type nodes (every use of a type counts, with its fields) an interface may expand to:
/// real ones take hundreds.
const MAX_TYPE_NODES: usize = 20_000;

/// Tokens: words (names, numbers) and single punctuation characters.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

struct Cursor<'t> {
    tokens: &'t [String],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }
    fn next(&mut self) -> Result<&str, String> {
        let t = self.tokens.get(self.at).ok_or("a description cut short")?;
        self.at += 1;
        Ok(t)
    }
    fn expect(&mut self, want: &str) -> Result<(), String> {
        let got = self.next()?;
        if got == want {
            Ok(())
        } else {
            Err(format!("`{got}` where `{want}` was expected"))
        }
    }
    fn number(&mut self) -> Result<u64, String> {
        let t = self.next()?;
        t.parse()
            .map_err(|_| format!("`{t}` where a number was expected"))
    }
}

const PRIMITIVES: [(&str, usize); 14] = [
    ("u8", 1),
    ("u16", 2),
    ("u32", 4),
    ("u64", 8),
    ("u128", 16),
    ("i8", 1),
    ("i16", 2),
    ("i32", 4),
    ("i64", 8),
    ("i128", 16),
    ("f32", 4),
    ("f64", 8),
    ("bool", 1),
    ("char", 4),
];

impl Parser<'_> {
    /// `add(i64, i64) -> i64`
    fn method(&self, tag: u32, sig: &str) -> Result<Method, String> {
        let toks = tokens(sig);
        let mut c = Cursor {
            tokens: &toks,
            at: 0,
        };
        let name = c.next()?.to_owned();
        c.expect("(")?;
        let mut args = Vec::new();
        while c.peek() != Some(")") {
            args.push(self.ty(&mut c, 0)?);
            if c.peek() == Some(",") {
                c.next()?;
            }
        }
        c.expect(")")?;
        c.expect("-")?;
        c.expect(">")?;
        let reply = self.ty(&mut c, 0)?;
        Ok(Method {
            name,
            tag,
            args,
            arg_names: Vec::new(),
            reply,
        })
    }

    fn ty(&self, c: &mut Cursor<'_>, depth: usize) -> Result<Type, String> {
        if depth > 64 {
            return Err("types nested too deep".into());
        }
        let left = self.budget.get();
        if left == 0 {
            return Err(format!(
                "types that expand to more than {MAX_TYPE_NODES} parts"
            ));
        }
        self.budget.set(left - 1);
        let t = c.next()?.to_owned();
        Ok(match t.as_str() {
            "(" => {
                c.expect(")")?;
                Type::Unit
            }
            "[" => {
                let element = self.ty(c, depth + 1)?;
                c.expect(";")?;
                let n = c.number()? as usize;
                c.expect("]")?;
                Type::Array(Box::new(element), n)
            }
            "String" => Type::Str,
            "Vec" | "Option" => {
                c.expect("<")?;
                let inner = Box::new(self.ty(c, depth + 1)?);
                c.expect(">")?;
                if t == "Vec" {
                    Type::Seq(inner)
                } else {
                    Type::Option(inner)
                }
            }
            "Result" => {
                c.expect("<")?;
                let ok = self.ty(c, depth + 1)?;
                c.expect(",")?;
                let err = self.ty(c, depth + 1)?;
                c.expect(">")?;
                Type::Result(Box::new(ok), Box::new(err))
            }
            name => match PRIMITIVES.iter().find(|(p, _)| *p == name) {
                Some((p, size)) => Type::Primitive {
                    name: (*p).to_owned(),
                    size: *size,
                },
                None => self.definition(name, depth + 1)?,
            },
        })
    }

    /// A user type, from its definition line.
    fn definition(&self, name: &str, depth: usize) -> Result<Type, String> {
        let toks = self
            .definitions
            .get(name)
            .ok_or_else(|| format!("type `{name}` used but not defined"))?;
        let mut c = Cursor {
            tokens: toks,
            at: 0,
        };
        let kind = c.next()?.to_owned();
        c.next()?; // the name
        match kind.as_str() {
            // struct Stats (24 bytes) { mean: f64 @0, ... }
            "struct" => {
                c.expect("(")?;
                let size = c.number()? as usize;
                c.expect("bytes")?;
                c.expect(")")?;
                c.expect("{")?;
                let mut fields = Vec::new();
                while c.peek() != Some("}") {
                    let fname = c.next()?.to_owned();
                    c.expect(":")?;
                    let ty = self.ty(&mut c, depth)?;
                    c.expect("@")?;
                    let offset = c.number()? as usize;
                    fields.push(Field {
                        name: fname,
                        offset,
                        ty,
                    });
                    if c.peek() == Some(",") {
                        c.next()?;
                    }
                }
                Ok(Type::Struct {
                    name: name.to_owned(),
                    size,
                    fields,
                })
            }
            // record Entry { key: String, value: Vec<u8> } | record P(u8, u8) | record Unit
            "record" => Ok(Type::Record {
                name: name.to_owned(),
                fields: self.fields(&mut c, depth)?,
            }),
            "enum" if c.peek() == Some(":") => {
                // enum MathError: u32 { DivideByZero = 1, Overflow = 2 }
                c.next()?;
                let repr = self.ty(&mut c, depth)?;
                c.expect("{")?;
                let mut variants = Vec::new();
                while c.peek() != Some("}") {
                    let vname = c.next()?.to_owned();
                    c.expect("=")?;
                    variants.push((vname, c.number()?));
                    if c.peek() == Some(",") {
                        c.next()?;
                    }
                }
                Ok(Type::Enum {
                    name: name.to_owned(),
                    repr: Box::new(repr),
                    variants,
                })
            }
            // enum Event { Started, Moved { x: i32 }, Pair(u8, u8) }
            "enum" => {
                c.expect("{")?;
                let mut cases = Vec::new();
                while c.peek() != Some("}") {
                    let cname = c.next()?.to_owned();
                    let fields = self.fields(&mut c, depth)?;
                    cases.push(Case {
                        name: cname,
                        fields,
                    });
                    if c.peek() == Some(",") {
                        c.next()?;
                    }
                }
                Ok(Type::Sum {
                    name: name.to_owned(),
                    cases,
                })
            }
            other => Err(format!("a definition of an unknown kind `{other}`")),
        }
    }

    /// `{ a: T, b: U }`, `(T, U)` or nothing.
    fn fields(&self, c: &mut Cursor<'_>, depth: usize) -> Result<Vec<Field>, String> {
        let mut fields = Vec::new();
        match c.peek() {
            Some("{") => {
                c.next()?;
                while c.peek() != Some("}") {
                    let name = c.next()?.to_owned();
                    c.expect(":")?;
                    let ty = self.ty(c, depth)?;
                    fields.push(Field {
                        name,
                        offset: 0,
                        ty,
                    });
                    if c.peek() == Some(",") {
                        c.next()?;
                    }
                }
                c.expect("}")?;
            }
            Some("(") => {
                c.next()?;
                while c.peek() != Some(")") {
                    let ty = self.ty(c, depth)?;
                    fields.push(Field {
                        name: fields.len().to_string(),
                        offset: 0,
                        ty,
                    });
                    if c.peek() == Some(",") {
                        c.next()?;
                    }
                }
                c.expect(")")?;
            }
            _ => {}
        }
        Ok(fields)
    }
}

/// A server's counters, as [`Service::stats`] read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// The server's process and user.
    pub pid: u32,
    pub uid: u32,
    /// Clients connected now (this one included).
    pub connections: u32,
    /// Since the server bound the name.
    pub uptime: Duration,
    pub methods: Vec<MethodStats>,
}

/// One method's counters since the server started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodStats {
    pub name: String,
    pub calls: u64,
    /// Calls that failed in the server: refused as bad requests, panicked, or too large.
    pub errors: u64,
    /// The latencies of a sample of the calls (one in 64 per server thread, and every call
    /// after an idle period), in the server: from taking the request to the result written.
    pub latency: Latency,
}

/// A latency histogram: four buckets per power of two.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Latency(Vec<u64>);

impl Latency {
    /// Latencies counted.
    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The latency under which a fraction `p` (0 to 1) of the calls took, to the bucket (at most
    /// 19% low); `None` if none was counted.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let target = ((count as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Some(stats::bucket_floor(bucket));
            }
        }
        None
    }

    /// What was counted since `earlier` (an earlier reading of the same method).
    pub fn since(&self, earlier: &Latency) -> Latency {
        Latency(
            self.0
                .iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(earlier.0.get(i).copied().unwrap_or(0)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_services_are_the_addresses_of_this_user_and_public_ones() {
        let addresses = [
            "shmrpc/u1000/calc",
            "shmrpc/public/calc",
            "shmrpc/public/kv",
            "shmrpc/u0/root-only",
            "shmrpc/u1000/bad name",
            "shmrpc/u10000/other",
            "shmrpc/u1000",
            "other/u1000/calc",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(reachable(addresses.clone(), 1000), ["calc", "kv"]);
        assert_eq!(reachable(addresses, 0), ["calc", "kv", "root-only"]);
    }

    #[test]
    fn latencies_give_percentiles_and_differences() {
        let mut counts = vec![0; stats::BUCKETS];
        let at = |d| stats::bucket(Duration::from_nanos(d));
        counts[at(1_000)] = 98;
        counts[at(1_000_000)] = 2;
        let all = Latency(counts.clone());
        assert_eq!(all.count(), 100);
        assert_eq!(Latency::default().percentile(0.5), None);
        let p50 = all.percentile(0.5).unwrap();
        assert!(
            p50 <= Duration::from_nanos(1_000) && p50 > Duration::from_nanos(800),
            "{p50:?}"
        );
        let p99 = all.percentile(0.99).unwrap();
        assert!(p99 > Duration::from_micros(800), "{p99:?}");
        counts[at(1_000)] = 100;
        let later = Latency(counts);
        let since = later.since(&all);
        assert_eq!(since.count(), 2);
        assert!(since.percentile(0.99).unwrap() < Duration::from_micros(2));
    }

    #[test]
    fn a_description_reads_back_into_types() {
        let text = "interface Shop\n\
            method 0 0000000000000001 add(i64, i64) -> i64\n\
            args 0 a b\n\
            method 2 0000000000000002 find(Vec<String>, [u8; 4]) -> Result<Option<Stats>, Kind>\n\
            method 3 0000000000000003 log(Event, Entry) -> ()\n\
            type struct Stats (16 bytes) { mean: f64 @0, count: u32 @8, _pad: u32 @12 }\n\
            type enum Kind: u16 { A = 1, B = 7 }\n\
            type enum Event { Started, Moved { x: i32 }, Pair(u8, String) }\n\
            type record Entry { key: String, value: Vec<u8> }\n";
        let i = ServiceInterface::parse(text).unwrap();
        assert_eq!(i.name, "Shop");
        assert_eq!(i.methods.len(), 3);
        assert_eq!(i.methods[1].tag, 2);
        assert_eq!(
            i.methods[0].signature(),
            "fn add(&self, a: i64, b: i64) -> i64"
        );
        assert_eq!(
            i.methods[1].signature(),
            "fn find(&self, arg0: Vec<String>, arg1: [u8; 4]) -> Result<Option<Stats>, Kind>"
        );
        assert_eq!(
            i.methods[2].signature(),
            "fn log(&self, arg0: Event, arg1: Entry)"
        );
        let Type::Sum { cases, .. } = &i.methods[2].args[0] else {
            panic!("{:?}", i.methods[2].args[0]);
        };
        assert_eq!(cases[1].fields[0].name, "x");
        assert_eq!(cases[2].fields[1].ty, Type::Str);
        let defs: Vec<String> = i.user_types().iter().filter_map(Type::definition).collect();
        assert_eq!(
            defs,
            [
                "struct Stats { mean: f64, count: u32, _pad: u32 } // 16 bytes",
                "#[repr(u16)] enum Kind { A = 1, B = 7 }",
                "enum Event { Started, Moved { x: i32 }, Pair(u8, String) }",
                "struct Entry { key: String, value: Vec<u8> }",
            ]
        );
    }

    fn doubling(levels: usize) -> String {
        let mut text = "method 0 0 f(T0) -> u8\n".to_owned();
        for i in 0..levels {
            text += &format!("type record T{i} {{ a: T{0}, b: T{0} }}\n", i + 1);
        }
        text + &format!("type record T{levels} {{ x: u8 }}\n")
    }

    #[test]
    fn a_description_that_does_not_parse_is_an_error_not_a_panic() {
        let doubling40 = doubling(40);
        let start = std::time::Instant::now();
        for bad in [
            "method x 0 f() -> u8",
            "method 0 0 f(Missing) -> u8",
            "method 0 0 f(u8 -> u8",
            "method 0 0 f() -> Vec<u8",
            "method 0 0 f(S) -> u8\ntype struct S (x bytes) { }",
            "method 0 0 f(A) -> u8\ntype record A { a: A }",
            // Each type uses the next twice: 2^40 parts if expanded.
            doubling40.as_str(),
        ] {
            assert!(ServiceInterface::parse(bad).is_err(), "{bad}");
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // Deep sharing within the budget still reads.
        assert!(ServiceInterface::parse(&doubling(10)).is_ok());
    }
}
