//! Tracing, with the `tracing` feature (target `shmrpc`): a span per call on each side, events for reconnects,
//! refusals and dead peers. Without the feature every item here is empty and inlined away: not
//! one instruction is left on a call's path.
//!
//! | span or event | level | fields |
//! |---|---|---|
//! | span `shmrpc.call` (client) | debug | `service`, `method`, `seq`, `outcome`, `micros` |
//! | span `shmrpc.serve` (server) | debug | `service`, `method`, `seq`, `caller_pid`, `outcome`, `micros` |
//! | a call failed: timeout, dead server, refused, panicked | warn | `kind` (the variant), `error` (the message), in the call's span |
//! | a client connected again after its server went away | info | `service` |
//! | the server refused a request or a connection | warn | `service`, `reason` |
//! | a client's process ended or it closed its connection | debug | `service`, `client_pid` |
//!
//! `outcome` is `ok`, or the error's variant (`Timeout`, `ServerDied`, ...); on the server,
//! `ok`, `BadRequest`, `Panicked`, `TooLarge` or `Withdrawn`.

#[cfg(feature = "tracing")]
mod on {
    use std::time::Instant;

    use crate::Error;

    /// A call's span, from its start.
    pub(crate) struct Call {
        span: tracing::Span,
        /// When the call began; read only if a subscriber wants the span.
        start: Option<Instant>,
    }

    fn start(span: &tracing::Span) -> Option<Instant> {
        (!span.is_disabled()).then(Instant::now)
    }

    impl Call {
        #[inline]
        pub(crate) fn client(service: &str, method: &'static str) -> Self {
            let span = tracing::debug_span!(
                target: "shmrpc",
                "shmrpc.call",
                service,
                method,
                seq = tracing::field::Empty,
                outcome = tracing::field::Empty,
                micros = tracing::field::Empty,
            );
            Call {
                start: start(&span),
                span,
            }
        }

        #[inline]
        pub(crate) fn serve(service: &str, method: &'static str, seq: u64, pid: u32) -> Self {
            let span = tracing::debug_span!(
                target: "shmrpc",
                "shmrpc.serve",
                service,
                method,
                seq,
                caller_pid = pid,
                outcome = tracing::field::Empty,
                micros = tracing::field::Empty,
            );
            Call {
                start: start(&span),
                span,
            }
        }

        #[inline]
        pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
            self.span.enter()
        }

        pub(crate) fn span(&self) -> tracing::Span {
            self.span.clone()
        }

        /// Records how the call ended (the span closes when dropped).
        #[inline]
        pub(crate) fn end(&self, outcome: &str) {
            if let Some(start) = self.start {
                self.span.record("outcome", outcome);
                self.span
                    .record("micros", start.elapsed().as_micros() as u64);
            }
        }

        /// As `end`, for a client call's result; a failure is also a warning.
        #[inline]
        pub(crate) fn end_call<R>(&self, result: &Result<R, Error>) {
            match result {
                Ok(_) => self.end("ok"),
                Err(e) => {
                    self.span.in_scope(|| tracing::warn!(target: "shmrpc", kind = e.variant(), error = %e, "shmrpc call failed"));
                    self.end(e.variant());
                }
            }
        }
    }

    /// Records the request's sequence number in the current call span.
    #[inline]
    pub(crate) fn seq(seq: u64) {
        tracing::Span::current().record("seq", seq);
    }

    pub(crate) fn reconnected(service: &str) {
        tracing::info!(target: "shmrpc", service, "shmrpc client connected again");
    }

    pub(crate) fn refused(service: &str, reason: &str) {
        tracing::warn!(target: "shmrpc", service, reason, "shmrpc server refused");
    }

    pub(crate) fn client_gone(service: &str, client_pid: u32) {
        tracing::debug!(target: "shmrpc", service, client_pid, "shmrpc client disconnected");
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    use crate::Error;

    pub(crate) struct Call;

    impl Call {
        #[inline(always)]
        pub(crate) fn client(_: &str, _: &'static str) -> Self {
            Call
        }
        #[inline(always)]
        pub(crate) fn serve(_: &str, _: &'static str, _: u64, _: u32) -> Self {
            Call
        }
        #[inline(always)]
        pub(crate) fn enter(&self) {}
        #[inline(always)]
        pub(crate) fn end(&self, _: &str) {}
        #[inline(always)]
        pub(crate) fn end_call<R>(&self, _: &Result<R, Error>) {}
    }

    #[inline(always)]
    pub(crate) fn seq(_: u64) {}
    #[inline(always)]
    pub(crate) fn reconnected(_: &str) {}
    #[inline(always)]
    pub(crate) fn refused(_: &str, _: &str) {}
    #[inline(always)]
    pub(crate) fn client_gone(_: &str, _: u32) {}
}

#[cfg(not(feature = "tracing"))]
pub(crate) use off::*;
#[cfg(feature = "tracing")]
pub(crate) use on::*;
