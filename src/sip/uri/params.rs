//! Parameters of URIs and header values (RFC 3261 §19.1.1 `uri-parameters`, §25.1
//! `generic-param`), kept in order with quoted values exactly as received.

use std::borrow::Cow;
use std::fmt;

use super::UriError;

/// One `;name` or `;name=value` parameter. The value is stored as received, so a quoted
/// value keeps its quotes and escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

impl Param {
    /// Creates a parameter; a quoted `value` must include its quotes.
    pub fn new(name: impl Into<String>, value: Option<String>) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }

    /// Returns the value with surrounding quotes removed and `\` escapes resolved
    /// (RFC 3261 §25.1 `quoted-string`), or the value itself when it is not quoted.
    pub fn unquoted_value(&self) -> Option<Cow<'_, str>> {
        self.value.as_deref().map(unquote)
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, ";{}={}", self.name, value),
            None => write!(f, ";{}", self.name),
        }
    }
}

/// An ordered parameter list with case-insensitive name lookup. Displays as
/// `;name=value;flag`, or as nothing when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<Param>);

impl Params {
    /// Creates an empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Returns the first parameter named `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.0
            .iter()
            .find(|param| param.name.eq_ignore_ascii_case(name))
    }

    /// Returns the raw value of `name`. `None` means the parameter is absent or is a flag
    /// without value; use [`Params::contains`] to tell the two apart.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name)?.value.as_deref()
    }

    /// Returns whether a parameter named `name` is present, with or without value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value`, replacing the first parameter of that name in place or
    /// appending a new one.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(param) => param.value = value,
            None => self.0.push(Param::new(name, value)),
        }
    }

    /// Appends a parameter without checking for duplicates.
    pub fn push(&mut self, param: Param) {
        self.0.push(param);
    }

    /// Removes every parameter named `name` and returns the first one removed.
    pub fn remove(&mut self, name: &str) -> Option<Param> {
        let position = self
            .0
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))?;
        let removed = self.0.remove(position);
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
        Some(removed)
    }

    /// Returns the parameters in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Param> {
        self.0.iter()
    }

    /// Returns the number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Returns whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = &'a Param;
    type IntoIter = std::slice::Iter<'a, Param>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|param| param.fmt(f))
    }
}

impl std::str::FromStr for Params {
    type Err = UriError;

    /// Parses `;name=value;flag...` with optional whitespace around the separators.
    fn from_str(input: &str) -> Result<Self, UriError> {
        let (params, rest) = parse_params(input, b"")?;
        match rest.is_empty() {
            true => Ok(params),
            false => Err(UriError::TrailingCharacters {
                rest: rest.to_owned(),
            }),
        }
    }
}

/// Parses parameters from the start of `input` up to the first byte in `stop` outside a
/// quoted string, or to the end. Returns the parameters and the rest starting at the stop
/// byte. Whitespace around `;` and `=` is skipped (RFC 3261 §25.1 `SEMI`, `EQUAL`), and
/// empty parameters such as a trailing `;` are ignored.
pub(crate) fn parse_params<'a>(input: &'a str, stop: &[u8]) -> Result<(Params, &'a str), UriError> {
    let mut params = Params::new();
    let mut rest = input.trim_start();

    while let Some(after_semicolon) = rest.strip_prefix(';') {
        let (param, after_param) = parse_param(after_semicolon.trim_start(), stop)?;
        params.0.extend(param);
        rest = after_param.trim_start();
    }

    let at_stop = rest.is_empty() || stop.contains(&rest.as_bytes()[0]);
    if !at_stop {
        return Err(UriError::TrailingCharacters {
            rest: rest.to_owned(),
        });
    }
    Ok((params, rest))
}

/// Parses one `name [= value]` and returns it with the rest starting after it.
fn parse_param<'a>(input: &'a str, stop: &[u8]) -> Result<(Option<Param>, &'a str), UriError> {
    let (param, rest) = split_param(input, stop)?;
    let param = param.map(|(name, value)| Param::new(name, value.map(str::to_owned)));
    Ok((param, rest))
}

/// A parameter's name and its value as received, quotes kept.
pub(super) type RawParam<'a> = (&'a str, Option<&'a str>);

/// Splits one `name [= value]` off the start of `input` and returns it with the rest
/// starting after it.
pub(super) fn split_param<'a>(
    input: &'a str,
    stop: &[u8],
) -> Result<(Option<RawParam<'a>>, &'a str), UriError> {
    let ends_name = |b: u8| b == b';' || b == b'=' || b.is_ascii_whitespace() || stop.contains(&b);
    let name_len = input.bytes().position(ends_name).unwrap_or(input.len());
    let (name, rest) = input.split_at(name_len);
    let rest = rest.trim_start();

    let Some(value_start) = rest.strip_prefix('=') else {
        return match name.is_empty() {
            true => Ok((None, rest)),
            false => Ok((Some((name, None)), rest)),
        };
    };
    if name.is_empty() {
        return Err(UriError::InvalidParam {
            param: input.to_owned(),
        });
    }

    let value_start = value_start.trim_start();
    let value_len = match value_start.as_bytes().first() {
        Some(b'"') => quoted_len(value_start).ok_or_else(|| UriError::UnterminatedQuote {
            input: value_start.to_owned(),
        })?,
        _ => value_start
            .bytes()
            .position(|b| b == b';' || stop.contains(&b))
            .unwrap_or(value_start.len()),
    };
    let (value, rest) = value_start.split_at(value_len);
    Ok((Some((name, Some(value.trim_end()))), rest))
}

