//! The engine behind the control API: listing calls, starting and reading transfers,
//! reloading the dialplan, counters. Each method reads shared state or sends an event to
//! one call task; none holds a lock across an await.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::plans::Plans;
use crate::cdr::RecordWriter;
use crate::control::{
    self, CallRef, CallState, Engine, EngineFuture, EngineStats, LegRole, LegState, ReloadReport,
    TransferId, TransferRejection, TransferRequest, TransferSummary,
};
use crate::dialplan::{Acceptance, ExplainOptions, GatewayStatus, Health, Timestamp, Trigger};
use crate::session::routing::Refusal;
use crate::session::{
    CallEvent, CallPhase, Context, LegId, StartError, TransferOrder, TransferState, TransferStatus,
    TriggerKind,
};
use crate::sip::CallId;
use crate::trunk::{GatewayId as TrunkGatewayId, TrunkRegistry};

/// The control API's view of a running engine.
pub struct EngineHandle {
    pub ctx: Arc<Context>,
    pub plans: Arc<Plans>,
    pub records: RecordWriter,
}

impl Engine for EngineHandle {
    fn calls(&self) -> EngineFuture<'_, Vec<control::CallSummary>> {
        Box::pin(async move {
            let mut calls: Vec<control::CallSummary> = self
                .ctx
                .calls
                .iter()
                .map(|entry| self.call_summary(entry.value()))
                .collect();
            calls.sort_by_key(|call| call.started_at);
            calls
        })
    }

    fn start_transfer(
        &self,
        request: TransferRequest,
    ) -> EngineFuture<'_, Result<TransferSummary, TransferRejection>> {
        Box::pin(self.start(request))
    }

    fn transfer(&self, id: TransferId) -> EngineFuture<'_, Option<TransferSummary>> {
        Box::pin(async move {
            let id: u64 = id.as_str().parse().ok()?;
            let status = self.ctx.transfers.get(&id)?.value().clone();
            Some(transfer_summary(&status))
        })
    }

    fn reload(&self) -> EngineFuture<'_, Result<ReloadReport, Vec<String>>> {
        Box::pin(async move {
            match self.plans.reload().await {
                Ok(loaded) => Ok(ReloadReport {
                    version: loaded.catalogue.unwrap_or_default(),
                    fingerprint: loaded.fingerprint,
                    destinations: loaded.destinations,
                    matters: loaded.matters,
                }),
                Err(problems) => Err(problems.iter().map(ToString::to_string).collect()),
            }
        })
    }

    fn gateways(&self) -> EngineFuture<'_, Vec<control::GatewayState>> {
        Box::pin(async move {
            let Some(registry) = self.registry() else {
                return Vec::new();
            };
            let mut ids = registry.ids();
            ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            ids.iter()
                .filter_map(|id| registry.gateway(id))
                .map(|gateway| {
                    let channels = gateway.channels();
                    control::GatewayState {
                        gateway: gateway.id().to_string(),
                        trunk: gateway.spec().trunk.to_string(),
                        health: gateway.health().as_str().to_owned(),
                        channels_in_use: channels.in_use,
                        channel_limit: channels.limit,
                    }
                })
                .collect()
        })
    }

    fn explain(
        &self,
        query: control::RouteQuery,
    ) -> EngineFuture<'_, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let plan = self.plans.current().ok_or("no dialplan is in force")?;
            let triggers = [
                query.keys.map(Trigger::Keys),
                query.refer_to.map(Trigger::ReferTo),
                query.destination.map(Trigger::Destination),
                query.name.map(Trigger::Name),
            ];
            let mut given = triggers.into_iter().flatten();
            let (Some(trigger), None) = (given.next(), given.next()) else {
                return Err("give exactly one of keys, refer_to, destination or name".to_owned());
            };
            let live = self.registry().map(LiveStatus);
            let options = ExplainOptions {
                matter: query.matter.as_deref(),
                caller: query.caller.as_deref(),
                at: Timestamp::now(),
                status: live.as_ref().map(|status| status as &dyn GatewayStatus),
            };
            let explanation = crate::dialplan::explain(&plan, trigger, options);
            serde_json::to_value(&explanation).map_err(|error| error.to_string())
        })
    }

    fn stats(&self) -> EngineFuture<'_, EngineStats> {
        Box::pin(async move {
            let mut stats = EngineStats {
                active_calls: self.ctx.active_calls() as u64,
                draining: self.ctx.is_draining(),
                plan_version: self
                    .plans
                    .current()
                    .map(|plan| plan.fingerprint().to_owned()),
                records_dropped: self.records.dropped(),
                ..EngineStats::default()
            };
            for entry in self.ctx.transfers.iter() {
                stats.transfers_started += 1;
                match entry.value().state {
                    TransferState::Bridged => stats.transfers_bridged += 1,
                    TransferState::Failed => stats.transfers_failed += 1,
                    TransferState::Recalled => stats.transfers_recalled += 1,
                    TransferState::Cancelled => stats.transfers_cancelled += 1,
                    _ => stats.transfers_active += 1,
                }
            }
            stats
        })
    }
}

