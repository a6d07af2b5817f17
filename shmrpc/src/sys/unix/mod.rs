//! Unix: Unix sockets for the rendezvous and connections, shared memory whose size no process
//! can change, datagram sockets for wake-ups, a set of descriptors to sleep on, process handles
//! that no reused pid fools.
//!
//! Linux and macOS share everything here but a few primitives, each OS's in a module of its own
//! (`os`): on Linux abstract `SOCK_SEQPACKET` sockets, sealed memfds, eventfd, epoll and
//! timerfd, pidfds; on macOS a stream socket in a directory per user (messages framed by
//! length), POSIX shared memory, kqueue.

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod os;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod os;

mod event;
mod memory;
mod process;
mod reactor;
mod signals;
mod socket;
#[cfg(feature = "tokio")]
mod tokio_wait;

#[cfg(target_os = "linux")]
use event::timespec;
use memory::check_size;

pub(crate) use event::*;
pub(crate) use memory::*;
pub(crate) use os::{ProcessHandle, Waker, check_sealed, create_sealed, listening};
pub(crate) use process::*;
pub(crate) use reactor::{Reactor, reactor, token};
pub(crate) use signals::SignalBell;
pub(crate) use socket::*;
#[cfg(feature = "tokio")]
pub(crate) use tokio_wait::TokioWait;