/// Looks up the first parameter named `name` (case-insensitive) in `;name=value;flag...`
/// text without building the list: `Some(Some(value))` for a value, `Some(None)` for a flag,
/// `None` when absent. The whole text is checked as [`Params`]'s `FromStr` does.
pub(crate) fn find_param<'a>(
    input: &'a str,
    name: &str,
) -> Result<Option<Option<&'a str>>, UriError> {
    let mut found = None;
    let mut rest = input.trim_start();
    while let Some(after_semicolon) = rest.strip_prefix(';') {
        let (param, after_param) = split_param(after_semicolon.trim_start(), b"")?;
        if let Some((param_name, value)) = param
            && found.is_none()
            && param_name.eq_ignore_ascii_case(name)
        {
            found = Some(value);
        }
        rest = after_param.trim_start();
    }
    if !rest.is_empty() {
        return Err(UriError::TrailingCharacters {
            rest: rest.to_owned(),
        });
    }
    Ok(found)
}

/// Returns the length of the quoted string at the start of `input`, both quotes included,
/// or `None` when it is not terminated.
pub(crate) fn quoted_len(input: &str) -> Option<usize> {
    let bytes = input.as_bytes();
    let mut index = 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'"' => return Some(index + 1),
            _ => index += 1,
        }
    }
    None
}

/// Removes the quotes and `\` escapes of a quoted string; other text is returned as is.
pub(crate) fn unquote(value: &str) -> Cow<'_, str> {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Cow::Borrowed(value);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }

    let mut unescaped = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => unescaped.extend(chars.next()),
            _ => unescaped.push(c),
        }
    }
    Cow::Owned(unescaped)
}

/// Quotes `text` as a `quoted-string`, escaping `"` and `\`.
pub(crate) fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_order_and_quotes() {
        let params: Params = r#";x-route="a;b";lr;gr=urn:uuid:c865-1234;Transport=TCP"#
            .parse()
            .unwrap();
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["x-route", "lr", "gr", "Transport"]);
        assert_eq!(params.value("x-route"), Some(r#""a;b""#));
        assert_eq!(params.value("gr"), Some("urn:uuid:c865-1234"));
        assert_eq!(params.value("transport"), Some("TCP"));
        assert!(params.contains("LR"));
        assert_eq!(params.value("lr"), None);
    }

    #[test]
    fn params_display_round_trip() {
        let text = r#";x-route="a;b";lr;gr=urn:uuid:c865-1234"#;
        let params: Params = text.parse().unwrap();
        assert_eq!(params.to_string(), text);
    }

    #[test]
    fn params_whitespace_around_separators() {
        let params: Params = " ; cause = 200 ; text = \"Call completed\""
            .parse()
            .unwrap();
        assert_eq!(params.value("cause"), Some("200"));
        assert_eq!(params.value("text"), Some("\"Call completed\""));
    }

    #[test]
    fn unquoted_value_resolves_escapes() {
        let params: Params = r#";text="say \"hi\" \\ bye""#.parse().unwrap();
        let text = params.get("text").unwrap().unquoted_value().unwrap();
        assert_eq!(text, r#"say "hi" \ bye"#);
    }

    #[test]
    fn trailing_semicolon_is_ignored() {
        let params: Params = ";tag=abc;".parse().unwrap();
        assert_eq!(params.len(), 1);
    }

    #[test]
    fn unterminated_quote_is_rejected() {
        let error = r#";x="abc"#.parse::<Params>().unwrap_err();
        assert_eq!(
            error,
            UriError::UnterminatedQuote {
                input: "\"abc".to_owned()
            }
        );
    }

    #[test]
    fn text_after_quoted_value_is_rejected() {
        let error = r#";x="abc"def"#.parse::<Params>().unwrap_err();
        assert_eq!(
            error,
            UriError::TrailingCharacters {
                rest: "def".to_owned()
            }
        );
    }

    #[test]
    fn value_without_name_is_rejected() {
        assert!(matches!(
            ";=1".parse::<Params>(),
            Err(UriError::InvalidParam { .. })
        ));
    }

    #[test]
    fn set_and_remove() {
        let mut params: Params = ";rport;branch=z9hG4bK1".parse().unwrap();
        params.set("rport", Some("5062".to_owned()));
        params.set("received", Some("192.0.2.7".to_owned()));
        assert_eq!(
            params.to_string(),
            ";rport=5062;branch=z9hG4bK1;received=192.0.2.7"
        );
        assert_eq!(
            params.remove("BRANCH").unwrap().value.as_deref(),
            Some("z9hG4bK1")
        );
        assert_eq!(params.to_string(), ";rport=5062;received=192.0.2.7");
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(unquote(&quote(r#"a "b" \c"#)), r#"a "b" \c"#);
    }
}
