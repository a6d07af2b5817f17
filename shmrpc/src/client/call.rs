//! One call on one slot: publish, tell the server if it is not watching, wait, read the answer;
//! or withdraw, if the time runs out or the server dies first.
//!
//! The client spins for its answer while one is likely to come soon (see `wait`), then kicks
//! the server if the request was not taken yet (the server may be busy with a long method, and
//! another worker, or the ready queue's order, should know), sets the bell's sleeper bit and
//! sleeps on the slot's wake-up socket, the connection's socket and the server's pidfd at once: an
//! answer, a closed connection or a dead server each wake it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::connection::{ClientSlot, Connection};
use crate::data::Invalid;
use crate::name::ServiceName;
use crate::protocol::exchange::Sleep;
use crate::protocol::layout::Status;
use crate::transport::slot::SlotMemory;
use crate::wait::{Deadline, Ended, SpinPolicy, spin_briefly, spin_until};
use crate::wire::{Private, Reader};

/// Replies up to this size are copied out whole and decoded from the copy (fewer, larger
/// copies out of shared memory); larger ones are decoded straight out of the slot.
const COPY_WHOLE: usize = 4096;
use crate::{Error, fault};

/// How often a client that only spins looks for a dead server.
const SPIN_CHECK: Duration = Duration::from_millis(1);

/// One call, as `exchange` needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) tag: u32,
    pub(crate) method: &'static str,
    /// The request is in the slot already.
    pub(crate) request_len: usize,
    pub(crate) deadline: &'a Deadline,
    /// When a request not yet taken is kicked for anyway: after the client's spin budget.
    pub(crate) kick_after: Duration,
}

/// How one attempt at a call ended, short of an error.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// The server answered.
    Answered(Answer),
    /// The server was gone before it took the request: safe to send again elsewhere.
    NotTaken,
}

/// What the server answered.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The method returned; this many reply bytes are in the slot, answering `seq`: read them,
    /// then [`confirm`] that the answer did not change meanwhile.
    Reply { len: usize, seq: u64 },
    /// The server refused the request, for this reason.
    Refused(String),
    /// The method panicked with this message.
    Panicked(String),
    /// The method ran, and its result of `size` bytes is over the server's `limit`.
    TooLarge { size: u64, limit: u64 },
}

/// How a wait ended.
enum WaitEnd {
    Answered(Ended),
    Deadline,
    ServerGone,
}

/// Makes one call on `slot`, which this thread holds and whose request is written.
pub(crate) fn exchange(
    connection: &Connection,
    slot: &ClientSlot,
    call: &Call<'_>,
    spin: &SpinPolicy,
) -> Result<Attempt, Error> {
    let memory = &slot.memory;
    let words = memory.words();
    let seq = next_seq(slot);
    crate::trace::seq(seq);
    memory.method().store(call.tag, Ordering::Relaxed);
    memory
        .request_len()
        .store(call.request_len as u32, Ordering::Relaxed);
    fault::point(fault::Step::ClientWroteRequest);
    // Whether a kick went out; a request the server watches needs none unless it waits.
    let mut kicked = words.publish(seq) && connection.kick(memory.index(), seq);
    fault::point(fault::Step::ClientPublished);
    let spun =
        spin.spin_for_bytes(call.request_len as u64 + slot.reply_len.load(Ordering::Relaxed));
    match wait(connection, slot, seq, call, spun, &mut kicked) {
        WaitEnd::Answered(ended) => spin.record(spun.unwrap_or_default(), ended),
        WaitEnd::Deadline => {
            // If the server has not taken it, it never will; if it has, its answer carries a
            // number no later call waits for, and the slot rests until that answer is in.
            if !words.withdraw(seq) {
                slot.abandoned.store(seq, Ordering::Relaxed);
            }
            return Err(Error::Timeout {
                name: connection.name.as_str().to_owned(),
                method: call.method,
                timeout: call.deadline.timeout(),
            });
        }
        WaitEnd::ServerGone => {
            connection.dead.store(true, Ordering::Relaxed);
            if words.is_answered(seq) {
                return read_answer(&connection.name, &slot.memory, seq);
            }
            if words.withdraw(seq) {
                return Ok(Attempt::NotTaken);
            }
            return Err(Error::ServerDied {
                name: connection.name.as_str().to_owned(),
                method: call.method,
            });
        }
    }
    fault::point(fault::Step::ClientGotResponse);
    let answer = read_answer(&connection.name, &slot.memory, seq);
    if let Ok(Attempt::Answered(Answer::Reply { len, .. })) = answer {
        slot.reply_len.store(len as u64, Ordering::Relaxed);
    }
    answer
}

