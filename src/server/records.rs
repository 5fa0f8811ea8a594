//! Writes one transfer record per finished transfer, from the call tasks' status.

use crate::cdr::{Moment, RecordWriter, TransferRecord, TransferResult};
use crate::session::{TransferOrder, TransferRecorder, TransferState, TransferStatus};

/// Turns a transfer's final status into a record line.
pub struct Recorder {
    pub writer: RecordWriter,
    /// This hotline's number, as `from_hotline`.
    pub origin: String,
}

impl TransferRecorder for Recorder {
    fn record(&self, status: &TransferStatus, order: &TransferOrder, caller: &str) {
        let result = match status.state {
            TransferState::Bridged => TransferResult::Bridged,
            TransferState::Recalled => TransferResult::Recalled,
            TransferState::Cancelled => TransferResult::Cancelled,
            _ => TransferResult::Failed,
        };
        let mut milestones = status.milestones;
        milestones.end.get_or_insert_with(Moment::now);
        self.writer.write(TransferRecord {
            transfer: status.id.to_string(),
            call_id: status.call_id.clone(),
            session: status.session.0,
            caller: caller.to_owned(),
            from_hotline: self.origin.clone(),
            agent: order.agent.clone(),
            destination: status.destination.clone(),
            trigger: status.kind,
            matter: order.matter.clone(),
            ticket: order.ticket.clone(),
            note: order.note.clone(),
            result,
            cause: status.cause.clone(),
            sip_status: status.sip_status,
            gateway: status.gateway.clone(),
            milestones,
        });
    }
}
