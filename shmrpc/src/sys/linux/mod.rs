//! Linux: abstract Unix sockets, sealed memfds, eventfd, epoll, pidfds.

mod event;
mod memory;
mod process;
mod reactor;
mod signals;
mod socket;
#[cfg(feature = "tokio")]
mod tokio_wait;

pub(crate) use event::*;
pub(crate) use memory::*;
pub(crate) use process::*;
pub(crate) use reactor::{Reactor, reactor, token};
pub(crate) use signals::SignalBell;
pub(crate) use socket::*;
#[cfg(feature = "tokio")]
pub(crate) use tokio_wait::TokioWait;
