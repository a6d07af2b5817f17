//! Options of clients and servers.

use std::time::Duration;

/// How a process waits for the other side: for the server to answer (client), or for the next
/// request (server).
///
/// Waking a sleeping process costs a few microseconds on most machines; a call between two
/// spinning processes costs well under one. Spinning only pays when each process has a core of
/// its own, which [`WaitStrategy::Adaptive`] finds out as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Spin while an answer is likely to come soon (judged from how long recent waits took and
    /// whether spinning paid off lately), then sleep. Idle processes
    /// sleep and use no CPU. The right choice almost always.
    #[default]
    Adaptive,
    /// Never sleep while waiting: lowest latency, but a core busy for the whole wait (for a
    /// server, for ever). Only when every process has a core of its own.
    SpinOnly,
    /// Sleep at once: no CPU spent waiting, at the price of a wake-up per call. For machines with
    /// more busy processes than cores.
    ParkOnly,
}

/// The longest an adaptive client spins for an answer before it sleeps, unless set otherwise:
/// answers normally come within a microsecond.
pub const DEFAULT_CLIENT_SPIN_BUDGET: Duration = Duration::from_micros(50);

/// The longest spin budget a client or server takes: a day, as good as "for ever" for a spin,
/// and short enough that a deadline computed from it never overflows.
pub const LONGEST_SPIN_BUDGET: Duration = Duration::from_secs(86_400);

/// The longest an adaptive server spins for the next request before it sleeps, unless set
/// otherwise. Longer than a client's: under load the next request often comes only after a
/// client process was scheduled again; an idle server still sleeps after it, and a server whose
/// requests keep coming just after it gave up stops spinning altogether.
pub const DEFAULT_SERVER_SPIN_BUDGET: Duration = Duration::from_millis(1);

/// The most slots a client opens on one connection, unless set otherwise: threads of one
/// client call in parallel up to this many, then take turns.
pub const DEFAULT_MAX_SLOTS: usize = 16;

/// The least time `connect` gives a server that holds the name to answer, whatever the
/// client's [`timeout`](ClientOptions::timeout): a live server answers in well under a
/// millisecond, but on a loaded machine its first answer can wait for the scheduler.
pub const CONNECT_PATIENCE: Duration = Duration::from_millis(100);

/// Options of a client: [`ClientOptions::default()`] then the setters.
///
/// ```
/// use std::time::Duration;
/// let options = shmrpc::ClientOptions::default()
///     .timeout(Duration::from_millis(200))
///     .wait_for_server(Duration::from_secs(2))
///     .trust_uid(1000);
/// assert_eq!(options.get_timeout(), Duration::from_millis(200));
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(crate) timeout: Duration,
    pub(crate) wait: WaitStrategy,
    pub(crate) spin_budget: Duration,
    pub(crate) wait_for_server: Duration,
    pub(crate) trusted: Vec<u32>,
    pub(crate) max_slots: usize,
    pub(crate) exact_interface: bool,
}

impl Default for ClientOptions {
    /// Timeout 5 s, adaptive waiting, no waiting for a server at `connect`, trusting servers of
    /// this process's user and root, up to [`DEFAULT_MAX_SLOTS`] calls in parallel.
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            wait: WaitStrategy::Adaptive,
            spin_budget: DEFAULT_CLIENT_SPIN_BUDGET,
            wait_for_server: Duration::ZERO,
            trusted: Vec::new(),
            max_slots: DEFAULT_MAX_SLOTS,
            exact_interface: false,
        }
    }
}

