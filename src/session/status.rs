//! What the outside sees of calls and transfers: the orders the control API and the
//! triggers give, and the status snapshots the call tasks publish.

use std::time::SystemTime;

use serde::Serialize;

use super::SessionId;

/// How a transfer was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// RFC 4733 keys in the agent's media.
    Dtmf,
    /// SIP INFO with a DTMF body.
    Info,
    /// A blind REFER from the agent's phone.
    Refer,
    /// A REFER whose Refer-To replaces a consultation call (attended transfer).
    ReferReplaces,
    /// The work platform's HTTP request.
    Http,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Dtmf => "dtmf",
            TriggerKind::Info => "info",
            TriggerKind::Refer => "refer",
            TriggerKind::ReferReplaces => "refer_replaces",
            TriggerKind::Http => "http",
        }
    }
}

/// A request to transfer a call.
#[derive(Debug, Clone)]
pub struct TransferOrder {
    pub kind: TriggerKind,
    /// Destination id from the dialplan.
    pub destination: String,
    pub matter: Option<String>,
    pub ticket: Option<String>,
    pub note: Option<String>,
    pub agent: Option<String>,
    /// Transfer even when the destination does not accept the matter.
    pub force: bool,
}

impl TransferOrder {
    /// An order with only a trigger and a destination.
    pub fn to(kind: TriggerKind, destination: &str) -> TransferOrder {
        TransferOrder {
            kind,
            destination: destination.to_owned(),
            matter: None,
            ticket: None,
            note: None,
            agent: None,
            force: false,
        }
    }
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// The INVITE went to the remote hotline; no ringing yet.
    Trying,
    Ringing,
    /// The remote answered; media is being re-pointed.
    Answered,
    /// The caller talks to the remote hotline.
    Bridged,
    /// The remote did not take the call.
    Failed,
    /// After a failure, the caller is back with the agent.
    Recalled,
    /// The caller hung up or the engine shut down during the transfer.
    Cancelled,
}

/// Wall-clock times of a transfer's steps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TransferTimes {
    #[serde(with = "rfc3339_opt")]
    pub trigger: Option<SystemTime>,
    #[serde(with = "rfc3339_opt")]
    pub invite_sent: Option<SystemTime>,
    #[serde(with = "rfc3339_opt")]
    pub first_response: Option<SystemTime>,
    #[serde(with = "rfc3339_opt")]
    pub answer: Option<SystemTime>,
    #[serde(with = "rfc3339_opt")]
    pub bridge: Option<SystemTime>,
}

/// A snapshot of one transfer.
#[derive(Debug, Clone, Serialize)]
pub struct TransferStatus {
    pub id: u64,
    pub session: u64,
    pub kind: TriggerKind,
    pub destination: String,
    pub state: TransferState,
    pub gateway: Option<String>,
    pub sip_status: Option<u16>,
    pub cause: Option<String>,
    pub times: TransferTimes,
    /// Engine-added time from the trigger to the INVITE leaving, in microseconds.
    pub invite_latency_us: Option<u64>,
    /// Engine-added time from the remote's 2xx to the media bridged, in microseconds.
    pub bridge_latency_us: Option<u64>,
}

impl TransferStatus {
    pub fn new(id: u64, session: SessionId, order: &TransferOrder, at: SystemTime) -> Self {
        TransferStatus {
            id,
            session: session.0,
            kind: order.kind,
            destination: order.destination.clone(),
            state: TransferState::Trying,
            gateway: None,
            sip_status: None,
            cause: None,
            times: TransferTimes {
                trigger: Some(at),
                ..TransferTimes::default()
            },
            invite_latency_us: None,
            bridge_latency_us: None,
        }
    }
}

/// A snapshot of one call for listings.
#[derive(Debug, Clone, Serialize)]
pub struct CallSummary {
    pub session: u64,
    pub call_id: String,
    pub caller: String,
    pub state: &'static str,
    #[serde(with = "rfc3339")]
    pub started_at: SystemTime,
    pub legs: Vec<LegSummary>,
    pub transfer: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LegSummary {
    pub leg: &'static str,
    pub call_id: String,
    pub peer: String,
    pub up: bool,
}

/// Formats a time as RFC 3339 UTC with microseconds.
pub fn format_rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

mod rfc3339 {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(
        time: &SystemTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_rfc3339(*time))
    }
}

mod rfc3339_opt {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(
        time: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => serializer.serialize_str(&super::format_rfc3339(*time)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_formats_epoch() {
        assert_eq!(
            format_rfc3339(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn rfc3339_formats_known_date() {
        // 2024-02-29T12:34:56.789012Z, a leap day.
        let time = SystemTime::UNIX_EPOCH + Duration::new(1_709_210_096, 789_012_000);
        assert_eq!(format_rfc3339(time), "2024-02-29T12:34:56.789012Z");
    }
}
