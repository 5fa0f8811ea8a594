//! Transfer keys: the DTMF sequences an agent presses to transfer a call, and how a
//! collected sequence is matched against them.
//!
//! Without a terminator the sequences must be prefix-free, so a sequence is complete the
//! moment its last digit arrives. With a terminator a sequence may be the prefix of a
//! longer one. The agent then ends it with the terminator, or the inter-digit timeout
//! ends it: the collector calls [`KeyMap::match_keys`] with the terminator appended.

use serde::Serialize;

use super::model::Origin;

/// DTMF events that can appear in a sequence (RFC 4733 §3.2 events 0-15).
const DTMF_SYMBOLS: &str = "0123456789*#ABCD";
/// Maximum length of a sequence, in keys.
pub const MAX_SEQUENCE_LEN: usize = 16;

/// Default time between two digits before the collector gives up, in milliseconds.
pub const DEFAULT_INTER_DIGIT_TIMEOUT_MS: u32 = 3_000;

/// Failure to read a key sequence or terminator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key sequence is empty")]
    Empty,
    #[error("key sequence {sequence:?} contains {found:?}, expected 0-9 * # A-D")]
    InvalidSymbol { sequence: String, found: char },
    #[error("key sequence {sequence:?} is longer than {MAX_SEQUENCE_LEN} keys")]
    TooLong { sequence: String },
    #[error("key sequence {sequence:?} contains the terminator {terminator:?}")]
    ContainsTerminator { sequence: String, terminator: char },
    #[error("terminator {text:?} must be one key of 0-9 * # A-D")]
    InvalidTerminator { text: String },
}

/// Result of matching the keys collected so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMatch<'a> {
    /// The keys name this destination id; stop collecting.
    Complete(&'a str),
    /// The keys are the start of at least one sequence; keep collecting.
    Partial,
    /// No sequence starts with these keys.
    NoMatch,
}

/// Collector settings from the `[keys]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeySettings {
    /// Maximum time between two keys, in milliseconds.
    pub inter_digit_timeout_ms: u32,
    /// Key that ends a sequence early, such as `#`.
    pub terminator: Option<char>,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            inter_digit_timeout_ms: DEFAULT_INTER_DIGIT_TIMEOUT_MS,
            terminator: None,
        }
    }
}

/// One sequence and the destination it transfers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyBinding {
    /// DTMF symbols in uppercase, such as `*301`.
    pub sequence: String,
    pub destination: String,
    /// Position of the binding in its file.
    pub origin: Origin,
}

/// The validated set of key bindings.
#[derive(Debug, Clone, Default)]
pub struct KeyMap {
    pub settings: KeySettings,
    /// Bindings in the order of their files.
    pub bindings: Vec<KeyBinding>,
}

impl KeyMap {
    /// Matches `keys` as collected so far (case-insensitive for A-D).
    ///
    /// When `keys` ends with the terminator, the keys before it must equal a sequence.
    /// Otherwise the result is [`KeyMatch::Partial`] while a longer sequence starts with
    /// the keys, and [`KeyMatch::Complete`] when they equal a sequence and no longer one
    /// starts with them.
    pub fn match_keys(&self, keys: &str) -> KeyMatch<'_> {
        let keys = keys.to_ascii_uppercase();
        if let Some(body) = self
            .settings
            .terminator
            .and_then(|terminator| keys.strip_suffix(terminator))
        {
            return match self.binding(body) {
                Some(binding) => KeyMatch::Complete(&binding.destination),
                None => KeyMatch::NoMatch,
            };
        }

        let longer = self.bindings.iter().any(|binding| {
            binding.sequence.len() > keys.len() && binding.sequence.starts_with(&keys)
        });
        match (self.binding(&keys), longer) {
            (_, true) => KeyMatch::Partial,
            (Some(binding), false) => KeyMatch::Complete(&binding.destination),
            (None, false) => KeyMatch::NoMatch,
        }
    }

    /// Returns the binding whose sequence equals `sequence` exactly (uppercase).
    pub fn binding(&self, sequence: &str) -> Option<&KeyBinding> {
        self.bindings
            .iter()
            .find(|binding| binding.sequence == sequence)
    }
}

/// Reads a sequence written in a dialplan, in uppercase.
///
/// # Errors
///
/// [`KeyError`] when it is empty, too long or contains a symbol that is not a DTMF key.
pub fn parse_sequence(text: &str) -> Result<String, KeyError> {
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    let sequence = text.to_ascii_uppercase();
    if let Some(found) = sequence.chars().find(|ch| !DTMF_SYMBOLS.contains(*ch)) {
        return Err(KeyError::InvalidSymbol {
            sequence: text.to_owned(),
            found,
        });
    }
    if sequence.len() > MAX_SEQUENCE_LEN {
        return Err(KeyError::TooLong {
            sequence: text.to_owned(),
        });
    }
    Ok(sequence)
}

