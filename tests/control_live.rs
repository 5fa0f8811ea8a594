//! The control API's live views of the trunks: `GET /v1/gateways` and `GET /v1/route`,
//! which explains a transfer with the gateways' current health and channels.

mod common;

use common::plans::{ControlClient, PlanGateway, beijing_plan};
use common::{EngineSettings, Harness};

fn start(test: &str) -> (Harness, ControlClient) {
    let harness = Harness::start_with(test, |ports| EngineSettings {
        dialplan: Some(beijing_plan(
            ports,
            &[
                PlanGateway::new("a", 0, 1).channels(2),
                PlanGateway::new("b", 1, 2),
            ],
            None,
        )),
        ..EngineSettings::default()
    });
    let control = ControlClient::new(&harness.ports);
    (harness, control)
}

#[test]
fn gateways_list_health_and_channels() {
    let (harness, control) = start("gateways_list_health_and_channels");
    let (status, body) = control.get("/v1/gateways");
    assert_eq!(status, 200, "{body}");
    let gateways = body.as_array().expect("a JSON array");
    assert_eq!(gateways.len(), 3, "{body}");
    assert_eq!(gateways[0]["gateway"], "beijing/a");
    assert_eq!(gateways[0]["trunk"], "beijing");
    assert_eq!(gateways[0]["health"], "unknown");
    assert_eq!(gateways[0]["channels_in_use"], 0);
    assert_eq!(gateways[0]["channel_limit"], 2);
    assert_eq!(gateways[1]["gateway"], "beijing/b");
    assert!(gateways[1]["channel_limit"].is_null(), "{body}");
    assert_eq!(gateways[2]["gateway"], "tianjin/lab");
    harness.stop();
}

#[test]
fn route_explains_with_live_state() {
    let (harness, control) = start("route_explains_with_live_state");
    let (status, body) = control.get("/v1/route?keys=*1&matter=social_insurance");
    assert_eq!(status, 200, "{body}");
    let text = body.to_string();
    assert!(text.contains("beijing/a"), "{text}");
    assert!(text.contains("beijing/b"), "{text}");
    assert!(text.contains("+861012345"), "{text}");

    let (status, body) = control.get("/v1/route");
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "invalid_query");

    let (status, body) = control.get("/v1/route?keys=*1&destination=beijing");
    assert_eq!(status, 422, "{body}");

    let (status, body) = control.get("/v1/route?bogus=1");
    assert_eq!(status, 400, "{body}");
    harness.stop();
}
