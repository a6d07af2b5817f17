#[repr(C)]
pub struct Stats {
    pub mean: f64,
    pub max: f64,
    pub count: u32,
    pub _pad: u32,
}
const _: () = {
    const __shmrpc_FIELD0: ::shmrpc::__private::Codec<f64> = ::shmrpc::__private::field::<
        f64,
    >();
    const __shmrpc_FIELD1: ::shmrpc::__private::Codec<f64> = ::shmrpc::__private::field::<
        f64,
    >();
    const __shmrpc_FIELD2: ::shmrpc::__private::Codec<u32> = ::shmrpc::__private::field::<
        u32,
    >();
    const __shmrpc_FIELD3: ::shmrpc::__private::Codec<u32> = ::shmrpc::__private::field::<
        u32,
    >();
    impl ::shmrpc::ShmData for Stats {
        const SIZE: usize = 0 + __shmrpc_FIELD0.size + __shmrpc_FIELD1.size
            + __shmrpc_FIELD2.size + __shmrpc_FIELD3.size;
        const SHAPE: &'static ::shmrpc::__private::Shape = &::shmrpc::__private::Shape::Struct {
            name: "Stats",
            size: ::shmrpc::__private::core::mem::size_of::<Self>(),
            fields: &[
                ::shmrpc::__private::Field {
                    name: "mean",
                    offset: ::shmrpc::__private::core::mem::offset_of!(Stats, mean),
                    shape: __shmrpc_FIELD0.shape,
                },
                ::shmrpc::__private::Field {
                    name: "max",
                    offset: ::shmrpc::__private::core::mem::offset_of!(Stats, max),
                    shape: __shmrpc_FIELD1.shape,
                },
                ::shmrpc::__private::Field {
                    name: "count",
                    offset: ::shmrpc::__private::core::mem::offset_of!(Stats, count),
                    shape: __shmrpc_FIELD2.shape,
                },
                ::shmrpc::__private::Field {
                    name: "_pad",
                    offset: ::shmrpc::__private::core::mem::offset_of!(Stats, _pad),
                    shape: __shmrpc_FIELD3.shape,
                },
            ],
        };
        #[inline]
        fn encode(&self, out: &mut [u8]) {
            (__shmrpc_FIELD0
                .encode)(
                &self.mean,
                &mut out[::shmrpc::__private::core::mem::offset_of!(
                    Stats, mean
                )..][..__shmrpc_FIELD0.size],
            );
            (__shmrpc_FIELD1
                .encode)(
                &self.max,
                &mut out[::shmrpc::__private::core::mem::offset_of!(
                    Stats, max
                )..][..__shmrpc_FIELD1.size],
            );
            (__shmrpc_FIELD2
                .encode)(
                &self.count,
                &mut out[::shmrpc::__private::core::mem::offset_of!(
                    Stats, count
                )..][..__shmrpc_FIELD2.size],
            );
            (__shmrpc_FIELD3
                .encode)(
                &self._pad,
                &mut out[::shmrpc::__private::core::mem::offset_of!(
                    Stats, _pad
                )..][..__shmrpc_FIELD3.size],
            );
        }
        #[inline]
        fn decode(
            bytes: &[u8],
        ) -> ::shmrpc::__private::core::result::Result<
            Self,
            ::shmrpc::__private::Invalid,
        > {
            if bytes.len() != <Self as ::shmrpc::ShmData>::SIZE {
                return ::shmrpc::__private::core::result::Result::Err(
                    ::shmrpc::__private::Invalid("wrong length"),
                );
            }
            ::shmrpc::__private::core::result::Result::Ok(Stats {
                mean: (__shmrpc_FIELD0
                    .decode)(
                    &bytes[::shmrpc::__private::core::mem::offset_of!(
                        Stats, mean
                    )..][..__shmrpc_FIELD0.size],
                )?,
                max: (__shmrpc_FIELD1
                    .decode)(
                    &bytes[::shmrpc::__private::core::mem::offset_of!(
                        Stats, max
                    )..][..__shmrpc_FIELD1.size],
                )?,
                count: (__shmrpc_FIELD2
                    .decode)(
                    &bytes[::shmrpc::__private::core::mem::offset_of!(
                        Stats, count
                    )..][..__shmrpc_FIELD2.size],
                )?,
                _pad: (__shmrpc_FIELD3
                    .decode)(
                    &bytes[::shmrpc::__private::core::mem::offset_of!(
                        Stats, _pad
                    )..][..__shmrpc_FIELD3.size],
                )?,
            })
        }
        #[inline]
        fn encode_to(&self, w: &mut ::shmrpc::__private::Writer<'_>) {
            (__shmrpc_FIELD0.encode_to)(&self.mean, w);
            (__shmrpc_FIELD1.encode_to)(&self.max, w);
            (__shmrpc_FIELD2.encode_to)(&self.count, w);
            (__shmrpc_FIELD3.encode_to)(&self._pad, w);
        }
    }
    impl ::shmrpc::Wire for Stats {
        const SHAPE: &'static ::shmrpc::__private::Shape = <Self as ::shmrpc::ShmData>::SHAPE;
        const MIN_LEN: usize = <Self as ::shmrpc::ShmData>::SIZE;
        #[inline]
        fn encode(&self, w: &mut ::shmrpc::__private::Writer<'_>) {
            <Self as ::shmrpc::ShmData>::encode_to(self, w);
        }
        #[inline]
        fn decode(
            r: &mut ::shmrpc::__private::Reader<'_>,
        ) -> ::shmrpc::__private::core::result::Result<
            Self,
            ::shmrpc::__private::Invalid,
        > {
            ::shmrpc::__private::decode_fixed::<Self>(r)
        }
    }
};
const _: () = ::shmrpc::__private::no_padding_before(
    ::shmrpc::__private::core::mem::offset_of!(Stats, mean),
);
const _: () = ::shmrpc::__private::no_padding_before(
    ::shmrpc::__private::core::mem::offset_of!(Stats, max)
        - (::shmrpc::__private::core::mem::offset_of!(Stats, mean)
            + ::shmrpc::__private::core::mem::size_of::<f64>()),
);
const _: () = ::shmrpc::__private::no_padding_before(
    ::shmrpc::__private::core::mem::offset_of!(Stats, count)
        - (::shmrpc::__private::core::mem::offset_of!(Stats, max)
            + ::shmrpc::__private::core::mem::size_of::<f64>()),
);
const _: () = ::shmrpc::__private::no_padding_before(
    ::shmrpc::__private::core::mem::offset_of!(Stats, _pad)
        - (::shmrpc::__private::core::mem::offset_of!(Stats, count)
            + ::shmrpc::__private::core::mem::size_of::<u32>()),
);
const _: () = ::shmrpc::__private::no_padding_after(
    ::shmrpc::__private::core::mem::size_of::<Stats>()
        - (::shmrpc::__private::core::mem::offset_of!(Stats, _pad)
            + ::shmrpc::__private::core::mem::size_of::<u32>()),
);
#[repr(u32)]
pub enum MathError {
    DivideByZero = 1,
    Overflow = 2,
}
const _: () = {
    const __shmrpc_VALUE0: u32 = MathError::DivideByZero as u32;
    const __shmrpc_VALUE1: u32 = MathError::Overflow as u32;
    impl ::shmrpc::ShmData for MathError {
        const SIZE: usize = <u32 as ::shmrpc::ShmData>::SIZE;
        const SHAPE: &'static ::shmrpc::__private::Shape = &::shmrpc::__private::Shape::Enum {
            name: "MathError",
            repr: <u32 as ::shmrpc::ShmData>::SHAPE,
            variants: &[
                ::shmrpc::__private::Variant {
                    name: "DivideByZero",
                    value: __shmrpc_VALUE0 as u64,
                },
                ::shmrpc::__private::Variant {
                    name: "Overflow",
                    value: __shmrpc_VALUE1 as u64,
                },
            ],
        };
        #[inline]
        fn encode(&self, out: &mut [u8]) {
            let value: u32 = match self {
                MathError::DivideByZero => __shmrpc_VALUE0,
                MathError::Overflow => __shmrpc_VALUE1,
            };
            <u32 as ::shmrpc::ShmData>::encode(&value, out);
        }
        #[inline]
        fn decode(
            bytes: &[u8],
        ) -> ::shmrpc::__private::core::result::Result<
            Self,
            ::shmrpc::__private::Invalid,
        > {
            match <u32 as ::shmrpc::ShmData>::decode(bytes)? {
                __shmrpc_VALUE0 => {
                    ::shmrpc::__private::core::result::Result::Ok(
                        MathError::DivideByZero,
                    )
                }
                __shmrpc_VALUE1 => {
                    ::shmrpc::__private::core::result::Result::Ok(MathError::Overflow)
                }
                _ => {
                    ::shmrpc::__private::core::result::Result::Err(
                        ::shmrpc::__private::Invalid(
                            "a value that is none of the variants of `MathError`",
                        ),
                    )
                }
            }
        }
    }
    impl ::shmrpc::Wire for MathError {
        const SHAPE: &'static ::shmrpc::__private::Shape = <Self as ::shmrpc::ShmData>::SHAPE;
        const MIN_LEN: usize = <Self as ::shmrpc::ShmData>::SIZE;
        #[inline]
        fn encode(&self, w: &mut ::shmrpc::__private::Writer<'_>) {
            <Self as ::shmrpc::ShmData>::encode_to(self, w);
        }
        #[inline]
        fn decode(
            r: &mut ::shmrpc::__private::Reader<'_>,
        ) -> ::shmrpc::__private::core::result::Result<
            Self,
            ::shmrpc::__private::Invalid,
        > {
            ::shmrpc::__private::decode_fixed::<Self>(r)
        }
    }
};
/// Doc comments and `#[cfg]` on methods are carried through.
pub trait Calculator {
    fn add(&self, a: i64, b: i64) -> i64;
    fn div(&self, a: i64, b: i64) -> Result<i64, MathError>;
    fn stats(&self, samples: [f64; 32], n: u32) -> Stats;
    fn find(&self, key: u64) -> Option<u64>;
    fn reset(&self);
}
/**Client of the [`Calculator`] shared-memory service, generated by `#[shm_service]`.

`connect` opens the service by name; each method makes one blocking call with the client's timeout. `Send + Sync`: share one client between threads, which call in parallel. When the server restarts, the same client carries on with the new one.*/
pub struct CalculatorClient {
    inner: ::shmrpc::__private::Client,
}
/**Async client of the [`Calculator`] shared-memory service, generated by `#[shm_service]`.

The methods of the blocking client, as `async fn`s: a call that must wait sleeps without holding a thread, on any executor. Dropping a call's future cancels the call: a request the server has not taken yet is withdrawn (it never runs), and the answer to one it has taken never reaches another call. `Send + Sync`, and so are its futures.*/
pub struct CalculatorAsyncClient {
    inner: ::shmrpc::__private::AsyncClient,
}
/**Server of the [`Calculator`] shared-memory service, generated by `#[shm_service]`.

`bind` takes the name (clients may connect as soon as it returns); `spawn` serves on threads of its own until the returned handle is shut down or dropped; `run` serves on the calling thread. Dropping a server that never served frees the name.

The service type must be `Send + Sync + 'static`: its methods run on the server's worker threads, several at once with `ServerOptions::workers(n)`, for as long as the server serves.*/
pub struct CalculatorServer<S> {
    inner: ::shmrpc::__private::Server,
    service: ::shmrpc::__private::core::marker::PhantomData<fn() -> S>,
}
const _: () = {
    const __SHMRPC_M0_ARG0: ::shmrpc::__private::WireCodec<i64> = ::shmrpc::__private::codec::<
        i64,
    >();
    const __SHMRPC_M0_ARG1: ::shmrpc::__private::WireCodec<i64> = ::shmrpc::__private::codec::<
        i64,
    >();
    const __SHMRPC_M0_REPLY: ::shmrpc::__private::WireCodec<i64> = ::shmrpc::__private::codec::<
        i64,
    >();
    const __SHMRPC_M0_SHAPE: ::shmrpc::__private::core::option::Option<
        ::shmrpc::__private::MethodShape,
    > = ::shmrpc::__private::core::option::Option::Some(::shmrpc::__private::MethodShape {
        name: "add",
        tag: 0u32,
        args: &[__SHMRPC_M0_ARG0.shape, __SHMRPC_M0_ARG1.shape],
        arg_names: &["a", "b"],
        reply: __SHMRPC_M0_REPLY.shape,
    });
    const __SHMRPC_M1_ARG0: ::shmrpc::__private::WireCodec<i64> = ::shmrpc::__private::codec::<
        i64,
    >();
    const __SHMRPC_M1_ARG1: ::shmrpc::__private::WireCodec<i64> = ::shmrpc::__private::codec::<
        i64,
    >();
    const __SHMRPC_M1_REPLY: ::shmrpc::__private::WireCodec<Result<i64, MathError>> = ::shmrpc::__private::codec::<
        Result<i64, MathError>,
    >();
    const __SHMRPC_M1_SHAPE: ::shmrpc::__private::core::option::Option<
        ::shmrpc::__private::MethodShape,
    > = ::shmrpc::__private::core::option::Option::Some(::shmrpc::__private::MethodShape {
        name: "div",
        tag: 1u32,
        args: &[__SHMRPC_M1_ARG0.shape, __SHMRPC_M1_ARG1.shape],
        arg_names: &["a", "b"],
        reply: __SHMRPC_M1_REPLY.shape,
    });
    const __SHMRPC_M2_ARG0: ::shmrpc::__private::WireCodec<[f64; 32]> = ::shmrpc::__private::codec::<
        [f64; 32],
    >();
    const __SHMRPC_M2_ARG1: ::shmrpc::__private::WireCodec<u32> = ::shmrpc::__private::codec::<
        u32,
    >();
    const __SHMRPC_M2_REPLY: ::shmrpc::__private::WireCodec<Stats> = ::shmrpc::__private::codec::<
        Stats,
    >();
    const __SHMRPC_M2_SHAPE: ::shmrpc::__private::core::option::Option<
        ::shmrpc::__private::MethodShape,
    > = ::shmrpc::__private::core::option::Option::Some(::shmrpc::__private::MethodShape {
        name: "stats",
        tag: 2u32,
        args: &[__SHMRPC_M2_ARG0.shape, __SHMRPC_M2_ARG1.shape],
        arg_names: &["samples", "n"],
        reply: __SHMRPC_M2_REPLY.shape,
    });
    const __SHMRPC_M3_ARG0: ::shmrpc::__private::WireCodec<u64> = ::shmrpc::__private::codec::<
        u64,
    >();
    const __SHMRPC_M3_REPLY: ::shmrpc::__private::WireCodec<Option<u64>> = ::shmrpc::__private::codec::<
        Option<u64>,
    >();
    const __SHMRPC_M3_SHAPE: ::shmrpc::__private::core::option::Option<
        ::shmrpc::__private::MethodShape,
    > = ::shmrpc::__private::core::option::Option::Some(::shmrpc::__private::MethodShape {
        name: "find",
        tag: 3u32,
        args: &[__SHMRPC_M3_ARG0.shape],
        arg_names: &["key"],
        reply: __SHMRPC_M3_REPLY.shape,
    });
    const __SHMRPC_M4_REPLY: ::shmrpc::__private::WireCodec<()> = ::shmrpc::__private::codec::<
        (),
    >();
    const __SHMRPC_M4_SHAPE: ::shmrpc::__private::core::option::Option<
        ::shmrpc::__private::MethodShape,
    > = ::shmrpc::__private::core::option::Option::Some(::shmrpc::__private::MethodShape {
        name: "reset",
        tag: 4u32,
        args: &[],
        arg_names: &[],
        reply: __SHMRPC_M4_REPLY.shape,
    });
    static __SHMRPC_INTERFACE: ::shmrpc::__private::Interface = ::shmrpc::__private::Interface::new(
        "Calculator",
        &[
            __SHMRPC_M0_SHAPE,
            __SHMRPC_M1_SHAPE,
            __SHMRPC_M2_SHAPE,
            __SHMRPC_M3_SHAPE,
            __SHMRPC_M4_SHAPE,
        ],
    );
    impl CalculatorClient {
        /// Connects to the server of `name` with the default options (timeout 5 s).
        ///
        /// Fails at once with `ServerNotRunning` if no live server serves the name, with
        /// `PermissionDenied` if the server does not admit this user or runs as a user this
        /// client does not trust, and with `InterfaceMismatch` if it serves another
        /// interface.
        pub fn connect(
            name: &str,
        ) -> ::shmrpc::__private::core::result::Result<Self, ::shmrpc::Error> {
            Self::connect_with(
                name,
                ::shmrpc::__private::core::default::Default::default(),
            )
        }
        /// Connects to the server of `name` with `options`.
        pub fn connect_with(
            name: &str,
            options: ::shmrpc::ClientOptions,
        ) -> ::shmrpc::__private::core::result::Result<Self, ::shmrpc::Error> {
            ::shmrpc::__private::core::result::Result::Ok(Self {
                inner: ::shmrpc::__private::Client::connect(
                    name,
                    options,
                    &__SHMRPC_INTERFACE,
                )?,
            })
        }
        ///Calls [`Calculator::add`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub fn add(
            &self,
            a: i64,
            b: i64,
        ) -> ::shmrpc::__private::core::result::Result<i64, ::shmrpc::Error> {
            self.inner
                .call(
                    0u32,
                    "add",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M0_ARG0.encode)(&a, __shmrpc_w);
                        (__SHMRPC_M0_ARG1.encode)(&b, __shmrpc_w);
                    },
                    __SHMRPC_M0_REPLY.decode,
                )
        }
        ///Calls [`Calculator::div`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub fn div(
            &self,
            a: i64,
            b: i64,
        ) -> ::shmrpc::__private::core::result::Result<
            Result<i64, MathError>,
            ::shmrpc::Error,
        > {
            self.inner
                .call(
                    1u32,
                    "div",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M1_ARG0.encode)(&a, __shmrpc_w);
                        (__SHMRPC_M1_ARG1.encode)(&b, __shmrpc_w);
                    },
                    __SHMRPC_M1_REPLY.decode,
                )
        }
        ///Calls [`Calculator::stats`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub fn stats(
            &self,
            samples: [f64; 32],
            n: u32,
        ) -> ::shmrpc::__private::core::result::Result<Stats, ::shmrpc::Error> {
            self.inner
                .call(
                    2u32,
                    "stats",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M2_ARG0.encode)(&samples, __shmrpc_w);
                        (__SHMRPC_M2_ARG1.encode)(&n, __shmrpc_w);
                    },
                    __SHMRPC_M2_REPLY.decode,
                )
        }
        ///Calls [`Calculator::find`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub fn find(
            &self,
            key: u64,
        ) -> ::shmrpc::__private::core::result::Result<Option<u64>, ::shmrpc::Error> {
            self.inner
                .call(
                    3u32,
                    "find",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M3_ARG0.encode)(&key, __shmrpc_w);
                    },
                    __SHMRPC_M3_REPLY.decode,
                )
        }
        ///Calls [`Calculator::reset`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub fn reset(
            &self,
        ) -> ::shmrpc::__private::core::result::Result<(), ::shmrpc::Error> {
            self.inner
                .call(
                    4u32,
                    "reset",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                    },
                    __SHMRPC_M4_REPLY.decode,
                )
        }
    }
    impl ::shmrpc::__private::core::fmt::Debug for CalculatorClient {
        fn fmt(
            &self,
            f: &mut ::shmrpc::__private::core::fmt::Formatter<'_>,
        ) -> ::shmrpc::__private::core::fmt::Result {
            f.debug_struct("CalculatorClient")
                .field("name", &self.inner.name())
                .finish_non_exhaustive()
        }
    }
    impl ::shmrpc::remote::RemoteClient for CalculatorClient {
        fn with_transport(
            name: &str,
            transport: ::shmrpc::__private::std::sync::Arc<
                dyn ::shmrpc::remote::Transport,
            >,
            timeout: ::shmrpc::__private::core::time::Duration,
        ) -> Self {
            Self {
                inner: ::shmrpc::__private::Client::with_transport(
                    name,
                    transport,
                    timeout,
                    &__SHMRPC_INTERFACE,
                ),
            }
        }
    }
    impl CalculatorAsyncClient {
        /// Connects to the server of `name` with the default options (timeout 5 s).
        ///
        /// Fails at once with `ServerNotRunning` if no live server serves the name, with
        /// `PermissionDenied` if the server does not admit this user or runs as a user this
        /// client does not trust, and with `InterfaceMismatch` if it serves another
        /// interface.
        pub async fn connect(
            name: &str,
        ) -> ::shmrpc::__private::core::result::Result<Self, ::shmrpc::Error> {
            Self::connect_with(
                    name,
                    ::shmrpc::__private::core::default::Default::default(),
                )
                .await
        }
        /// Connects to the server of `name` with `options` (`wait_for_server` waits without
        /// blocking the thread).
        pub async fn connect_with(
            name: &str,
            options: ::shmrpc::ClientOptions,
        ) -> ::shmrpc::__private::core::result::Result<Self, ::shmrpc::Error> {
            ::shmrpc::__private::core::result::Result::Ok(Self {
                inner: ::shmrpc::__private::AsyncClient::connect(
                        name,
                        options,
                        &__SHMRPC_INTERFACE,
                    )
                    .await?,
            })
        }
        ///Calls [`Calculator::add`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub async fn add(
            &self,
            a: i64,
            b: i64,
        ) -> ::shmrpc::__private::core::result::Result<i64, ::shmrpc::Error> {
            self.inner
                .call(
                    0u32,
                    "add",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M0_ARG0.encode)(&a, __shmrpc_w);
                        (__SHMRPC_M0_ARG1.encode)(&b, __shmrpc_w);
                    },
                    __SHMRPC_M0_REPLY.decode,
                )
                .await
        }
        ///Calls [`Calculator::div`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub async fn div(
            &self,
            a: i64,
            b: i64,
        ) -> ::shmrpc::__private::core::result::Result<
            Result<i64, MathError>,
            ::shmrpc::Error,
        > {
            self.inner
                .call(
                    1u32,
                    "div",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M1_ARG0.encode)(&a, __shmrpc_w);
                        (__SHMRPC_M1_ARG1.encode)(&b, __shmrpc_w);
                    },
                    __SHMRPC_M1_REPLY.decode,
                )
                .await
        }
        ///Calls [`Calculator::stats`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub async fn stats(
            &self,
            samples: [f64; 32],
            n: u32,
        ) -> ::shmrpc::__private::core::result::Result<Stats, ::shmrpc::Error> {
            self.inner
                .call(
                    2u32,
                    "stats",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M2_ARG0.encode)(&samples, __shmrpc_w);
                        (__SHMRPC_M2_ARG1.encode)(&n, __shmrpc_w);
                    },
                    __SHMRPC_M2_REPLY.decode,
                )
                .await
        }
        ///Calls [`Calculator::find`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub async fn find(
            &self,
            key: u64,
        ) -> ::shmrpc::__private::core::result::Result<Option<u64>, ::shmrpc::Error> {
            self.inner
                .call(
                    3u32,
                    "find",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                        (__SHMRPC_M3_ARG0.encode)(&key, __shmrpc_w);
                    },
                    __SHMRPC_M3_REPLY.decode,
                )
                .await
        }
        ///Calls [`Calculator::reset`] in the server.
        #[allow(clippy::too_many_arguments)]
        pub async fn reset(
            &self,
        ) -> ::shmrpc::__private::core::result::Result<(), ::shmrpc::Error> {
            self.inner
                .call(
                    4u32,
                    "reset",
                    |__shmrpc_w: &mut ::shmrpc::__private::Writer<'_>| {
                        let _ = &__shmrpc_w;
                    },
                    __SHMRPC_M4_REPLY.decode,
                )
                .await
        }
    }
    impl ::shmrpc::__private::core::fmt::Debug for CalculatorAsyncClient {
        fn fmt(
            &self,
            f: &mut ::shmrpc::__private::core::fmt::Formatter<'_>,
        ) -> ::shmrpc::__private::core::fmt::Result {
            f.debug_struct("CalculatorAsyncClient")
                .field("name", &self.inner.name())
                .finish_non_exhaustive()
        }
    }
    impl<
        S: Calculator + ::shmrpc::__private::core::marker::Send
            + ::shmrpc::__private::core::marker::Sync + 'static,
    > CalculatorServer<S> {
        /// Takes `name` and prepares to serve `service` on it, with the default options (only
        /// this user may connect, one worker).
        ///
        /// Fails with `AlreadyRunning` if a live server serves the name.
        pub fn bind(
            name: &str,
            service: S,
        ) -> ::shmrpc::__private::core::result::Result<Self, ::shmrpc::Error> {
            Self::bind_with(
                name,
                service,
                ::shmrpc::__private::core::default::Default::default(),
            )
        }
        /// Takes `name` with `options`.
        pub fn bind_with(
            name: &str,
            service: S,
            options: ::shmrpc::ServerOptions,
        ) -> ::shmrpc::__private::core::result::Result<Self, ::shmrpc::Error> {
            let dispatch: ::shmrpc::__private::Dispatch = ::shmrpc::__private::std::sync::Arc::new(move |
                __shmrpc_tag: u32,
                __shmrpc_request: &[u8],
                __shmrpc_reply: ::shmrpc::__private::Writer<'_>|
            {
                __shmrpc_dispatch(
                    &service,
                    __shmrpc_tag,
                    __shmrpc_request,
                    __shmrpc_reply,
                )
            });
            ::shmrpc::__private::core::result::Result::Ok(Self {
                inner: ::shmrpc::__private::Server::bind(
                    name,
                    options,
                    &__SHMRPC_INTERFACE,
                    dispatch,
                )?,
                service: ::shmrpc::__private::core::marker::PhantomData,
            })
        }
        /// Serves on threads of its own; the handle stops it (`shutdown`, or drop).
        pub fn spawn(
            self,
        ) -> ::shmrpc::__private::core::result::Result<
            ::shmrpc::ServerHandle,
            ::shmrpc::Error,
        > {
            self.inner.spawn()
        }
        /// Serves on this thread (and, with more than one worker, threads of its own), for
        /// ever.
        pub fn run(
            self,
        ) -> ::shmrpc::__private::core::result::Result<(), ::shmrpc::Error> {
            self.inner.run()
        }
        /// The service name.
        pub fn name(&self) -> &str {
            self.inner.name()
        }
    }
    impl<
        S: Calculator + ::shmrpc::__private::core::marker::Send
            + ::shmrpc::__private::core::marker::Sync + 'static,
    > ::shmrpc::remote::RemoteServer for CalculatorServer<S> {
        type Service = S;
        fn remote_service(
            service: S,
            options: &::shmrpc::ServerOptions,
        ) -> ::shmrpc::__private::core::result::Result<
            ::shmrpc::remote::Service,
            ::shmrpc::Error,
        > {
            let dispatch: ::shmrpc::__private::Dispatch = ::shmrpc::__private::std::sync::Arc::new(move |
                __shmrpc_tag: u32,
                __shmrpc_request: &[u8],
                __shmrpc_reply: ::shmrpc::__private::Writer<'_>|
            {
                __shmrpc_dispatch(
                    &service,
                    __shmrpc_tag,
                    __shmrpc_request,
                    __shmrpc_reply,
                )
            });
            ::shmrpc::remote::Service::new(&__SHMRPC_INTERFACE, dispatch, options)
        }
    }
    impl<S> ::shmrpc::__private::core::fmt::Debug for CalculatorServer<S> {
        fn fmt(
            &self,
            f: &mut ::shmrpc::__private::core::fmt::Formatter<'_>,
        ) -> ::shmrpc::__private::core::fmt::Result {
            f.debug_struct("CalculatorServer")
                .field("name", &self.inner.name())
                .finish_non_exhaustive()
        }
    }
    fn __shmrpc_dispatch<S: Calculator + ?::shmrpc::__private::core::marker::Sized>(
        __shmrpc_service: &S,
        __shmrpc_tag: u32,
        __shmrpc_request: &[u8],
        __shmrpc_reply: ::shmrpc::__private::Writer<'_>,
    ) -> ::shmrpc::__private::core::result::Result<
        ::shmrpc::__private::Written,
        ::shmrpc::__private::Invalid,
    > {
        match __shmrpc_tag {
            0u32 => {
                #[inline(never)]
                fn __shmrpc_method<
                    S: Calculator + ?::shmrpc::__private::core::marker::Sized,
                >(
                    __shmrpc_service: &S,
                    __shmrpc_request: &[u8],
                    __shmrpc_reply: ::shmrpc::__private::Writer<'_>,
                ) -> ::shmrpc::__private::core::result::Result<
                    ::shmrpc::__private::Written,
                    ::shmrpc::__private::Invalid,
                > {
                    let mut __shmrpc_r = ::shmrpc::__private::Reader::new(
                        __shmrpc_request,
                    );
                    let __shmrpc_arg0 = (__SHMRPC_M0_ARG0.decode)(&mut __shmrpc_r)?;
                    let __shmrpc_arg1 = (__SHMRPC_M0_ARG1.decode)(&mut __shmrpc_r)?;
                    __shmrpc_r.finish()?;
                    let mut __shmrpc_reply = __shmrpc_reply;
                    let __shmrpc_value = <S as Calculator>::add(
                        __shmrpc_service,
                        __shmrpc_arg0,
                        __shmrpc_arg1,
                    );
                    ::shmrpc::__private::send(
                        &__shmrpc_value,
                        __SHMRPC_M0_REPLY.encode,
                        &mut __shmrpc_reply,
                    );
                    ::shmrpc::__private::core::result::Result::Ok(
                        __shmrpc_reply.finish(),
                    )
                }
                __shmrpc_method::<S>(__shmrpc_service, __shmrpc_request, __shmrpc_reply)
            }
            1u32 => {
                #[inline(never)]
                fn __shmrpc_method<
                    S: Calculator + ?::shmrpc::__private::core::marker::Sized,
                >(
                    __shmrpc_service: &S,
                    __shmrpc_request: &[u8],
                    __shmrpc_reply: ::shmrpc::__private::Writer<'_>,
                ) -> ::shmrpc::__private::core::result::Result<
                    ::shmrpc::__private::Written,
                    ::shmrpc::__private::Invalid,
                > {
                    let mut __shmrpc_r = ::shmrpc::__private::Reader::new(
                        __shmrpc_request,
                    );
                    let __shmrpc_arg0 = (__SHMRPC_M1_ARG0.decode)(&mut __shmrpc_r)?;
                    let __shmrpc_arg1 = (__SHMRPC_M1_ARG1.decode)(&mut __shmrpc_r)?;
                    __shmrpc_r.finish()?;
                    let mut __shmrpc_reply = __shmrpc_reply;
                    let __shmrpc_value = <S as Calculator>::div(
                        __shmrpc_service,
                        __shmrpc_arg0,
                        __shmrpc_arg1,
                    );
                    ::shmrpc::__private::send(
                        &__shmrpc_value,
                        __SHMRPC_M1_REPLY.encode,
                        &mut __shmrpc_reply,
                    );
                    ::shmrpc::__private::core::result::Result::Ok(
                        __shmrpc_reply.finish(),
                    )
                }
                __shmrpc_method::<S>(__shmrpc_service, __shmrpc_request, __shmrpc_reply)
            }
            2u32 => {
                #[inline(never)]
                fn __shmrpc_method<
                    S: Calculator + ?::shmrpc::__private::core::marker::Sized,
                >(
                    __shmrpc_service: &S,
                    __shmrpc_request: &[u8],
                    __shmrpc_reply: ::shmrpc::__private::Writer<'_>,
                ) -> ::shmrpc::__private::core::result::Result<
                    ::shmrpc::__private::Written,
                    ::shmrpc::__private::Invalid,
                > {
                    let mut __shmrpc_r = ::shmrpc::__private::Reader::new(
                        __shmrpc_request,
                    );
                    let __shmrpc_arg0 = (__SHMRPC_M2_ARG0.decode)(&mut __shmrpc_r)?;
                    let __shmrpc_arg1 = (__SHMRPC_M2_ARG1.decode)(&mut __shmrpc_r)?;
                    __shmrpc_r.finish()?;
                    let mut __shmrpc_reply = __shmrpc_reply;
                    let __shmrpc_value = <S as Calculator>::stats(
                        __shmrpc_service,
                        __shmrpc_arg0,
                        __shmrpc_arg1,
                    );
                    ::shmrpc::__private::send(
                        &__shmrpc_value,
                        __SHMRPC_M2_REPLY.encode,
                        &mut __shmrpc_reply,
                    );
                    ::shmrpc::__private::core::result::Result::Ok(
                        __shmrpc_reply.finish(),
                    )
                }
                __shmrpc_method::<S>(__shmrpc_service, __shmrpc_request, __shmrpc_reply)
            }
            3u32 => {
                #[inline(never)]
                fn __shmrpc_method<
                    S: Calculator + ?::shmrpc::__private::core::marker::Sized,
                >(
                    __shmrpc_service: &S,
                    __shmrpc_request: &[u8],
                    __shmrpc_reply: ::shmrpc::__private::Writer<'_>,
                ) -> ::shmrpc::__private::core::result::Result<
                    ::shmrpc::__private::Written,
                    ::shmrpc::__private::Invalid,
                > {
                    let mut __shmrpc_r = ::shmrpc::__private::Reader::new(
                        __shmrpc_request,
                    );
                    let __shmrpc_arg0 = (__SHMRPC_M3_ARG0.decode)(&mut __shmrpc_r)?;
                    __shmrpc_r.finish()?;
                    let mut __shmrpc_reply = __shmrpc_reply;
                    let __shmrpc_value = <S as Calculator>::find(
                        __shmrpc_service,
                        __shmrpc_arg0,
                    );
                    ::shmrpc::__private::send(
                        &__shmrpc_value,
                        __SHMRPC_M3_REPLY.encode,
                        &mut __shmrpc_reply,
                    );
                    ::shmrpc::__private::core::result::Result::Ok(
                        __shmrpc_reply.finish(),
                    )
                }
                __shmrpc_method::<S>(__shmrpc_service, __shmrpc_request, __shmrpc_reply)
            }
            4u32 => {
                #[inline(never)]
                fn __shmrpc_method<
                    S: Calculator + ?::shmrpc::__private::core::marker::Sized,
                >(
                    __shmrpc_service: &S,
                    __shmrpc_request: &[u8],
                    __shmrpc_reply: ::shmrpc::__private::Writer<'_>,
                ) -> ::shmrpc::__private::core::result::Result<
                    ::shmrpc::__private::Written,
                    ::shmrpc::__private::Invalid,
                > {
                    let mut __shmrpc_r = ::shmrpc::__private::Reader::new(
                        __shmrpc_request,
                    );
                    __shmrpc_r.finish()?;
                    let mut __shmrpc_reply = __shmrpc_reply;
                    let __shmrpc_value = <S as Calculator>::reset(__shmrpc_service);
                    ::shmrpc::__private::send(
                        &__shmrpc_value,
                        __SHMRPC_M4_REPLY.encode,
                        &mut __shmrpc_reply,
                    );
                    ::shmrpc::__private::core::result::Result::Ok(
                        __shmrpc_reply.finish(),
                    )
                }
                __shmrpc_method::<S>(__shmrpc_service, __shmrpc_request, __shmrpc_reply)
            }
            _ => {
                ::shmrpc::__private::core::result::Result::Err(
                    ::shmrpc::__private::Invalid("no method with this tag"),
                )
            }
        }
    }
};
