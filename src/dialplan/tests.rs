//! Plan-level tests: parsing, each validation rule with its exact message, lookups and
//! explanations. Unit tests of the parts sit in their own files.

use std::path::PathBuf;

use super::*;

mod explanations;
mod validation;

/// A small plan in two files, covering every table.
const REGION: &str = r#"
[destination.beijing]
name = "北京市热线"
name_en = "Beijing 12345 hotline"
area_code = "010"
trunk = "beijing"
numbers = ["010-12345"]
names = ["北京"]
accepts = { transport = "", housing = "住房政策咨询" }
rejects = { education = "请拨打教育热线" }

[destination.baoding]
name = "保定市热线"
name_en = "Baoding 12345 hotline"
area_code = "0312"
trunk = "hebei"
numbers = ["0312-12345"]

[destination.xiongan]
name = "雄安新区热线"
name_en = "Xiong'an 12345 hotline"
area_code = "0312"
trunk = "xiongan"
user = "xiongan-12345"
sip_users = ["xiong-an"]
ring_timeout_secs = 45

[[destination.xiongan.schedule]]
days = ["mon-fri"]
hours = "08:00-20:00"

[trunk.beijing]
numbers = "e164"
identity = "anonymous"
domain = "hotline.example"
context = { diversion = true, history_info = false, headers = { "X-Work-Order" = "work_order", "X-Caller" = "caller" } }

[trunk.beijing.gateway.backup]
address = "sip:gw2.example.net;transport=tcp"
priority = 2

[trunk.beijing.gateway.light]
address = "127.0.0.1:5081"
weight = 1
channels = 10

[trunk.beijing.gateway.heavy]
address = "127.0.0.1:5181"
weight = 3

[trunk.hebei]
numbers = "national"

[trunk.hebei.gateway.main]
address = "127.0.0.1:5090"
transport = "tcp"

[trunk.hebei.gateway.night]
address = "127.0.0.1:5190"
priority = 0

[[trunk.hebei.gateway.night.schedule]]
hours = "20:00-08:00"

[trunk.xiongan]
numbers = "user"
identity = "from"

[trunk.xiongan.gateway.lab]
address = "127.0.0.1:5084"
"#;

const SHARED: &str = r##"
[keys]
terminator = "#"

[keys.map]
"*1" = "beijing"
"*3" = "baoding"
"*300" = "xiongan"

[catalogue]
version = "2024-12"

[category.transport]
name = "交通出行"
name_en = "Transport and travel"
scope = "公共交通"

[category.housing]
name = "住房"
name_en = "Housing"

[category.education]
name = "教育"
name_en = "Education"
scope = "入学"
"##;

/// Monday 2025-01-06, 10:00 China Standard Time.
const MONDAY_10: &str = "2025-01-06T10:00:00+08:00";

fn plan() -> Plan {
    match Plan::from_sources(&[("region.toml", REGION), ("shared.toml", SHARED)]) {
        Ok(plan) => plan,
        Err(problems) => panic!("{problems:#?}"),
    }
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// Compiles `sources` and returns the problems as `file:line:column: message` lines.
fn problems(sources: &[(&str, &str)]) -> Vec<String> {
    match Plan::from_sources(sources) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

/// Returns a valid destination and trunk followed by `extra`, the text under test.
fn with_base(extra: &str) -> String {
    format!(
        "[destination.beijing]\nname = \"北京市热线\"\nname_en = \"Beijing\"\n\
         area_code = \"010\"\ntrunk = \"beijing\"\n\n\
         [trunk.beijing.gateway.a]\naddress = \"127.0.0.1:5081\"\n{extra}"
    )
}

fn base_problems(extra: &str) -> Vec<String> {
    problems(&[("t.toml", &with_base(extra))])
}

#[test]
fn shipped_plan_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dialplans");
    let plan = match Plan::load(&[dir]) {
        Ok(plan) => plan,
        Err(problems) => panic!("{problems:#?}"),
    };
    assert_eq!(plan.destinations().len(), 14);
    assert_eq!(plan.trunks().len(), 14);
    assert_eq!(plan.catalogue_version(), Some("2024-12"));
    assert_eq!(plan.match_keys("*1"), KeyMatch::Complete("beijing"));
    assert_eq!(plan.match_keys("*2"), KeyMatch::Complete("tianjin"));
    assert_eq!(plan.match_keys("*311"), KeyMatch::Complete("shijiazhuang"));
    assert_eq!(plan.match_keys("*300"), KeyMatch::Complete("xiongan"));
    assert_eq!(plan.resolve_refer_to("tel:0312-12345"), Some("baoding"));
    assert_eq!(plan.resolve_name("雄安新区热线"), Some("xiongan"));

    let ports: Vec<String> = plan
        .trunks()
        .iter()
        .map(|trunk| trunk.gateways[0].address.to_string())
        .collect();
    assert!(
        ports.contains(&"sip:127.0.0.1:5083".to_owned()),
        "{ports:?}"
    );
    for destination in plan.destinations() {
        assert_eq!(destination.accepts.len(), 6, "{}", destination.id);
    }
}

#[test]
fn destination_fields_and_defaults() {
    let plan = plan();
    let beijing = plan.destination("beijing").unwrap();
    assert_eq!(beijing.name, "北京市热线");
    assert_eq!(beijing.area_code, "010");
    assert_eq!(beijing.service_number, "12345");
    assert_eq!(beijing.ring_timeout_secs, 30);
    assert_eq!(beijing.origin.to_string(), "region.toml:2:1");
    assert_eq!(plan.destination("xiongan").unwrap().ring_timeout_secs, 45);
    assert!(plan.destination("tianjin").is_none());

    let ids: Vec<&str> = plan.destinations().iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        ["beijing", "baoding", "xiongan"],
        "file order, not sorted"
    );
}

