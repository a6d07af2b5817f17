//! The byte layout of a slot.
//!
//! Every offset is a constant of the protocol or computed from the capacity the server
//! announced, never read back from the slot. Every field has a fixed size and a naturally
//! aligned offset, so 32- and 64-bit processes see the same layout; numbers are little-endian.
//!
//! ```text
//! offset  size     what                                                        written by
//!      0  128      header: magic, version, capacity, index, total length       server, once
//!    128  128      taken line: sequence number of the request taken             server
//!    256  128      watch line: watched flag                                     server, rarely
//!    384  128      done bell: a counter in steps of 2, bit 0 "a client sleeps"  server rings,
//!                                                                               client flags
//!    512  32 + c'  request line: fields, then the request bytes                client
//!      R  32 + c'  response line: fields, then a response of up to 256 bytes   server
//!                  (a longer one is written over the request, whose bytes the
//!                  server copied out before it ran the method)
//! ```
//!
//! Each line has one writer in the course of a call, and a small request or response shares
//! its 64-byte cache line with its fields. Lines the other side reads on every call are not
//! written on every call: the client reads the watched flag each time it publishes, so it is
//! kept apart from `taken`, which the server writes each time it takes a request (sharing a
//! line, the two would cost a cache-line transfer each way per call). The bell is a line of its
//! own: ringing is a read-modify-write, which would otherwise snatch the response line back
//! from the client reading it. Lines are 128 bytes apart (x86 prefetches lines in pairs).

/// `"shmrpc\0\x06"` read as a little-endian u64: the last byte is the protocol version.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"shmrpc\0\x06");
/// Bumped on any change to the protocol (5: variable-size messages, methods matched by name;
/// 6: padding counted from the start of the message's cache line).
pub(crate) const PROTOCOL_VERSION: u32 = 6;

pub(crate) const LINE: usize = 128;
const PAGE: usize = 4096;

/// Header fields (offsets from 0).
pub(crate) mod header {
    pub(crate) const MAGIC: usize = 0; // u64
    pub(crate) const VERSION: usize = 8; // u32
    pub(crate) const CAPACITY: usize = 12; // u32
    pub(crate) const INDEX: usize = 16; // u32
    pub(crate) const TOTAL_LEN: usize = 24; // u64
    pub(crate) const LEN: usize = 32;
}

/// Lines the server writes.
pub(crate) mod server {
    /// u64 sequence number of the last request the server took.
    pub(crate) const TAKEN: usize = super::LINE;
    /// u32 [`WATCHED`](super::WATCHED) while a server thread looks at this slot by itself.
    pub(crate) const WATCH: usize = 2 * super::LINE;
}

/// u32 done bell.
pub(crate) const BELL: usize = 3 * LINE;

/// Request line: written by the client, read by the server.
pub(crate) mod request {
    pub(crate) const OFFSET: usize = 4 * super::LINE;
    /// u64 sequence number of the request in the slot; writing it publishes the request.
    pub(crate) const SEQ: usize = 0;
    /// u64 sequence number of a request its caller gave up on.
    pub(crate) const WITHDRAWN: usize = 8;
    /// u32 method tag.
    pub(crate) const METHOD: usize = 16;
    /// u32 request length in bytes.
    pub(crate) const LEN: usize = 20;
}

/// Response line: written by the server, read by the client.
pub(crate) mod response {
    /// u64 sequence number of the request this response answers; written last.
    pub(crate) const SEQ: usize = 0;
    /// u32 [`Status`](super::Status) of the response.
    pub(crate) const STATUS: usize = 8;
    /// u32 response length in bytes.
    pub(crate) const LEN: usize = 12;
}

/// Bytes of fields before the message, in the request and response lines: half a cache line, so
/// that a small message travels in the line of its fields. The wire format counts its padding
/// from the line's start (`wire::ORIGIN`), so that a large sequence of bytes or numbers starts on
/// a line all the same (bulk copies run at full speed only then).
pub(crate) const FIELDS_LEN: usize = 32;

/// The watched flag's value while a server thread looks at the slot by itself; any other value
/// asks the client to kick.
pub(crate) const WATCHED: u32 = 1;

/// Largest slot capacity.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;