/// A sequence number for a new request: a slot's requests count up from 1 (0 means "none"), so
/// no answer in the slot can carry it but the one to this request. The slot is this
/// connection's alone and was zeroed when the server created it: no other number was ever
/// written into it.
pub(super) fn next_seq(slot: &ClientSlot) -> u64 {
    let seq = slot.last_seq.load(Ordering::Relaxed).wrapping_add(1).max(1);
    slot.last_seq.store(seq, Ordering::Relaxed);
    seq
}

/// Waits for the answer to `seq`: spins for `spin` (`None`: the whole wait), kicks the server
/// once the request has waited `kick_after` without being taken, then sleeps.
fn wait(
    connection: &Connection,
    slot: &ClientSlot,
    seq: u64,
    call: &Call<'_>,
    spin: Option<Duration>,
    kicked: &mut bool,
) -> WaitEnd {
    let words = slot.memory.words();
    let answered = || words.is_answered(seq);
    if spin != Some(Duration::ZERO) && spin_briefly(answered) {
        return WaitEnd::Answered(Ended::Spinning);
    }
    let start = Instant::now();
    let deadline = call.deadline.get();
    let spin_end = spin.map(|s| start + s);
    let kick_at = start + call.kick_after;
    let mut check_at = start + SPIN_CHECK;
    loop {
        let now = Instant::now();
        if !*kicked && now >= kick_at.min(spin_end.unwrap_or(kick_at)) && !words.is_taken(seq) {
            *kicked = connection.kick(slot.memory.index(), seq);
        }
        if now >= deadline {
            return if answered() {
                WaitEnd::Answered(Ended::Sleeping(now - start))
            } else if connection.server_gone() {
                // Even a timeout shorter than a check interval notices a dead server.
                WaitEnd::ServerGone
            } else {
                WaitEnd::Deadline
            };
        }
        if spin_end.is_none_or(|end| now < end) {
            let mut limit = check_at.min(deadline);
            if let Some(end) = spin_end {
                limit = limit.min(end);
            }
            if !*kicked {
                limit = limit.min(kick_at);
            }
            if spin_until(limit, answered) {
                return WaitEnd::Answered(Ended::Spinning);
            }
            if Instant::now() >= check_at {
                check_at += SPIN_CHECK;
                if connection.server_gone() {
                    return if answered() {
                        WaitEnd::Answered(Ended::Spinning)
                    } else {
                        WaitEnd::ServerGone
                    };
                }
            }
            continue;
        }
        match words.prepare_sleep(seq) {
            Sleep::Answered => return WaitEnd::Answered(Ended::Sleeping(now - start)),
            Sleep::Retry => continue,
            Sleep::Flagged => {}
        }
        // A request neither kicked for nor taken (its kick did not go out): wake up now and
        // then to send it again.
        let sleep = if *kicked || words.is_taken(seq) {
            deadline - now
        } else {
            (deadline - now).min(SPIN_CHECK)
        };
        if connection.sleep(slot, Some(sleep)) {
            return if answered() {
                WaitEnd::Answered(Ended::Sleeping(start.elapsed()))
            } else {
                WaitEnd::ServerGone
            };
        }
    }
}

