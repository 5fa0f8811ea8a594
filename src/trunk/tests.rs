use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;

fn spec(id: &str, trunk: &str, target: &str) -> GatewaySpec {
    GatewaySpec {
        id: GatewayId::new(id),
        trunk: TrunkId::new(trunk),
        target: target.parse().expect("valid target"),
        priority: 1,
        weight: 1,
        channel_limit: Some(2),
        probe: ProbeSpec {
            down_after: 2,
            up_after: 2,
            ..ProbeSpec::default()
        },
    }
}

fn id(value: &str) -> GatewayId {
    GatewayId::new(value)
}

#[test]
fn target_parses_uri_and_socket() {
    let uri: GatewayTarget = "sip:gw1.example.net:5070;transport=tcp"
        .parse()
        .expect("valid uri");
    assert_eq!(uri.protocol(), Protocol::Tcp);
    assert_eq!(
        uri.request_uri().to_string(),
        "sip:gw1.example.net:5070;transport=tcp"
    );

    let socket: GatewayTarget = "192.0.2.1:5060".parse().expect("valid address");
    assert_eq!(socket.protocol(), Protocol::Udp);
    assert_eq!(socket.request_uri().to_string(), "sip:192.0.2.1:5060");

    let tcp = GatewayTarget::Socket(Target {
        addr: "[2001:db8::1]:5060".parse().expect("valid address"),
        protocol: Protocol::Tcp,
    });
    assert_eq!(
        tcp.request_uri().to_string(),
        "sip:[2001:db8::1]:5060;transport=tcp"
    );
}

#[test]
fn target_rejects_invalid() {
    for input in [
        "tel:+8612345",
        "sips:gw.example.net",
        "sip:gw;transport=sctp",
        "gw:5060",
    ] {
        assert!(input.parse::<GatewayTarget>().is_err(), "{input}");
    }
}

#[tokio::test]
async fn target_resolves_ip_literal() {
    let target: GatewayTarget = "sip:127.0.0.1".parse().expect("valid uri");
    let resolved = target.resolve().await.expect("resolves");
    assert_eq!(
        resolved.addr,
        "127.0.0.1:5060".parse().expect("valid address")
    );
    assert_eq!(resolved.protocol, Protocol::Udp);
}

#[test]
fn validate_rejects_zero_values() {
    let mut zero_down = spec("a", "t", "127.0.0.1:5060");
    zero_down.probe.down_after = 0;
    assert!(matches!(
        zero_down.validate(),
        Err(SpecError::ZeroThreshold {
            name: "down_after",
            ..
        })
    ));

    let mut zero_interval = spec("a", "t", "127.0.0.1:5060");
    zero_interval.probe.interval = Duration::ZERO;
    assert!(matches!(
        zero_interval.validate(),
        Err(SpecError::ZeroDuration {
            name: "interval",
            ..
        })
    ));

    zero_interval.probe.enabled = false;
    assert!(zero_interval.validate().is_ok());
}

#[test]
fn registry_rejects_duplicate_ids() {
    let registry = TrunkRegistry::new();
    let specs = vec![
        spec("a", "t", "127.0.0.1:5060"),
        spec("a", "t", "127.0.0.1:5061"),
    ];
    let result = registry.update(specs);
    assert!(matches!(result, Err(SpecError::DuplicateGateway { id }) if id.as_str() == "a"));
    assert!(registry.is_empty());
}

