//! Identity and retargeting history: P-Asserted-Identity (RFC 3325 §9.1) and History-Info
//! (RFC 7044 §4).

use std::fmt;
use std::str::FromStr;

use super::{HeaderError, Reason};
use crate::sip::uri::{NameAddr, Scheme, split_list};

/// P-Asserted-Identity value (RFC 3325 §9.1): one or two identities, at most one `sip:` or
/// `sips:` and one `tel:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PAssertedIdentity(pub Vec<NameAddr>);

impl PAssertedIdentity {
    pub const NAME: &'static str = "P-Asserted-Identity";

    /// Returns the first `sip:` or `sips:` identity.
    pub fn sip(&self) -> Option<&NameAddr> {
        self.0
            .iter()
            .find(|identity| matches!(identity.uri.scheme, Scheme::Sip | Scheme::Sips))
    }

    /// Returns the first `tel:` identity.
    pub fn tel(&self) -> Option<&NameAddr> {
        self.0
            .iter()
            .find(|identity| identity.uri.scheme == Scheme::Tel)
    }
}

impl FromStr for PAssertedIdentity {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let identities = split_list(value)
            .map(str::parse)
            .collect::<Result<Vec<NameAddr>, _>>()?;
        if identities.is_empty() {
            return Err(HeaderError::Empty { header: Self::NAME });
        }
        Ok(Self(identities))
    }
}

impl fmt::Display for PAssertedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, &self.0)
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

/// History-Info index (RFC 7044 §4.1 `hi-index`): dot-separated positions such as `1.1.2`,
/// where each level is a retargeting of the entry one level up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HistoryIndex(pub Vec<u32>);

impl HistoryIndex {
    /// Returns the index of the entry this one was retargeted from, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        match self.0.len() {
            0 | 1 => None,
            levels => Some(Self(self.0[..levels - 1].to_vec())),
        }
    }
}

impl FromStr for HistoryIndex {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let levels = value
            .trim()
            .split('.')
            .map(|level| {
                level
                    .parse::<u32>()
                    .ok()
                    .filter(|_| !level.starts_with('+'))
            })
            .collect::<Option<Vec<u32>>>();
        match levels {
            Some(levels) => Ok(Self(levels)),
            None => Err(HeaderError::InvalidIndex {
                value: value.to_owned(),
            }),
        }
    }
}

impl fmt::Display for HistoryIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, level) in self.0.iter().enumerate() {
            if position > 0 {
                f.write_str(".")?;
            }
            level.fmt(f)?;
        }
        Ok(())
    }
}

/// Kind of retargeting that led to an entry (RFC 7044 §4.2), with the index of the entry
/// it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryTarget {
    /// `rc`: the Request-URI changed but still reaches the same user.
    Rc(HistoryIndex),
    /// `mp`: the target user changed (mapped, for example by call forwarding).
    Mp(HistoryIndex),
    /// `np`: neither changed (no mapping).
    Np(HistoryIndex),
}

/// One History-Info entry: `<uri?Reason=...>;index=1.1;mp=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryInfoEntry {
    /// Target and all parameters as received; `index`, `target` and
    /// [`HistoryInfoEntry::reasons`] are read from it.
    pub address: NameAddr,
    pub index: HistoryIndex,
    pub target: Option<HistoryTarget>,
}

impl HistoryInfoEntry {
    /// Returns every Reason embedded as a URI header of the target (RFC 7044 §4.1), for
    /// example the 302 that caused the next retargeting.
    ///
    /// # Errors
    ///
    /// A bad percent-encoding or an invalid Reason value.
    pub fn reasons(&self) -> Result<Vec<Reason>, HeaderError> {
        let mut reasons = Vec::new();
        for header in &self.address.uri.headers {
            if header.name.eq_ignore_ascii_case(Reason::NAME) {
                let decoded = crate::sip::uri::percent_decode(&header.value)?;
                reasons.extend(Reason::parse_list(&decoded)?);
            }
        }
        Ok(reasons)
    }
}

impl FromStr for HistoryInfoEntry {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let address: NameAddr = value.parse()?;
        let index = address
            .params
            .value("index")
            .ok_or(HeaderError::MissingParam {
                header: HistoryInfo::NAME,
                param: "index",
            })?
            .parse()?;

        let mut target = None;
        for (name, build) in [
            ("rc", HistoryTarget::Rc as fn(HistoryIndex) -> HistoryTarget),
            ("mp", HistoryTarget::Mp),
            ("np", HistoryTarget::Np),
        ] {
            if let Some(param) = address.params.get(name) {
                let parent = param.value.as_deref().ok_or(HeaderError::InvalidParam {
                    header: HistoryInfo::NAME,
                    param: name,
                    value: String::new(),
                })?;
                target = Some(build(parent.parse()?));
            }
        }
        Ok(Self {
            address,
            index,
            target,
        })
    }
}

impl fmt::Display for HistoryInfoEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.address.fmt(f)
    }
}

/// History-Info value (RFC 7044 §4): the entries of one or more header lines in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryInfo(pub Vec<HistoryInfoEntry>);

impl HistoryInfo {
    pub const NAME: &'static str = "History-Info";
}

impl FromStr for HistoryInfo {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let entries = split_list(value)
            .map(str::parse)
            .collect::<Result<Vec<HistoryInfoEntry>, _>>()?;
        if entries.is_empty() {
            return Err(HeaderError::Empty { header: Self::NAME });
        }
        Ok(Self(entries))
    }
}

impl fmt::Display for HistoryInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_list(f, &self.0)
    }
}
