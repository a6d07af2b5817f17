//! Test-only fault injection: makes this process kill or stop itself at a named protocol step.
//!
//! Compiled in only with the `fault-injection` feature, which only the test crate enables; in
//! every other build `point` is an empty inline function. With the feature, the environment
//! variable `SHMRPC_FAULT=<step>:<action>` (read once) picks one step, for example
//! `client-published:kill` or `server-took-request:stop`. Actions: `kill` (SIGKILL, the process
//! dies at once), `stop` (SIGSTOP, it freezes), `sleep-<ms>`.

/// A step of the protocol at which a test may inject a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Client: connected and welcomed, before its first call.
    ClientConnected,
    /// Client: request bytes written, not yet published.
    ClientWroteRequest,
    /// Client: request published (and the server kicked, if it was not watching).
    ClientPublished,
    /// Client: its answer arrived, not yet read.
    ClientGotResponse,
    /// Server: accepted a connection, not yet welcomed it.
    ServerAccepted,
    /// Server: read a new request's sequence number, not yet taken it.
    ServerSawRequest,
    /// Server: took a request, not yet dispatched.
    ServerTookRequest,
    /// Server: the method returned, response not yet written.
    ServerDispatched,
    /// Server: response written and published, the bell not yet rung.
    ServerWroteResponse,
}

impl Step {
    /// Every step, in protocol order.
    pub const ALL: [Step; 9] = [
        Step::ClientConnected,
        Step::ClientWroteRequest,
        Step::ClientPublished,
        Step::ClientGotResponse,
        Step::ServerAccepted,
        Step::ServerSawRequest,
        Step::ServerTookRequest,
        Step::ServerDispatched,
        Step::ServerWroteResponse,
    ];

    /// The step's name in `SHMRPC_FAULT`.
    pub fn name(self) -> &'static str {
        match self {
            Step::ClientConnected => "client-connected",
            Step::ClientWroteRequest => "client-wrote-request",
            Step::ClientPublished => "client-published",
            Step::ClientGotResponse => "client-got-response",
            Step::ServerAccepted => "server-accepted",
            Step::ServerSawRequest => "server-saw-request",
            Step::ServerTookRequest => "server-took-request",
            Step::ServerDispatched => "server-dispatched",
            Step::ServerWroteResponse => "server-wrote-response",
        }
    }

    /// Whether the step is on the client's side.
    pub fn is_client(self) -> bool {
        self.name().starts_with("client")
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn point(_step: Step) {}

#[cfg(feature = "fault-injection")]
pub(crate) fn point(step: Step) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    struct Plan {
        step: String,
        action: String,
        nth: u64,
    }
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    static REACHED: AtomicU64 = AtomicU64::new(0);
    let plan = PLAN.get_or_init(|| {
        let spec = std::env::var("SHMRPC_FAULT").ok()?;
        let mut parts = spec.split(':');
        let (step, action) = (parts.next()?.to_owned(), parts.next()?.to_owned());
        let nth = parts.next().map_or(Some(1), |n| n.parse().ok())?;
        Some(Plan { step, action, nth })
    });
    let Some(plan) = plan else { return };
    if plan.step != step.name() || REACHED.fetch_add(1, Ordering::Relaxed) + 1 != plan.nth {
        return;
    }
    match plan.action.as_str() {
        "kill" => crate::sys::signal_this_thread(false),
        "stop" => crate::sys::signal_this_thread(true),
        other => {
            if let Some(ms) = other.strip_prefix("sleep-").and_then(|ms| ms.parse().ok()) {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
    }
}
