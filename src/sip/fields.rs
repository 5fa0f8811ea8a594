//! The header fields of one message, in order. A received message keeps its header
//! section as one shared string, and each field's name and value are ranges into it, so
//! parsing copies the section once instead of allocating a name and a value per field.
//! Fields that are added or changed own their text, and names written by the engine are
//! usually static.

use std::borrow::Cow;
use std::sync::Arc;

/// Header fields in message order, opaque outside `sip`. Cloning shares the received text.
#[derive(Clone, Default)]
pub struct HeaderFields {
    received: Arc<str>,
    fields: Vec<Field>,
}

#[derive(Clone)]
struct Field {
    name: Text,
    value: Text,
}

/// The storage of a name or a value.
#[derive(Clone)]
enum Text {
    /// A range of the received section.
    Received {
        start: u32,
        end: u32,
    },
    Static(&'static str),
    Owned(Box<str>),
}

/// A header line had no colon or its name was not a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadLine;

impl HeaderFields {
    /// Splits a normalised header section (full names, no folded lines, CRLF line ends) at
    /// each line's first colon. Names must be tokens, and values are trimmed of white space.
    pub(crate) fn parse(section: &str) -> Result<Self, BadLine> {
        let bytes = section.as_bytes();
        // One slot per line: a call keeps its caller's INVITE, and spare room would stay
        // allocated with it.
        let lines = memchr::memchr_iter(b'\n', bytes).count() + 1;
        let mut fields = Vec::with_capacity(lines);
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]) {
            let start = line_start;
            line_start = (newline + 1).min(bytes.len());
            let line = section[start..newline].trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let colon = memchr::memchr(b':', line.as_bytes()).ok_or(BadLine)?;
            let name = line[..colon].trim_end();
            if name.is_empty() || !name.bytes().all(super::normalize::is_token_byte) {
                return Err(BadLine);
            }
            let value = line[colon + 1..].trim();
            fields.push(Field {
                name: received(section, name),
                value: received(section, value),
            });
        }
        Ok(HeaderFields {
            received: Arc::from(section),
            fields,
        })
    }

    /// Creates an empty list that shares `other`'s received text, so that values copied
    /// from `other` with [`HeaderFields::push_copied`] need no allocation.
    pub(crate) fn sharing(other: &HeaderFields) -> Self {
        HeaderFields {
            received: Arc::clone(&other.received),
            fields: Vec::new(),
        }
    }

    /// Appends a field named `name` with the value of `other`'s field at `index`. The value
    /// is kept as a range when both lists share the received text, and copied otherwise.
    pub(crate) fn push_copied(&mut self, name: &'static str, other: &HeaderFields, index: usize) {
        let Some(field) = other.fields.get(index) else {
            return;
        };
        let value = match &field.value {
            Text::Received { .. } if Arc::ptr_eq(&self.received, &other.received) => {
                field.value.clone()
            }
            value => Text::Owned(other.text(value).into()),
        };
        self.fields.push(Field {
            name: Text::Static(name),
            value,
        });
    }

    /// Returns every field as a name and value pair, in message order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|field| (self.text(&field.name), self.text(&field.value)))
    }

    /// Returns the index of the first field named `name` (case-insensitive).
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|field| self.text(&field.name).eq_ignore_ascii_case(name))
    }

    pub(crate) fn push(&mut self, name: Cow<'static, str>, value: String) {
        self.fields.push(Field::new(name, value));
    }

    pub(crate) fn insert(&mut self, index: usize, name: Cow<'static, str>, value: String) {
        let index = index.min(self.fields.len());
        self.fields.insert(index, Field::new(name, value));
    }

    /// Replaces the value of the field at `index`, keeping its name.
    pub(crate) fn replace(&mut self, index: usize, value: String) {
        if let Some(field) = self.fields.get_mut(index) {
            field.value = Text::Owned(value.into_boxed_str());
        }
    }

    /// Gives the first field named `name` the value `value` and removes the later ones.
    /// Appends the field when there is none.
    pub(crate) fn set(&mut self, name: Cow<'static, str>, value: String) {
        let Some(first) = self.position(&name) else {
            return self.push(name, value);
        };
        self.replace(first, value);
        let received = &self.received;
        let mut index = 0;
        self.fields.retain(|field| {
            let keep =
                index <= first || !resolve(received, &field.name).eq_ignore_ascii_case(&name);
            index += 1;
            keep
        });
    }

    /// Removes every field named `name` (case-insensitive).
    pub(crate) fn remove(&mut self, name: &str) {
        let received = &self.received;
        self.fields
            .retain(|field| !resolve(received, &field.name).eq_ignore_ascii_case(name));
    }

    fn text<'a>(&'a self, text: &'a Text) -> &'a str {
        resolve(&self.received, text)
    }
}

