//! Joins the drafts of all files into one [`Plan`], after the checks that span files:
//! unique ids, references between tables, settings given once, unambiguous keys and
//! names.

use std::collections::HashMap;

use super::keys::{KeyBinding, KeyMap, KeySettings, prefix_conflicts};
use super::model::{Destination, Origin};
use super::number::NumberFormat;
use super::reader::{Alias, AliasKind, Draft, name_key, path_key, read_file};
use super::{Plan, Route};
use crate::config::Problem;

/// Problems found across files, each at the value it is about.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, origin: &Origin, message: String) {
        self.problems.push(Problem {
            file: origin.file.clone(),
            line: origin.line,
            column: origin.column,
            message,
        });
    }

    /// Reports every id after its first definition. `noun` names the kind of id.
    fn unique<'a>(&mut self, noun: &str, ids: impl Iterator<Item = (&'a String, &'a Origin)>) {
        let mut first: HashMap<&str, &Origin> = HashMap::new();
        for (id, origin) in ids {
            match first.get(id.as_str()) {
                Some(earlier) => {
                    let message = format!("{noun} `{id}` is already defined at {earlier}");
                    self.report(origin, message);
                }
                None => {
                    first.insert(id, origin);
                }
            }
        }
    }

    /// Reports a setting given in more than one file.
    fn once<'a, T: 'a>(&mut self, name: &str, settings: impl Iterator<Item = &'a (T, Origin)>) {
        let mut first: Option<&Origin> = None;
        for (_, origin) in settings {
            match first {
                Some(earlier) => {
                    let message =
                        format!("{name} is already set at {earlier}, set it in one file only");
                    self.report(origin, message);
                }
                None => first = Some(origin),
            }
        }
    }
}

/// Reads and checks every source, then builds the plan.
pub(super) fn compile(sources: &[(&str, &str)]) -> Result<Plan, Vec<Problem>> {
    let mut checker = Checker::default();
    let mut drafts = Vec::new();
    for (file, text) in sources {
        let (draft, problems) = read_file(file, text);
        checker.problems.extend(problems);
        drafts.push(draft);
    }

    check_ids(&mut checker, &drafts);
    check_references(&mut checker, &drafts);
    let keys = check_keys(&mut checker, &drafts);
    let aliases = check_aliases(&mut checker, &drafts);

    if !checker.problems.is_empty() {
        let order: HashMap<&str, usize> = sources
            .iter()
            .enumerate()
            .map(|(index, (file, _))| (*file, index))
            .collect();
        let mut problems = checker.problems;
        problems.sort_by_key(|problem| {
            let file = order
                .get(problem.file.as_str())
                .copied()
                .unwrap_or(usize::MAX);
            (file, problem.line, problem.column)
        });
        problems.dedup();
        return Err(problems);
    }
    Ok(build(sources, drafts, keys, aliases))
}

fn check_ids(checker: &mut Checker, drafts: &[Draft]) {
    let destinations = drafts.iter().flat_map(|draft| {
        draft
            .declared_destinations
            .iter()
            .map(|(id, origin)| (id, origin))
    });
    checker.unique("destination", destinations);

    let trunks = drafts
        .iter()
        .flat_map(|draft| draft.trunks.iter().map(|trunk| (&trunk.id, &trunk.origin)));
    checker.unique("trunk", trunks);

    let categories = drafts.iter().flat_map(|draft| {
        draft
            .declared_categories
            .iter()
            .map(|(code, origin)| (code, origin))
    });
    checker.unique("category", categories);

    checker.once(
        "keys.inter_digit_timeout_ms",
        drafts
            .iter()
            .filter_map(|draft| draft.inter_digit_timeout_ms.as_ref()),
    );
    checker.once(
        "keys.terminator",
        drafts.iter().filter_map(|draft| draft.terminator.as_ref()),
    );
    checker.once(
        "catalogue.version",
        drafts
            .iter()
            .filter_map(|draft| draft.catalogue_version.as_ref()),
    );

    let has_version = drafts.iter().any(|draft| draft.catalogue_version.is_some());
    let first_category = drafts.iter().find_map(|draft| {
        draft
            .declared_categories
            .iter()
            .min_by_key(|(_, origin)| (origin.line, origin.column))
    });
    if let (false, Some((code, origin))) = (has_version, first_category) {
        let message = format!(
            "category.{code}: the catalogue has no version, add [catalogue] version = \
             \"YYYY-MM\" to one file"
        );
        checker.report(origin, message);
    }
}