#[test]
fn trunk_fields_and_defaults() {
    let plan = plan();
    let beijing = plan.trunk("beijing").unwrap();
    assert_eq!(beijing.identity, IdentityPolicy::Anonymous);
    assert_eq!(beijing.domain.as_deref(), Some("hotline.example"));
    assert!(beijing.context.diversion);
    assert!(!beijing.context.history_info);
    assert!(beijing.context.user_to_user);
    assert_eq!(
        beijing.context.headers,
        [
            ("X-Work-Order".to_owned(), ContextField::WorkOrder),
            ("X-Caller".to_owned(), ContextField::Caller),
        ]
    );
    assert_eq!(beijing.health_check, HealthCheck::default());
    assert_eq!(beijing.credentials, None);

    let backup = &beijing.gateways[0];
    assert_eq!(backup.id.as_str(), "beijing/backup");
    assert_eq!(backup.id.trunk(), "beijing");
    assert_eq!(backup.transport, Transport::Tcp);
    assert_eq!(backup.priority, 2);
    assert_eq!(backup.weight, 1);
    assert_eq!(backup.channels, None);
    assert_eq!(beijing.gateways[1].channels, Some(10));

    let id = GatewayId::new("hebei", "main");
    assert_eq!(plan.gateway(&id).unwrap().transport, Transport::Tcp);
    assert!(plan.gateway(&GatewayId::new("hebei", "none")).is_none());
}

#[test]
fn fingerprint_follows_content() {
    let first = plan();
    assert_eq!(first.fingerprint().len(), 16);
    assert_eq!(first.fingerprint(), plan().fingerprint());
    let renamed = Plan::from_sources(&[("a.toml", REGION), ("b.toml", SHARED)]).unwrap();
    assert_eq!(renamed.fingerprint(), first.fingerprint());
    let changed = SHARED.replace("2024-12", "2025-01");
    let changed = Plan::from_sources(&[("region.toml", REGION), ("shared.toml", &changed)]);
    assert_ne!(changed.unwrap().fingerprint(), first.fingerprint());
    assert_eq!(first.files(), ["region.toml", "shared.toml"]);
}

#[test]
fn keys_with_terminator() {
    let plan = plan();
    assert_eq!(plan.keys().settings.terminator, Some('#'));
    assert_eq!(plan.keys().settings.inter_digit_timeout_ms, 3000);
    assert_eq!(plan.match_keys("*1"), KeyMatch::Complete("beijing"));
    assert_eq!(plan.match_keys("*3"), KeyMatch::Partial);
    assert_eq!(plan.match_keys("*3#"), KeyMatch::Complete("baoding"));
    assert_eq!(plan.match_keys("*30"), KeyMatch::Partial);
    assert_eq!(plan.match_keys("*300"), KeyMatch::Complete("xiongan"));
    assert_eq!(plan.match_keys("*301"), KeyMatch::NoMatch);
    assert_eq!(plan.match_keys("*30#"), KeyMatch::NoMatch);
}

#[test]
fn refer_to_by_number() {
    let plan = plan();
    for uri in [
        "tel:010-12345",
        "tel:+86-10-12345",
        "tel:+861012345",
        "tel:(010)12345",
        "tel:12345;phone-context=+86-10",
        "sip:01012345@127.0.0.1",
        "sip:+861012345@hotline.example;user=phone",
        "<sip:010-12345@127.0.0.1>",
        "\"Beijing\" <tel:010.12345>",
    ] {
        assert_eq!(plan.resolve_refer_to(uri), Some("beijing"), "{uri}");
    }
    assert_eq!(plan.resolve_refer_to("tel:0312-12345"), Some("baoding"));
}

#[test]
fn refer_to_by_sip_user() {
    let plan = plan();
    assert_eq!(
        plan.resolve_refer_to("sip:beijing@127.0.0.1"),
        Some("beijing")
    );
    assert_eq!(
        plan.resolve_refer_to("sip:BeiJing@elsewhere.example"),
        Some("beijing")
    );
    assert_eq!(
        plan.resolve_refer_to("sips:xiongan@127.0.0.1"),
        Some("xiongan")
    );
    assert_eq!(
        plan.resolve_refer_to("sip:xiong-an@127.0.0.1"),
        Some("xiongan")
    );
    assert_eq!(
        plan.resolve_refer_to("sip:xiong%2Dan@127.0.0.1"),
        Some("xiongan")
    );
}

