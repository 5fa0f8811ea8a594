use std::time::Duration;

use tokio::time::Instant;

use crate::dtmf::collector::{Collected, CollectorConfig, KeyAction, KeyCollector, KeyMatch};

/// Feature codes of a test dialplan and the hotline each one transfers to.
const CODES: [(&str, &str); 4] = [
    ("*1", "beijing"),
    ("*2", "shanghai"),
    ("*301", "tianjin"),
    ("*5#", "chongqing"),
];

fn dialplan(keys: &str) -> KeyMatch<&'static str> {
    if let Some((_, target)) = CODES.iter().find(|(code, _)| *code == keys) {
        return KeyMatch::Complete(*target);
    }
    if CODES.iter().any(|(code, _)| code.starts_with(keys)) {
        return KeyMatch::Partial;
    }
    KeyMatch::NoMatch
}

/// A collector with the default configuration on a virtual clock in milliseconds.
struct Leg {
    collector: KeyCollector,
    epoch: Instant,
}

impl Leg {
    fn new() -> Leg {
        Leg::with_config(CollectorConfig::default())
    }

    fn with_config(config: CollectorConfig) -> Leg {
        Leg {
            collector: KeyCollector::new(config),
            epoch: Instant::now(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    fn push(&mut self, ms: u64, key: char) -> Collected<&'static str> {
        let now = self.at(ms);
        self.collector.push(key, now, dialplan)
    }
}

fn hold() -> Collected<&'static str> {
    Collected {
        released: String::new(),
        action: KeyAction::Hold,
    }
}

fn relay(released: &str) -> Collected<&'static str> {
    Collected {
        released: released.to_owned(),
        action: KeyAction::Relay,
    }
}