/// Checks the answer to `seq`, which the slot carries, and copies out a refusal or a panic
/// message (a reply is left in the slot, for the caller to decode).
pub(super) fn read_answer(
    name: &ServiceName,
    memory: &SlotMemory,
    seq: u64,
) -> Result<Attempt, Error> {
    let status = Status::from_raw(memory.status().load(Ordering::Relaxed));
    let len = memory.response_len().load(Ordering::Relaxed) as usize;
    let corrupted = |detail: &str| Error::Corrupted {
        name: name.as_str().to_owned(),
        detail: detail.to_owned(),
    };
    let answer = match status {
        // Confirmed once the reply is read (`decode_reply`): that covers these reads too.
        Some(Status::Ok) if len <= memory.capacity() => {
            return Ok(Attempt::Answered(Answer::Reply { len, seq }));
        }
        Some(status @ (Status::BadRequest | Status::Panicked)) if len <= memory.capacity() => {
            let mut text = vec![0; len];
            memory.read_response(&mut text);
            let text = String::from_utf8_lossy(&text).into_owned();
            if status == Status::Panicked {
                Answer::Panicked(text)
            } else {
                Answer::Refused(text)
            }
        }
        Some(Status::TooLarge) if len == 8 => {
            let mut size = [0; 8];
            memory.read_response(&mut size);
            Answer::TooLarge {
                size: u64::from_le_bytes(size),
                limit: memory.capacity() as u64,
            }
        }
        // The server found the request withdrawn: only if something wrote into this slot.
        _ => return Err(corrupted("an answer with an unknown status or length")),
    };
    confirm(name, memory, seq)?;
    Ok(Attempt::Answered(answer))
}

/// Checks, after reading an answer to `seq` out of the slot, that it is still the answer to
/// `seq`: like a seqlock's second read (the copies before must not be reordered after it). A
/// server rewrites an answer only if something else wrote into this slot.
#[inline]
pub(crate) fn confirm(name: &ServiceName, memory: &SlotMemory, seq: u64) -> Result<(), Error> {
    std::sync::atomic::fence(Ordering::Acquire);
    if memory.words().resp_seq.load(Ordering::Relaxed) != seq {
        return Err(changed(name));
    }
    Ok(())
}

#[cold]
fn changed(name: &ServiceName) -> Error {
    Error::Corrupted {
        name: name.as_str().to_owned(),
        detail: "the answer changed while it was read".to_owned(),
    }
}

