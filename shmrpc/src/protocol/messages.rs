//! The messages a connection's socket carries. Little-endian, each one `SOCK_SEQPACKET`
//! message starting with a u32 kind.
//!
//! | kind | from | fields | descriptors |
//! |---|---|---|---|
//! | `Welcome` | server, first thing after `accept` | magic, fingerprint, slot capacity and length, most slots | slot 0's memfd and wake-up socket |
//! | `Refused` | server, instead of `Welcome` or `Slot` | code, reason (UTF-8) | |
//! | `OpenSlot` | client | | |
//! | `Slot` | server | index, length | the slot's memfd and wake-up socket |
//! | `Describe` | client, when the fingerprints differ | | |
//! | `Description` | server | the interface description (UTF-8) | |
//! | `Kick` | client | slot index, sequence number | |
//! | `GetStats` | client (tools: `shmrpc list`, `top`) | | |
//! | `Stats` | server | pid, uid, connections, uptime, then per method: tag, calls, errors, latency buckets | |
//!
//! The server sends nothing the client did not ask for, and never accepts descriptors from a
//! client. Everything decoded is checked: a message that is too short, too long, of an unknown
//! kind or with invalid text is an error, and the connection is closed.

use super::layout::MAGIC;

/// Largest message either side sends.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// Largest interface description (it must fit a message).
pub(crate) const MAX_DESCRIPTION: usize = MAX_MESSAGE - 64;
/// Largest message a client sends: the server reads into a buffer this long.
pub(crate) const MAX_CLIENT_MESSAGE: usize = 16;

/// Why the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum RefusedCode {
    /// The client's user is not admitted by the server's access rules.
    Permission = 1,
    /// The server has as many connections, or the connection as many slots, as it allows.
    Limit = 2,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Welcome {
        fingerprint: u128,
        capacity: u32,
        slot_len: u64,
        max_slots: u32,
    },
    Refused {
        code: RefusedCode,
        reason: String,
    },
    OpenSlot,
    Slot {
        index: u32,
        slot_len: u64,
    },
    Describe,
    Description(String),
    Kick {
        index: u32,
        seq: u64,
    },
    GetStats,
    /// Its fields (see `server::stats::encode`).
    Stats(Vec<u8>),
}

mod kind {
    pub(super) const WELCOME: u32 = 1;
    pub(super) const REFUSED: u32 = 2;
    pub(super) const OPEN_SLOT: u32 = 3;
    pub(super) const SLOT: u32 = 4;
    pub(super) const DESCRIBE: u32 = 5;
    pub(super) const DESCRIPTION: u32 = 6;
    pub(super) const KICK: u32 = 7;
    pub(super) const GET_STATS: u32 = 8;
    pub(super) const STATS: u32 = 9;
}

/// The fixed bytes of a kick, built without allocating (a call sends it).
pub(crate) fn kick(index: u32, seq: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&kind::KICK.to_le_bytes());
    b[4..8].copy_from_slice(&index.to_le_bytes());
    b[8..].copy_from_slice(&seq.to_le_bytes());
    b
}

