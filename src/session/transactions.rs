//! The call task's view of its transactions: one RFC 3261 §17 machine each, tagged with
//! the leg it runs on, its branch and what the call uses it for.

use bytes::Bytes;
use tokio::time::Instant;

use super::{Context, LegId};
use crate::sip::{Branch, Method, Request};
use crate::transaction::{
    Action, InviteClient, InviteServer, NonInviteClient, NonInviteServer, Timers, TransactionError,
};
use crate::transport::Target;

/// The role of a transaction in its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The caller's INVITE (server).
    AInvite,
    /// The INVITE to the agent (client).
    BInvite,
    /// A CANCEL of the agent's INVITE (client).
    Cancel,
    /// A BYE the engine sends (client).
    Bye,
    /// A request relayed from the other leg (client); its response crosses back.
    Relay,
    /// A request received inside the dialog (server).
    Incoming,
    /// The INVITE to a remote hotline during a transfer (client).
    TransferInvite,
    /// An INVITE calling the agent back after a failed transfer (client).
    Callback,
    /// The re-INVITE that points an adopted remote leg at this call's relay (client).
    Adopt,
    /// A re-INVITE the engine sends the caller after a transfer, to take it off hold or
    /// to the remote's codec (client).
    CallerReinvite,
    /// A request of the engine's own whose response needs no handling, such as the
    /// NOTIFYs of a REFER.
    Local,
}

/// For a relayed request: the server transaction on the other leg that awaits the answer.
#[derive(Debug, Clone)]
pub struct RelayLink {
    pub from: LegId,
    pub server_branch: Branch,
    /// The request as received, to build the response on its leg.
    pub original: Request,
}

pub enum Machine {
    InviteClient(InviteClient),
    NonInviteClient(NonInviteClient),
    InviteServer(InviteServer),
    NonInviteServer(NonInviteServer),
}

pub struct Txn {
    pub leg: LegId,
    pub branch: Branch,
    pub method: Method,
    pub purpose: Purpose,
    pub target: Target,
    pub machine: Machine,
    // The link and the request are boxed because they are large and most transactions
    // have neither: server transactions keep no request, and only relays have a link.
    pub relay: Option<Box<RelayLink>>,
    /// The request a client transaction sent, to build its ACK or CANCEL.
    pub request: Option<Box<Request>>,
    /// A final response arrived (client) or was sent (server).
    pub final_seen: bool,
}

impl Txn {
    /// Starts a client transaction for an encoded request; returns it with its first
    /// actions (the transmission).
    #[allow(clippy::too_many_arguments)]
    pub fn client(
        leg: LegId,
        branch: Branch,
        request: Request,
        bytes: Bytes,
        purpose: Purpose,
        target: Target,
        timers: &Timers,
        now: Instant,
    ) -> (Txn, Vec<Action>) {
        let reliable = target.protocol.is_reliable();
        let (machine, actions) = if request.method == Method::Invite {
            let (machine, actions) = InviteClient::new(bytes, reliable, timers, now);
            (Machine::InviteClient(machine), actions)
        } else {
            let (machine, actions) = NonInviteClient::new(bytes, reliable, timers, now);
            (Machine::NonInviteClient(machine), actions)
        };
        let txn = Txn {
            leg,
            branch,
            method: request.method.clone(),
            purpose,
            target,
            machine,
            relay: None,
            request: Some(Box::new(request)),
            final_seen: false,
        };
        (txn, actions)
    }

    /// Starts a server transaction for a request just received.
    pub fn server(
        leg: LegId,
        branch: Branch,
        method: Method,
        purpose: Purpose,
        target: Target,
        timers: &Timers,
        now: Instant,
    ) -> Txn {
        let reliable = target.protocol.is_reliable();
        let machine = if method == Method::Invite {
            Machine::InviteServer(InviteServer::new(reliable, timers, now))
        } else {
            Machine::NonInviteServer(NonInviteServer::new(reliable, timers))
        };
        Txn {
            leg,
            branch,
            method,
            purpose,
            target,
            machine,
            relay: None,
            request: None,
            final_seen: false,
        }
    }

