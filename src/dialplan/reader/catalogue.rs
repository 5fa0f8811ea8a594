//! The `[keys]` table with its `[keys.map]` of transfer keys, and the matter catalogue:
//! `[catalogue]` with its version and the `[category.<code>]` tables.

use std::ops::Range;

use toml::de::DeTable;

use super::{Draft, DraftBinding, Reader, Value, path_key};
use crate::dialplan::keys::{KeyBinding, parse_sequence, parse_terminator};
use crate::dialplan::model::Category;

const KEYS_KEYS: &[&str] = &["inter_digit_timeout_ms", "terminator", "map"];
const CATALOGUE_KEYS: &[&str] = &["version"];
const CATEGORY_KEYS: &[&str] = &["name", "name_en", "scope"];
const MIN_INTER_DIGIT_TIMEOUT_MS: u32 = 500;
const MAX_INTER_DIGIT_TIMEOUT_MS: u32 = 30_000;

impl<'i> Reader<'i> {
    pub(super) fn read_keys(&mut self, table: &DeTable<'i>, draft: &mut Draft) {
        for (key, value) in self.entries("keys", table, KEYS_KEYS) {
            let field = format!("keys.{key}");
            let offset = value.span().start;
            match key {
                "inter_digit_timeout_ms" => {
                    let (min, max) = (MIN_INTER_DIGIT_TIMEOUT_MS, MAX_INTER_DIGIT_TIMEOUT_MS);
                    if let Some(timeout) = self.int(&field, value, min, max) {
                        draft.inter_digit_timeout_ms = Some((timeout, self.origin(offset)));
                    }
                }
                "terminator" => {
                    let Some(text) = self.string(&field, value) else {
                        continue;
                    };
                    match parse_terminator(&text) {
                        Ok(terminator) => {
                            draft.terminator = Some((terminator, self.origin(offset)));
                        }
                        Err(error) => self.report(offset, format!("{field}: {error}")),
                    }
                }
                _ => self.key_map(&field, value, draft),
            }
        }
    }

    fn key_map(&mut self, path: &str, value: &Value<'i>, draft: &mut Draft) {
        let Some(table) = self.table(path, value) else {
            return;
        };
        for (key, value) in table {
            let text: &str = key.get_ref();
            let field = format!("{path}.{}", path_key(text));
            let sequence = match parse_sequence(text) {
                Ok(sequence) => Some(sequence),
                Err(error) => {
                    self.report(key.span().start, format!("{field}: {error}"));
                    None
                }
            };
            let destination = self.string(&field, value);
            let (Some(sequence), Some(destination)) = (sequence, destination) else {
                continue;
            };
            draft.bindings.push(DraftBinding {
                binding: KeyBinding {
                    sequence,
                    destination,
                    origin: self.origin(key.span().start),
                },
                destination_origin: self.origin(value.span().start),
            });
        }
        draft
            .bindings
            .sort_by_key(|binding| (binding.binding.origin.line, binding.binding.origin.column));
    }

    pub(super) fn read_catalogue(
        &mut self,
        table: &DeTable<'i>,
        span: Range<usize>,
        draft: &mut Draft,
    ) {
        for (_, value) in self.entries("catalogue", table, CATALOGUE_KEYS) {
            let offset = value.span().start;
            if let Some(version) = self.text("catalogue.version", value) {
                draft.catalogue_version = Some((version, self.origin(offset)));
            }
        }
        if !table.contains_key("version") {
            self.missing("catalogue", &span, "version");
        }
    }

    pub(super) fn read_categories(&mut self, table: &DeTable<'i>, draft: &mut Draft) {
        for (key, value) in table {
            let Some(code) = self.id("category", key) else {
                continue;
            };
            let path = format!("category.{code}");
            let Some(table) = self.table(&path, value) else {
                continue;
            };
            let origin = self.origin(value.span().start);
            draft.declared_categories.push((code.clone(), origin));
            if let Some(category) = self.category(&code, &path, table, value.span()) {
                draft.categories.push(category);
            }
        }
    }

    fn category(
        &mut self,
        code: &str,
        path: &str,
        table: &DeTable<'i>,
        span: Range<usize>,
    ) -> Option<Category> {
        let mut name = None;
        let mut name_en = None;
        let mut scope = Some(String::new());
        for (key, value) in self.entries(path, table, CATEGORY_KEYS) {
            let field = format!("{path}.{key}");
            match key {
                "name" => name = self.text(&field, value),
                "name_en" => name_en = self.text(&field, value),
                _ => scope = self.string(&field, value),
            }
        }
        for key in ["name", "name_en"] {
            if !table.contains_key(key) {
                self.missing(path, &span, key);
            }
        }
        Some(Category {
            code: code.to_owned(),
            name: name?,
            name_en: name_en?,
            scope: scope?,
            origin: self.origin(span.start),
        })
    }
}