impl Message {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        let mut put = |bytes: &[u8]| b.extend_from_slice(bytes);
        match self {
            Message::Welcome {
                fingerprint,
                capacity,
                slot_len,
                max_slots,
            } => {
                put(&kind::WELCOME.to_le_bytes());
                put(&[0; 4]);
                put(&MAGIC.to_le_bytes());
                put(&fingerprint.to_le_bytes());
                put(&slot_len.to_le_bytes());
                put(&capacity.to_le_bytes());
                put(&max_slots.to_le_bytes());
            }
            Message::Refused { code, reason } => {
                put(&kind::REFUSED.to_le_bytes());
                put(&(*code as u32).to_le_bytes());
                put(&reason.as_bytes()[..reason.len().min(MAX_DESCRIPTION)]);
            }
            Message::OpenSlot => put(&kind::OPEN_SLOT.to_le_bytes()),
            Message::Slot { index, slot_len } => {
                put(&kind::SLOT.to_le_bytes());
                put(&index.to_le_bytes());
                put(&slot_len.to_le_bytes());
            }
            Message::Describe => put(&kind::DESCRIBE.to_le_bytes()),
            Message::Description(text) => {
                put(&kind::DESCRIPTION.to_le_bytes());
                put(text.as_bytes());
            }
            Message::Kick { index, seq } => put(&kick(*index, *seq)),
            Message::GetStats => put(&kind::GET_STATS.to_le_bytes()),
            Message::Stats(bytes) => {
                put(&kind::STATS.to_le_bytes());
                put(&bytes[..bytes.len().min(MAX_DESCRIPTION)]);
            }
        }
        b
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let u32_at = |at: usize| -> Result<u32, &'static str> {
            bytes
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or("a message too short for its kind")
        };
        let u64_at = |at: usize| -> Result<u64, &'static str> {
            bytes
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .ok_or("a message too short for its kind")
        };
        let exact = |len: usize| {
            if bytes.len() == len {
                Ok(())
            } else {
                Err("a message of the wrong length for its kind")
            }
        };
        let text = |from: usize| {
            std::str::from_utf8(&bytes[from.min(bytes.len())..])
                .map(str::to_owned)
                .map_err(|_| "text that is not UTF-8")
        };
        match u32_at(0)? {
            kind::WELCOME => {
                exact(48)?;
                if u64_at(8)? != MAGIC {
                    return Err("another version of the shmrpc protocol");
                }
                let fingerprint = u128::from_le_bytes(bytes[16..32].try_into().expect("16 bytes"));
                Ok(Message::Welcome {
                    fingerprint,
                    slot_len: u64_at(32)?,
                    capacity: u32_at(40)?,
                    max_slots: u32_at(44)?,
                })
            }
            kind::REFUSED => {
                let code = match u32_at(4)? {
                    1 => RefusedCode::Permission,
                    2 => RefusedCode::Limit,
                    _ => return Err("an unknown refusal"),
                };
                Ok(Message::Refused {
                    code,
                    reason: text(8)?,
                })
            }
            kind::OPEN_SLOT => exact(4).map(|()| Message::OpenSlot),
            kind::SLOT => {
                exact(16)?;
                Ok(Message::Slot {
                    index: u32_at(4)?,
                    slot_len: u64_at(8)?,
                })
            }
            kind::DESCRIBE => exact(4).map(|()| Message::Describe),
            kind::DESCRIPTION => Ok(Message::Description(text(4)?)),
            kind::KICK => {
                exact(16)?;
                Ok(Message::Kick {
                    index: u32_at(4)?,
                    seq: u64_at(8)?,
                })
            }
            kind::GET_STATS => exact(4).map(|()| Message::GetStats),
            kind::STATS => Ok(Message::Stats(bytes[4..].to_vec())),
            _ => Err("a message of an unknown kind"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        for m in [
            Message::Welcome {
                fingerprint: u128::MAX - 3,
                capacity: 1024,
                slot_len: 8192,
                max_slots: 64,
            },
            Message::Refused {
                code: RefusedCode::Permission,
                reason: "not you".into(),
            },
            Message::OpenSlot,
            Message::Slot {
                index: 3,
                slot_len: 4096,
            },
            Message::Describe,
            Message::Description("interface X\n".into()),
            Message::Kick {
                index: 2,
                seq: u64::MAX,
            },
            Message::GetStats,
            Message::Stats(vec![1, 2, 3]),
        ] {
            assert_eq!(Message::decode(&m.encode()), Ok(m.clone()), "{m:?}");
        }
        assert!(MAX_CLIENT_MESSAGE >= Message::Kick { index: 0, seq: 0 }.encode().len());
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            &[][..],
            &[1, 0, 0],
            &[99, 0, 0, 0],
            &[3, 0, 0, 0, 0],
            &[7, 0, 0, 0, 1, 0, 0, 0],
            &[6, 0, 0, 0, 0xff, 0xfe],
            &[2, 0, 0, 0, 9, 0, 0, 0],
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?}");
        }
        let mut welcome = Message::Welcome {
            fingerprint: 1,
            capacity: 1,
            slot_len: 1,
            max_slots: 1,
        }
        .encode();
        welcome[15] = 4; // protocol version 4's magic
        assert_eq!(
            Message::decode(&welcome),
            Err("another version of the shmrpc protocol")
        );
    }
}