impl ClientOptions {
    /// Bounds each whole call: waiting for a free slot, sending, the server's work and the
    /// answer. A call not done by then returns [`Error::Timeout`](crate::Error::Timeout).
    /// Also bounds `connect`'s exchange with a server that holds the name but does not answer,
    /// though never to less than [`CONNECT_PATIENCE`](crate::CONNECT_PATIENCE): a deadline of a
    /// few milliseconds is meant for calls, and a loaded machine can take longer than that to
    /// schedule a live server's first answer.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How this client waits for answers.
    #[must_use]
    pub fn wait(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// The longest [`WaitStrategy::Adaptive`] spins for an answer before sleeping (default
    /// [`DEFAULT_CLIENT_SPIN_BUDGET`]; at most [`LONGEST_SPIN_BUDGET`], a longer one is taken as
    /// that). A blocking call that moves many bytes spins longer, by the time its request and
    /// expected reply take to copy (at 4 bytes/ns, at most 1 ms more).
    #[must_use]
    pub fn spin_budget(mut self, budget: Duration) -> Self {
        self.spin_budget = budget.min(LONGEST_SPIN_BUDGET);
        self
    }

    /// How long `connect` waits for a server to bind the name, when none holds it yet (default:
    /// not at all, `connect` fails at once with `ServerNotRunning`). It looks again at growing
    /// intervals of at most 5 ms: socket names give no notification.
    #[must_use]
    pub fn wait_for_server(mut self, wait: Duration) -> Self {
        self.wait_for_server = wait;
        self
    }

    /// Also trusts a server run by user `uid` (by default only servers of this process's own
    /// user and of root are trusted). Any user may take a service's name before its real server
    /// starts; a client refuses a server it does not trust with
    /// [`Error::PermissionDenied`](crate::Error::PermissionDenied), so that a squatter never
    /// sees a call.
    #[must_use]
    pub fn trust_uid(mut self, uid: u32) -> Self {
        if !self.trusted.contains(&uid) {
            self.trusted.push(uid);
        }
        self
    }

    /// The most calls this client makes in parallel (one slot each; default
    /// [`DEFAULT_MAX_SLOTS`], at least 1): more threads calling at once take turns. The
    /// server may allow fewer.
    #[must_use]
    pub fn max_slots(mut self, slots: usize) -> Self {
        self.max_slots = slots.max(1);
        self
    }

    /// Refuses at `connect`, with [`Error::InterfaceMismatch`](crate::Error::InterfaceMismatch)
    /// naming the first difference, any server whose interface differs from this client's at
    /// all. By default a client works with a server whose trait has more methods, or other
    /// methods changed: only a call to a method the server lacks, or has with another
    /// signature, fails (with `InterfaceMismatch`, nothing run).
    #[must_use]
    pub fn exact_interface(mut self) -> Self {
        self.exact_interface = true;
        self
    }

    /// The call timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }
}

/// Who may connect to a server: the rules of [`ServerOptions`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) any_user: bool,
    pub(crate) uids: Vec<u32>,
    pub(crate) gids: Vec<u32>,
}

impl Access {
    /// Whether any rule admits users other than the server's own: the service is then also
    /// published where other users look for it.
    pub(crate) fn is_shared(&self) -> bool {
        self.any_user || !self.uids.is_empty() || !self.gids.is_empty()
    }
}

/// Options of a server: [`ServerOptions::default()`] then the setters.
///
/// ```
/// let options = shmrpc::ServerOptions::default().workers(4).allow_uid(1001).allow_gid(100);
/// assert_eq!(options.get_workers(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub(crate) access: Access,
    pub(crate) workers: usize,
    pub(crate) wait: WaitStrategy,
    pub(crate) spin_budget: Duration,
    pub(crate) max_message: usize,
    pub(crate) stop_on_signals: bool,
}

/// The largest request or response a server takes by default: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

impl Default for ServerOptions {
    /// Only the server's own user may connect; one worker; adaptive waiting; messages up to
    /// [`DEFAULT_MAX_MESSAGE`].
    fn default() -> Self {
        ServerOptions {
            access: Access::default(),
            workers: 1,
            wait: WaitStrategy::Adaptive,
            spin_budget: DEFAULT_SERVER_SPIN_BUDGET,
            max_message: DEFAULT_MAX_MESSAGE,
            stop_on_signals: false,
        }
    }
}

