//! What carries calls: the rendezvous (a service's name, who holds it, who may use it) and the
//! slots (the shared memory of one connection's calls). The protocol spoken over them is in
//! `protocol`; the OS calls they make are in `sys`.

pub(crate) mod rendezvous;
pub(crate) mod slot;

/// What a hostile client gets from an honest handshake: the raw descriptors, to attack with.
#[cfg(all(feature = "fault-injection", target_os = "linux"))]
pub mod testing {
    use std::os::fd::OwnedFd;

    use crate::protocol::layout::{FIELDS_LEN, Geometry, request};
    use crate::protocol::messages::{MAX_MESSAGE, Message};
    use crate::sys::{Interest, wait_any};
    use crate::{ClientOptions, Error};

    /// A connection made by hand: the socket, slot 0's memfd and wake-up socket, and where
    /// things are.
    #[derive(Debug)]
    pub struct RawConnection {
        pub socket: OwnedFd,
        pub memfd: OwnedFd,
        pub bell: OwnedFd,
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
                    socket: found.stream.into_fd(),
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