fn check_references(checker: &mut Checker, drafts: &[Draft]) {
    let destinations: HashMap<&str, ()> = drafts
        .iter()
        .flat_map(|draft| {
            draft
                .declared_destinations
                .iter()
                .map(|(id, _)| (id.as_str(), ()))
        })
        .collect();
    let categories: HashMap<&str, ()> = drafts
        .iter()
        .flat_map(|draft| {
            draft
                .declared_categories
                .iter()
                .map(|(code, _)| (code.as_str(), ()))
        })
        .collect();
    let trunks: HashMap<&str, NumberFormat> = drafts
        .iter()
        .flat_map(|draft| {
            draft
                .trunks
                .iter()
                .map(|trunk| (trunk.id.as_str(), trunk.numbers))
        })
        .collect();

    for draft in drafts {
        for item in &draft.destinations {
            let destination = &item.destination;
            match trunks.get(destination.trunk.as_str()) {
                None => {
                    let message = format!(
                        "destination.{}.trunk refers to unknown trunk `{}`",
                        destination.id, destination.trunk
                    );
                    checker.report(&item.trunk_origin, message);
                }
                Some(NumberFormat::User) if destination.user.is_none() => {
                    let message = format!(
                        "[destination.{}] is missing `user`, which trunk `{}` needs because \
                         its numbers = \"user\"",
                        destination.id, destination.trunk
                    );
                    checker.report(&destination.origin, message);
                }
                Some(_) => {}
            }
        }

        for item in &draft.bindings {
            let binding = &item.binding;
            if !destinations.contains_key(binding.destination.as_str()) {
                let message = format!(
                    "keys.map.{:?} refers to unknown destination `{}`",
                    binding.sequence, binding.destination
                );
                checker.report(&item.destination_origin, message);
            }
        }

        for item in &draft.destinations {
            let destination = &item.destination;
            let codes = destination
                .accepts
                .iter()
                .map(|entry| ("accepts", entry))
                .chain(destination.rejects.iter().map(|entry| ("rejects", entry)));
            for ((field, (code, _)), origin) in codes.zip(&item.matter_origins) {
                if !categories.contains_key(code.as_str()) {
                    let message = format!(
                        "destination.{}.{field}.{} refers to unknown category `{code}`",
                        destination.id,
                        path_key(code)
                    );
                    checker.report(origin, message);
                }
            }
        }
    }
}

/// Checks the key bindings of all files together and returns the key map.
fn check_keys(checker: &mut Checker, drafts: &[Draft]) -> KeyMap {
    let settings = KeySettings {
        inter_digit_timeout_ms: drafts
            .iter()
            .find_map(|draft| draft.inter_digit_timeout_ms.as_ref())
            .map_or(
                KeySettings::default().inter_digit_timeout_ms,
                |(timeout, _)| *timeout,
            ),
        terminator: drafts
            .iter()
            .find_map(|draft| draft.terminator.as_ref())
            .map(|(terminator, _)| *terminator),
    };

    let mut bindings: Vec<KeyBinding> = Vec::new();
    for binding in drafts.iter().flat_map(|draft| &draft.bindings) {
        let binding = &binding.binding;
        if let Some(earlier) = bindings.iter().find(|b| b.sequence == binding.sequence) {
            let message = format!(
                "key sequence {:?} is already bound at {}",
                binding.sequence, earlier.origin
            );
            checker.report(&binding.origin, message);
            continue;
        }
        if let Some(terminator) = settings.terminator
            && binding.sequence.contains(terminator)
        {
            let message = format!(
                "key sequence {:?} contains the terminator {terminator:?}, so it could never \
                 be keyed",
                binding.sequence
            );
            checker.report(&binding.origin, message);
            continue;
        }
        bindings.push(binding.clone());
    }

    if settings.terminator.is_none() {
        let sequences: Vec<&str> = bindings.iter().map(|b| b.sequence.as_str()).collect();
        for (longer, shorter) in prefix_conflicts(&sequences) {
            let (long, short) = (&bindings[longer], &bindings[shorter]);
            let message = format!(
                "key sequence {:?} is ambiguous: {:?} (at {}) is a prefix of it and would \
                 complete first; set keys.terminator or change one of them",
                long.sequence, short.sequence, short.origin
            );
            checker.report(&long.origin, message);
        }
    }
    KeyMap { settings, bindings }
}