fn fire(sequence: &str, target: &'static str) -> Collected<&'static str> {
    Collected {
        released: String::new(),
        action: KeyAction::Fire {
            sequence: sequence.to_owned(),
            target,
        },
    }
}

#[test]
fn star_one_fires_beijing() {
    let mut leg = Leg::new();
    assert_eq!(leg.push(0, '*'), hold());
    assert_eq!(leg.collector.held_keys(), "*");
    assert_eq!(leg.push(300, '1'), fire("*1", "beijing"));
    assert_eq!(leg.collector.held_keys(), "");
    assert_eq!(leg.collector.next_deadline(), None);
}

#[test]
fn star_three_then_zero_one_fires() {
    let mut leg = Leg::new();
    assert_eq!(leg.push(0, '*'), hold());
    assert_eq!(leg.push(200, '3'), hold());
    assert_eq!(leg.push(400, '0'), hold());
    assert_eq!(leg.push(600, '1'), fire("*301", "tianjin"));
}

#[test]
fn star_nine_is_released() {
    let mut leg = Leg::new();
    assert_eq!(leg.push(0, '*'), hold());
    assert_eq!(leg.push(200, '9'), relay("*"));
    assert_eq!(leg.collector.held_keys(), "");

    // Later keys pass again.
    assert_eq!(leg.push(400, '4'), relay(""));
}

#[test]
fn nomatch_key_may_start_new_code() {
    let mut leg = Leg::new();
    assert_eq!(leg.push(0, '*'), hold());
    assert_eq!(
        leg.push(200, '*'),
        Collected {
            released: "*".to_owned(),
            action: KeyAction::Hold,
        }
    );
    assert_eq!(leg.push(400, '2'), fire("*2", "shanghai"));
}

#[test]
fn timeout_releases_partial_keys() {
    let mut leg = Leg::new();
    leg.push(0, '*');
    leg.push(1000, '3');
    leg.push(2000, '0');

    let deadline = leg.at(5000);
    assert_eq!(leg.collector.next_deadline(), Some(deadline));
    assert_eq!(leg.collector.poll(leg.at(4999)), None);
    assert_eq!(leg.collector.poll(deadline), Some("*30".to_owned()));
    assert_eq!(leg.collector.next_deadline(), None);
    assert_eq!(leg.collector.poll(leg.at(9000)), None);
}

#[test]
fn late_key_releases_before_itself() {
    let mut leg = Leg::new();
    leg.push(0, '*');
    leg.push(500, '3');
    assert_eq!(leg.push(4000, '0'), relay("*3"));

    // A prefix key after the timeout starts a new code.
    leg.push(5000, '*');
    assert_eq!(
        leg.push(9000, '*'),
        Collected {
            released: "*".to_owned(),
            action: KeyAction::Hold,
        }
    );
}

#[test]
fn terminator_completes_code() {
    let mut leg = Leg::new();
    leg.push(0, '*');
    assert_eq!(leg.push(100, '5'), hold());
    assert_eq!(leg.push(200, '#'), fire("*5#", "chongqing"));
}

#[test]
fn terminator_after_complete_prefix() {
    // `*301` is a code; `*3` followed by the terminator is not.
    let mut leg = Leg::new();
    leg.push(0, '*');
    leg.push(100, '3');
    assert_eq!(leg.push(200, '#'), relay("*3"));
    assert_eq!(leg.collector.held_keys(), "");
}

#[test]
fn terminator_ends_code_without_it() {
    let config = CollectorConfig {
        terminator: Some('#'),
        ..CollectorConfig::default()
    };
    let mut leg = Leg::with_config(config);
    let mut matcher = |keys: &str| match keys {
        "*7" => KeyMatch::Complete("guangzhou"),
        "*" => KeyMatch::Partial,
        _ => KeyMatch::NoMatch,
    };
    let now = leg.at(0);
    assert_eq!(leg.collector.push('*', now, &mut matcher), hold());
    // `*7` completes at once; the terminator only matters for a partial code.
    let now = leg.at(100);
    assert_eq!(
        leg.collector.push('7', now, &mut matcher),
        fire("*7", "guangzhou")
    );

    let mut partial = |keys: &str| match keys {
        "*8" => KeyMatch::Complete("shenzhen"),
        "*" | "*80" => KeyMatch::Partial,
        _ => KeyMatch::NoMatch,
    };
    let now = leg.at(200);
    leg.collector.push('*', now, &mut partial);
    let now = leg.at(300);
    assert_eq!(
        leg.collector.push('8', now, &mut partial),
        fire("*8", "shenzhen")
    );
}

#[test]
fn terminator_outside_code_relays() {
    let mut leg = Leg::new();
    assert_eq!(leg.push(0, '#'), relay(""));
    assert_eq!(leg.collector.held_keys(), "");
}

#[test]
fn keys_without_prefix_pass() {
    let mut leg = Leg::new();
    for (ms, key) in (0..).step_by(100).zip("0123456789#ABCD".chars()) {
        assert_eq!(leg.push(ms, key), relay(""), "key {key}");
    }
    assert_eq!(leg.collector.next_deadline(), None);
}

#[test]
fn prefix_without_codes_relays() {
    let mut leg = Leg::new();
    let now = leg.at(0);
    let result = leg
        .collector
        .push('*', now, |_: &str| KeyMatch::<()>::NoMatch);
    assert_eq!(result.action, KeyAction::Relay);
    assert_eq!(result.released, "");
}

#[test]
fn other_prefix_keys() {
    let config = CollectorConfig {
        prefixes: vec!['*', 'A'],
        ..CollectorConfig::default()
    };
    let mut leg = Leg::with_config(config);
    let now = leg.at(0);
    let matcher = |keys: &str| match keys {
        "A" => KeyMatch::Partial,
        "A1" => KeyMatch::Complete("supervisor"),
        _ => KeyMatch::NoMatch,
    };
    assert_eq!(leg.collector.push('A', now, matcher), hold());
    assert_eq!(
        leg.collector.push('1', now, matcher),
        fire("A1", "supervisor")
    );
}

#[test]
fn held_keys_are_capped() {
    let config = CollectorConfig {
        max_held_keys: 3,
        ..CollectorConfig::default()
    };
    let mut leg = Leg::with_config(config);
    let always_partial = |_: &str| KeyMatch::<()>::Partial;
    let now = leg.at(0);
    assert_eq!(
        leg.collector.push('*', now, always_partial).action,
        KeyAction::Hold
    );
    assert_eq!(
        leg.collector.push('1', now, always_partial).action,
        KeyAction::Hold
    );
    let third = leg.collector.push('2', now, always_partial);
    assert_eq!(third.released, "*1");
    assert_eq!(third.action, KeyAction::Relay);
    assert_eq!(leg.collector.held_keys(), "");
}

#[test]
fn single_key_code_fires() {
    let mut leg = Leg::new();
    let now = leg.at(0);
    let result = leg.collector.push('*', now, |keys: &str| match keys {
        "*" => KeyMatch::Complete("operator"),
        _ => KeyMatch::NoMatch,
    });
    assert_eq!(result, fire("*", "operator"));
}

#[test]
fn take_held_releases_all() {
    let mut leg = Leg::new();
    leg.push(0, '*');
    leg.push(100, '3');
    assert_eq!(leg.collector.take_held(), "*3");
    assert_eq!(leg.collector.next_deadline(), None);
}
