//! The byte layout of a service's shared-memory segment, protocol version 3.
//!
//! Every offset here is a constant of the protocol, or computed from the slot capacity in the
//! validated header, never read raw from the segment, so a process can always find the doorbells
//! even when the header holds garbage. Every field has a fixed size and a naturally aligned
//! offset, so 32- and 64-bit processes see the same layout.
//!
//! ```text
//! offset  size     what                                                written by
//!      0  256      header (identity of the server)                     server (bind; repaired)
//!    256  128      client lock                                         clients
//!    384  128      taken line: sequence number of the request taken    server
//!    512  128      exec doorbell                                       the client holding the lock
//!    640  128      done doorbell                                       server
//!    768  32 + c'  exec line: request fields, request bytes            the client holding the lock
//!      R  32 + c'  done line: response fields, response                server
//!      D  d        interface description (UTF-8)                       server (bind; repaired)
//! ```
//!
//! Each line has one writer in the course of a call, and a small request or response sits in the
//! same 64-byte cache line as its fields: a call moves about as few cache lines between the two
//! cores as a bare ping-pong would. The doorbells live apart from the lines they announce: ringing
//! is an atomic read-modify-write, which must own its line, and on the request's own line it
//! would snatch that line back from the server just as it starts reading the request (and the
//! done bell likewise from the client reading the response), costing a second transfer on the
//! critical path of every call. Regions are 128 bytes apart (x86 prefetches lines in pairs),
//! so the lock waiters' traffic never disturbs the line the server spins on.

/// `"shmrpc\0\x03"` read as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"shmrpc\0\x03");
/// Bumped on any change to this file.
pub(crate) const PROTOCOL_VERSION: u32 = 3;

pub(crate) const LINE: usize = 128;
pub(crate) const HEADER_OFFSET: usize = 0;
pub(crate) const HEADER_LEN: usize = 2 * LINE;
pub(crate) const LOCK_OFFSET: usize = HEADER_LEN;
pub(crate) const TAKEN_OFFSET: usize = LOCK_OFFSET + LINE;
/// u32 exec doorbell: a counter in steps of 2; bit 0 set while the server sleeps on it.
pub(crate) const EXEC_BELL_OFFSET: usize = TAKEN_OFFSET + LINE;
/// u32 done doorbell: a counter in steps of 2; bit 0 set while a client sleeps on it.
pub(crate) const DONE_BELL_OFFSET: usize = EXEC_BELL_OFFSET + LINE;
pub(crate) const EXEC_OFFSET: usize = DONE_BELL_OFFSET + LINE;
/// Bytes of fields before the payload, in the exec and done regions.
pub(crate) const FIELDS_LEN: usize = 32;
/// Largest slot a segment may declare; a header claiming more is garbage.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;
/// Largest interface description.
pub(crate) const MAX_DESCRIPTION: usize = 1 << 20;
const PAGE: usize = 4096;

/// Header fields (offsets within the header).
pub(crate) mod header {
    pub(crate) const MAGIC: usize = 0; // u64
    pub(crate) const VERSION: usize = 8; // u32
    pub(crate) const STATE: usize = 12; // u32, see `ServerState`
    pub(crate) const TOTAL_LEN: usize = 16; // u64
    pub(crate) const CAPACITY: usize = 24; // u32
    pub(crate) const DESCRIPTION_LEN: usize = 28; // u32
    pub(crate) const GENERATION: usize = 32; // u64
    pub(crate) const FINGERPRINT: usize = 40; // u64 x 2
    pub(crate) const SERVER_PID: usize = 56; // u32
    pub(crate) const SERVER_UID: usize = 60; // u32
    pub(crate) const CHECKSUM: usize = 64; // u64, over bytes 0..64 with STATE as 0
    pub(crate) const LEN: usize = 72;
}

/// Lock line.
pub(crate) mod lock {
    /// u64: low 32 bits `pid | WANT | HANDOFF | WAITERS`, high 32 bits the owner's process tag. The
    /// futex waits on the low half.
    pub(crate) const WORD: usize = 0;
    /// u64: when the last hand-off happened, monotonic nanoseconds.
    pub(crate) const HANDOFF_AT: usize = 8;
}