#[test]
fn refer_to_unlisted_is_refused() {
    let plan = plan();
    for uri in [
        "sip:13800000000@127.0.0.1",
        "tel:+8613800000000",
        "tel:12345",
        "tel:022-12345",
        "sip:tianjin@127.0.0.1",
        "sip:127.0.0.1",
        "http://beijing",
        "mailto:beijing@example.net",
        "beijing",
        "",
        "<sip:beijing@127.0.0.1",
        "sip:bei%ZZjing@127.0.0.1",
    ] {
        assert_eq!(plan.resolve_refer_to(uri), None, "{uri}");
    }
}

#[test]
fn http_names() {
    let plan = plan();
    assert_eq!(plan.resolve_name("北京市热线"), Some("beijing"));
    assert_eq!(plan.resolve_name(" 北京 "), Some("beijing"));
    assert_eq!(plan.resolve_name("beijing 12345 HOTLINE"), Some("beijing"));
    assert_eq!(plan.resolve_name("xiongan"), Some("xiongan"));
    assert_eq!(plan.resolve_name("雄安新区热线"), Some("xiongan"));
    assert_eq!(plan.resolve_name("天津市热线"), None);
    assert_eq!(plan.resolve_name(""), None);
}

#[test]
fn matter_acceptance() {
    let plan = plan();
    assert_eq!(plan.matter("transport").unwrap().name, "交通出行");
    assert!(plan.matter("parking").is_none());
    assert_eq!(
        plan.accepts("beijing", "transport"),
        Acceptance::Accepted {
            scope: "公共交通".to_owned()
        }
    );
    assert_eq!(
        plan.accepts("beijing", "housing"),
        Acceptance::Accepted {
            scope: "住房政策咨询".to_owned()
        }
    );
    assert_eq!(
        plan.accepts("beijing", "education"),
        Acceptance::NotAccepted {
            scope: "请拨打教育热线".to_owned()
        }
    );
    assert_eq!(plan.accepts("baoding", "transport"), Acceptance::Unknown);
    assert_eq!(plan.accepts("beijing", "parking"), Acceptance::Unknown);
    assert_eq!(plan.accepts("tianjin", "transport"), Acceptance::Unknown);
}

#[test]
fn gateways_by_priority_then_weight() {
    let plan = plan();
    let ids = |gateways: Vec<&Gateway>| -> Vec<String> {
        gateways.iter().map(|g| g.id.to_string()).collect()
    };
    assert_eq!(
        ids(plan.active_gateways("beijing", at(MONDAY_10))),
        ["beijing/heavy", "beijing/light", "beijing/backup"]
    );
    assert!(plan.active_gateways("tianjin", at(MONDAY_10)).is_empty());
}

#[test]
fn gateway_schedule_applies() {
    let plan = plan();
    let ids = |gateways: Vec<&Gateway>| -> Vec<String> {
        gateways.iter().map(|g| g.id.to_string()).collect()
    };
    assert_eq!(
        ids(plan.active_gateways("baoding", at(MONDAY_10))),
        ["hebei/main"]
    );
    assert_eq!(
        ids(plan.active_gateways("baoding", at("2025-01-06T23:00:00+08:00"))),
        ["hebei/night", "hebei/main"]
    );
}

#[test]
fn destination_schedule_applies() {
    let plan = plan();
    assert_eq!(plan.active_gateways("xiongan", at(MONDAY_10)).len(), 1);
    let saturday = at("2025-01-11T10:00:00+08:00");
    assert!(plan.active_gateways("xiongan", saturday).is_empty());
    let monday_night = at("2025-01-06T21:00:00+08:00");
    assert!(plan.active_gateways("xiongan", monday_night).is_empty());
}

#[test]
fn request_uri_per_number_format() {
    let plan = plan();
    let uri = |destination: &str, gateway: &str| {
        let destination = plan.destination(destination).unwrap();
        let (trunk, name) = gateway.split_once('/').unwrap();
        let gateway = plan.gateway(&GatewayId::new(trunk, name)).unwrap();
        plan.request_uri(destination, gateway)
    };
    assert_eq!(
        uri("beijing", "beijing/light"),
        "sip:+861012345@127.0.0.1:5081"
    );
    assert_eq!(
        uri("beijing", "beijing/backup"),
        "sip:+861012345@gw2.example.net;transport=tcp"
    );
    assert_eq!(
        uri("baoding", "hebei/main"),
        "sip:031212345@127.0.0.1:5090;transport=tcp"
    );
    assert_eq!(
        uri("baoding", "hebei/night"),
        "sip:031212345@127.0.0.1:5190"
    );
    assert_eq!(
        uri("xiongan", "xiongan/lab"),
        "sip:xiongan-12345@127.0.0.1:5084"
    );
}

#[test]
fn truncated_plans_do_not_panic() {
    let text = format!("{REGION}{SHARED}");
    for (end, _) in text.char_indices().step_by(3) {
        let _ = Plan::from_sources(&[("t.toml", &text[..end])]);
    }
}

#[test]
fn plan_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Plan>();
    assert_send_sync::<std::sync::Arc<Plan>>();
}
