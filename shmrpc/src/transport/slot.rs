//! One slot: the shared memory of one connection's calls, one at a time.
//!
//! The server creates it (a sealed memfd of a size that never changes), writes its header and
//! sends the descriptor to the client, which checks the seals, the size and the header before
//! it maps it. Both then reach it only through [`View`]: control words as atomics, payloads
//! copied in and out.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::protocol::exchange::Words;
use crate::protocol::layout::{self, FIELDS_LEN, Geometry, header, request, response, server};
use crate::sys::{self, Mapping};
use crate::view::View;
use crate::wire::{LARGE_REPLY, Reader, Writer};

/// A mapped slot.
#[derive(Debug)]
pub(crate) struct SlotMemory {
    view: View,
    geometry: Geometry,
    index: u32,
}

impl SlotMemory {
    /// Server: a new slot; the descriptor is for the client (the server keeps only the mapping).
    pub(crate) fn create(geometry: Geometry, index: u32) -> io::Result<(Self, sys::Owned)> {
        let len = geometry.total_len();
        let fd = sys::create_sealed("shmrpc-slot", len)?;
        let view = View::new(Mapping::new(&fd, len)?);
        view.write(0, &geometry.header(index));
        Ok((
            SlotMemory {
                view,
                geometry,
                index,
            },
            fd,
        ))
    }

    /// Client: maps slot `index` received from the server, after checking that it is sealed,
    /// of the announced length, and carries the header the server announced.
    pub(crate) fn open(fd: &sys::Owned, geometry: Geometry, index: u32) -> Result<Self, String> {
        let len = geometry.total_len();
        sys::check_sealed(fd, len).map_err(|e| e.to_string())?;
        let view = View::new(Mapping::new(fd, len).map_err(|e| format!("mapping it: {e}"))?);
        let mut copy = [0u8; header::LEN];
        view.read(0, &mut copy);
        if !geometry.check_header(index, &copy) {
            return Err("its header is not what the server announced".to_owned());
        }
        Ok(SlotMemory {
            view,
            geometry,
            index,
        })
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// Bytes a request or a response may hold.
    pub(crate) fn capacity(&self) -> usize {
        self.geometry.capacity
    }

    /// The control words.
    #[inline]
    pub(crate) fn words(&self) -> Words<'_> {
        let (req, resp) = (self.geometry.request(), self.geometry.response());
        Words {
            req_seq: self.view.u64(req + request::SEQ),
            withdrawn: self.view.u64(req + request::WITHDRAWN),
            taken: self.view.u64(server::TAKEN),
            watch: self.view.u32(server::WATCH),
            resp_seq: self.view.u64(resp + response::SEQ),
            bell: self.view.u32(layout::BELL),
        }
    }

    /// The number of the request in the slot (one of [`SlotMemory::words`], alone: the spinner
    /// reads it for every slot it watches, in a loop).
    #[inline]
    pub(crate) fn req_seq(&self) -> &AtomicU64 {
        self.view.u64(self.geometry.request() + request::SEQ)
    }

    /// The request's method tag.
    #[inline]
    pub(crate) fn method(&self) -> &AtomicU32 {
        self.view.u32(self.geometry.request() + request::METHOD)
    }

    /// The request's length.
    #[inline]
    pub(crate) fn request_len(&self) -> &AtomicU32 {
        self.view.u32(self.geometry.request() + request::LEN)
    }

    /// The response's [`Status`](layout::Status).
    #[inline]
    pub(crate) fn status(&self) -> &AtomicU32 {
        self.view.u32(self.geometry.response() + response::STATUS)
    }

    /// The response's length.
    #[inline]
    pub(crate) fn response_len(&self) -> &AtomicU32 {
        self.view.u32(self.geometry.response() + response::LEN)
    }

    /// Copies `bytes` (at most the capacity) into the request area (calls write pieces through
    /// [`SlotMemory::request_writer`]; tests write whole requests).
    #[cfg(test)]
    pub(crate) fn write_request(&self, bytes: &[u8]) {
        self.check_len(bytes.len());
        self.view.write(self.geometry.request() + FIELDS_LEN, bytes);
    }

    /// Copies the first `dst.len()` bytes (at most the capacity) of the request area out.
    #[inline]
    pub(crate) fn read_request(&self, dst: &mut [u8]) {
        self.check_len(dst.len());
        self.view.read(self.geometry.request() + FIELDS_LEN, dst);
    }

    /// Writes a request into the slot, piece by piece (at most the capacity; it counts what
    /// goes past).
    #[inline]
    pub(crate) fn request_writer(&self) -> Writer<'_> {
        Writer::slot(
            &self.view,
            self.geometry.request() + FIELDS_LEN,
            self.geometry.capacity,
        )
    }

    /// Writes a response into the slot, as [`SlotMemory::request_writer`].
    #[inline]
    pub(crate) fn response_writer(&self) -> Writer<'_> {
        Writer::response(
            &self.view,
            self.geometry.response() + FIELDS_LEN,
            self.geometry.request() + FIELDS_LEN,
            self.geometry.capacity,
        )
    }

    /// Where a reply of `len` bytes is: over the request if it is longer than [`LARGE_REPLY`],
    /// else after the response's fields.
    fn reply_at(&self, len: usize) -> usize {
        self.check_len(len);
        if len > LARGE_REPLY {
            self.geometry.request() + FIELDS_LEN
        } else {
            self.geometry.response() + FIELDS_LEN
        }
    }

    /// Reads a reply of `len` bytes, value by value, where the server wrote it.
    #[inline]
    pub(crate) fn reply_reader(&self, len: usize) -> Reader<'_> {
        Reader::slot(&self.view, self.reply_at(len), len)
    }

    /// Copies a reply of `dst.len()` bytes out, from where the server wrote it.
    #[inline]
    pub(crate) fn read_reply(&self, dst: &mut [u8]) {
        self.view.read(self.reply_at(dst.len()), dst);
    }

    /// Copies `bytes` (at most the capacity) into the response area.
    #[inline]
    pub(crate) fn write_response(&self, bytes: &[u8]) {
        self.check_len(bytes.len());
        self.view
            .write(self.geometry.response() + FIELDS_LEN, bytes);
    }

    /// Copies the first `dst.len()` bytes (at most the capacity) of the response area out.
    #[inline]
    pub(crate) fn read_response(&self, dst: &mut [u8]) {
        self.check_len(dst.len());
        self.view.read(self.geometry.response() + FIELDS_LEN, dst);
    }

    #[inline]
    fn check_len(&self, len: usize) {
        assert!(
            len <= self.geometry.capacity,
            "shmrpc bug: {len} bytes for a slot of {}",
            self.geometry.capacity
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_created_slot_opens_on_the_other_side_and_shares_its_bytes() {
        let geometry = Geometry { capacity: 100 };
        let (server, fd) = SlotMemory::create(geometry, 2).unwrap();
        let client = SlotMemory::open(&fd, geometry, 2).unwrap();
        client.write_request(b"hello");
        client.request_len().store(5, Ordering::Relaxed);
        assert!(client.words().publish(7), "not watched: kick");
        server.words().set_watched();
        assert!(!client.words().publish(8));
        assert_eq!(server.words().req_seq.load(Ordering::Acquire), 8);
        let mut copy = [0u8; 5];
        server.read_request(&mut copy);
        assert_eq!(&copy, b"hello");
        assert!(SlotMemory::open(&fd, geometry, 3).is_err());
        assert!(SlotMemory::open(&fd, Geometry { capacity: 5000 }, 2).is_err());
    }
}
