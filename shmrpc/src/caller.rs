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

    /// The caller of the method running on this thread; `None` outside a call. (Between two
    /// calls, a server thread keeps the last caller until it sleeps or serves the next: only
    /// the server's own code runs there then, with the tracing subscriber or panic hook it may
    /// call.)
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

/// A server thread's current caller: the caller of the call it serves, from the moment it
/// sees the request (its trace span and refusals carry it too) until the thread goes to sleep
/// or stops serving; then what it was before (`None`, unless a method runs a server). The
/// thread-local is written only when the caller changes: a write costs ~10 ns on Windows,
/// where thread-locals go through `TlsGetValue`, and a thread serving one client back to back
/// writes it once.
#[derive(Debug)]
pub(crate) struct Serving {
    /// What the thread's current caller was before it served.
    outer: Option<Caller>,
    /// What it is now.
    current: Option<Caller>,
}

impl Serving {
    pub(crate) fn new() -> Self {
        let outer = CURRENT.with(Cell::get);
        Serving {
            outer,
            current: outer,
        }
    }

    /// `caller`'s call is served from now on.
    #[inline]
    pub(crate) fn enter(&mut self, caller: Caller) {
        self.set(Some(caller));
    }

    /// No call is served for now (the thread sleeps).
    pub(crate) fn leave(&mut self) {
        self.set(self.outer);
    }

    #[inline]
    fn set(&mut self, caller: Option<Caller>) {
        if self.current != caller {
            CURRENT.with(|c| c.set(caller));
            self.current = caller;
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.current != self.outer {
            // Not during the thread's exit, when the thread-local may be gone already.
            let _ = CURRENT.try_with(|c| c.set(self.outer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_sees_its_own_caller_and_none_once_the_thread_stops_serving() {
        let (a, b) = (Caller::new(1, 2, 3), Caller::new(4, 5, 6));
        let mut serving = Serving::new();
        for caller in [a, a, b, a, b, b] {
            serving.enter(caller);
            assert_eq!(Caller::current(), Some(caller));
        }
        // Asleep between calls: nobody's call.
        serving.leave();
        assert_eq!(Caller::current(), None);
        serving.enter(b);
        assert_eq!(Caller::current(), Some(b));
        drop(serving);
        assert_eq!(Caller::current(), None);
    }

    #[test]
    fn a_server_run_inside_a_call_gives_the_call_its_caller_back() {
        let (a, b) = (Caller::new(1, 2, 3), Caller::new(4, 5, 6));
        let mut outer = Serving::new();
        outer.enter(a);
        {
            let mut inner = Serving::new();
            inner.enter(b);
            assert_eq!(Caller::current(), Some(b));
            inner.leave();
            assert_eq!(Caller::current(), Some(a));
            inner.enter(b);
        }
        assert_eq!(Caller::current(), Some(a));
        drop(outer);
        assert_eq!(Caller::current(), None);
    }
}