/// Reads a terminator: exactly one DTMF key.
///
/// # Errors
///
/// [`KeyError::InvalidTerminator`] otherwise.
pub fn parse_terminator(text: &str) -> Result<char, KeyError> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(key), None) if DTMF_SYMBOLS.contains(key.to_ascii_uppercase()) => {
            Ok(key.to_ascii_uppercase())
        }
        _ => Err(KeyError::InvalidTerminator {
            text: text.to_owned(),
        }),
    }
}

/// Pairs `(longer, shorter)` of indexes into `sequences` where the shorter sequence is a
/// proper prefix of the longer one. Each longer sequence is listed once, with its shortest
/// prefix. Equal sequences are duplicates, not prefixes, and are not listed.
pub fn prefix_conflicts(sequences: &[&str]) -> Vec<(usize, usize)> {
    let mut conflicts = Vec::new();
    for (longer, long) in sequences.iter().enumerate() {
        let shortest_prefix = sequences
            .iter()
            .enumerate()
            .filter(|(_, short)| short.len() < long.len() && long.starts_with(**short))
            .min_by_key(|(index, short)| (short.len(), *index));
        if let Some((shorter, _)) = shortest_prefix {
            conflicts.push((longer, shorter));
        }
    }
    conflicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(terminator: Option<char>, bindings: &[(&str, &str)]) -> KeyMap {
        let origin = Origin {
            file: "t.toml".to_owned(),
            line: 1,
            column: 1,
        };
        KeyMap {
            settings: KeySettings {
                inter_digit_timeout_ms: 3000,
                terminator,
            },
            bindings: bindings
                .iter()
                .map(|(sequence, destination)| KeyBinding {
                    sequence: (*sequence).to_owned(),
                    destination: (*destination).to_owned(),
                    origin: origin.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn prefix_free_completes_at_once() {
        let keys = map(
            None,
            &[("*1", "beijing"), ("*2", "tianjin"), ("*311", "sjz")],
        );
        assert_eq!(keys.match_keys(""), KeyMatch::Partial);
        assert_eq!(keys.match_keys("*"), KeyMatch::Partial);
        assert_eq!(keys.match_keys("*1"), KeyMatch::Complete("beijing"));
        assert_eq!(keys.match_keys("*3"), KeyMatch::Partial);
        assert_eq!(keys.match_keys("*31"), KeyMatch::Partial);
        assert_eq!(keys.match_keys("*311"), KeyMatch::Complete("sjz"));
        assert_eq!(keys.match_keys("*312"), KeyMatch::NoMatch);
        assert_eq!(keys.match_keys("*11"), KeyMatch::NoMatch);
        assert_eq!(keys.match_keys("*1#"), KeyMatch::NoMatch);
    }

    #[test]
    fn terminator_ends_prefix() {
        let keys = map(Some('#'), &[("*3", "hebei"), ("*311", "sjz")]);
        assert_eq!(keys.match_keys("*3"), KeyMatch::Partial);
        assert_eq!(keys.match_keys("*3#"), KeyMatch::Complete("hebei"));
        assert_eq!(keys.match_keys("*311"), KeyMatch::Complete("sjz"));
        assert_eq!(keys.match_keys("*311#"), KeyMatch::Complete("sjz"));
        assert_eq!(keys.match_keys("*31#"), KeyMatch::NoMatch);
        assert_eq!(keys.match_keys("#"), KeyMatch::NoMatch);
    }

    #[test]
    fn letters_match_any_case() {
        let keys = map(None, &[("*A", "beijing")]);
        assert_eq!(keys.match_keys("*a"), KeyMatch::Complete("beijing"));
    }

    #[test]
    fn sequence_syntax() {
        assert_eq!(parse_sequence("*3a1").unwrap(), "*3A1");
        assert_eq!(parse_sequence(""), Err(KeyError::Empty));
        assert!(matches!(
            parse_sequence("*1E"),
            Err(KeyError::InvalidSymbol { found: 'E', .. })
        ));
        assert!(matches!(
            parse_sequence("12345678901234567"),
            Err(KeyError::TooLong { .. })
        ));
        assert_eq!(parse_terminator("#"), Ok('#'));
        assert!(parse_terminator("##").is_err());
        assert!(parse_terminator("").is_err());
        assert!(parse_terminator("x").is_err());
    }

    #[test]
    fn conflicts_found_by_prefix() {
        // "*1" is not a prefix of "*301": they differ in the second key.
        assert!(prefix_conflicts(&["*1", "*2", "*301", "*302"]).is_empty());
        assert_eq!(prefix_conflicts(&["*3", "*301", "*302"]), [(1, 0), (2, 0)]);
        assert_eq!(prefix_conflicts(&["*301", "*30", "*3"]), [(0, 2), (1, 2)]);
        assert!(prefix_conflicts(&["*1", "*1"]).is_empty());
    }
}
