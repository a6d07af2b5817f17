//! The protocol, version 4: a socket per connection for control, a shared slot per call in
//! flight.
//!
//! # A connection
//!
//! A client connects to the server's socket (see `transport::rendezvous`). The kernel tells each
//! side who the other is; the server checks its access rules and the client checks that it
//! trusts the server's user. The server then creates the connection's first slot: a memfd that
//! only these two processes hold, sealed so that its size never changes, sent to the client
//! with a socket the server uses to wake the client (see [`messages`]). A client calling from
//! several threads asks for more slots, up to a bound. Nothing is shared between connections.
//!
//! # A call
//!
//! The client writes its request into a slot with a fresh sequence number and publishes the
//! number. The server copies the request out, validates it, runs the method, writes the answer
//! with the same number and rings the slot's "done" bell. The client takes only an answer that
//! carries its own number, so an answer to a call it gave up on never reaches a later call.
//! The lock-free exchanges this needs are in [`exchange`], model-checked with `loom`:
//!
//! - **Telling the server.** A server that recently served a slot keeps looking at it
//!   ("watched"): the client needs to do nothing more. Otherwise the client sends a one-message
//!   "kick" on the connection's socket, which wakes the server's watcher thread. Before a
//!   server stops watching a slot it looks at it once more; the client, after publishing,
//!   looks at whether the slot is watched. One of the two always sees the other.
//! - **Telling the client.** A client waits for its answer by spinning, then sleeps on the
//!   slot's wake-up socket after setting the bell's "sleeper" bit; the server wakes it only when that
//!   bit is set, so a call between two spinning processes makes no system call.
//! - **Giving up.** A client that times out withdraws its request unless the server took it;
//!   taking and withdrawing exclude each other, so a request is either run and answered or
//!   never run.
//!
//! # Deaths
//!
//! The kernel tells each side when the other dies: the socket closes, and the pidfd each side
//! holds of the other becomes readable (which also covers a dead process whose forked child
//! still holds a copy of the socket). Nothing is left to repair: the slot belonged to that one
//! connection.

pub(crate) mod exchange;
pub(crate) mod layout;
pub(crate) mod messages;