#[test]
fn registry_update_keeps_state() {
    let registry = TrunkRegistry::from_specs(vec![
        spec("kept", "beijing", "127.0.0.1:5060"),
        spec("moved", "beijing", "127.0.0.1:5061"),
        spec("gone", "beijing", "127.0.0.1:5062"),
    ])
    .expect("valid specs");

    let guard = registry.try_acquire(&id("kept")).expect("free channel");
    registry.record(&id("kept"), Signal::Failure(FailureCause::Timeout));
    registry.record(&id("kept"), Signal::Failure(FailureCause::Timeout));
    registry.record(&id("moved"), Signal::Success { status: 200 });
    assert_eq!(registry.health(&id("kept")), Some(Health::Down));
    assert_eq!(registry.health(&id("moved")), Some(Health::Up));

    let mut kept = spec("kept", "beijing", "127.0.0.1:5060");
    kept.priority = 5;
    kept.channel_limit = Some(1);
    let summary = registry
        .update(vec![
            kept,
            spec("moved", "beijing", "127.0.0.1:6000"),
            spec("new", "shanghai", "127.0.0.1:5063"),
        ])
        .expect("valid specs");

    assert_eq!(summary.kept, [id("kept")]);
    assert_eq!(summary.replaced, [id("moved")]);
    assert_eq!(summary.added, [id("new")]);
    assert_eq!(summary.removed, [id("gone")]);

    assert_eq!(registry.health(&id("kept")), Some(Health::Down));
    assert_eq!(registry.health(&id("moved")), Some(Health::Unknown));
    assert_eq!(registry.health(&id("gone")), None);
    let channels = registry.channels(&id("kept")).expect("configured");
    assert_eq!(channels.in_use, 1);
    assert_eq!(channels.limit, Some(1));
    assert_eq!(registry.free_channels(&id("kept")), Some(0));
    let gateway = registry.gateway(&id("kept")).expect("configured");
    assert_eq!(gateway.spec().priority, 5);

    drop(guard);
    assert_eq!(registry.free_channels(&id("kept")), Some(1));
}

#[test]
fn registry_acquire_errors() {
    let mut unlimited = spec("free", "t", "127.0.0.1:5061");
    unlimited.channel_limit = None;
    let registry = TrunkRegistry::from_specs(vec![spec("a", "t", "127.0.0.1:5060"), unlimited])
        .expect("valid specs");

    let _first = registry.try_acquire(&id("a")).expect("free channel");
    let _second = registry.try_acquire(&id("a")).expect("free channel");
    assert_eq!(
        registry.try_acquire(&id("a")).err(),
        Some(AcquireError::Full {
            id: id("a"),
            limit: 2,
        })
    );
    assert_eq!(
        registry.try_acquire(&id("none")).err(),
        Some(AcquireError::UnknownGateway { id: id("none") })
    );
    assert_eq!(registry.free_channels(&id("free")), Some(u32::MAX));
    assert_eq!(registry.free_channels(&id("none")), None);
}

#[test]
fn registry_select_explains_skips() {
    let mut low = spec("low", "t", "127.0.0.1:5060");
    low.priority = 10;
    let mut high = spec("high", "t", "127.0.0.1:5061");
    high.priority = 1;
    let registry = TrunkRegistry::from_specs(vec![
        low,
        high,
        spec("down", "t", "127.0.0.1:5062"),
        spec("full", "t", "127.0.0.1:5063"),
        spec("other", "u", "127.0.0.1:5064"),
    ])
    .expect("valid specs");
    registry.record(&id("down"), Signal::Failure(FailureCause::Timeout));
    registry.record(&id("down"), Signal::Failure(FailureCause::Status(503)));
    let _guards: Vec<_> = (0..2)
        .filter_map(|_| registry.try_acquire(&id("full")).ok())
        .collect();

    let mut candidates = registry.gateways_of(&TrunkId::new("t"));
    assert_eq!(candidates.len(), 4);
    candidates.push(id("missing"));
    let selection = registry.select(&candidates, &mut SmallRng::seed_from_u64(9));

    assert_eq!(selection.order, [id("high"), id("low")]);
    let reasons: Vec<(&str, SkipReason)> = selection
        .skipped
        .iter()
        .map(|skipped| (skipped.id.as_str(), skipped.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("down", SkipReason::Down),
            ("full", SkipReason::Full { limit: 2 }),
            ("missing", SkipReason::UnknownGateway),
        ]
    );
}

#[test]
fn registry_passive_invite_signals() {
    let registry =
        TrunkRegistry::from_specs(vec![spec("a", "t", "127.0.0.1:5060")]).expect("valid specs");
    let up = registry.record_invite_response(&id("a"), 180);
    assert_eq!(up.map(|t| t.to), Some(Health::Up));
    assert_eq!(registry.record_invite_response(&id("a"), 486), None);
    assert_eq!(registry.record_invite_response(&id("a"), 503), None);
    let down = registry.record_invite_response(&id("a"), 408);
    assert_eq!(down.map(|t| t.to), Some(Health::Down));
    assert_eq!(registry.record_invite_response(&id("none"), 503), None);
}
