//! The one error type of shmrpc.

use std::time::Duration;

/// Everything that can go wrong when binding a server, connecting a client or making a call.
///
/// Each message says what happened and what to do about it. Match variants with `{ .. }`:
/// fields may be added.
///
/// A method's own error (the `E` of a method returning `Result<T, E>`) is not an `Error`: it
/// arrives inside `Ok`, as the method returned it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No live server serves the name: at `connect`, or at a call after the server went away.
    /// Start (or restart) the server; an existing client reconnects by itself at its next call.
    #[error(
        "no server is serving `{name}`; start the server first (a client reconnects by itself \
         once a server binds the name)"
    )]
    ServerNotRunning {
        /// The service name.
        name: String,
    },

    /// The call did not complete within the client's timeout, waiting for other clients
    /// included. The method may or may not have run; its late response is discarded.
    #[error(
        "call `{method}` to `{name}` did not complete within {timeout:?}; the server is busy, \
         stopped or stuck in a method: raise ClientOptions::timeout or look at the server"
    )]
    Timeout {
        /// The service name.
        name: String,
        /// The method called.
        method: &'static str,
        /// The client's timeout.
        timeout: Duration,
    },

    /// The server process died while this call was in flight; the method may or may not have
    /// run. Later calls fail with `ServerNotRunning` until a server binds the name again.
    #[error(
        "the server of `{name}` died during call `{method}`, which may or may not have taken \
         effect; restart the server (this client reconnects by itself)"
    )]
    ServerDied {
        /// The service name.
        name: String,
        /// The method called.
        method: &'static str,
    },

    /// `bind`: a live server already serves this name.
    #[error(
        "a live server (pid {pid}) already serves `{name}`; stop it first, or bind another name"
    )]
    AlreadyRunning {
        /// The service name.
        name: String,
        /// Process id of the running server, 0 if unknown.
        pid: u32,
    },

    /// The server serves a different interface than this client was built for.
    #[error(
        "`{name}` serves a different interface: {difference}; build the client and the server \
         from the same trait definition"
    )]
    InterfaceMismatch {
        /// The service name.
        name: String,
        /// The first difference found, in words.
        difference: String,
    },

    /// The operating system refused access to the service's shared memory.
    #[error(
        "permission denied for `{name}` ({path}): {detail}; run as the server's user, or have the \
         server bind with ServerOptions::mode(0o666)"
    )]
    PermissionDenied {
        /// The service name.
        name: String,
        /// The file the OS refused.
        path: String,
        /// What was refused.
        detail: String,
    },

    /// The name is empty, longer than 64 bytes, or not all of `[A-Za-z0-9._-]`.
    #[error(
        "invalid service name {name:?}: {reason}; use 1 to 64 characters from A-Z a-z 0-9 . _ -"
    )]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The server found the request invalid and refused it (nothing ran). Seen when another
    /// process writes into the segment, or when client and server disagree on a type's
    /// validity rules.
    #[error(
        "the server of `{name}` refused call `{method}` as invalid ({reason}); nothing ran. Look for \
         another process writing into the shared memory, or a client and server built from \
         different shmrpc versions"
    )]
    BadRequest {
        /// The service name.
        name: String,
        /// The method called.
        method: &'static str,
        /// The server's reason.
        reason: String,
    },

    /// The service's method panicked. The server caught the panic and goes on serving.
    #[error(
        "method `{method}` of `{name}` panicked: {message}; the server goes on serving. Fix the \
         method, or return an error from it instead of panicking"
    )]
    HandlerPanicked {
        /// The service name.
        name: String,
        /// The method called.
        method: &'static str,
        /// The panic message, when it was a string.
        message: String,
    },

    /// The segment holds data no shmrpc server wrote: another process is writing into it.
    /// The server repairs it; retry once the writing has stopped.
    #[error(
        "the shared memory of `{name}` holds invalid data ({detail}); another process is \
         writing into it. The server repairs it: retry, and find the writer"
    )]
    Corrupted {
        /// The service name.
        name: String,
        /// What was invalid.
        detail: String,
    },

    /// Any other error from the operating system.
    #[error("{context}: {source}")]
    Io {
        /// What shmrpc was doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_traits<T: std::error::Error + Send + Sync + 'static>() {}

    #[test]
    fn is_a_send_sync_error() {
        assert_traits::<Error>();
    }
}
