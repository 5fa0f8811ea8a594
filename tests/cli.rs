//! The command line without SIP traffic: `check` on the shipped and on broken
//! configurations (exact `file:line:column: message` lines and exit codes), `run` on an
//! invalid configuration, and the help text.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::TestDir;

const BINARY: &str = env!("CARGO_BIN_EXE_hotline-b2bua");

/// Runs the binary in `dir` with `args`.
fn hotline(dir: &TestDir, args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("run the binary")
}

/// Writes `text` as `bad.toml`, runs `check` on it and returns (exit code, stderr lines).
fn check_text(test: &str, text: &str) -> (Option<i32>, Vec<String>) {
    let dir = TestDir::new(test);
    fs::write(dir.join("bad.toml"), text).expect("write bad.toml");
    let output = hotline(&dir, &["check", "--config", "bad.toml"]);
    assert!(output.stdout.is_empty(), "check printed on stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code(),
        stderr.lines().map(str::to_owned).collect(),
    )
}

#[test]
fn check_accepts_shipped_config() {
    let output = Command::new(BINARY)
        .args(["check", "--config", "config/hotline.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the binary");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("config/hotline.toml: ok\ndialplan: ok, "),
        "{stdout}"
    );
    assert!(output.stderr.is_empty());
}

#[test]
fn check_uses_default_path() {
    let output = Command::new(BINARY)
        .arg("check")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the binary");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("config/hotline.toml: ok\n"), "{stdout}");
}

#[test]
fn shipped_config_lists_every_default() {
    let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/hotline.toml"))
        .expect("read the shipped configuration");
    let shipped: hotline_b2bua::config::Config =
        toml::from_str(&text).expect("the shipped configuration parses");
    let defaults = hotline_b2bua::config::Config::default();
    assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));
    for key in [
        "listen",
        "trusted",
        "udp_max_bytes",
        "user_agent",
        "udp_recv_buffer",
        "target",
        "ring_timeout_secs",
        "t1_ms",
        "t2_ms",
        "t4_ms",
        "address",
        "port_min",
        "port_max",
        "inactivity_timeout_secs",
        "grace_period_secs",
        "retry_after_secs",
        "format",
        "level",
        "workers",
    ] {
        let line = format!("\n{key} = ");
        assert!(text.contains(&line), "config/hotline.toml lacks {key}");
    }
}

#[test]
fn check_reports_toml_syntax() {
    let (code, lines) = check_text(
        "check_reports_toml_syntax",
        "[sip\nlisten = \"127.0.0.1:5060\"\n\n[agent]\ntarget = \"sip:a@127.0.0.1\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        lines,
        [
            "bad.toml:1:5: invalid TOML: unclosed table, expected `]`",
            "bad.toml:5:26: invalid TOML: invalid basic string, expected `\"`",
            "bad.toml: invalid configuration, 2 problems",
        ]
    );
}

#[test]
fn check_reports_unknown_keys() {
    let (code, lines) = check_text(
        "check_reports_unknown_keys",
        "[sip]\nlisten = \"127.0.0.1:5060\"\nlisten_tcp = \"127.0.0.1:5060\"\n\n[rtp]\nport_min = 1\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        lines,
        [
            "bad.toml:3:1: unknown key `listen_tcp` in [sip], expected one of: listen, \
             trusted, udp_max_bytes, user_agent, udp_recv_buffer",
            "bad.toml:5:1: unknown section `rtp`, expected one of: sip, agent, timers, \
             media, shutdown, log, dialplan, control, cdr, transfer, runtime",
            "bad.toml: invalid configuration, 2 problems",
        ]
    );
}

#[test]
fn check_reports_bad_trusted_entries() {
    let (code, lines) = check_text(
        "check_reports_bad_trusted_entries",
        "[sip]\ntrusted = [\"10.0.0.0/8\", \"10.1.2.3/16\", \"192.0.2.0/33\", \"switch-a\", 7]\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        lines,
        [
            "bad.toml:2:26: sip.trusted[1]: \"10.1.2.3/16\" has host bits set, the network \
             is 10.1.0.0/16",
            "bad.toml:2:41: sip.trusted[2]: prefix length 33 is longer than the 32 bits of \
             the address",
            "bad.toml:2:57: sip.trusted[3]: \"switch-a\" is not an IP address or CIDR \
             prefix such as 192.0.2.0/24",
            "bad.toml:2:69: sip.trusted[4] must be a string, found integer",
            "bad.toml: invalid configuration, 4 problems",
        ]
    );
}

