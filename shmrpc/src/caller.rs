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

    /// Runs `f` with `self` as the current caller (restored afterwards, also on a panic).
    pub(crate) fn serve<R>(self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Caller>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self))));
        f()
    }
}