    pub fn is_server(&self) -> bool {
        matches!(
            self.machine,
            Machine::InviteServer(_) | Machine::NonInviteServer(_)
        )
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.machine {
            Machine::InviteClient(machine) => machine.next_deadline(),
            Machine::NonInviteClient(machine) => machine.next_deadline(),
            Machine::InviteServer(machine) => machine.next_deadline(),
            Machine::NonInviteServer(machine) => machine.next_deadline(),
        }
    }

    pub fn on_timeout(&mut self, now: Instant) -> Vec<Action> {
        match &mut self.machine {
            Machine::InviteClient(machine) => machine.on_timeout(now),
            Machine::NonInviteClient(machine) => machine.on_timeout(now),
            Machine::InviteServer(machine) => machine.on_timeout(now),
            Machine::NonInviteServer(machine) => machine.on_timeout(now),
        }
    }

    pub fn on_transport_error(&mut self) -> Vec<Action> {
        match &mut self.machine {
            Machine::InviteClient(machine) => machine.on_transport_error(),
            Machine::NonInviteClient(machine) => machine.on_transport_error(),
            Machine::InviteServer(machine) => machine.on_transport_error(),
            Machine::NonInviteServer(machine) => machine.on_transport_error(),
        }
    }

    pub fn is_terminated(&self) -> bool {
        match &self.machine {
            Machine::InviteClient(machine) => machine.is_terminated(),
            Machine::NonInviteClient(machine) => machine.is_terminated(),
            Machine::InviteServer(machine) => machine.is_terminated(),
            Machine::NonInviteServer(machine) => machine.is_terminated(),
        }
    }

    /// Feeds a response to a client transaction.
    pub fn on_response(
        &mut self,
        status: u16,
        now: Instant,
    ) -> Result<Vec<Action>, TransactionError> {
        self.final_seen |= status >= 200;
        match &mut self.machine {
            Machine::InviteClient(machine) => machine.on_response(status, now),
            Machine::NonInviteClient(machine) => machine.on_response(status, now),
            _ => Ok(Vec::new()),
        }
    }

    /// Hands the ACK for a 3xx-6xx response to an INVITE client transaction.
    pub fn set_ack(&mut self, ack: Bytes) -> Vec<Action> {
        match &mut self.machine {
            Machine::InviteClient(machine) => machine.set_ack(ack),
            _ => Vec::new(),
        }
    }

    /// Sends a response through a server transaction.
    pub fn send_response(
        &mut self,
        status: u16,
        bytes: Bytes,
        now: Instant,
    ) -> Result<Vec<Action>, TransactionError> {
        self.final_seen |= status >= 200;
        match &mut self.machine {
            Machine::InviteServer(machine) => machine.send_response(status, bytes, now),
            Machine::NonInviteServer(machine) => machine.send_response(status, bytes, now),
            _ => Ok(Vec::new()),
        }
    }

    /// Feeds a retransmission of the request to a server transaction.
    pub fn on_retransmission(&mut self) -> Vec<Action> {
        match &mut self.machine {
            Machine::InviteServer(machine) => machine.on_request(),
            Machine::NonInviteServer(machine) => machine.on_request(),
            _ => Vec::new(),
        }
    }

    /// Sends `bytes` to the transaction's target. Returns the machine's actions for a
    /// failed send, and nothing when the transport took the bytes.
    pub async fn transmit(&mut self, ctx: &Context, bytes: Bytes) -> Vec<Action> {
        if ctx.send(self.target, bytes).await {
            Vec::new()
        } else {
            self.on_transport_error()
        }
    }

    /// Feeds an ACK to an INVITE server transaction.
    pub fn on_ack(&mut self, now: Instant) -> Vec<Action> {
        match &mut self.machine {
            Machine::InviteServer(machine) => machine.on_ack(now),
            _ => Vec::new(),
        }
    }
}
