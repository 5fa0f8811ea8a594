//! Splitting of comma-separated header values (RFC 3261 §7.3.1) such as Via, Route,
//! Record-Route, Contact, History-Info and P-Asserted-Identity.

/// Splits a header value at commas outside quoted strings and angle brackets, so that
/// `"Doe, John" <sip:a@b>, <sip:c@d;x="1,2">` yields two items. Items are trimmed and empty
/// items are skipped. Does not allocate.
pub fn split_list(value: &str) -> ListItems<'_> {
    ListItems { rest: value }
}

/// Iterator returned by [`split_list`].
#[derive(Debug, Clone)]
pub struct ListItems<'a> {
    rest: &'a str,
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let end = item_end(self.rest);
            let item = self.rest[..end].trim();
            self.rest = self.rest.get(end + 1..).unwrap_or("");
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// Returns the offset of the first comma outside quotes and angle brackets, or the length.
fn item_end(value: &str) -> usize {
    let bytes = value.as_bytes();
    let mut in_quotes = false;
    let mut in_brackets = false;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if in_quotes => index += 1,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_brackets = true,
            b'>' if !in_quotes => in_brackets = false,
            b',' if !in_quotes && !in_brackets => return index,
            _ => {}
        }
        index += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_commas() {
        let value = r#""Doe, John" <sip:j@a.example;x="1,2">;tag=1 , <sip:c@d>,,sip:e@f"#;
        let items: Vec<&str> = split_list(value).collect();
        assert_eq!(
            items,
            [
                r#""Doe, John" <sip:j@a.example;x="1,2">;tag=1"#,
                "<sip:c@d>",
                "sip:e@f"
            ]
        );
    }

    #[test]
    fn escaped_quote_inside_quotes() {
        let value = r#""a \", b" <sip:a@b>, <sip:c@d>"#;
        let items: Vec<&str> = split_list(value).collect();
        assert_eq!(items, [r#""a \", b" <sip:a@b>"#, "<sip:c@d>"]);
    }

    #[test]
    fn via_list() {
        let value = "SIP/2.0/UDP a.example;branch=z9hG4bK1, SIP/2.0/TCP b.example:5061";
        let items: Vec<&str> = split_list(value).collect();
        assert_eq!(
            items,
            [
                "SIP/2.0/UDP a.example;branch=z9hG4bK1",
                "SIP/2.0/TCP b.example:5061"
            ]
        );
    }

    #[test]
    fn empty_value_has_no_items() {
        assert_eq!(split_list(" , ").count(), 0);
    }
}
