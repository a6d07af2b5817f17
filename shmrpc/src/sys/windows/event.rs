//! Waking and sleeping: events, and `WaitForMultipleObjects` over up to four handles.

use std::io;
use std::time::Duration;

use windows_sys::Win32::Foundation::{WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Threading::{
    CreateEventW, INFINITE, ResetEvent, SetEvent, WaitForMultipleObjects, WaitForSingleObject,
};

use super::{owned, raw};
use crate::sys::{Borrowed, Owned, borrow};

/// Milliseconds for a Windows wait: rounded up (waking before the time would spin), `INFINITE`
/// for no timeout.
fn millis(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

/// A manual-reset event: one side sets it to wake the other, which waits on it.
#[derive(Debug)]
pub(crate) struct Waker(Owned);

impl Waker {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: no attributes, no name: a fresh unnamed event.
        let event = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        Ok(Waker(owned(event)?))
    }

    pub(crate) fn fd(&self) -> Borrowed<'_> {
        borrow(&self.0)
    }

    /// Sets the event. Never blocks.
    pub(crate) fn wake(&self) {
        // SAFETY: a live event handle owned by `self`.
        unsafe { SetEvent(raw(self.fd())) };
    }

    /// Resets the event, consuming past wake-ups.
    pub(crate) fn drain(&self) {
        // SAFETY: as above.
        unsafe { ResetEvent(raw(self.fd())) };
    }
}

/// What to wait for on a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    /// The handle is signalled (an event set, a process exited).
    Readable,
    /// The other end of a connection closing. A stream's handle is signalled by a message
    /// waiting too: [`Stream::is_closed`](super::Stream::is_closed) tells which.
    Hangup,
}

/// Sleeps until one of `handles` (at most 4) is signalled or `timeout` passes (`None`: no
/// timeout). Returns a bit per handle that is signalled (bit `i` for `handles[i]`), 0 if the
/// time passed. Waiting on an auto-reset event takes its signal, as reading a socket would.
/// Allocates nothing.
pub(crate) fn wait_any(handles: &[(Borrowed<'_>, Interest)], timeout: Option<Duration>) -> u32 {
    assert!(
        (1..=4).contains(&handles.len()),
        "shmrpc bug: wait_any on {} handles",
        handles.len()
    );
    let mut list = [std::ptr::null_mut(); 4];
    for (slot, (handle, _)) in list.iter_mut().zip(handles) {
        *slot = raw(*handle);
    }
    let n = handles.len();
    // SAFETY: `list[..n]` holds `n` live handles borrowed for the call.
    let woke = unsafe { WaitForMultipleObjects(n as u32, list.as_ptr(), 0, millis(timeout)) };
    let first = woke.wrapping_sub(WAIT_OBJECT_0) as usize;
    if first >= n {
        return 0;
    }
    // The first signalled one is taken; the later ones are looked at without waiting.
    let mut bits = 1 << first;
    for (i, handle) in list.iter().enumerate().take(n).skip(first + 1) {
        // SAFETY: as above.
        if unsafe { WaitForSingleObject(*handle, 0) } != WAIT_TIMEOUT {
            bits |= 1 << i;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waker_wakes_a_wait_and_drains() {
        let w = Waker::new().unwrap();
        assert_eq!(
            wait_any(&[(w.fd(), Interest::Readable)], Some(Duration::ZERO)),
            0
        );
        w.wake();
        w.wake();
        assert_eq!(wait_any(&[(w.fd(), Interest::Readable)], None), 1);
        // Manual reset: still set until drained.
        assert_eq!(wait_any(&[(w.fd(), Interest::Readable)], None), 1);
        w.drain();
        let start = std::time::Instant::now();
        assert_eq!(
            wait_any(
                &[(w.fd(), Interest::Readable)],
                Some(Duration::from_millis(20))
            ),
            0
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn wait_any_reports_every_signalled_handle() {
        let (a, b, c) = (
            Waker::new().unwrap(),
            Waker::new().unwrap(),
            Waker::new().unwrap(),
        );
        a.wake();
        c.wake();
        let all = [
            (a.fd(), Interest::Readable),
            (b.fd(), Interest::Readable),
            (c.fd(), Interest::Readable),
        ];
        assert_eq!(wait_any(&all, None), 0b101);
        // Woken from another thread while waiting.
        a.drain();
        c.drain();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(10));
                b.wake();
            });
            assert_eq!(wait_any(&all, Some(Duration::from_secs(10))), 0b010);
        });
    }

    #[test]
    fn waits_round_up_to_whole_milliseconds() {
        assert_eq!(millis(None), INFINITE);
        assert_eq!(millis(Some(Duration::ZERO)), 0);
        assert_eq!(millis(Some(Duration::from_nanos(1))), 1);
        assert_eq!(millis(Some(Duration::from_micros(1500))), 2);
        assert_eq!(millis(Some(Duration::MAX)), INFINITE - 1);
    }
}
