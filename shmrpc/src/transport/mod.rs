//! What carries calls: the rendezvous (a service's name, who holds it, who may use it) and the
//! slots (the shared memory of one connection's calls). The protocol spoken over them is in
//! `protocol`; the OS calls they make are in `sys`.

pub(crate) mod rendezvous;
pub(crate) mod slot;

/// What a hostile client gets from an honest handshake: the raw descriptors (handles on
/// Windows), to attack with.
#[cfg(feature = "fault-injection")]
pub mod testing {
    use crate::protocol::layout::{FIELDS_LEN, Geometry, request};
    use crate::protocol::messages::{MAX_MESSAGE, Message};
    use crate::sys::{self, Interest, wait_any};
    use crate::view::View;
    use crate::{ClientOptions, Error};

    /// What the OS hands out: a file descriptor, or a handle on Windows.
    pub type Descriptor = sys::Owned;

    /// A connection made by hand: the connection itself, slot 0's memory and wake-up, and
    /// where things are.
    #[derive(Debug)]
    pub struct RawConnection {
        /// The socket (Unix only: on Windows the pipe's framing is the library's, see
        /// [`RawConnection::kick`]).
        #[cfg(unix)]
        pub socket: Descriptor,
        #[cfg(windows)]
        stream: sys::Stream,
        /// Slot 0's memory: a memfd (a section on Windows).
        pub memfd: Descriptor,
        /// The client's end of slot 0's wake-up: a socket (an event on Windows).
        pub bell: Descriptor,
        /// Offset of the done bell's word (bit 0: the client sleeps).
        pub bell_word: usize,
        /// Bytes of the slot.
        pub slot_len: usize,
        /// Offset of the request line (sequence number at +0, method at +16, length at +20,
        /// payload at +32).
        pub request: usize,
        /// Offset of the request payload.
        pub payload: usize,
        /// Offset of the response line (sequence number at +0, status at +8, length at +12,
        /// payload at +32).
        pub response: usize,
    }

    /// Slot 0's memory, mapped: every word of it writable, as a hostile client may.
    #[derive(Debug)]
    pub struct RawSlot(View);

    impl RawSlot {
        /// Bytes of the slot.
        pub fn len(&self) -> usize {
            self.0.len()
        }

        /// Whether the slot has no bytes (never).
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Writes `value` at `offset` (8-aligned, within the slot; panics otherwise).
        pub fn write_u64(&self, offset: usize, value: u64) {
            self.0
                .u64(offset)
                .store(value, std::sync::atomic::Ordering::Release);
        }

        /// Writes `value` at `offset` (4-aligned, within the slot; panics otherwise).
        pub fn write_u32(&self, offset: usize, value: u32) {
            self.0
                .u32(offset)
                .store(value, std::sync::atomic::Ordering::Release);
        }
    }

    impl RawConnection {
        /// Maps slot 0.
        pub fn map(&self) -> Result<RawSlot, Error> {
            let map = sys::Mapping::new(&self.memfd, self.slot_len)
                .map_err(|e| Error::io("raw connect", e))?;
            Ok(RawSlot(View::new(map)))
        }

        /// Tells the server that slot `index` holds request `seq` (whatever the slot holds).
        /// Never blocks; a server that hung up is not an error here.
        pub fn kick(&self, index: u32, seq: u64) {
            let kick = crate::protocol::messages::kick(index, seq);
            #[cfg(unix)]
            let _ = rustix::net::send(&self.socket, &kick, rustix::net::SendFlags::DONTWAIT);
            #[cfg(windows)]
            let _ = self.stream.send(&kick, &[]);
        }

        /// Publishes a request of method `method`, `len` bytes long, as number `seq` in slot 0,
        /// whatever its payload holds, and kicks the server.
        pub fn publish(&self, slot: &RawSlot, seq: u64, method: u32, len: u32) {
            slot.write_u32(self.request + 16, method);
            slot.write_u32(self.request + 20, len);
            slot.write_u64(self.request, seq);
            self.kick(0, seq);
        }
    }

    /// Connects to `name` and reads the welcome, taking the descriptors as they are.
    pub fn raw_connect(name: &str) -> Result<RawConnection, Error> {
        let name = crate::name::ServiceName::new(name)?;
        let found = super::rendezvous::connect(
            &name,
            &ClientOptions::default(),
            std::time::Duration::ZERO,
            crate::wait::after(std::time::Duration::from_secs(5)),
            "connect",
        )?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut fds = Vec::new();
        loop {
            wait_any(&[(found.stream.fd(), Interest::Readable)], None);
            if let Some(n) = found
                .stream
                .recv(&mut buf, &mut fds)
                .map_err(|e| Error::io("raw connect", e))?
            {
                let Ok(Message::Welcome { capacity, .. }) = Message::decode(&buf[..n]) else {
                    return Err(Error::io(
                        "raw connect",
                        std::io::Error::other("no welcome"),
                    ));
                };
                let geometry = Geometry {
                    capacity: capacity as usize,
                };
                let mut fds = fds.into_iter();
                let (Some(memfd), Some(bell)) = (fds.next(), fds.next()) else {
                    return Err(Error::io("raw connect", std::io::Error::other("no fds")));
                };
                return Ok(RawConnection {
                    #[cfg(unix)]
                    socket: found.stream.into_fd(),
                    #[cfg(windows)]
                    stream: found.stream,
                    memfd,
                    bell,
                    bell_word: crate::protocol::layout::BELL,
                    slot_len: geometry.total_len(),
                    request: request::OFFSET,
                    payload: request::OFFSET + FIELDS_LEN,
                    response: geometry.response(),
                });
            }
        }
    }

    /// The bytes of a kick for slot `index`, request `seq`.
    pub fn kick(index: u32, seq: u64) -> [u8; 16] {
        crate::protocol::messages::kick(index, seq)
    }
}
