//! The macros' output, compiled in a hostile user crate: no implicit prelude, the runtime crate
//! renamed to `rpc`, user items named like the standard ones generated code might reach for,
//! raw identifiers, argument names equal to the generated code's locals, two services in one
//! module, private and crate-visible traits, `#[cfg]`'d and documented methods, and every lint
//! we know of denied. Compiling it is the test; the unit test at the bottom calls through it.

#![no_implicit_prelude]
#![deny(
    warnings,
    missing_docs,
    unused_qualifications,
    missing_debug_implementations,
    unreachable_pub
)]
#![deny(clippy::all, clippy::pedantic)]

/// Named like `core::result::Result`.
#[derive(Debug)]
pub struct Result;
/// Named like `core::option::Option`.
#[derive(Debug)]
pub struct Option;
/// Named like `std::vec::Vec`.
#[derive(Debug)]
pub struct Vec;
/// Named like `std::boxed::Box`.
#[derive(Debug)]
pub struct Box;
/// Named like `shmrpc::Error`.
#[derive(Debug)]
pub struct Error;
/// Named like `core::marker::Send`.
pub trait Send {}
/// Named like `core::default::Default`.
pub trait Default {}

/// A struct through the renamed crate.
#[derive(Clone, Copy, Debug, PartialEq, ::rpc::ShmData)]
#[shmrpc(crate = "::rpc")]
#[repr(C)]
pub struct Point {
    /// x
    pub x: f64,
    /// y
    pub r#y: f64,
}

/// A tuple struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ::rpc::ShmData)]
#[shmrpc(crate = "::rpc")]
#[repr(transparent)]
pub struct Id(pub u64);

/// An enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ::rpc::ShmData)]
#[shmrpc(crate = "::rpc")]
#[repr(u16)]
pub enum Mood {
    /// happy
    Happy = 1,
    /// sad
    r#Sad = 2,
}

/// A service whose argument names are the generated code's locals.
#[::rpc::shm_service(crate = "::rpc")]
pub trait Hostile {
    /// Arguments named like everything around them.
    fn service(&self, request: u64, reply: u64, tag: u32, buf: u8, at: u16, inner: i8) -> u64;
    /// Named like the client's fields and the server's constructor arguments.
    fn name(&self, options: u32, service: u32) -> u32;
    /// A raw identifier.
    fn r#type(&self, r#match: Point) -> Point;
    /// Every kind of result.
    ///
    /// # Errors
    ///
    /// `Sad` for id 0.
    fn results(&self, id: Id) -> ::core::result::Result<Mood, Mood>;
    /// An optional result.
    fn maybe(&self, id: Id) -> ::core::option::Option<Id>;
    /// Compiled in.
    #[cfg(target_os = "linux")]
    fn present(&self) -> bool;
    /// Compiled out.
    #[cfg(not(target_os = "linux"))]
    fn absent(&self) -> bool;
    /// Nothing back.
    fn nothing(&self);
}

/// A second service in the same module, with an explicit slot size.
#[::rpc::shm_service(crate = "::rpc")]
pub(crate) trait Second {
    /// One method.
    fn one(&self, x: u8) -> u8;
}

mod private {
    /// A private trait in a private module.
    #[::rpc::shm_service(crate = "::rpc")]
    pub(super) trait Third {
        /// One method.
        fn three(&self) -> u32;
    }
}

/// Implements the services, for the test below.
#[derive(Debug)]
pub struct Impl;

impl Hostile for Impl {
    fn service(&self, request: u64, reply: u64, tag: u32, buf: u8, at: u16, inner: i8) -> u64 {
        let small = <u64 as ::core::convert::From<u32>>::from(tag)
            + <u64 as ::core::convert::From<u8>>::from(buf)
            + <u64 as ::core::convert::From<u16>>::from(at)
            + <u64 as ::core::convert::From<u8>>::from(inner.unsigned_abs());
        request + reply + small
    }
    fn name(&self, options: u32, service: u32) -> u32 {
        options * service
    }
    fn r#type(&self, r#match: Point) -> Point {
        Point {
            x: r#match.r#y,
            r#y: r#match.x,
        }
    }
    fn results(&self, id: Id) -> ::core::result::Result<Mood, Mood> {
        if id.0 == 0 {
            ::core::result::Result::Err(Mood::r#Sad)
        } else {
            ::core::result::Result::Ok(Mood::Happy)
        }
    }
    fn maybe(&self, id: Id) -> ::core::option::Option<Id> {
        if id.0 == 0 {
            ::core::option::Option::None
        } else {
            ::core::option::Option::Some(Id(id.0 + 1))
        }
    }
    fn present(&self) -> bool {
        true
    }
    fn nothing(&self) {}
}

impl Second for Impl {
    fn one(&self, x: u8) -> u8 {
        x
    }
}

impl private::Third for Impl {
    fn three(&self) -> u32 {
        3
    }
}

/// Serves the crate-private services under two names.
///
/// # Errors
///
/// When a name is taken or invalid.
pub fn serve_others(
    a: &str,
    b: &str,
) -> ::core::result::Result<[::rpc::ServerHandle; 2], ::rpc::Error> {
    ::core::result::Result::Ok([
        SecondServer::bind(a, Impl)?.spawn()?,
        private::ThirdServer::bind(b, Impl)?.spawn()?,
    ])
}

/// Calls the crate-private services.
///
/// # Errors
///
/// When a call fails.
pub fn call_others(a: &str, b: &str) -> ::core::result::Result<(u8, u32), ::rpc::Error> {
    ::core::result::Result::Ok((
        SecondClient::connect(a)?.one(9)?,
        private::ThirdClient::connect(b)?.three()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::{
        HostileClient, HostileServer, Id, Impl, Mood, Point, SecondClient, call_others,
        serve_others,
    };

    fn name(what: &str) -> ::std::string::String {
        ::std::format!("hygiene-{what}-{}", ::std::process::id())
    }

    #[test]
    fn every_method_works_through_the_renamed_crate() {
        let n = name("hostile");
        let server = HostileServer::bind(&n, Impl).unwrap().spawn().unwrap();
        let client = HostileClient::connect(&n).unwrap();
        ::std::assert_eq!(client.service(1, 2, 3, 4, 5, -6).unwrap(), 21);
        ::std::assert_eq!(client.name(6, 7).unwrap(), 42);
        ::std::assert_eq!(
            client.r#type(Point { x: 1.0, r#y: 2.0 }).unwrap(),
            Point { x: 2.0, r#y: 1.0 }
        );
        ::std::assert_eq!(
            client.results(Id(0)).unwrap(),
            ::core::result::Result::Err(Mood::r#Sad)
        );
        ::std::assert_eq!(
            client.maybe(Id(1)).unwrap(),
            ::core::option::Option::Some(Id(2))
        );
        ::std::assert!(client.present().unwrap());
        client.nothing().unwrap();
        server.shutdown().unwrap();
    }

    #[test]
    fn several_services_in_one_module() {
        let (a, b) = (name("second"), name("third"));
        let [second, third] = serve_others(&a, &b).unwrap();
        ::std::assert_eq!(call_others(&a, &b).unwrap(), (9, 3));
        // Different interfaces: each client refuses the other's server.
        ::std::assert!(::std::matches!(
            SecondClient::connect(&b),
            ::core::result::Result::Err(::rpc::Error::InterfaceMismatch { .. })
        ));
        second.shutdown().unwrap();
        third.shutdown().unwrap();
    }
}