/// Taken line: written by the server (and, rarely, by a client asking for a repair).
pub(crate) mod taken {
    /// u64 sequence number of the last request the server took.
    pub(crate) const SEQ: usize = 0;
    /// u32 set by a client that found the segment damaged; the server repairs and clears it.
    pub(crate) const REPAIR: usize = 8;
}

/// Exec region: written by the client holding the lock, read by the server.
pub(crate) mod exec {
    /// u64 sequence number of the request in the slot; writing it publishes the request.
    pub(crate) const SEQ: usize = 0;
    /// u64 sequence number of a request its caller (or the next client) gave up on.
    pub(crate) const WITHDRAWN: usize = 8;
    /// u32 method tag.
    pub(crate) const METHOD: usize = 16;
    /// u32 request length in bytes.
    pub(crate) const LEN: usize = 20;
}

/// Done region: written by the server, read by the client holding the lock.
pub(crate) mod done {
    /// u64 sequence number of the request this response answers; written last.
    pub(crate) const SEQ: usize = 0;
    /// u32 `Status` of the response.
    pub(crate) const STATUS: usize = 8;
    /// u32 response length in bytes.
    pub(crate) const LEN: usize = 12;
}

/// Life of the server, in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ServerState {
    Ready = 1,
    /// The server shut down cleanly; the name is gone or about to be.
    Stopped = 2,
}

/// Outcome of a call, in the done line.
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
}

impl Status {
    pub(crate) fn from_raw(raw: u32) -> Option<Self> {
        [Self::Ok, Self::BadRequest, Self::Panicked, Self::Withdrawn]
            .into_iter()
            .find(|s| *s as u32 == raw)
    }
}

/// Offsets of a segment with a given slot capacity and description length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) capacity: usize,
    pub(crate) description_len: usize,
}

impl Geometry {
    fn region_len(&self) -> usize {
        round_up(FIELDS_LEN + self.capacity.max(1), LINE)
    }

    /// Where the done region starts.
    pub(crate) fn done_offset(&self) -> usize {
        EXEC_OFFSET + self.region_len()
    }

    pub(crate) fn description_offset(&self) -> usize {
        self.done_offset() + self.region_len()
    }

    pub(crate) fn total_len(&self) -> usize {
        round_up(self.description_offset() + self.description_len, PAGE)
    }
}

pub(crate) const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// A private copy of the header: the server's truth, or what a client read and validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderImage {
    pub(crate) generation: u64,
    pub(crate) fingerprint: u128,
    pub(crate) geometry: Geometry,
    pub(crate) server_pid: u32,
    pub(crate) server_uid: u32,
}

/// Why a header is not one a client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not an shmrpc segment, or damaged beyond reading.
    Garbage(&'static str),
    /// An shmrpc segment of another protocol version.
    Version(u32),
}

impl HeaderImage {
    /// The header bytes (without state, which changes over the server's life).
    pub(crate) fn encode(&self) -> [u8; header::LEN] {
        let mut b = [0u8; header::LEN];
        put(&mut b, header::MAGIC, &MAGIC.to_le_bytes());
        put(&mut b, header::VERSION, &PROTOCOL_VERSION.to_le_bytes());
        put(
            &mut b,
            header::TOTAL_LEN,
            &(self.geometry.total_len() as u64).to_le_bytes(),
        );
        put(
            &mut b,
            header::CAPACITY,
            &(self.geometry.capacity as u32).to_le_bytes(),
        );
        put(
            &mut b,
            header::DESCRIPTION_LEN,
            &(self.geometry.description_len as u32).to_le_bytes(),
        );
        put(&mut b, header::GENERATION, &self.generation.to_le_bytes());
        put(&mut b, header::FINGERPRINT, &self.fingerprint.to_le_bytes());
        put(&mut b, header::SERVER_PID, &self.server_pid.to_le_bytes());
        put(&mut b, header::SERVER_UID, &self.server_uid.to_le_bytes());
        let sum = checksum(&b[..header::CHECKSUM]);
        put(&mut b, header::CHECKSUM, &sum.to_le_bytes());
        b
    }

