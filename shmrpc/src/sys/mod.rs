//! Every call into the operating system lives below this module.
//!
//! The rest of the crate sees a few types, one per role in the transport:
//!
//! | role | type | Linux |
//! |---|---|---|
//! | the rendezvous: a name that one server holds and clients connect to | [`Listener`] | abstract Unix socket (`SOCK_SEQPACKET`) |
//! | a connection's control channel: messages, descriptors, who is at the other end | [`Stream`] | the accepted or connected socket, `SO_PEERCRED`, `SO_PEERPIDFD`, `SCM_RIGHTS` |
//! | a slot's memory, created by the server and mapped by both sides | [`create_sealed`], [`Mapping`] | `memfd_create` sealed against shrinking and growing, `mmap` |
//! | waking a sleeping process: a client on its answer, a server thread on queued work | [`Bell`], [`Waker`] | a datagram socket pair (each side's end is its own), `eventfd` (in-process only) |
//! | sleeping until one of several things happens | [`Poller`], [`wait_any`] | `epoll`, `poll` |
//! | a live process, never mistaken for another that reused its pid | [`ProcessHandle`] | pidfd |
//! | a process that `fork`s | [`fork_epoch`] | `pthread_atfork` |
//!
//! A Windows port plays the same roles with a named pipe (first instance wins), a section handle
//! duplicated into the client, events, and process handles; a macOS port with a Unix socket in a
//! private directory, POSIX shared memory and a pipe for wake-ups. Nothing outside this module
//! needs to change for either.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmrpc supports Linux only for now; the OS layer (src/sys) is where a port would start"
);