/// Decodes the reply of `len` bytes that answers `seq` with the generated decoder: every byte
/// must belong to the value, and the answer must not have changed meanwhile.
pub(crate) fn decode_reply<R>(
    name: &ServiceName,
    memory: &SlotMemory,
    (len, seq): (usize, u64),
    scratch: &mut Private,
    decode: impl FnOnce(&mut Reader<'_>) -> Result<R, Invalid>,
) -> Result<R, Error> {
    // Small replies are copied out whole and decoded from the copy; larger ones are decoded
    // straight out of the slot, each value copied once, into its own storage.
    if len <= COPY_WHOLE {
        let copy = scratch.bytes(len);
        memory.read_reply(copy);
        confirm(name, memory, seq)?;
        return finish(name, decode, &mut Reader::new(copy));
    }
    let value = finish(name, decode, &mut memory.reply_reader(len));
    confirm(name, memory, seq)?;
    value
}

fn finish<R>(
    name: &ServiceName,
    decode: impl FnOnce(&mut Reader<'_>) -> Result<R, Invalid>,
    reader: &mut Reader<'_>,
) -> Result<R, Error> {
    decode(reader)
        .and_then(|value| reader.finish().map(|()| value))
        .map_err(|Invalid(why)| Error::Corrupted {
            name: name.as_str().to_owned(),
            detail: format!("the reply holds {why}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::layout::Geometry;

    /// A slot as a lying server would leave it: answer `seq` with this status, length and bytes.
    fn answered(status: Status, len: u32, bytes: &[u8]) -> SlotMemory {
        let (server, _fd) = SlotMemory::create(Geometry { capacity: 64 }, 0).unwrap();
        server.write_response(bytes);
        server.status().store(status as u32, Ordering::Relaxed);
        server.response_len().store(len, Ordering::Relaxed);
        server.words().resp_seq.store(5, Ordering::Release);
        server
    }

    fn read(memory: &SlotMemory) -> Result<Attempt, Error> {
        let name = ServiceName::new("calc").unwrap();
        read_answer(&name, memory, 5)
    }

    fn corrupted(result: Result<Attempt, Error>) -> bool {
        matches!(result, Err(Error::Corrupted { ref detail, .. }) if detail.contains("length"))
    }

    #[test]
    fn an_answer_within_the_slot_is_read() {
        let memory = answered(Status::Ok, 4, b"abcd");
        assert!(matches!(
            read(&memory),
            Ok(Attempt::Answered(Answer::Reply { len: 4, seq: 5 }))
        ));
        let memory = answered(Status::Panicked, 4, b"oops");
        assert!(matches!(
            read(&memory),
            Ok(Attempt::Answered(Answer::Panicked(text))) if text == "oops"
        ));
        let memory = answered(Status::TooLarge, 8, &99u64.to_le_bytes());
        assert!(matches!(
            read(&memory),
            Ok(Attempt::Answered(Answer::TooLarge {
                size: 99,
                limit: 64
            }))
        ));
    }

    #[test]
    fn a_length_beyond_the_slot_is_corrupt_not_a_panic() {
        assert!(corrupted(read(&answered(Status::Ok, 65, b""))));
        assert!(corrupted(read(&answered(Status::Panicked, 65, b""))));
        assert!(corrupted(read(&answered(
            Status::BadRequest,
            u32::MAX,
            b""
        ))));
        assert!(corrupted(read(&answered(Status::TooLarge, 4, b"abcd"))));
    }

    #[test]
    fn an_unknown_status_is_corrupt() {
        let memory = answered(Status::Ok, 4, b"abcd");
        memory.status().store(77, Ordering::Relaxed);
        assert!(corrupted(read(&memory)));
    }

    #[test]
    fn a_reply_with_bytes_left_over_or_missing_is_corrupt_small_or_large() {
        let name = ServiceName::new("calc").unwrap();
        let decode_u32 = |r: &mut Reader<'_>| <u32 as crate::Wire>::decode(r);
        let decode = |len| {
            let memory = answered(Status::Ok, len as u32, &[1, 0, 0, 0, 0]);
            decode_reply(
                &name,
                &memory,
                (len, 5),
                &mut Private::default(),
                decode_u32,
            )
        };
        assert!(matches!(decode(4), Ok(1)));
        for len in [3, 5] {
            assert!(matches!(decode(len), Err(Error::Corrupted { .. })));
        }
        // Large: read from the slot, where the server writes it (over the request).
        let (memory, _fd) = SlotMemory::create(Geometry { capacity: 9000 }, 0).unwrap();
        let mut bytes = Vec::new();
        crate::Wire::encode(&vec![7u8; 8000], &mut crate::wire::Writer::buf(&mut bytes));
        let mut w = memory.response_writer();
        w.place(bytes.len());
        w.put(&bytes);
        memory.words().resp_seq.store(5, Ordering::Release);
        let mut out = Vec::new();
        let decoded = decode_reply(
            &name,
            &memory,
            (bytes.len(), 5),
            &mut Private::default(),
            |r| <Vec<u8> as crate::Wire>::decode_into(r, &mut out),
        );
        assert!(decoded.is_ok());
        assert_eq!(out, vec![7u8; 8000]);
        // An answer that changed while it was read.
        let changed = decode_reply(
            &name,
            &memory,
            (bytes.len(), 4),
            &mut Private::default(),
            <Vec<u8> as crate::Wire>::decode,
        );
        assert!(
            matches!(changed, Err(Error::Corrupted { ref detail, .. }) if detail.contains("changed"))
        );
    }
}
