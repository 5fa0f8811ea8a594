//! `check` on broken dialplans: one fixture under tests/dialplans/ per kind of mistake,
//! with the exact `file:line:column: message` lines and the exit code.
//!
//! Each test writes a configuration whose `dialplan.paths` names a fixture by absolute
//! path, then removes the source directory from the output so that the lines read as
//! paths relative to the repository.

mod common;

use std::fs;
use std::process::Command;

use common::TestDir;

const BINARY: &str = env!("CARGO_BIN_EXE_hotline-b2bua");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Output of one `check` run, with the source directory removed.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: Vec<String>,
}

/// Runs `check` on a configuration whose dialplan paths are `fixtures`, relative to
/// tests/dialplans/.
fn check_fixtures(test: &str, fixtures: &[&str]) -> Checked {
    let dir = TestDir::new(test);
    let paths: Vec<String> = fixtures
        .iter()
        .map(|fixture| format!("{:?}", format!("{MANIFEST_DIR}/tests/dialplans/{fixture}")))
        .collect();
    let config = format!("[dialplan]\npaths = [{}]\n", paths.join(", "));
    fs::write(dir.join("hotline.toml"), config).expect("write hotline.toml");

    let output = Command::new(BINARY)
        .args(["check", "--config", "hotline.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("HOTLINE_B2BUA_TEST_UNSET_PASSWORD")
        .output()
        .expect("run the binary");
    let prefix = format!("{MANIFEST_DIR}/");
    let stderr = String::from_utf8_lossy(&output.stderr).replace(&prefix, "");
    Checked {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: stderr.lines().map(str::to_owned).collect(),
    }
}

/// Asserts exit code 2, the configuration line on stdout and `expected` on stderr.
fn assert_invalid(checked: &Checked, expected: &[&str]) {
    assert_eq!(checked.stdout, "hotline.toml: ok\n");
    assert_eq!(checked.stderr, expected);
    assert_eq!(checked.code, Some(2));
}

#[test]
fn check_accepts_shipped_plan() {
    let output = Command::new(BINARY)
        .args(["check", "--config", "config/hotline.toml"])
        .current_dir(MANIFEST_DIR)
        .output()
        .expect("run the binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], "config/hotline.toml: ok");
    assert!(
        lines[1].starts_with(
            "dialplan: ok, 4 files, 14 destinations, 14 trunks, 14 transfer keys, catalogue \
             2024-12 with 6 categories, fingerprint "
        ),
        "{}",
        lines[1]
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn check_reports_syntax() {
    let checked = check_fixtures("check_reports_syntax", &["syntax.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/syntax.toml:2:21: invalid TOML: unclosed table, expected `]`",
            "hotline.toml: invalid dialplan, 1 problem",
        ],
    );
}

#[test]
fn check_reports_unknown_keys() {
    let checked = check_fixtures("check_reports_unknown_keys", &["unknown_keys.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/unknown_keys.toml:7:1: unknown key `ring_timeout` in \
             [destination.beijing], expected one of: name, name_en, area_code, service_number, \
             trunk, user, numbers, sip_users, names, ring_timeout_secs, schedule, accepts, \
             rejects",
            "tests/dialplans/unknown_keys.toml:11:1: unknown key `caller_id` in [trunk.beijing], \
             expected one of: numbers, identity, domain, context, auth, health_check, gateway",
            "tests/dialplans/unknown_keys.toml:15:1: unknown key `channel_limit` in \
             [trunk.beijing.gateway.lab], expected one of: address, transport, priority, weight, \
             channels, schedule",
            "tests/dialplans/unknown_keys.toml:17:1: unknown section `routes`, expected one of: \
             destination, trunk, keys, catalogue, category",
            "hotline.toml: invalid dialplan, 4 problems",
        ],
    );
}

#[test]
fn check_reports_wrong_types() {
    let checked = check_fixtures("check_reports_wrong_types", &["wrong_types.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/wrong_types.toml:5:13: destination.beijing.area_code must be a \
             string, found integer",
            "tests/dialplans/wrong_types.toml:7:11: destination.beijing.numbers must be an array \
             of strings, found string",
            "tests/dialplans/wrong_types.toml:8:21: destination.beijing.ring_timeout_secs must be \
             between 1 and 600, found 0",
            "tests/dialplans/wrong_types.toml:11:11: trunk.beijing.numbers must be one of \
             \"e164\", \"national\", \"user\", found \"E.164\"",
            "tests/dialplans/wrong_types.toml:13:28: trunk.beijing.health_check.enabled must be \
             true or false, found string",
            "tests/dialplans/wrong_types.toml:17:13: trunk.beijing.gateway.lab.transport must be \
             one of \"udp\", \"tcp\", found \"tls\"",
            "tests/dialplans/wrong_types.toml:18:12: trunk.beijing.gateway.lab.priority must be \
             between 0 and 1000, found -1",
            "tests/dialplans/wrong_types.toml:19:10: trunk.beijing.gateway.lab.weight must be an \
             integer, found string",
            "hotline.toml: invalid dialplan, 8 problems",
        ],
    );
}

#[test]
fn check_reports_missing_keys() {
    let checked = check_fixtures("check_reports_missing_keys", &["missing_keys.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/missing_keys.toml:2:1: [destination.tianjin] is missing the required \
             key `name_en`",
            "tests/dialplans/missing_keys.toml:2:1: [destination.tianjin] is missing the required \
             key `area_code`",
            "tests/dialplans/missing_keys.toml:6:1: [trunk.tianjin] is missing the required key \
             `gateway`",
            "tests/dialplans/missing_keys.toml:9:1: [trunk.tianjin.auth] is missing the required \
             key `username`",
            "hotline.toml: invalid dialplan, 4 problems",
        ],
    );
}

#[test]
fn check_reports_unknown_references() {
    let checked = check_fixtures(
        "check_reports_unknown_references",
        &["unknown_references.toml"],
    );
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/unknown_references.toml:7:9: destination.beijing.trunk refers to \
             unknown trunk `bejing`",
            "tests/dialplans/unknown_references.toml:8:29: destination.beijing.accepts.parking \
             refers to unknown category `parking`",
            "tests/dialplans/unknown_references.toml:15:8: keys.map.\"*2\" refers to unknown \
             destination `tianjin`",
            "hotline.toml: invalid dialplan, 3 problems",
        ],
    );
}

#[test]
fn check_reports_duplicates_across_files() {
    let checked = check_fixtures("check_reports_duplicates_across_files", &["duplicates"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/duplicates/b.toml:2:1: destination `beijing` is already defined at \
             tests/dialplans/duplicates/a.toml:2:1",
            "tests/dialplans/duplicates/b.toml:13:12: number \"+86 10 12345\" already refers to \
             destination `beijing` (numbers \"010-12345\" at \
             tests/dialplans/duplicates/a.toml:7:12)",
            "tests/dialplans/duplicates/b.toml:14:10: name \"北京市热线\" already refers to \
             destination `beijing` (name \"北京市热线\" at tests/dialplans/duplicates/a.toml:2:1)",
            "tests/dialplans/duplicates/b.toml:16:8: trunk `beijing` is already defined at \
             tests/dialplans/duplicates/a.toml:9:8",
            "tests/dialplans/duplicates/b.toml:20:1: key sequence \"*1\" is already bound at \
             tests/dialplans/duplicates/a.toml:13:1",
            "hotline.toml: invalid dialplan, 5 problems",
        ],
    );
}

#[test]
fn check_reports_ambiguous_keys() {
    let checked = check_fixtures("check_reports_ambiguous_keys", &["ambiguous_keys.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/ambiguous_keys.toml:18:1: key sequence \"*301\" is ambiguous: \"*3\" \
             (at tests/dialplans/ambiguous_keys.toml:17:1) is a prefix of it and would complete \
             first; set keys.terminator or change one of them",
            "tests/dialplans/ambiguous_keys.toml:19:1: key sequence \"*302\" is ambiguous: \"*3\" \
             (at tests/dialplans/ambiguous_keys.toml:17:1) is a prefix of it and would complete \
             first; set keys.terminator or change one of them",
            "tests/dialplans/ambiguous_keys.toml:20:1: keys.map.\"*1E\": key sequence \"*1E\" \
             contains 'E', expected 0-9 * # A-D",
            "hotline.toml: invalid dialplan, 3 problems",
        ],
    );
}

#[test]
fn check_reports_bad_gateways() {
    let checked = check_fixtures("check_reports_bad_gateways", &["gateways.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/gateways.toml:3:1: [trunk.beijing.gateway.missing] is missing the \
             required key `address`",
            "tests/dialplans/gateways.toml:7:11: trunk.beijing.gateway.secure.address \
             \"sips:gw.beijing.example\" is not a usable gateway address: sips: needs TLS, which \
             the engine does not have",
            "tests/dialplans/gateways.toml:10:11: trunk.beijing.gateway.numbered.address \
             \"sip:01012345@127.0.0.1:5081\" is not a usable gateway address: a user part is not \
             allowed, the engine writes the hotline's number",
            "tests/dialplans/gateways.toml:14:13: trunk.beijing.gateway.conflict.transport is \
             \"udp\" but the address has ;transport=tcp",
            "tests/dialplans/gateways.toml:17:11: trunk.beijing.gateway.port.address \
             \"127.0.0.1:65536\" is not a usable gateway address: invalid port \"65536\"",
            "hotline.toml: invalid dialplan, 5 problems",
        ],
    );
}

#[test]
fn check_reports_credentials() {
    let checked = check_fixtures("check_reports_credentials", &["credentials.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/credentials.toml:4:45: trunk.beijing.auth.password_env names the \
             environment variable HOTLINE_B2BUA_TEST_UNSET_PASSWORD, which is not set; set it to \
             the trunk password before starting the engine",
            "tests/dialplans/credentials.toml:10:45: trunk.tianjin.auth.password_env must be the \
             name of an environment variable (letters, digits and _), never the password itself",
            "hotline.toml: invalid dialplan, 2 problems",
        ],
    );
}

#[test]
fn check_reports_time_rules() {
    let checked = check_fixtures("check_reports_time_rules", &["time_rules.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/time_rules.toml:10:20: destination.beijing.schedule[0].days[1]: \
             \"holiday\" is not a weekday or weekday range such as \"mon\" or \"mon-fri\"",
            "tests/dialplans/time_rules.toml:14:10: destination.beijing.schedule[1].dates[0]: \
             \"2025-02-29\" is not a date such as \"2025-01-01\"",
            "tests/dialplans/time_rules.toml:20:9: trunk.beijing.gateway.lab.schedule[0].hours: \
             \"8-20\" is not an hour range such as \"08:00-20:00\"",
            "tests/dialplans/time_rules.toml:22:1: trunk.beijing.gateway.lab.schedule[1] sets \
             none of days, hours and dates, so it would always match",
            "hotline.toml: invalid dialplan, 4 problems",
        ],
    );
}

#[test]
fn check_reports_catalogue() {
    let checked = check_fixtures("check_reports_catalogue", &["catalogue.toml"]);
    assert_invalid(
        &checked,
        &[
            "tests/dialplans/catalogue.toml:9:13: destination.beijing: category `housing` is \
             listed in both accepts and rejects",
            "tests/dialplans/catalogue.toml:14:1: category.transport: the catalogue has no \
             version, add [catalogue] version = \"YYYY-MM\" to one file",
            "tests/dialplans/catalogue.toml:18:1: [category.housing] is missing the required key \
             `name_en`",
            "hotline.toml: invalid dialplan, 3 problems",
        ],
    );
}

#[test]
fn check_reports_missing_directory() {
    let checked = check_fixtures("check_reports_missing_directory", &["absent"]);
    assert_eq!(checked.code, Some(2));
    assert_eq!(checked.stderr.len(), 2, "{:#?}", checked.stderr);
    assert!(
        checked.stderr[0].starts_with("tests/dialplans/absent:1:1: failed to read: "),
        "{}",
        checked.stderr[0]
    );
    assert_eq!(
        checked.stderr[1],
        "hotline.toml: invalid dialplan, 1 problem"
    );
}

#[test]
fn check_skips_dialplans_of_invalid_config() {
    let dir = TestDir::new("check_skips_dialplans_of_invalid_config");
    fs::write(
        dir.join("hotline.toml"),
        "[dialplan]\npaths = \"dialplans\"\n",
    )
    .expect("write hotline.toml");
    let output = Command::new(BINARY)
        .args(["check", "--config", "hotline.toml"])
        .current_dir(dir.path())
        .output()
        .expect("run the binary");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "hotline.toml:2:9: dialplan.paths must be an array of strings, found string\n\
         hotline.toml: invalid configuration, 1 problem\n"
    );
    assert!(output.stdout.is_empty());
    assert_eq!(output.status.code(), Some(2));
}
