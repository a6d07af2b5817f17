//! Who called: the identity the kernel reported for a connection, visible to the method that
//! serves one of its calls.

use std::cell::Cell;

/// The process that made the call being served, as the kernel reported it when that client
/// connected (`SO_PEERCRED`): neither the client nor anyone else can forge it.
///
/// ```
/// # #[shmrpc::shm_service] trait Whoami { fn uid(&self) -> u32; }
/// struct Service;
/// impl Whoami for Service {
///     fn uid(&self) -> u32 {
///         shmrpc::Caller::current().map_or(u32::MAX, |caller| caller.uid())
///     }
/// }
/// assert_eq!(shmrpc::Caller::current(), None); // outside a call
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    pid: u32,
    uid: u32,
    gid: u32,
}

thread_local! {
    static CURRENT: Cell<Option<Caller>> = const { Cell::new(None) };
}

impl Caller {
    pub(crate) fn new(pid: u32, uid: u32, gid: u32) -> Self {
        Caller { pid, uid, gid }
    }

    /// The caller of the method running on this thread; `None` outside a call.
    pub fn current() -> Option<Caller> {
        CURRENT.with(Cell::get)
    }

    /// The calling process's id, as this server's pid namespace sees it (0 if it cannot see
    /// that process). The process that connected: a thread of it, or a child it forked and
    /// that inherited the connection, may be the one calling.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The calling process's effective user id when it connected.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The calling process's effective group id when it connected.
    pub fn gid(&self) -> u32 {
        self.gid
    }
}

/// A server thread's current caller: set for the calls it serves, and cleared when the thread
/// stops serving, so that `Caller::current()` is `None` outside a call. Only code that a call
/// runs, and the server's own, runs on a serving thread in between; the thread-local is
/// written only when the caller changes (a write costs ~10 ns on Windows, where thread-locals
/// go through `TlsGetValue`).
#[derive(Debug, Default)]
pub(crate) struct Serving {
    current: Option<Caller>,
}

impl Serving {
    /// Runs `f`, a call of `caller`'s, with `caller` as the thread's current caller.
    #[inline]
    pub(crate) fn serve<R>(&mut self, caller: Caller, f: impl FnOnce() -> R) -> R {
        if self.current != Some(caller) {
            CURRENT.with(|c| c.set(Some(caller)));
            self.current = Some(caller);
        }
        f()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.current.is_some() {
            // Not during the thread's exit, when the thread-local may be gone already.
            let _ = CURRENT.try_with(|c| c.set(None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_sees_its_own_caller_and_none_once_the_thread_stops_serving() {
        let (a, b) = (Caller::new(1, 2, 3), Caller::new(4, 5, 6));
        let mut serving = Serving::default();
        for caller in [a, a, b, a, b, b] {
            assert_eq!(serving.serve(caller, Caller::current), Some(caller));
        }
        // A panicking call leaves the next one its own caller.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serving.serve(a, || panic!("in the method"))
        }));
        assert!(panicked.is_err());
        assert_eq!(serving.serve(b, Caller::current), Some(b));
        drop(serving);
        assert_eq!(Caller::current(), None);
    }
}
