//! `route` on the shipped configuration and plan: the exact text and JSON for a key, a
//! tel: Refer-To, a destination with a matter, and a refused mobile number.
//!
//! The plan's fingerprint changes with every edit of the shipped dialplans, so the
//! output's fingerprint is replaced by `{fingerprint}` before the comparison.

use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_hotline-b2bua");
/// Monday 2025-01-06, 09:30 in China, so that schedules give the same result every day.
const AT: &str = "2025-01-06T09:30:00+08:00";

/// Runs `route` from the repository root with the shipped configuration.
fn route(args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("route")
        .args(args)
        .args(["--at", AT])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run the binary")
}

/// Standard output with the first 16-digit hexadecimal fingerprint replaced.
fn normalized_stdout(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let is_hex = |text: &str| text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit());
    let fingerprint = stdout
        .split(|ch: char| !ch.is_ascii_alphanumeric())
        .find(|word| is_hex(word))
        .map(str::to_owned);
    match fingerprint {
        Some(fingerprint) => stdout.replacen(&fingerprint, "{fingerprint}", 1),
        None => stdout,
    }
}

fn assert_route(args: &[&str], expected: &str, code: i32) {
    let output = route(args);
    assert_eq!(normalized_stdout(&output), expected);
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(code));
}

#[test]
fn route_keys_text() {
    assert_route(&["--keys", "*1"], KEYS_TEXT, 0);
}

#[test]
fn route_keys_json() {
    assert_route(&["--keys", "*1", "--json"], KEYS_JSON, 0);
}

#[test]
fn route_tel_refer_to_text() {
    let args = ["--refer-to", "tel:022-12345", "--caller", "13800000000"];
    assert_route(&args, TEL_TEXT, 0);
}

#[test]
fn route_tel_refer_to_json() {
    let args = [
        "--refer-to",
        "tel:022-12345",
        "--caller",
        "13800000000",
        "--json",
    ];
    assert_route(&args, TEL_JSON, 0);
}

#[test]
fn route_destination_matter_text() {
    let args = ["--destination", "xiongan", "--matter", "social_insurance"];
    assert_route(&args, XIONGAN_TEXT, 0);
}

#[test]
fn route_destination_matter_json() {
    let args = [
        "--destination",
        "xiongan",
        "--matter",
        "social_insurance",
        "--json",
    ];
    assert_route(&args, XIONGAN_JSON, 0);
}

#[test]
fn route_refuses_mobile_text() {
    let args = ["--refer-to", "sip:13800000000@127.0.0.1"];
    assert_route(&args, REFUSED_TEXT, 3);
}

#[test]
fn route_refuses_mobile_json() {
    let args = ["--refer-to", "sip:13800000000@127.0.0.1", "--json"];
    assert_route(&args, REFUSED_JSON, 3);
}

