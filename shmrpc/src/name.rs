//! Service names, checked before anything touches the system.

use crate::Error;

/// Longest service name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Prefix of every shared-memory object shmrpc creates (`/dev/shm/shmrpc.<name>` on Linux).
pub(crate) const OBJECT_PREFIX: &str = "shmrpc.";

/// Separates a service's object name from the suffix of a server's unpublished object. It is not
/// a character a service name may hold, so no service's object can be mistaken for another's.
pub(crate) const UNPUBLISHED_MARK: char = '~';

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

    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// The name of the published shared-memory object.
    pub(crate) fn object(&self) -> String {
        format!("{OBJECT_PREFIX}{}", self.name)
    }

    /// The prefix of this service's unpublished objects (a server between create and publish).
    pub(crate) fn unpublished_prefix(&self) -> String {
        format!("{OBJECT_PREFIX}{}{UNPUBLISHED_MARK}", self.name)
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