#[test]
fn check_reports_bad_agent_uri() {
    let (code, lines) = check_text(
        "check_reports_bad_agent_uri",
        "[agent]\ntarget = \"sip:agent@\"\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        lines,
        [
            "bad.toml:2:10: agent.target \"sip:agent@\" is not a usable SIP URI: the host \
             is missing",
            "bad.toml: invalid configuration, 1 problem",
        ]
    );

    let (code, lines) = check_text(
        "check_reports_bad_agent_scheme",
        "[agent]\ntarget = \"tel:+861012345\"\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        lines[0],
        "bad.toml:2:10: agent.target \"tel:+861012345\" is not a usable SIP URI: the scheme \
         must be sip:, found tel:"
    );
}

#[test]
fn check_reports_port_range() {
    let (code, lines) = check_text(
        "check_reports_port_range",
        "[media]\nport_min = 30001\nport_max = 30000\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        lines,
        [
            "bad.toml:2:12: media.port_min must be even because RTP takes the even port \
             and RTCP the next odd one (RFC 3550 §11), found 30001",
            "bad.toml:3:12: media.port_max (30000) must be greater than media.port_min \
             (30001) so the range holds at least one RTP/RTCP pair",
            "bad.toml: invalid configuration, 2 problems",
        ]
    );

    let (code, lines) = check_text(
        "check_reports_port_out_of_range",
        "[media]\nport_min = 70000\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        lines[0],
        "bad.toml:2:12: media.port_min must be between 1 and 65535, found 70000"
    );
}

#[test]
fn check_reports_timers_and_types() {
    let (code, lines) = check_text(
        "check_reports_timers_and_types",
        "[timers]\nt1_ms = 800\nt2_ms = 400\n\n[agent]\nring_timeout_secs = \"60\"\n\n\
         [log]\nlevel = \"hotline_b2bua=loud\"\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[0],
        "bad.toml:2:9: timers.t1_ms (800) must not be greater than timers.t2_ms (400)"
    );
    assert_eq!(
        lines[1],
        "bad.toml:6:21: agent.ring_timeout_secs must be an integer, found string"
    );
    assert!(
        lines[2].starts_with(
            "bad.toml:9:9: log.level \"hotline_b2bua=loud\" is not a valid tracing filter: "
        ),
        "{}",
        lines[2]
    );
}

#[test]
fn check_missing_file_is_failure() {
    let dir = TestDir::new("check_missing_file_is_failure");
    let output = hotline(&dir, &["check", "--config", "absent.toml"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: failed to read absent.toml: "),
        "{stderr}"
    );
}

#[test]
fn run_rejects_invalid_config() {
    let dir = TestDir::new("run_rejects_invalid_config");
    fs::write(
        dir.join("bad.toml"),
        "[sip]\nlisten = \"127.0.0.1:0\"\n[timers]\nt4_ms = 0\n",
    )
    .expect("write bad.toml");
    let output = hotline(&dir, &["run", "--config", "bad.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        "bad.toml:2:10: sip.listen must have a port other than 0\n\
         bad.toml:4:9: timers.t4_ms must be between 1 and 60000, found 0\n\
         bad.toml: invalid configuration, 2 problems\n"
    );
}

#[test]
fn help_names_defaults_and_units() {
    let dir = TestDir::new("help_names_defaults_and_units");
    for args in [&["run", "--help"][..], &["check", "--help"][..]] {
        let output = hotline(&dir, args);
        assert_eq!(output.status.code(), Some(0));
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("[default: config/hotline.toml]"), "{help}");
        assert!(help.contains("milliseconds"), "{help}");
        assert!(help.contains("seconds"), "{help}");
        assert!(help.contains("2 invalid configuration"), "{help}");
    }
}
