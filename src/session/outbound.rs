//! Addressing and header policy for what the engine sends: where a response goes, how a
//! URI becomes a transport target, and which headers cross from one leg to the other.

use std::net::{IpAddr, SocketAddr};

use crate::sip::uri::{Host, IpText, Rport, Uri, Via, push_decimal};
use crate::sip::{Headers, Request};
use crate::transport::{Protocol, Target};

/// Default SIP port (RFC 3261 §19.1.2).
const SIP_PORT: u16 = 5060;

/// Headers that belong to one hop or one dialog and are never copied to the other leg.
/// Everything else crosses unchanged, byte for byte.
const LEG_LOCAL_HEADERS: &[&str] = &[
    "Via",
    "Route",
    "Record-Route",
    "Contact",
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Supported",
    "Require",
    "Proxy-Require",
    "Allow",
    "Allow-Events",
    "Session-Expires",
    "Min-SE",
    "Authorization",
    "Proxy-Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "User-Agent",
    "Server",
    "RSeq",
    "RAck",
    "Expires",
    "Event",
    "Subscription-State",
    "Refer-To",
    "Referred-By",
    "Replaces",
];

/// Methods the engine accepts inside a dialog, for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER";

/// Where a response to a request received from `source` goes (RFC 3261 §18.2.2 with
/// RFC 3581): back on the connection for TCP; to the source address when the Via asked for
/// `rport`; otherwise to the source IP at the Via's sent-by port.
pub fn response_target(via: &Via, source: SocketAddr, protocol: Protocol) -> Target {
    if protocol == Protocol::Tcp || via.rport() != Rport::Absent {
        return Target {
            addr: source,
            protocol,
        };
    }
    let port = via.port.unwrap_or(SIP_PORT);
    Target {
        addr: SocketAddr::new(source.ip(), port),
        protocol,
    }
}

/// Resolves a URI to a transport target: its host (an IP literal, or a name looked up
/// through the system resolver), its port or 5060, and TCP when it says `transport=tcp`.
///
/// NOTE: names are resolved with A/AAAA only; RFC 3263 NAPTR and SRV lookups are not done,
/// so a domain without an explicit port is tried on 5060.
pub async fn resolve(uri: &Uri) -> Option<Target> {
    let protocol = match uri.params.value("transport") {
        Some(value) if value.eq_ignore_ascii_case("tcp") => Protocol::Tcp,
        _ => Protocol::Udp,
    };
    let port = uri.port.unwrap_or(SIP_PORT);
    let ip = match uri.host.as_ref()? {
        Host::Ipv4(ip) => IpAddr::V4(*ip),
        Host::Ipv6(ip) => IpAddr::V6(*ip),
        Host::Domain(name) => {
            let mut addrs = tokio::net::lookup_host((name.as_str(), port)).await.ok()?;
            addrs.next()?.ip()
        }
    };
    Some(Target {
        addr: SocketAddr::new(ip, port),
        protocol,
    })
}

/// Where requests inside a dialog go (RFC 3261 §12.2.1.1): the first route or the remote
/// target, over the transport its `transport` parameter names. Without that parameter
/// the leg keeps the transport of `current`, because TCP user agents often leave it out
/// of their Contact. `current` is also kept when the URI does not resolve.
pub async fn next_hop_target(dialog: &crate::dialog::Dialog, current: Target) -> Target {
    let hop = dialog.next_hop();
    let Some(resolved) = resolve(&hop).await else {
        return current;
    };
    if hop.params.contains("transport") {
        resolved
    } else {
        Target {
            protocol: current.protocol,
            ..resolved
        }
    }
}

/// Copies every header of `from` that is not leg-local into `to`, as it arrived.
pub fn copy_end_to_end_headers(from: &impl Headers, to: &mut impl Headers) {
    let copied = from.header_pairs().filter(|(name, _)| {
        !LEG_LOCAL_HEADERS
            .iter()
            .any(|local| local.eq_ignore_ascii_case(name))
    });
    for (name, value) in copied {
        to.push_header(name.to_owned(), value);
    }
}

/// The Via value for a request the engine sends.
pub fn via_value(local: SocketAddr, protocol: Protocol, branch: &str) -> String {
    let mut value = String::with_capacity(48 + branch.len());
    value.push_str("SIP/2.0/");
    value.push_str(protocol.via_token());
    value.push(' ');
    push_host_port(&mut value, local);
    value.push_str(";branch=");
    value.push_str(branch);
    value.push_str(";rport");
    value
}

/// The Contact value for the engine on a leg, with `transport=tcp` when the leg uses TCP.
pub fn contact_value(local: SocketAddr, protocol: Protocol) -> String {
    let mut value = String::with_capacity(48);
    value.push_str("<sip:");
    push_host_port(&mut value, local);
    if protocol == Protocol::Tcp {
        value.push_str(";transport=tcp");
    }
    value.push('>');
    value
}

/// `host:port` with brackets around an IPv6 host (RFC 3261 §25.1).
pub fn host_port(addr: SocketAddr) -> String {
    let mut text = String::with_capacity(24);
    push_host_port(&mut text, addr);
    text
}

/// Appends `host:port` to `out`, the IPv6 host in brackets.
fn push_host_port(out: &mut String, addr: SocketAddr) {
    let ipv6 = addr.is_ipv6();
    if ipv6 {
        out.push('[');
    }
    IpText(addr.ip()).push_to(out);
    if ipv6 {
        out.push(']');
    }
    out.push(':');
    push_decimal(out, u64::from(addr.port()));
}

/// Whether a request's top Via is one the engine wrote: its sent-by is the engine's address.
pub fn is_own_via(via: &Via, local: SocketAddr) -> bool {
    let host_matches = match &via.host {
        Host::Ipv4(ip) => IpAddr::V4(*ip) == local.ip(),
        Host::Ipv6(ip) => IpAddr::V6(*ip) == local.ip(),
        Host::Domain(_) => false,
    };
    host_matches && via.port.unwrap_or(SIP_PORT) == local.port()
}

/// The Max-Forwards value for the request sent on the other leg.
pub fn decremented_max_forwards(request: &Request) -> u32 {
    match request.max_forwards() {
        Ok(Some(value)) => value.saturating_sub(1).min(70),
        _ => 69,
    }
}