/// Outcome of a call, in the response line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Status {
    Ok = 0,
    /// The payload is a short UTF-8 reason.
    BadRequest = 1,
    /// The payload is the panic message, UTF-8, possibly cut.
    Panicked = 2,
    /// The request was withdrawn before the server ran it: nothing ran.
    Withdrawn = 3,
    /// The method ran, and its result is larger than the slot: the payload is its size, a
    /// little-endian u64.
    TooLarge = 4,
}

impl Status {
    #[inline]
    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::Ok,
            1 => Self::BadRequest,
            2 => Self::Panicked,
            3 => Self::Withdrawn,
            4 => Self::TooLarge,
            _ => return None,
        })
    }
}

/// Where things are in a slot of a given capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) capacity: usize,
}

impl Geometry {
    fn line_len(&self) -> usize {
        round_up(FIELDS_LEN + self.capacity.max(1), LINE)
    }

    pub(crate) fn request(&self) -> usize {
        request::OFFSET
    }

    pub(crate) fn response(&self) -> usize {
        request::OFFSET + self.line_len()
    }

    pub(crate) fn total_len(&self) -> usize {
        round_up(self.response() + self.line_len(), PAGE)
    }

    /// The header a server writes into a new slot.
    pub(crate) fn header(&self, index: u32) -> [u8; header::LEN] {
        let mut b = [0u8; header::LEN];
        b[header::MAGIC..][..8].copy_from_slice(&MAGIC.to_le_bytes());
        b[header::VERSION..][..4].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        b[header::CAPACITY..][..4].copy_from_slice(&(self.capacity as u32).to_le_bytes());
        b[header::INDEX..][..4].copy_from_slice(&index.to_le_bytes());
        b[header::TOTAL_LEN..][..8].copy_from_slice(&(self.total_len() as u64).to_le_bytes());
        b
    }

    /// Checks a copy of a slot's header against what the welcome message announced.
    pub(crate) fn check_header(&self, index: u32, bytes: &[u8; header::LEN]) -> bool {
        *bytes == self.header(index)
    }
}

pub(crate) const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_do_not_overlap() {
        const { assert!(header::LEN <= LINE) };
        const { assert!(request::LEN + 4 <= FIELDS_LEN && response::LEN + 4 <= FIELDS_LEN) };
        const { assert!(server::TAKEN + LINE <= server::WATCH) };
        const { assert!(server::WATCH + LINE <= BELL && BELL + LINE <= request::OFFSET) };
        let small = Geometry { capacity: 1 };
        assert_eq!(small.total_len(), PAGE);
        assert_eq!(small.response(), request::OFFSET + LINE);
        let big = Geometry { capacity: 1000 };
        assert_eq!(big.response(), request::OFFSET + 1024 + 128);
        assert_eq!(big.response() % LINE, 0);
        assert!(big.response() + FIELDS_LEN + 1000 <= big.total_len());
    }

    /// Messages start where the wire format counts its padding from: a large sequence of
    /// numbers then starts on a cache line of the slot (bulk copies run at full speed only then).
    #[test]
    fn messages_start_as_far_into_a_cache_line_as_the_wire_format_says() {
        for capacity in [1, 255, 256, 1000, 4096, 1 << 20] {
            let g = Geometry { capacity };
            for start in [g.request() + FIELDS_LEN, g.response() + FIELDS_LEN] {
                assert_eq!(start % 64, crate::wire::ORIGIN, "capacity {capacity}");
            }
        }
        let pad = crate::wire::number_padding(4, 1024);
        assert_eq!((request::OFFSET + FIELDS_LEN + 4 + pad) % 64, 0);
    }

    #[test]
    fn every_status_reads_back_and_no_other_number_is_one() {
        use Status::*;
        for status in [Ok, BadRequest, Panicked, Withdrawn, TooLarge] {
            assert_eq!(Status::from_raw(status as u32), Some(status));
        }
        for raw in [5, 6, 77, u32::MAX] {
            assert_eq!(Status::from_raw(raw), None);
        }
    }

    #[test]
    fn a_header_checks_only_against_its_own_geometry_and_index() {
        let g = Geometry { capacity: 1000 };
        let h = g.header(3);
        assert!(g.check_header(3, &h));
        assert!(!g.check_header(4, &h));
        assert!(!Geometry { capacity: 999 }.check_header(3, &h));
        let mut bad = h;
        bad[7] = 3;
        assert!(!g.check_header(3, &bad));
    }
}
