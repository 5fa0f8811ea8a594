//! The list of switch addresses allowed to send requests.

use std::net::IpAddr;

/// An entry of the trusted list that is neither an address nor `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trusted address {0:?}: expected an IP address or address/prefix")]
pub struct TrustListError(pub String);

/// Addresses and prefixes (CIDR) whose requests are accepted.
#[derive(Debug, Clone, Default)]
pub struct TrustList {
    networks: Vec<(IpAddr, u8)>,
}

impl TrustList {
    /// Parses entries such as `127.0.0.1`, `10.1.0.0/16` or `::1/128`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustList, TrustListError> {
        let mut networks = Vec::with_capacity(entries.len());
        for entry in entries {
            let entry = entry.as_ref().trim();
            let invalid = || TrustListError(entry.to_owned());
            let (addr, prefix) = match entry.split_once('/') {
                Some((addr, prefix)) => {
                    let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
                    let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
                    (addr, prefix)
                }
                None => {
                    let addr: IpAddr = entry.parse().map_err(|_| invalid())?;
                    (addr, max_prefix(addr))
                }
            };
            if prefix > max_prefix(addr) {
                return Err(invalid());
            }
            networks.push((addr, prefix));
        }
        Ok(TrustList { networks })
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.networks
            .iter()
            .any(|&(network, prefix)| in_network(addr, canonical(network), prefix))
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4 so that one entry matches both forms.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

fn in_network(addr: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (addr, network) {
        (IpAddr::V4(addr), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(addr) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(addr), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(addr) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn single_address_matches_only_itself() {
        let list = TrustList::parse(&["127.0.0.1"]).unwrap();
        assert!(list.contains(ip("127.0.0.1")));
        assert!(!list.contains(ip("127.0.0.2")));
    }

    #[test]
    fn prefix_matches_range() {
        let list = TrustList::parse(&["10.1.0.0/16", "::1/128"]).unwrap();
        assert!(list.contains(ip("10.1.200.3")));
        assert!(!list.contains(ip("10.2.0.1")));
        assert!(list.contains(ip("::1")));
    }

    #[test]
    fn zero_prefix_matches_all_of_family() {
        let list = TrustList::parse(&["0.0.0.0/0"]).unwrap();
        assert!(list.contains(ip("192.0.2.1")));
        assert!(!list.contains(ip("2001:db8::1")));
    }

    #[test]
    fn mapped_ipv6_matches_ipv4_entry() {
        let list = TrustList::parse(&["127.0.0.0/8"]).unwrap();
        assert!(list.contains(ip("::ffff:127.0.0.9")));
    }

    #[test]
    fn invalid_entries_rejected() {
        assert!(TrustList::parse(&["127.0.0.1/33"]).is_err());
        assert!(TrustList::parse(&["switch.example"]).is_err());
        assert!(TrustList::parse(&["10.0.0.0/x"]).is_err());
    }
}
