//! The one place that decides which final status the caller gets when the agent's leg
//! fails.

/// Why the agent's leg did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The agent sent this final status (3xx-6xx).
    Rejected(u16),
    /// No final response before timer B (RFC 3261 §17.1.1.2): the agent is unreachable.
    Timeout,
    /// The message could not be sent (TCP connect refused, no route).
    Transport,
    /// The agent rang for longer than the configured ring timeout.
    NoAnswer,
    /// The caller cancelled.
    Cancelled,
    /// The engine is shutting down.
    ShuttingDown,
    /// The engine could not build the call (no relay ports, bad SDP).
    Internal,
}

impl Failure {
    /// The status and reason phrase the caller's INVITE is answered with.
    pub fn caller_status(self) -> (u16, &'static str) {
        match self {
            Failure::Rejected(status) => relayed_status(status),
            Failure::Timeout => (408, "Request Timeout"),
            Failure::Transport => (503, "Service Unavailable"),
            Failure::NoAnswer => (480, "Temporarily Unavailable"),
            Failure::Cancelled => (487, "Request Terminated"),
            Failure::ShuttingDown => (503, "Service Unavailable"),
            Failure::Internal => (500, "Server Internal Error"),
        }
    }
}

/// Maps an agent's final status to the caller's. Most codes pass through; those that only
/// make sense on the agent's hop do not: a redirect would send the switch around the
/// engine, a challenge asks for the engine's credentials, and 481/482/483 describe the
/// engine's own request.
fn relayed_status(status: u16) -> (u16, &'static str) {
    match status {
        300..=399 => (480, "Temporarily Unavailable"),
        401 | 407 => (403, "Forbidden"),
        481..=483 => (480, "Temporarily Unavailable"),
        400..=699 => (status, ""),
        _ => (500, "Server Internal Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_decline_pass_through() {
        assert_eq!(Failure::Rejected(486).caller_status().0, 486);
        assert_eq!(Failure::Rejected(603).caller_status().0, 603);
        assert_eq!(Failure::Rejected(404).caller_status().0, 404);
    }

    #[test]
    fn hop_local_codes_are_mapped() {
        assert_eq!(Failure::Rejected(302).caller_status().0, 480);
        assert_eq!(Failure::Rejected(407).caller_status().0, 403);
        assert_eq!(Failure::Rejected(482).caller_status().0, 480);
    }

    #[test]
    fn engine_causes_map_to_fixed_codes() {
        assert_eq!(Failure::Timeout.caller_status().0, 408);
        assert_eq!(Failure::Transport.caller_status().0, 503);
        assert_eq!(Failure::NoAnswer.caller_status().0, 480);
        assert_eq!(Failure::Cancelled.caller_status().0, 487);
    }
}