    /// Validates a copy of the header bytes (state bytes ignored).
    pub(crate) fn decode(bytes: &[u8; header::LEN]) -> Result<Self, HeaderError> {
        let mut b = *bytes;
        b[header::STATE..header::STATE + 4].fill(0);
        // The magic's last byte is the protocol version: another version of shmrpc (whose header
        // may be laid out differently) is told apart before anything else is read.
        let magic = u64_at(&b, header::MAGIC).to_le_bytes();
        if magic[..7] != MAGIC.to_le_bytes()[..7] {
            return Err(HeaderError::Garbage("no shmrpc magic number"));
        }
        if u32::from(magic[7]) != PROTOCOL_VERSION {
            return Err(HeaderError::Version(magic[7].into()));
        }
        if u64_at(&b, header::CHECKSUM) != checksum(&b[..header::CHECKSUM])
            || u32_at(&b, header::VERSION) != PROTOCOL_VERSION
        {
            return Err(HeaderError::Garbage("header checksum mismatch"));
        }
        let geometry = Geometry {
            capacity: u32_at(&b, header::CAPACITY) as usize,
            description_len: u32_at(&b, header::DESCRIPTION_LEN) as usize,
        };
        if geometry.capacity > MAX_CAPACITY || geometry.description_len > MAX_DESCRIPTION {
            return Err(HeaderError::Garbage("slot or description too large"));
        }
        if u64_at(&b, header::TOTAL_LEN) != geometry.total_len() as u64 {
            return Err(HeaderError::Garbage(
                "total length does not match the geometry",
            ));
        }
        Ok(HeaderImage {
            generation: u64_at(&b, header::GENERATION),
            fingerprint: u128::from_le_bytes(
                b[header::FINGERPRINT..][..16].try_into().expect("16 bytes"),
            ),
            geometry,
            server_pid: u32_at(&b, header::SERVER_PID),
            server_uid: u32_at(&b, header::SERVER_UID),
        })
    }
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// FNV-1a, 64 bit: enough to tell a damaged header from a written one.
pub(crate) const fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> HeaderImage {
        HeaderImage {
            generation: 7,
            fingerprint: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            geometry: Geometry {
                capacity: 1000,
                description_len: 300,
            },
            server_pid: 42,
            server_uid: 1000,
        }
    }

    #[test]
    fn header_round_trips() {
        let img = image();
        assert_eq!(HeaderImage::decode(&img.encode()), Ok(img));
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let bytes = image().encode();
        for byte in (0..header::LEN).filter(|b| !(header::STATE..header::STATE + 4).contains(b)) {
            for bit in 0..8 {
                let mut b = bytes;
                b[byte] ^= 1 << bit;
                assert!(HeaderImage::decode(&b).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn another_protocol_version_is_told_apart_from_garbage() {
        let mut b = image().encode();
        b[7] = 1;
        assert_eq!(HeaderImage::decode(&b), Err(HeaderError::Version(1)));
        let mut b = image().encode();
        b[header::VERSION] ^= 0x40;
        assert_eq!(
            HeaderImage::decode(&b),
            Err(HeaderError::Garbage("header checksum mismatch"))
        );
    }

    #[test]
    fn regions_do_not_overlap() {
        const { assert!(header::LEN <= HEADER_LEN) };
        const { assert!(exec::LEN + 4 <= FIELDS_LEN && done::LEN + 4 <= FIELDS_LEN) };
        let g = Geometry {
            capacity: 1,
            description_len: 0,
        };
        assert_eq!(g.total_len(), PAGE);
        assert_eq!(g.done_offset(), EXEC_OFFSET + LINE);
        assert_eq!(g.description_offset(), EXEC_OFFSET + 2 * LINE);
        let big = Geometry {
            capacity: 1000,
            description_len: 10,
        };
        assert_eq!(big.done_offset(), EXEC_OFFSET + 1024 + 128);
        assert_eq!(big.done_offset() % LINE, 0);
    }
}