/// Checks that no number, SIP user or name refers to two destinations, and returns them
/// in file order. A destination's id is also a SIP user and a name; its `name` and
/// `name_en` are names.
fn check_aliases(checker: &mut Checker, drafts: &[Draft]) -> Vec<Alias> {
    let mut aliases = Vec::new();
    for draft in drafts {
        let mut file_aliases: Vec<Alias> = draft.aliases.clone();
        for item in &draft.destinations {
            file_aliases.extend(implicit_aliases(&item.destination));
        }
        file_aliases.sort_by_key(|alias| (alias.origin.line, alias.origin.column));
        aliases.extend(file_aliases);
    }

    let mut first: HashMap<(AliasKind, &str), &Alias> = HashMap::new();
    let mut unique = Vec::new();
    for alias in &aliases {
        match first.get(&(alias.kind, alias.key.as_str())) {
            Some(earlier) if earlier.destination != alias.destination => {
                let message = format!(
                    "{} {:?} already refers to destination `{}` ({} at {})",
                    alias.kind.noun(),
                    alias.written,
                    earlier.destination,
                    earlier.rule(),
                    earlier.origin
                );
                checker.report(&alias.origin, message);
            }
            Some(_) => {}
            None => {
                first.insert((alias.kind, alias.key.as_str()), alias);
                unique.push(alias.clone());
            }
        }
    }
    unique
}

fn implicit_aliases(destination: &Destination) -> Vec<Alias> {
    let alias = |kind, key: String, field: &'static str, written: &String| Alias {
        kind,
        key,
        field,
        written: written.clone(),
        destination: destination.id.clone(),
        origin: destination.origin.clone(),
    };
    let id = &destination.id;
    vec![
        alias(AliasKind::SipUser, id.clone(), "id", id),
        alias(AliasKind::Name, id.clone(), "id", id),
        alias(
            AliasKind::Name,
            name_key(&destination.name),
            "name",
            &destination.name,
        ),
        alias(
            AliasKind::Name,
            name_key(&destination.name_en),
            "name_en",
            &destination.name_en,
        ),
    ]
}

fn build(sources: &[(&str, &str)], drafts: Vec<Draft>, keys: KeyMap, aliases: Vec<Alias>) -> Plan {
    let mut destinations = Vec::new();
    let mut trunks = Vec::new();
    let mut categories = Vec::new();
    let mut catalogue_version = None;
    for draft in drafts {
        let mut file_destinations: Vec<_> = draft
            .destinations
            .into_iter()
            .map(|item| item.destination)
            .collect();
        file_destinations.sort_by_key(|d| (d.origin.line, d.origin.column));
        destinations.extend(file_destinations);

        let mut file_trunks = draft.trunks;
        file_trunks.sort_by_key(|t| (t.origin.line, t.origin.column));
        trunks.extend(file_trunks);

        let mut file_categories = draft.categories;
        file_categories.sort_by_key(|c| (c.origin.line, c.origin.column));
        categories.extend(file_categories);

        catalogue_version = catalogue_version.or(draft.catalogue_version.map(|(v, _)| v));
    }

    let destination_index: HashMap<String, usize> = destinations
        .iter()
        .enumerate()
        .map(|(index, destination)| (destination.id.clone(), index))
        .collect();
    let mut routes: HashMap<(AliasKind, String), Route> = HashMap::new();
    for alias in aliases {
        // Every alias names a declared destination, and no plan is built while a
        // destination is incomplete, so the lookup succeeds.
        let Some(&destination) = destination_index.get(&alias.destination) else {
            continue;
        };
        let route = Route {
            destination,
            rule: alias.rule(),
            origin: alias.origin,
        };
        routes.insert((alias.kind, alias.key), route);
    }

    Plan {
        trunk_index: trunks
            .iter()
            .enumerate()
            .map(|(index, trunk)| (trunk.id.clone(), index))
            .collect(),
        category_index: categories
            .iter()
            .enumerate()
            .map(|(index, category)| (category.code.clone(), index))
            .collect(),
        destination_index,
        destinations,
        trunks,
        categories,
        catalogue_version,
        keys,
        routes,
        files: sources.iter().map(|(file, _)| (*file).to_owned()).collect(),
        fingerprint: fingerprint(sources),
    }
}

/// FNV-1a (64 bit) over the length and bytes of each file's text, in load order. Names
/// are left out so that moving a file does not change the fingerprint.
fn fingerprint(sources: &[(&str, &str)]) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for (_, text) in sources {
        let length = (text.len() as u64).to_le_bytes();
        for byte in length.iter().chain(text.as_bytes()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}