impl Field {
    fn new(name: Cow<'static, str>, value: String) -> Self {
        let name = match name {
            Cow::Borrowed(name) => Text::Static(name),
            Cow::Owned(name) => Text::Owned(name.into_boxed_str()),
        };
        Field {
            name,
            value: Text::Owned(value.into_boxed_str()),
        }
    }
}

impl std::fmt::Debug for HeaderFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Converts `part`, a slice of `section`, into a range of the received text.
fn received(section: &str, part: &str) -> Text {
    let start = part.as_ptr() as usize - section.as_ptr() as usize;
    // Offsets fit in u32 because framing caps header sections and messages far below
    // 4 GiB.
    Text::Received {
        start: start as u32,
        end: (start + part.len()) as u32,
    }
}

fn resolve<'a>(received: &'a str, text: &'a Text) -> &'a str {
    match text {
        Text::Received { start, end } => &received[*start as usize..*end as usize],
        Text::Static(text) => text,
        Text::Owned(text) => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(fields: &HeaderFields) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    #[test]
    fn parse_keeps_names_and_trims_values() {
        let fields = HeaderFields::parse(
            "Via:  SIP/2.0/UDP a;branch=z9hG4bK1 \r\nX-Empty:\r\nTo :<sip:b@c>\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            pairs(&fields),
            [
                ("Via".into(), "SIP/2.0/UDP a;branch=z9hG4bK1".into()),
                ("X-Empty".into(), String::new()),
                ("To".into(), "<sip:b@c>".into()),
            ]
        );
    }

    #[test]
    fn copied_values_share_received_text() {
        let request = HeaderFields::parse("Via: SIP/2.0/UDP a\r\nCall-ID: x@y\r\n").unwrap();
        let mut response = HeaderFields::sharing(&request);
        response.push_copied("Call-ID", &request, 1);
        assert!(matches!(response.fields[0].value, Text::Received { .. }));
        assert_eq!(pairs(&response), [("Call-ID".into(), "x@y".into())]);

        let mut unshared = HeaderFields::default();
        unshared.push_copied("Via", &request, 0);
        assert!(matches!(unshared.fields[0].value, Text::Owned(_)));
        assert_eq!(pairs(&unshared), [("Via".into(), "SIP/2.0/UDP a".into())]);
    }

    #[test]
    fn parse_rejects_lines_without_token_name() {
        assert_eq!(
            HeaderFields::parse("Via SIP/2.0/UDP a\r\n").unwrap_err(),
            BadLine
        );
        assert_eq!(HeaderFields::parse(": value\r\n").unwrap_err(), BadLine);
        assert_eq!(
            HeaderFields::parse("Bad Name: value\r\n").unwrap_err(),
            BadLine
        );
    }

    #[test]
    fn changes_mix_with_received_fields() {
        let mut fields = HeaderFields::parse("From: a\r\nVia: 1\r\nVia: 2\r\n").unwrap();
        fields.insert(0, "Via".into(), "0".into());
        fields.replace(1, "b".into());
        fields.push(Cow::Owned("X-Copied".to_owned()), "c".into());
        assert_eq!(fields.position("via"), Some(0));
        fields.remove("VIA");
        assert_eq!(
            pairs(&fields),
            [("From".into(), "b".into()), ("X-Copied".into(), "c".into())]
        );

        fields.push("Via".into(), "1".into());
        fields.push("Via".into(), "2".into());
        fields.set("via".into(), "3".into());
        fields.set("Max-Forwards".into(), "70".into());
        assert_eq!(
            pairs(&fields)[2..],
            [
                ("Via".into(), "3".into()),
                ("Max-Forwards".into(), "70".into())
            ]
        );
        let mut shared = HeaderFields::sharing(&fields);
        shared.push_copied("From", &fields, 0);
        shared.push_copied("Via", &fields, 2);
        shared.push_copied("Unknown", &fields, 99);
        assert_eq!(
            pairs(&shared),
            [("From".into(), "b".into()), ("Via".into(), "3".into())]
        );

        let copy = fields.clone();
        assert_eq!(pairs(&copy), pairs(&fields));
    }
}
