//! Service names, checked before anything touches the system, and the socket names they
//! become.

use crate::Error;

/// Longest service name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// A validated service name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceName {
    name: String,
}

impl ServiceName {
    pub(crate) fn new(name: &str) -> Result<Self, Error> {
        let invalid = |reason| {
            Err(Error::InvalidName {
                name: name.to_owned(),
                reason,
            })
        };
        if name.is_empty() {
            return invalid("it is empty");
        }
        if name.len() > MAX_NAME_LEN {
            return invalid("it is longer than 64 bytes");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return invalid("it holds a character other than A-Z a-z 0-9 . _ -");
        }
        Ok(ServiceName {
            name: name.to_owned(),
        })
    }

    /// A name that only labels a service in messages (the address of a remote one), never
    /// bound or looked up on this machine.
    pub(crate) fn label(name: &str) -> Self {
        ServiceName {
            name: name.to_owned(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// The socket name under which a server of user `uid` publishes the service for its own
    /// user: `shmrpc/u<uid>/<name>`, in the abstract namespace.
    pub(crate) fn user_address(&self, uid: u32) -> Vec<u8> {
        format!("shmrpc/u{uid}/{}", self.name).into_bytes()
    }

    /// The socket name under which a server that admits other users publishes the service for
    /// them: `shmrpc/public/<name>`.
    pub(crate) fn public_address(&self) -> Vec<u8> {
        format!("shmrpc/public/{}", self.name).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for ok in ["calc", "a", "A.b_c-9", &"x".repeat(64), ".", ".."] {
            assert!(ServiceName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        for bad in ["", &"x".repeat(65), "a/b", "a b", "é", "a~b", "a\0"] {
            match ServiceName::new(bad) {
                Err(Error::InvalidName { name, reason }) => {
                    assert_eq!(name, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