#[test]
fn route_refuses_unknown_matter() {
    let output = route(&["--name", "天津", "--matter", "parking"]);
    let stdout = normalized_stdout(&output);
    assert!(
        stdout.ends_with(
            "7. matter: parking (not in the catalogue): unknown, the catalogue does not say\n\
             result: refused: matter \"parking\" is not in the catalogue (version 2024-12)\n"
        ),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn route_needs_one_trigger() {
    let output = route(&["--keys", "*1", "--destination", "beijing"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    let output = route(&["--matter", "transport"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn route_rejects_bad_time() {
    let output = Command::new(BINARY)
        .args(["route", "--keys", "*1", "--at", "2025-01-06 09:30"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the binary");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not an RFC 3339 timestamp"), "{stderr}");
}

const KEYS_TEXT: &str = r##"plan {fingerprint} (catalogue 2024-12) at 2025-01-06T09:30:00+08:00
1. trigger: keys "*1"
2. rule: keys.map "*1" at dialplans/jingjinji.toml:19:1
3. destination: beijing 北京市热线 (Beijing 12345 hotline), area code 010, trunk beijing, rings up to 30 s
4. schedule: always (active at 2025-01-06T09:30:00+08:00)
5. gateways in the order tried:
   1. beijing/lab sip:127.0.0.1:5081 udp, priority 1, weight 1, health unknown, 30 of 30 channels free
      INVITE sip:+861012345@127.0.0.1:5081
6. headers:
   To: <sip:+861012345@127.0.0.1:5081>
   From: <sip:${caller}@127.0.0.1>
   P-Asserted-Identity: <sip:${caller}@127.0.0.1>
   History-Info: <${origin}>;index=1,<sip:+861012345@127.0.0.1:5081>;index=1.1
   User-to-User: hex(matter=${matter}&ticket=${work_order}&origin=${origin}&agent=${agent});encoding=hex;purpose=hotline-transfer
   X-Matter-Code: ${matter}
   X-Work-Order: ${work_order}
result: routed to beijing through beijing/lab: INVITE sip:+861012345@127.0.0.1:5081
"##;

const KEYS_JSON: &str = r##"{
  "fingerprint": "{fingerprint}",
  "catalogue_version": "2024-12",
  "at": "2025-01-06T09:30:00+08:00",
  "trigger": {
    "kind": "keys",
    "value": "*1"
  },
  "rule": {
    "rule": "keys.map \"*1\"",
    "origin": {
      "file": "dialplans/jingjinji.toml",
      "line": 19,
      "column": 1
    }
  },
  "destination": {
    "id": "beijing",
    "name": "北京市热线",
    "name_en": "Beijing 12345 hotline",
    "area_code": "010",
    "trunk": "beijing",
    "ring_timeout_secs": 30,
    "schedule": [
      "always"
    ],
    "active": true
  },
  "gateways": [
    {
      "id": "beijing/lab",
      "address": "sip:127.0.0.1:5081",
      "transport": "udp",
      "priority": 1,
      "weight": 1,
      "health": "unknown",
      "channels": 30,
      "free_channels": 30,
      "request_uri": "sip:+861012345@127.0.0.1:5081",
      "skipped": null
    }
  ],
  "headers": [
    {
      "name": "To",
      "value": "<sip:+861012345@127.0.0.1:5081>"
    },
    {
      "name": "From",
      "value": "<sip:${caller}@127.0.0.1>"
    },
    {
      "name": "P-Asserted-Identity",
      "value": "<sip:${caller}@127.0.0.1>"
    },
    {
      "name": "History-Info",
      "value": "<${origin}>;index=1,<sip:+861012345@127.0.0.1:5081>;index=1.1"
    },
    {
      "name": "User-to-User",
      "value": "hex(matter=${matter}&ticket=${work_order}&origin=${origin}&agent=${agent});encoding=hex;purpose=hotline-transfer"
    },
    {
      "name": "X-Matter-Code",
      "value": "${matter}"
    },
    {
      "name": "X-Work-Order",
      "value": "${work_order}"
    }
  ],
  "matter": null,
  "decision": {
    "decision": "routed",
    "destination": "beijing",
    "gateway": "beijing/lab",
    "request_uri": "sip:+861012345@127.0.0.1:5081"
  }
}
"##;

const TEL_TEXT: &str = r##"plan {fingerprint} (catalogue 2024-12) at 2025-01-06T09:30:00+08:00
1. trigger: Refer-To "tel:022-12345"
2. rule: numbers "022-12345" at dialplans/tianjin.toml:9:12
3. destination: tianjin 天津市热线 (Tianjin 12345 hotline), area code 022, trunk tianjin, rings up to 30 s
4. schedule: always (active at 2025-01-06T09:30:00+08:00)
5. gateways in the order tried:
   1. tianjin/lab sip:127.0.0.1:5082 udp, priority 1, weight 1, health unknown, 30 of 30 channels free
      INVITE sip:02212345@127.0.0.1:5082
6. headers:
   To: <sip:02212345@127.0.0.1:5082>
   From: <sip:13800000000@127.0.0.1>
   P-Asserted-Identity: <sip:13800000000@127.0.0.1>
   History-Info: <${origin}>;index=1,<sip:02212345@127.0.0.1:5082>;index=1.1
   User-to-User: hex(matter=${matter}&ticket=${work_order}&origin=${origin}&agent=${agent});encoding=hex;purpose=hotline-transfer
result: routed to tianjin through tianjin/lab: INVITE sip:02212345@127.0.0.1:5082
"##;

const TEL_JSON: &str = r##"{
  "fingerprint": "{fingerprint}",
  "catalogue_version": "2024-12",
  "at": "2025-01-06T09:30:00+08:00",
  "trigger": {
    "kind": "refer_to",
    "value": "tel:022-12345"
  },
  "rule": {
    "rule": "numbers \"022-12345\"",
    "origin": {
      "file": "dialplans/tianjin.toml",
      "line": 9,
      "column": 12
    }
  },
  "destination": {
    "id": "tianjin",
    "name": "天津市热线",
    "name_en": "Tianjin 12345 hotline",
    "area_code": "022",
    "trunk": "tianjin",
    "ring_timeout_secs": 30,
    "schedule": [
      "always"
    ],
    "active": true
  },
  "gateways": [
    {
      "id": "tianjin/lab",
      "address": "sip:127.0.0.1:5082",
      "transport": "udp",
      "priority": 1,
      "weight": 1,
      "health": "unknown",
      "channels": 30,
      "free_channels": 30,
      "request_uri": "sip:02212345@127.0.0.1:5082",
      "skipped": null
    }
  ],
  "headers": [
    {
      "name": "To",
      "value": "<sip:02212345@127.0.0.1:5082>"
    },
    {
      "name": "From",
      "value": "<sip:13800000000@127.0.0.1>"
    },
    {
      "name": "P-Asserted-Identity",
      "value": "<sip:13800000000@127.0.0.1>"
    },
    {
      "name": "History-Info",
      "value": "<${origin}>;index=1,<sip:02212345@127.0.0.1:5082>;index=1.1"
    },
    {
      "name": "User-to-User",
      "value": "hex(matter=${matter}&ticket=${work_order}&origin=${origin}&agent=${agent});encoding=hex;purpose=hotline-transfer"
    }
  ],
  "matter": null,
  "decision": {
    "decision": "routed",
    "destination": "tianjin",
    "gateway": "tianjin/lab",
    "request_uri": "sip:02212345@127.0.0.1:5082"
  }
}
"##;

const XIONGAN_TEXT: &str = r##"plan {fingerprint} (catalogue 2024-12) at 2025-01-06T09:30:00+08:00
1. trigger: destination "xiongan"
2. rule: destination.xiongan at dialplans/hebei.toml:194:1
3. destination: xiongan 雄安新区热线 (Xiong'an New Area 12345 hotline), area code 0312, trunk xiongan, rings up to 30 s
4. schedule: always (active at 2025-01-06T09:30:00+08:00)
5. gateways in the order tried:
   1. xiongan/lab sip:127.0.0.1:5084 udp, priority 1, weight 1, health unknown, 10 of 10 channels free
      INVITE sip:xiongan-12345@127.0.0.1:5084
6. headers:
   To: <sip:xiongan-12345@127.0.0.1:5084>
   From: <sip:${caller}@127.0.0.1>
   P-Asserted-Identity: <sip:${caller}@127.0.0.1>
   History-Info: <${origin}>;index=1,<sip:xiongan-12345@127.0.0.1:5084>;index=1.1
   User-to-User: hex(matter=social_insurance&ticket=${work_order}&origin=${origin}&agent=${agent});encoding=hex;purpose=hotline-transfer
7. matter: social_insurance 社保医保 (Social and medical insurance): accepted, scope: 社会保险和医疗保险的政策咨询、业务办理和进度查询
result: routed to xiongan through xiongan/lab: INVITE sip:xiongan-12345@127.0.0.1:5084
"##;

const XIONGAN_JSON: &str = r##"{
  "fingerprint": "{fingerprint}",
  "catalogue_version": "2024-12",
  "at": "2025-01-06T09:30:00+08:00",
  "trigger": {
    "kind": "destination",
    "value": "xiongan"
  },
  "rule": {
    "rule": "destination.xiongan",
    "origin": {
      "file": "dialplans/hebei.toml",
      "line": 194,
      "column": 1
    }
  },
  "destination": {
    "id": "xiongan",
    "name": "雄安新区热线",
    "name_en": "Xiong'an New Area 12345 hotline",
    "area_code": "0312",
    "trunk": "xiongan",
    "ring_timeout_secs": 30,
    "schedule": [
      "always"
    ],
    "active": true
  },
  "gateways": [
    {
      "id": "xiongan/lab",
      "address": "sip:127.0.0.1:5084",
      "transport": "udp",
      "priority": 1,
      "weight": 1,
      "health": "unknown",
      "channels": 10,
      "free_channels": 10,
      "request_uri": "sip:xiongan-12345@127.0.0.1:5084",
      "skipped": null
    }
  ],
  "headers": [
    {
      "name": "To",
      "value": "<sip:xiongan-12345@127.0.0.1:5084>"
    },
    {
      "name": "From",
      "value": "<sip:${caller}@127.0.0.1>"
    },
    {
      "name": "P-Asserted-Identity",
      "value": "<sip:${caller}@127.0.0.1>"
    },
    {
      "name": "History-Info",
      "value": "<${origin}>;index=1,<sip:xiongan-12345@127.0.0.1:5084>;index=1.1"
    },
    {
      "name": "User-to-User",
      "value": "hex(matter=social_insurance&ticket=${work_order}&origin=${origin}&agent=${agent});encoding=hex;purpose=hotline-transfer"
    }
  ],
  "matter": {
    "code": "social_insurance",
    "name": "社保医保",
    "name_en": "Social and medical insurance",
    "acceptance": "accepted",
    "scope": "社会保险和医疗保险的政策咨询、业务办理和进度查询"
  },
  "decision": {
    "decision": "routed",
    "destination": "xiongan",
    "gateway": "xiongan/lab",
    "request_uri": "sip:xiongan-12345@127.0.0.1:5084"
  }
}
"##;

const REFUSED_TEXT: &str = r##"plan {fingerprint} (catalogue 2024-12) at 2025-01-06T09:30:00+08:00
1. trigger: Refer-To "sip:13800000000@127.0.0.1"
2. rule: none matches
result: refused: Refer-To "sip:13800000000@127.0.0.1" names no destination of the plan, and only listed destinations may be called
"##;

const REFUSED_JSON: &str = r##"{
  "fingerprint": "{fingerprint}",
  "catalogue_version": "2024-12",
  "at": "2025-01-06T09:30:00+08:00",
  "trigger": {
    "kind": "refer_to",
    "value": "sip:13800000000@127.0.0.1"
  },
  "rule": null,
  "destination": null,
  "gateways": [],
  "headers": [],
  "matter": null,
  "decision": {
    "decision": "refused",
    "reason": "Refer-To \"sip:13800000000@127.0.0.1\" names no destination of the plan, and only listed destinations may be called"
  }
}
"##;
