//! Syntax check of the agent target URI. The engine's SIP layer parses it for real; this
//! check only makes sure a typo is caught when the configuration is loaded.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Checks the agent target: `sip:` URI (RFC 3261 §19.1.1) with a host and optional user,
/// port and parameters, over a transport the engine has (UDP or TCP).
pub(super) fn check_sip_uri(uri: &str) -> Result<(), String> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("missing the sip: scheme".to_owned());
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sip" => {}
        "sips" => {
            return Err("sips: needs TLS, which the engine does not have, use sip:".to_owned());
        }
        _ => return Err(format!("the scheme must be sip:, found {scheme}:")),
    }
    if rest.contains('?') {
        return Err("URI headers (?...) are not allowed in a request target".to_owned());
    }

    let (user, host_and_params) = match rest.split_once('@') {
        Some((user, after)) => (Some(user), after),
        None => (None, rest),
    };
    if let Some(user) = user {
        if user.is_empty() {
            return Err("the user part before @ is empty".to_owned());
        }
        if user.contains(':') {
            return Err("a password in the URI is not allowed".to_owned());
        }
    }

    let (host_port, params) = match host_and_params.split_once(';') {
        Some((host_port, params)) => (host_port, Some(params)),
        None => (host_and_params, None),
    };
    check_host_port(host_port)?;
    if let Some(params) = params {
        check_uri_params(params)?;
    }
    Ok(())
}

fn check_host_port(host_port: &str) -> Result<(), String> {
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((v6, after)) = bracketed.split_once(']') else {
            return Err("missing ] after the IPv6 address".to_owned());
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(format!("[{v6}] is not an IPv6 address"));
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected {after:?} after the host")),
        };
        (None, port)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(host_port), None),
        }
    };

    if let Some(host) = host {
        if host.is_empty() {
            return Err("the host is missing".to_owned());
        }
        if host.parse::<Ipv4Addr>().is_err() && !is_hostname(host) {
            return Err(format!("{host:?} is not an IPv4 address or host name"));
        }
    }
    if let Some(port) = port {
        let valid = port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|port| port != 0);
        if !valid {
            return Err(format!("port {port:?} must be between 1 and 65535"));
        }
    }
    Ok(())
}

/// A host name as RFC 3261 §25.1 `hostname`: dot-separated labels of letters, digits and
/// inner hyphens, the last one starting with a letter.
fn is_hostname(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let top_ok = labels
        .last()
        .and_then(|top| top.bytes().next())
        .is_some_and(|first| first.is_ascii_alphabetic());
    labels.iter().all(label_ok) && top_ok
}

fn check_uri_params(params: &str) -> Result<(), String> {
    for param in params.split(';') {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (param, None),
        };
        if name.is_empty() {
            return Err("empty URI parameter".to_owned());
        }
        if !name.eq_ignore_ascii_case("transport") {
            continue;
        }
        match value.map(str::to_ascii_lowercase).as_deref() {
            Some("udp" | "tcp") => {}
            Some(other) => {
                return Err(format!(
                    "transport={other} is not supported, use udp or tcp"
                ));
            }
            None => return Err("transport parameter without a value".to_owned()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_checks() {
        for good in [
            "sip:agent@127.0.0.1:5070",
            "sip:127.0.0.1",
            "SIP:agent@[::1]:5070;transport=TCP",
            "sip:agent@pbx.example.com;lr",
        ] {
            assert_eq!(check_sip_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "agent@127.0.0.1",
            "http://127.0.0.1",
            "sip:agent@",
            "sip:agent@127.0.0.1:0",
            "sip:agent@127.0.0.1:99999",
            "sip:agent@127.0.0.300",
            "sip:agent@[::1",
            "sip:agent@-bad.example.com",
            "sip:agent@127.0.0.1;transport=tls",
            "sips:agent@127.0.0.1",
            "sip:agent:secret@127.0.0.1",
            "sip:agent@127.0.0.1?subject=x",
        ] {
            assert!(check_sip_uri(bad).is_err(), "{bad}");
        }
    }
}