/// The trunk registry's live state, as the dialplan's explanation reads it.
struct LiveStatus(Arc<TrunkRegistry>);

impl GatewayStatus for LiveStatus {
    fn health(&self, gateway: &crate::dialplan::GatewayId) -> Option<Health> {
        let health = self.0.health(&TrunkGatewayId::new(gateway.as_str()))?;
        Some(match health {
            crate::trunk::health::Health::Up => Health::Up,
            crate::trunk::health::Health::Down => Health::Down,
            crate::trunk::health::Health::Unknown => Health::Unknown,
        })
    }

    fn free_channels(&self, gateway: &crate::dialplan::GatewayId) -> Option<u32> {
        let channels = self.0.channels(&TrunkGatewayId::new(gateway.as_str()))?;
        channels.free()
    }
}

impl EngineHandle {
    fn registry(&self) -> Option<Arc<TrunkRegistry>> {
        self.ctx
            .probes()
            .map(|prober| Arc::clone(prober.registry()))
    }

    async fn start(&self, request: TransferRequest) -> Result<TransferSummary, TransferRejection> {
        if self.ctx.is_draining() {
            return Err(TransferRejection::Draining);
        }
        let call = request.call.clone();
        let route = self
            .ctx
            .table
            .get(&CallId::new(call.as_str()))
            .filter(|route| route.leg == LegId::A)
            .ok_or_else(|| TransferRejection::UnknownCall { call: call.clone() })?;
        let destination = self.check_destination(&request)?;

        let order = TransferOrder {
            kind: TriggerKind::Http,
            destination,
            matter: request.matter,
            ticket: request.ticket,
            note: request.note,
            agent: request.agent,
            force: request.force,
            received: request.received,
        };
        let (reply, outcome) = oneshot::channel();
        let internal = |reason: &str| TransferRejection::Internal {
            reason: reason.to_owned(),
        };
        route
            .sender
            .send(CallEvent::Transfer {
                order: Box::new(order),
                reply,
            })
            .await
            .map_err(|_| internal("the call has ended"))?;
        let started = outcome.await.map_err(|_| internal("the call has ended"))?;
        match started {
            Ok(status) => Ok(transfer_summary(&status)),
            Err(error) => Err(self.rejection(call, error)),
        }
    }

    /// Resolves the destination (an id or a name) and checks the matter against the plan
    /// in force, so that the client gets a precise error before the call is touched.
    fn check_destination(&self, request: &TransferRequest) -> Result<String, TransferRejection> {
        let Some(plan) = self.plans.current() else {
            return Err(TransferRejection::UnknownDestination {
                destination: request.destination.clone(),
                known: Vec::new(),
            });
        };
        let destination = match plan.destination(&request.destination) {
            Some(destination) => destination.id.clone(),
            None => match plan.resolve_name(&request.destination) {
                Some(id) => id.to_owned(),
                None => {
                    return Err(TransferRejection::UnknownDestination {
                        destination: request.destination.clone(),
                        known: plan.destinations().iter().map(|d| d.id.clone()).collect(),
                    });
                }
            },
        };
        if let Some(matter) = &request.matter {
            if plan.matter(matter).is_none() {
                return Err(TransferRejection::UnknownMatter {
                    matter: matter.clone(),
                });
            }
            if let Acceptance::NotAccepted { scope } = plan.accepts(&destination, matter)
                && !request.force
            {
                return Err(TransferRejection::MatterNotAccepted {
                    destination,
                    matter: matter.clone(),
                    scope,
                });
            }
        }
        Ok(destination)
    }

