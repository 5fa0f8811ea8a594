//! IP prefixes for the `sip.trusted` list: parsing `address/length` and matching a
//! source address against it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network given as `address/length`, or a single address (full length), as used
/// in `sip.trusted`. The address must have no bits set beyond the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPrefix {
    network: IpAddr,
    length: u8,
}

/// Reason a `sip.trusted` entry is not a valid [`IpPrefix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("{0:?} is not an IP address or CIDR prefix such as 192.0.2.0/24")]
    Syntax(String),
    #[error("prefix length {length} is longer than the {max} bits of the address")]
    Length { length: u8, max: u8 },
    #[error("{entry:?} has host bits set, the network is {network}/{length}")]
    HostBits {
        entry: String,
        network: IpAddr,
        length: u8,
    },
}

impl IpPrefix {
    /// Whether `ip` is inside this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
    /// matches the IPv4 prefix that contains `a.b.c.d`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => mask_v4(ip, self.length) == u32::from(network),
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                mask_v6(ip, self.length) == u128::from(network)
            }
            _ => false,
        }
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// Prefix length in bits.
    pub fn length(&self) -> u8 {
        self.length
    }
}

impl FromStr for IpPrefix {
    type Err = PrefixError;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let syntax = || PrefixError::Syntax(entry.to_owned());
        let (address, length) = match entry.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (entry, None),
        };
        let address: IpAddr = address.parse().map_err(|_| syntax())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let length = match length {
            None => max,
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse::<u8>().map_err(|_| syntax())?
            }
            Some(_) => return Err(syntax()),
        };
        if length > max {
            return Err(PrefixError::Length { length, max });
        }

        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(mask_v4(v4, length))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(mask_v6(v6, length))),
        };
        if network != address {
            return Err(PrefixError::HostBits {
                entry: entry.to_owned(),
                network,
                length,
            });
        }
        Ok(IpPrefix { network, length })
    }
}

fn mask_v4(ip: Ipv4Addr, length: u8) -> u32 {
    let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
    u32::from(ip) & mask
}

fn mask_v6(ip: Ipv6Addr, length: u8) -> u128 {
    let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
    u128::from(ip) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parses_and_matches() {
        let prefix: IpPrefix = "10.1.0.0/16".parse().unwrap();
        assert!(prefix.contains("10.1.200.3".parse().unwrap()));
        assert!(!prefix.contains("10.2.0.1".parse().unwrap()));
        assert!(prefix.contains("::ffff:10.1.0.9".parse().unwrap()));

        let host: IpPrefix = "192.0.2.7".parse().unwrap();
        assert_eq!(host.length(), 32);
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));

        let all: IpPrefix = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert!(!all.contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn prefix_rejects_bad_entries() {
        assert!(matches!(
            "10.0.0.300/8".parse::<IpPrefix>(),
            Err(PrefixError::Syntax(_))
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<IpPrefix>(),
            Err(PrefixError::Length {
                length: 33,
                max: 32
            })
        ));
        assert!(matches!(
            "10.0.0.1/8".parse::<IpPrefix>(),
            Err(PrefixError::HostBits { length: 8, .. })
        ));
        assert!(matches!(
            "10.0.0.0/".parse::<IpPrefix>(),
            Err(PrefixError::Syntax(_))
        ));
        assert!(matches!(
            "10.0.0.0/+8".parse::<IpPrefix>(),
            Err(PrefixError::Syntax(_))
        ));
    }
}
