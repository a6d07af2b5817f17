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

/// The longest an adaptive server spins for the next request before it sleeps, unless set
/// otherwise. Longer than a client's: under load the next request often comes only after the
/// lock passed from one client process to another, which takes a context switch; an idle server
/// still sleeps after it, and a server whose requests keep coming just after it gave up stops
/// spinning altogether.
pub const DEFAULT_SERVER_SPIN_BUDGET: Duration = Duration::from_millis(1);

/// Options of a client: [`ClientOptions::default()`] then the setters.
///
/// ```
/// use std::time::Duration;
/// let options = shmrpc::ClientOptions::default().timeout(Duration::from_millis(200));
/// assert_eq!(options.get_timeout(), Duration::from_millis(200));
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(crate) timeout: Duration,
    pub(crate) wait: WaitStrategy,
    pub(crate) spin_budget: Duration,
}

impl Default for ClientOptions {
    /// Timeout 5 s, adaptive waiting.
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            wait: WaitStrategy::Adaptive,
            spin_budget: DEFAULT_CLIENT_SPIN_BUDGET,
        }
    }
}

impl ClientOptions {
    /// Bounds each whole call: waiting for other clients, sending, the server's work and the
    /// answer. A call not done by then returns [`Error::Timeout`](crate::Error::Timeout).
    /// Connecting is not bounded by it: it does not wait for a server, and retries a damaged
    /// header (while the server repairs it) for at most 100 ms.
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
    /// [`DEFAULT_CLIENT_SPIN_BUDGET`]).
    #[must_use]
    pub fn spin_budget(mut self, budget: Duration) -> Self {
        self.spin_budget = budget;
        self
    }

    /// The call timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }
}

/// Options of a server: [`ServerOptions::default()`] then the setters.
///
/// ```
/// let options = shmrpc::ServerOptions::default().mode(0o660);
/// assert_eq!(options.get_mode(), 0o660);
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub(crate) mode: u32,
    pub(crate) wait: WaitStrategy,
    pub(crate) spin_budget: Duration,
}

impl Default for ServerOptions {
    /// Mode `0o600` (only the server's user may connect), adaptive waiting.
    fn default() -> Self {
        ServerOptions {
            mode: 0o600,
            wait: WaitStrategy::Adaptive,
            spin_budget: DEFAULT_SERVER_SPIN_BUDGET,
        }
    }
}

impl ServerOptions {
    /// The permission bits of everything the server creates, exactly: the umask does not apply.
    /// `0o600` lets only this user connect, `0o660` this user and group, `0o666` anyone.
    /// Clients need read and write access.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// How the server waits for the next request.
    #[must_use]
    pub fn wait(mut self, wait: WaitStrategy) -> Self {
        self.wait = wait;
        self
    }

    /// The longest [`WaitStrategy::Adaptive`] spins for the next request before sleeping
    /// (default [`DEFAULT_SERVER_SPIN_BUDGET`]).
    #[must_use]
    pub fn spin_budget(mut self, budget: Duration) -> Self {
        self.spin_budget = budget;
        self
    }

    /// The permission bits.
    pub fn get_mode(&self) -> u32 {
        self.mode
    }
}