    fn rejection(&self, call: CallRef, error: StartError) -> TransferRejection {
        match error {
            StartError::Busy(transfer) => TransferRejection::InProgress {
                call,
                transfer: TransferId(transfer.to_string()),
            },
            StartError::NotAnswered => TransferRejection::NotTransferable {
                call,
                state: CallState::Ringing,
            },
            StartError::Refused(Refusal::UnknownDestination(destination)) => {
                TransferRejection::UnknownDestination {
                    destination,
                    known: Vec::new(),
                }
            }
            StartError::Refused(Refusal::UnknownMatter(matter)) => {
                TransferRejection::UnknownMatter { matter }
            }
            StartError::Refused(Refusal::MatterNotAccepted {
                destination,
                matter,
                scope,
            }) => TransferRejection::MatterNotAccepted {
                destination,
                matter,
                scope,
            },
            StartError::Refused(Refusal::NoGateway {
                destination,
                reason,
            }) => TransferRejection::NoGateway {
                destination,
                reason,
            },
            other => TransferRejection::Internal {
                reason: other.to_string(),
            },
        }
    }

    fn call_summary(&self, call: &crate::session::CallSummary) -> control::CallSummary {
        let state = match call.phase {
            CallPhase::Ringing => CallState::Ringing,
            CallPhase::Talking => CallState::Talking,
            CallPhase::Transferring => CallState::Transferring,
            CallPhase::Transferred => CallState::Transferred,
            CallPhase::Ending => CallState::Ending,
        };
        let legs = call
            .legs
            .iter()
            .map(|leg| control::LegSummary {
                leg: match leg.leg {
                    "a" => LegRole::A,
                    "b" => LegRole::B,
                    _ => LegRole::C,
                },
                call_id: leg.call_id.clone(),
                peer: leg.peer,
                state: if leg.up {
                    LegState::Confirmed
                } else {
                    LegState::Terminated
                },
            })
            .collect();
        let transfer = call.transfer.and_then(|id| {
            self.ctx
                .transfers
                .get(&id)
                .map(|entry| transfer_summary(entry.value()))
        });
        control::CallSummary {
            call: CallRef(call.call_id.clone()),
            caller: call.caller.clone(),
            state,
            started_at: call.started_at,
            legs,
            transfer,
        }
    }
}

fn transfer_summary(status: &TransferStatus) -> TransferSummary {
    let milestones = &status.milestones;
    TransferSummary {
        transfer: TransferId(status.id.to_string()),
        call: CallRef(status.call_id.clone()),
        destination: status.destination.clone(),
        matter: status.matter.clone(),
        ticket: status.ticket.clone(),
        agent: status.agent.clone(),
        trigger: status.kind,
        status: match status.state {
            TransferState::Trying => control::TransferStatus::Trying,
            TransferState::Ringing => control::TransferStatus::Ringing,
            TransferState::Answered => control::TransferStatus::Answered,
            TransferState::Bridged => control::TransferStatus::Bridged,
            TransferState::Failed => control::TransferStatus::Failed,
            TransferState::Recalled => control::TransferStatus::Recalled,
            TransferState::Cancelled => control::TransferStatus::Cancelled,
        },
        cause: status.cause.clone(),
        sip_status: status.sip_status,
        started_at: milestones.trigger.wall,
        ringing_at: status.ringing_at,
        answered_at: milestones.answer.map(|moment| moment.wall),
        bridged_at: milestones.bridge.map(|moment| moment.wall),
        ended_at: milestones.end.map(|moment| moment.wall),
    }
}
