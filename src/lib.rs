//! hotline-b2bua: a SIP back-to-back user agent that connects callers from a call-centre
//! switch to agents and anchors their media.
//!
//! # Module map
//!
//! Dependencies point downward; no module imports one listed above it.
//!
//! - [`server`]: starts the engine from a [`config::Config`], loads and reloads the
//!   dialplan, serves the control API and runs the graceful shutdown.
//! - [`control`]: the HTTP control API for the work platform: calls, transfers, reload.
//! - [`routing`]: the router transfers use: the dialplan in force plus live trunk state.
//! - [`session`]: the B2BUA core. One task per call owns its legs (caller, agent, remote
//!   hotline), their dialogs and transactions, and its transfers; the lock-free session
//!   table routes messages to it.
//! - [`dialog`]: dialog state per leg (RFC 3261 §12): Call-ID, tags, CSeq, route set, remote
//!   target.
//! - [`trunk`]: the gateways to other cities' hotlines: health, channel limits, the order
//!   to try them in, and the OPTIONS probes that keep their health current.
//! - [`transaction`]: the four RFC 3261 §17 transaction machines, free of I/O and of the clock.
//! - [`transport`]: UDP and TCP sockets, framing, connection reuse, the §18 send rules.
//! - [`udp`]: the UDP socket the transport and the relay share, watched for reading only.
//! - [`dialplan`]: the transfer destinations, trunks, keys and matter catalogue, loaded
//!   from `dialplans/*.toml` and explained before a call is placed; pure, no I/O after
//!   loading.
//! - [`sip`]: parsing with normalisation and framing, URI and header parsers, typed ids,
//!   message building.
//! - [`dtmf`]: detects the keys an agent presses (RFC 4733 events and SIP INFO) and
//!   collects them into transfer feature codes such as `*1`.
//! - [`sdp`]: reads offers and answers and rewrites them to point at the relay.
//! - [`media`]: the RTP/RTCP relay: port pool, latching, payload-type mapping, the
//!   transfer side, ringback and the gate that keeps feature codes from the caller.
//! - [`mailbox`]: the bounded queue that call tasks and relay streams receive on.
//! - [`cdr`]: transfer records as JSON lines.
//! - [`config`]: the TOML configuration, validated before any socket is bound.
//! - [`metrics`]: counters of what was received, rejected and dropped.
//!
//! # How a call flows
//!
//! 1. [`transport`] receives bytes and [`sip`] frames and parses them into a message.
//! 2. The dispatcher in [`session`] checks the source against the trusted switches, then looks
//!    the Call-ID up in the session table; a new INVITE creates a call task.
//! 3. The call task runs the A-leg server transaction, allocates relay ports from [`media`],
//!    rewrites the SDP with [`sdp`] and sends the B-leg INVITE to the agent through a client
//!    transaction.
//! 4. Responses from the agent are relayed to the caller; the 2xx is ACKed per leg and both
//!    [`dialog`]s are confirmed. Media flows through the relay.
//! 5. A transfer trigger from the agent (keys seen by the relay, INFO, REFER, or the control
//!    API) makes the call task INVITE the remote hotline's trunk through [`routing`]; on
//!    answer the relay re-points the caller's media to it and the agent's leg is released.
//! 6. A BYE on either side, the media inactivity timer or shutdown ends the legs and
//!    removes the call from the table.

pub mod cdr;
pub mod config;
pub mod control;
pub mod dialog;
pub mod dialplan;
pub mod dtmf;
pub mod mailbox;
pub mod media;
pub mod metrics;
pub mod routing;
pub mod sdp;
pub mod server;
pub mod session;
pub mod sip;
pub mod transaction;
pub mod transport;
pub mod trunk;
pub mod udp;
