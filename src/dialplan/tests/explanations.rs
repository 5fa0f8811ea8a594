//! `explain` on the test plan: rules, gateway order with and without live state, header
//! previews and refusals.

use std::collections::HashMap;

use super::*;

/// Live state given per gateway id.
#[derive(Default)]
struct Live {
    health: HashMap<String, Health>,
    free: HashMap<String, u32>,
}

impl GatewayStatus for Live {
    fn health(&self, gateway: &GatewayId) -> Option<Health> {
        self.health.get(gateway.as_str()).copied()
    }
    fn free_channels(&self, gateway: &GatewayId) -> Option<u32> {
        self.free.get(gateway.as_str()).copied()
    }
}

fn options(at_text: &str) -> ExplainOptions<'static> {
    ExplainOptions {
        matter: None,
        caller: None,
        at: at(at_text),
        status: None,
    }
}

fn header<'a>(explanation: &'a Explanation, name: &str) -> Option<&'a str> {
    explanation
        .headers
        .iter()
        .find(|header| header.name == name)
        .map(|header| header.value.as_str())
}

fn refusal(explanation: &Explanation) -> Option<&str> {
    match &explanation.decision {
        Decision::Refused { reason } => Some(reason),
        Decision::Routed { .. } => None,
    }
}

#[test]
fn keys_route_without_live_state() {
    let plan = plan();
    let explanation = explain(&plan, Trigger::Keys("*1".to_owned()), options(MONDAY_10));
    let rule = explanation.rule.as_ref().unwrap();
    assert_eq!(rule.rule, "keys.map \"*1\"");
    assert_eq!(rule.origin.to_string(), "shared.toml:6:1");
    assert_eq!(explanation.destination.as_ref().unwrap().id, "beijing");

    let order: Vec<&str> = explanation.gateways.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(order, ["beijing/heavy", "beijing/light", "beijing/backup"]);
    let light = &explanation.gateways[1];
    assert_eq!(light.health, Health::Unknown);
    assert_eq!(light.free_channels, Some(10));
    assert_eq!(explanation.gateways[0].free_channels, None);
    assert_eq!(
        explanation.decision,
        Decision::Routed {
            destination: "beijing".to_owned(),
            gateway: GatewayId::new("beijing", "heavy"),
            request_uri: "sip:+861012345@127.0.0.1:5181".to_owned(),
        }
    );
}

#[test]
fn terminated_keys_name_their_rule() {
    let plan = plan();
    let explanation = explain(&plan, Trigger::Keys("*3#".to_owned()), options(MONDAY_10));
    assert_eq!(explanation.rule.as_ref().unwrap().rule, "keys.map \"*3\"");
    assert!(explanation.is_routed());
}

#[test]
fn live_state_skips_gateways() {
    let plan = plan();
    let mut live = Live::default();
    live.health.insert("beijing/heavy".to_owned(), Health::Down);
    live.free.insert("beijing/light".to_owned(), 0);
    live.health.insert("beijing/backup".to_owned(), Health::Up);
    let options = ExplainOptions {
        status: Some(&live),
        ..options(MONDAY_10)
    };
    let explanation = explain(&plan, Trigger::Destination("beijing".to_owned()), options);

    let skipped: Vec<Option<&str>> = explanation
        .gateways
        .iter()
        .map(|g| g.skipped.as_deref())
        .collect();
    assert_eq!(
        skipped,
        [
            Some("marked down by its health checks"),
            Some("no free channels"),
            None
        ]
    );
    match &explanation.decision {
        Decision::Routed {
            gateway,
            request_uri,
            ..
        } => {
            assert_eq!(gateway.as_str(), "beijing/backup");
            assert_eq!(request_uri, "sip:+861012345@gw2.example.net;transport=tcp");
        }
        Decision::Refused { reason } => panic!("refused: {reason}"),
    }
}

#[test]
fn all_gateways_down_is_refused() {
    let plan = plan();
    let mut live = Live::default();
    live.health.insert("hebei/main".to_owned(), Health::Down);
    let options = ExplainOptions {
        status: Some(&live),
        ..options(MONDAY_10)
    };
    let explanation = explain(
        &plan,
        Trigger::ReferTo("tel:0312-12345".to_owned()),
        options,
    );
    assert_eq!(
        explanation.gateways[0].skipped.as_deref(),
        Some("not scheduled at 2025-01-06T10:00:00+08:00")
    );
    assert_eq!(
        refusal(&explanation),
        Some("no gateway of trunk hebei can take the call, see the reasons above")
    );
}

#[test]
fn anonymous_identity_and_context() {
    let plan = plan();
    let options = ExplainOptions {
        caller: Some("13800000000"),
        matter: Some("transport"),
        ..options(MONDAY_10)
    };
    let explanation = explain(&plan, Trigger::Name("北京".to_owned()), options);
    assert_eq!(
        header(&explanation, "From"),
        Some("\"Anonymous\" <sip:anonymous@anonymous.invalid>")
    );
    assert_eq!(
        header(&explanation, "P-Asserted-Identity"),
        Some("<sip:+8613800000000@hotline.example>")
    );
    assert_eq!(header(&explanation, "Privacy"), Some("id"));
    assert_eq!(header(&explanation, "History-Info"), None);
    assert_eq!(
        header(&explanation, "Diversion"),
        Some("<${origin}>;reason=deflection")
    );
    assert_eq!(
        header(&explanation, "User-to-User"),
        Some(
            "hex(matter=transport&ticket=${work_order}&origin=${origin}&agent=${agent});\
             encoding=hex;purpose=hotline-transfer"
        )
    );
    assert_eq!(header(&explanation, "X-Work-Order"), Some("${work_order}"));
    assert_eq!(header(&explanation, "X-Caller"), Some("+8613800000000"));
}

