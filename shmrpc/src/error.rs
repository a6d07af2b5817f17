//! The one error type of shmrpc.

use std::time::Duration;

/// Everything that can go wrong when binding a server, connecting a client or making a call.
///
/// Each message says what happened and what to do about it. Match variants with `{ .. }`:
/// fields may be added.
///
/// A method's own error (the `E` of a method returning `Result<T, E>`) is not an `Error`: it
/// arrives inside `Ok`, as the method returned it.
///
/// `Debug` shows the variant's name and the message (`ServerNotRunning: no server is serving
/// ...`), and the OS error under an `Io`: what `fn main() -> Result<(), shmrpc::Error>` prints
/// when it fails, as `anyhow` and `std::io::Error` do, rather than the bare fields. Match on the
/// variants to read the fields.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No live server serves the name: at `connect`, or at a call after the server went away.
    /// Start (or restart) the server; an existing client reconnects by itself at its next call.
    #[error(
        "no server is serving `{name}`{}; start the server first (a client reconnects by itself \
         once a server binds the name)",
        prefixed(detail)
    )]
    ServerNotRunning {
        /// The service name.
        name: String,
        /// More about why, when there is more to say (empty otherwise).
        detail: String,
    },

    /// The call did not complete within the client's timeout (waiting for a free slot
    /// included); the method may or may not have run, and its late answer is discarded. Also
    /// `connect` (method `"connect"`) to a server that holds the name but does not answer:
    /// stopped, or bound and not serving yet.
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
        "a live server (pid {pid}, uid {uid}) already serves `{name}`{}; stop it first, or bind \
         another name",
        other_user(*uid)
    )]
    AlreadyRunning {
        /// The service name.
        name: String,
        /// Process id of the running server, as this process sees it (0 if it is in a pid
        /// namespace this process cannot see).
        pid: u32,
        /// The user it runs as.
        uid: u32,
    },

    /// `bind`: the name is held by a process that does not serve it, such as a process forked
    /// (without exec) from a server that has since died.
    #[error(
        "the name `{name}` is held by a process that does not serve it: {detail}; that process \
         must exit (or close its copy of the server's socket) before a server can bind the name"
    )]
    NameTaken {
        /// The service name.
        name: String,
        /// Who holds it, as far as is known.
        detail: String,
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

    /// The server's access rules do not admit this client's user, or the server runs as a user
    /// this client does not trust. The detail names the rule and what to change.
    #[error("permission denied for `{name}`: {detail}")]
    PermissionDenied {
        /// The service name.
        name: String,
        /// Which rule refused, and what to do.
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

    /// The server found the request invalid and refused it (nothing ran). Seen when something
    /// in the client's process writes into its slot, or when client and server disagree on a
    /// type's validity rules.
    #[error(
        "the server of `{name}` refused call `{method}` as invalid ({reason}); nothing ran. Look for \
         code in this process writing into shmrpc's shared memory, or a client and server built \
         from different shmrpc versions"
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

    /// The server's answer, or the slot the server sent, is invalid: something other than
    /// shmrpc wrote into this client's shared memory, or the server is not a well-behaved
    /// shmrpc server.
    #[error(
        "the shared memory of `{name}` holds invalid data ({detail}); look for code in this \
         process or the server writing into it, or a client and server built from different \
         shmrpc versions"
    )]
    Corrupted {
        /// The service name.
        name: String,
        /// What was invalid.
        detail: String,
    },

    /// A request or a response is larger than the server's
    /// [`ServerOptions::max_message`](crate::ServerOptions::max_message). A request over it is
    /// refused by the client before anything is sent; a response over it means the method ran,
    /// and its result was dropped (the server goes on serving).
    #[error(
        "{} of call `{method}` to `{name}` is {size} bytes, over the server's limit of {limit}{}",
        if *response { "the result" } else { "the request" },
        if *response {
            "; the method ran, but its result could not be sent. Return less (in parts, or a \
             range per call), or raise ServerOptions::max_message in the server"
        } else {
            "; nothing was sent. Send less per call (in parts), or raise \
             ServerOptions::max_message in the server"
        }
    )]
    TooLarge {
        /// The service name.
        name: String,
        /// The method called.
        method: &'static str,
        /// The message's size in bytes (at least this much, for one over 4 GiB).
        size: u64,
        /// The server's `max_message`.
        limit: u64,
        /// Whether it was the result (the method ran) rather than the request (nothing sent).
        response: bool,
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

/// `": detail"`, or nothing for an empty detail.
fn prefixed(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// A remark when the holder of a name is another user than this process's.
fn other_user(uid: u32) -> &'static str {
    if uid == crate::sys::euid() {
        ""
    } else {
        " (another user: service names are per user, but any user may take a name first; \
         a client never trusts it unless told to)"
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {self}", self.variant())?;
        if let Error::Io { source, .. } = self {
            write!(f, " ({source:?})")?;
        }
        Ok(())
    }
}

impl Error {
    /// The variant's name.
    pub(crate) fn variant(&self) -> &'static str {
        match self {
            Error::ServerNotRunning { .. } => "ServerNotRunning",
            Error::Timeout { .. } => "Timeout",
            Error::ServerDied { .. } => "ServerDied",
            Error::AlreadyRunning { .. } => "AlreadyRunning",
            Error::NameTaken { .. } => "NameTaken",
            Error::InterfaceMismatch { .. } => "InterfaceMismatch",
            Error::PermissionDenied { .. } => "PermissionDenied",
            Error::InvalidName { .. } => "InvalidName",
            Error::BadRequest { .. } => "BadRequest",
            Error::HandlerPanicked { .. } => "HandlerPanicked",
            Error::Corrupted { .. } => "Corrupted",
            Error::TooLarge { .. } => "TooLarge",
            Error::Io { .. } => "Io",
        }
    }

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

    /// What `fn main() -> Result<(), shmrpc::Error>` prints: the message, not bare fields.
    #[test]
    fn debug_shows_the_variant_and_the_message() {
        let e = Error::ServerNotRunning {
            name: "kv".into(),
            detail: String::new(),
        };
        assert_eq!(format!("{e:?}"), format!("ServerNotRunning: {e}"));
        assert!(format!("{e:?}").contains("no server is serving `kv`; start the server first"));
        let io = Error::io("binding `kv`", std::io::Error::from_raw_os_error(24));
        let shown = format!("{io:?}");
        assert!(shown.starts_with("Io: "), "{shown}");
        assert!(
            shown.contains("binding `kv`") && shown.contains("code: 24"),
            "{shown}"
        );
    }
}