impl ServerOptions {
    /// Lets any user connect. The service is then also published under a name other users look
    /// up (see the README's security section); clients still check who runs the server.
    #[must_use]
    pub fn allow_any_user(mut self) -> Self {
        self.access.any_user = true;
        self
    }

    /// Also lets user `uid` connect. Rules add up.
    #[must_use]
    pub fn allow_uid(mut self, uid: u32) -> Self {
        if !self.access.uids.contains(&uid) {
            self.access.uids.push(uid);
        }
        self
    }

    /// Also lets members of group `gid` connect (their primary or a supplementary group, as
    /// the kernel reports them when they connect). Rules add up.
    #[must_use]
    pub fn allow_gid(mut self, gid: u32) -> Self {
        if !self.access.gids.contains(&gid) {
            self.access.gids.push(gid);
        }
        self
    }

    /// How many threads run methods (default 1). With one, calls are served one at a time in
    /// the order they arrive; with `n`, calls from different connections (and from different
    /// threads of one client) run in parallel on up to `n` threads. At least 1.
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Stops the server when the process gets SIGINT (Ctrl-C) or SIGTERM: it takes no new call,
    /// finishes the calls in progress, frees its name and its connections, and `run()` returns
    /// `Ok(())` (a spawned server's [`ServerHandle::wait`](crate::ServerHandle::wait) returns).
    /// A second signal while it stops does what it did before: by default, kills the process
    /// at once. Once no server of the process stops on signals, they do what they did before
    /// (killing the process, or nothing if ignored; a handler of the application's own still
    /// runs). Off by default: the process's own signal handling is left alone.
    ///
    /// On Windows, Ctrl+C, Ctrl+Break and the console's closing play the part of the signals
    /// (a console control handler); for the closing, which Windows follows by ending the
    /// process, the handler waits up to 4 s for the servers to stop.
    #[must_use]
    pub fn stop_on_signals(mut self) -> Self {
        self.stop_on_signals = true;
        self
    }

    /// How the server waits for the next request.
    #[must_use]
    pub fn wait(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// The longest [`WaitStrategy::Adaptive`] spins for the next request before sleeping
    /// (default [`DEFAULT_SERVER_SPIN_BUDGET`]; at most [`LONGEST_SPIN_BUDGET`], a longer one is
    /// taken as that).
    #[must_use]
    pub fn spin_budget(mut self, budget: Duration) -> Self {
        self.spin_budget = budget.min(LONGEST_SPIN_BUDGET);
        self
    }

    /// The largest request or response, in bytes (default [`DEFAULT_MAX_MESSAGE`], 64 MiB;
    /// from 256 bytes to 1 GiB). A client's call with a larger request fails with
    /// [`Error::TooLarge`](crate::Error::TooLarge) before anything is sent; a method whose
    /// result is larger ran, and its caller gets `TooLarge` instead of the result.
    ///
    /// Each slot reserves this much address space each way, in both processes, but takes
    /// memory only for the bytes messages actually use: a connection that only ever carries
    /// small calls uses a few pages. Lower it for 32-bit processes or many connections under
    /// an address-space limit (`ulimit -v`).
    #[must_use]
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// The number of worker threads.
    pub fn get_workers(&self) -> usize {
        self.workers
    }

    /// The largest request or response, in bytes.
    pub fn get_max_message(&self) -> usize {
        self.max_message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget of `Duration::MAX` is taken as the longest one, so that no deadline computed
    /// from it overflows.
    #[test]
    fn spin_budgets_are_at_most_a_day() {
        let client = ClientOptions::default().spin_budget(Duration::MAX);
        assert_eq!(client.spin_budget, LONGEST_SPIN_BUDGET);
        let server = ServerOptions::default().spin_budget(Duration::MAX);
        assert_eq!(server.spin_budget, LONGEST_SPIN_BUDGET);
        let short = Duration::from_micros(7);
        assert_eq!(
            ClientOptions::default().spin_budget(short).spin_budget,
            short
        );
        assert_eq!(
            ServerOptions::default().spin_budget(short).spin_budget,
            short
        );
    }
}