#[test]
fn from_identity_without_pai() {
    let plan = plan();
    let options = ExplainOptions {
        caller: Some("+86 311 8765 4321"),
        ..options(MONDAY_10)
    };
    let explanation = explain(&plan, Trigger::Destination("xiongan".to_owned()), options);
    assert_eq!(
        header(&explanation, "From"),
        Some("<sip:+86 311 8765 4321@127.0.0.1>")
    );
    assert_eq!(header(&explanation, "P-Asserted-Identity"), None);
    assert_eq!(
        header(&explanation, "To"),
        Some("<sip:xiongan-12345@127.0.0.1:5084>")
    );
}

#[test]
fn matter_scope_shown() {
    let plan = plan();
    let options = ExplainOptions {
        matter: Some("housing"),
        ..options(MONDAY_10)
    };
    let explanation = explain(&plan, Trigger::Keys("*1".to_owned()), options);
    let matter = explanation.matter.as_ref().unwrap();
    assert_eq!(matter.name.as_deref(), Some("住房"));
    assert_eq!(
        matter.acceptance,
        Acceptance::Accepted {
            scope: "住房政策咨询".to_owned()
        }
    );
    assert!(explanation.is_routed());
}

#[test]
fn rejected_matter_is_refused() {
    let plan = plan();
    let options = ExplainOptions {
        matter: Some("education"),
        ..options(MONDAY_10)
    };
    let explanation = explain(&plan, Trigger::Keys("*1".to_owned()), options);
    assert_eq!(
        refusal(&explanation),
        Some("destination beijing does not accept matter education (教育): 请拨打教育热线")
    );
}

#[test]
fn unknown_matter_is_refused() {
    let plan = plan();
    let options = ExplainOptions {
        matter: Some("parking"),
        ..options(MONDAY_10)
    };
    let explanation = explain(&plan, Trigger::Keys("*1".to_owned()), options);
    assert_eq!(
        refusal(&explanation),
        Some("matter \"parking\" is not in the catalogue (version 2024-12)")
    );
}

#[test]
fn matter_not_in_catalogue_entry_is_unknown() {
    let plan = plan();
    let options = ExplainOptions {
        matter: Some("transport"),
        ..options(MONDAY_10)
    };
    let explanation = explain(&plan, Trigger::Destination("baoding".to_owned()), options);
    assert_eq!(
        explanation.matter.as_ref().unwrap().acceptance,
        Acceptance::Unknown
    );
    assert!(explanation.is_routed());
}

#[test]
fn partial_and_unknown_keys_are_refused() {
    let plan = plan();
    let partial = explain(&plan, Trigger::Keys("*30".to_owned()), options(MONDAY_10));
    assert_eq!(
        refusal(&partial),
        Some("keys \"*30\" are the start of a longer transfer key, more keys are needed")
    );
    assert!(partial.rule.is_none());
    let unknown = explain(&plan, Trigger::Keys("*9".to_owned()), options(MONDAY_10));
    assert_eq!(refusal(&unknown), Some("keys \"*9\" match no transfer key"));
}

#[test]
fn unknown_destination_and_name_are_refused() {
    let plan = plan();
    let id = explain(
        &plan,
        Trigger::Destination("tianjin".to_owned()),
        options(MONDAY_10),
    );
    assert_eq!(refusal(&id), Some("no destination has the id \"tianjin\""));
    let name = explain(&plan, Trigger::Name("天津".to_owned()), options(MONDAY_10));
    assert_eq!(refusal(&name), Some("no destination is named \"天津\""));
}

#[test]
fn inactive_destination_is_refused() {
    let plan = plan();
    let saturday = "2025-01-11T10:00:00+08:00";
    let explanation = explain(&plan, Trigger::Keys("*300".to_owned()), options(saturday));
    let destination = explanation.destination.as_ref().unwrap();
    assert!(!destination.active);
    assert_eq!(
        destination.schedule,
        ["days mon,tue,wed,thu,fri hours 08:00-20:00"]
    );
    assert_eq!(
        refusal(&explanation),
        Some(
            "destination xiongan takes no transfers at 2025-01-11T10:00:00+08:00 under its schedule"
        )
    );
}

#[test]
fn json_names_fields() {
    let plan = plan();
    let explanation = explain(&plan, Trigger::Keys("*1".to_owned()), options(MONDAY_10));
    let json = serde_json::to_value(&explanation).unwrap();
    assert_eq!(json["trigger"]["kind"], "keys");
    assert_eq!(json["trigger"]["value"], "*1");
    assert_eq!(json["decision"]["decision"], "routed");
    assert_eq!(json["gateways"][0]["health"], "unknown");
    assert_eq!(json["at"], "2025-01-06T10:00:00+08:00");
}
