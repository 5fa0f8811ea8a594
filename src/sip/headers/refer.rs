//! Headers of call transfer: Refer-To (RFC 3515 §2.1), Referred-By (RFC 3892 §3) and
//! Replaces (RFC 3891 §6.1).

use std::fmt;
use std::str::FromStr;

use super::HeaderError;
use crate::sip::uri::{NameAddr, Params, Uri};

/// Replaces value (RFC 3891 §6.1): the dialog an INVITE replaces.
///
/// For the UA that receives the INVITE, `to_tag` is its local tag and `from_tag` its remote
/// tag in the dialog to replace (RFC 3891 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// Replace only a dialog that is still early (RFC 3891 §3).
    pub early_only: bool,
}

impl Replaces {
    pub const NAME: &'static str = "Replaces";
}

impl FromStr for Replaces {
    type Err = HeaderError;

    /// Parses `call-id;to-tag=..;from-tag=..[;early-only]`. Both tags are required.
    fn from_str(value: &str) -> Result<Self, HeaderError> {
        let value = value.trim();
        let params_start = value.find(';').unwrap_or(value.len());
        let call_id = value[..params_start].trim();
        if call_id.is_empty() {
            return Err(HeaderError::Empty { header: Self::NAME });
        }

        let params: Params = value[params_start..].parse()?;
        let tag = |param: &'static str| {
            params
                .value(param)
                .map(str::to_owned)
                .ok_or(HeaderError::MissingParam {
                    header: Self::NAME,
                    param,
                })
        };
        Ok(Self {
            call_id: call_id.to_owned(),
            to_tag: tag("to-tag")?,
            from_tag: tag("from-tag")?,
            early_only: params.contains("early-only"),
        })
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

/// Refer-To value (RFC 3515 §2.1): the target of a REFER, possibly carrying a Replaces
/// header in its URI for attended transfer (RFC 3891 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTo {
    pub target: NameAddr,
}

impl ReferTo {
    pub const NAME: &'static str = "Refer-To";

    /// Creates a Refer-To for `uri`, embedding `replaces` percent-encoded when given.
    pub fn new(mut uri: Uri, replaces: Option<&Replaces>) -> Self {
        if let Some(replaces) = replaces {
            uri.push_header(Replaces::NAME, &replaces.to_string());
        }
        Self {
            target: NameAddr::new(uri),
        }
    }

    /// Returns the Replaces embedded in the target URI, percent-decoded and parsed.
    ///
    /// # Errors
    ///
    /// A bad percent-encoding or an invalid Replaces value.
    pub fn replaces(&self) -> Result<Option<Replaces>, HeaderError> {
        let Some(value) = self.target.uri.header(Replaces::NAME)? else {
            return Ok(None);
        };
        value.parse().map(Some)
    }
}

impl FromStr for ReferTo {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        Ok(Self {
            target: value.parse()?,
        })
    }
}

impl fmt::Display for ReferTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.target.fmt(f)
    }
}

/// Referred-By value (RFC 3892 §3): the party that sent the REFER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferredBy {
    pub referrer: NameAddr,
}

impl ReferredBy {
    pub const NAME: &'static str = "Referred-By";

    /// Returns the `cid` parameter naming the body part with the referrer's token.
    pub fn cid(&self) -> Option<&str> {
        self.referrer.params.value("cid")
    }
}

impl FromStr for ReferredBy {
    type Err = HeaderError;

    fn from_str(value: &str) -> Result<Self, HeaderError> {
        Ok(Self {
            referrer: value.parse()?,
        })
    }
}

impl fmt::Display for ReferredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.referrer.fmt(f)
    }
}
