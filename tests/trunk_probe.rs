//! The gateway OPTIONS prober against a fake gateway on loopback UDP and against SIPp,
//! through the real engine: its transport, its dispatcher and the prober attached at
//! startup.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Ports, SippBuilder, TestDir, require_sipp, scenario};
use hotline_b2bua::config::Config;
use hotline_b2bua::server;
use hotline_b2bua::session::Context;
use hotline_b2bua::sip::{self, Headers, Message, Method, Response, Tag};
use hotline_b2bua::trunk::{
    GatewayId, GatewaySpec, GatewayTarget, Health, ProbeSpec, Prober, TrunkId,
};
use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep};

/// Status the fake gateway responds with. 0 means it sends no response.
const SILENT: u16 = 0;
/// Maximum wait for a health change. Probes run every 50 ms, so this leaves a wide margin
/// on a loaded machine.
const WAIT: Duration = Duration::from_secs(10);

/// A UDP socket that responds to OPTIONS with a status chosen by the test.
struct FakeGateway {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    /// Call-IDs of the probes received, in order of arrival, each once.
    probes: Arc<Mutex<Vec<String>>>,
    /// Requests received, retransmissions included.
    requests: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeGateway {
    async fn start(status: u16) -> FakeGateway {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind fake gateway");
        let addr = socket.local_addr().expect("fake gateway address");
        let status = Arc::new(AtomicU16::new(status));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicU16::new(0));
        let task = tokio::spawn(respond_loop(
            socket,
            Arc::clone(&status),
            Arc::clone(&probes),
            Arc::clone(&requests),
        ));
        FakeGateway {
            addr,
            status,
            probes,
            requests,
            task,
        }
    }

    fn respond_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn probe_count(&self) -> usize {
        self.probes.lock().expect("probe list lock").len()
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn respond_loop(
    socket: UdpSocket,
    status: Arc<AtomicU16>,
    probes: Arc<Mutex<Vec<String>>>,
    requests: Arc<AtomicU16>,
) {
    let mut buf = vec![0u8; 65_535];
    let to_tag = Tag::generate();
    loop {
        let Ok((len, source)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let Ok(Message::Request(request)) = sip::parse(&buf[..len], true) else {
            continue;
        };
        if request.method != Method::Options {
            continue;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let call_id = request.call_id().expect("probe has a Call-ID").to_string();
        {
            let mut seen = probes.lock().expect("probe list lock");
            if !seen.contains(&call_id) {
                seen.push(call_id);
            }
        }

        let status = status.load(Ordering::SeqCst);
        if status == SILENT {
            continue;
        }
        let response = Response::to_request(&request, status, "", Some(&to_tag));
        let _ = socket.send_to(&response.encode(), source).await;
    }
}

async fn start_engine() -> Arc<Context> {
    let mut config = Config::default();
    config.sip.listen = "127.0.0.1:0".parse().expect("valid address");
    config.timers.t1_ms = 10;
    config.timers.t2_ms = 40;
    config.timers.t4_ms = 50;
    server::start(config).await.expect("engine starts")
}

fn gateway_spec(target: SocketAddr) -> GatewaySpec {
    GatewaySpec {
        id: GatewayId::new("shanghai-1"),
        trunk: TrunkId::new("shanghai"),
        target: GatewayTarget::Socket(hotline_b2bua::transport::Target {
            addr: target,
            protocol: hotline_b2bua::transport::Protocol::Udp,
        }),
        priority: 1,
        weight: 1,
        channel_limit: None,
        probe: ProbeSpec {
            enabled: true,
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(80),
            down_after: 2,
            up_after: 2,
        },
    }
}

fn prober(ctx: &Context) -> &Arc<Prober> {
    ctx.probes().expect("the engine attaches a prober")
}

/// Waits until the gateway reaches `health`, then returns how many probes the fake
/// gateway received while waiting.
async fn wait_for(ctx: &Context, gateway: &FakeGateway, health: Health) -> usize {
    let id = GatewayId::new("shanghai-1");
    let before = gateway.probe_count();
    let deadline = Instant::now() + WAIT;
    while prober(ctx).registry().health(&id) != Some(health) {
        assert!(Instant::now() < deadline, "gateway did not become {health}");
        sleep(Duration::from_millis(5)).await;
    }
    gateway.probe_count() - before
}

#[tokio::test]
async fn probe_health_follows_gateway() {
    let gateway = FakeGateway::start(200).await;
    let ctx = start_engine().await;
    let id = GatewayId::new("shanghai-1");
    prober(&ctx)
        .update(vec![gateway_spec(gateway.addr)])
        .expect("valid spec");

    // A gateway never seen down is up after its first response.
    wait_for(&ctx, &gateway, Health::Up).await;

    gateway.respond_with(SILENT);
    let requests_before = gateway.requests.load(Ordering::SeqCst);
    let probes = wait_for(&ctx, &gateway, Health::Down).await;
    assert!(probes >= 2, "down after {probes} unanswered probes");
    let requests = gateway.requests.load(Ordering::SeqCst) - requests_before;
    assert!(
        usize::from(requests) > probes,
        "{requests} requests for {probes} probes: no retransmission over UDP"
    );

    gateway.respond_with(503);
    let start = gateway.probe_count();
    while gateway.probe_count() < start + 3 {
        sleep(Duration::from_millis(5)).await;
    }
    let registry = prober(&ctx).registry();
    assert_eq!(registry.health(&id), Some(Health::Down));
    let state = registry.gateway(&id).expect("configured").health_state();
    assert!(state.consecutive_failures() >= 4);

    gateway.respond_with(200);
    let probes = wait_for(&ctx, &gateway, Health::Up).await;
    assert!(probes >= 2, "up after {probes} answered probes");

    prober(&ctx).shutdown().await;
}

#[tokio::test]
async fn probe_stops_when_gateway_removed() {
    let gateway = FakeGateway::start(200).await;
    let ctx = start_engine().await;
    let prober = prober(&ctx);
    prober
        .update(vec![gateway_spec(gateway.addr)])
        .expect("valid spec");
    wait_for(&ctx, &gateway, Health::Up).await;
    assert_eq!(prober.probed_gateways(), [GatewayId::new("shanghai-1")]);

    let summary = prober.update(Vec::new()).expect("empty set is valid");
    assert_eq!(summary.removed, [GatewayId::new("shanghai-1")]);
    assert!(prober.probed_gateways().is_empty());

    // A probe in flight may still arrive; after that none may.
    sleep(Duration::from_millis(100)).await;
    let settled = gateway.probe_count();
    sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.probe_count(), settled);
}

#[tokio::test]
async fn probe_stops_on_shutdown() {
    let gateway = FakeGateway::start(200).await;
    let ctx = start_engine().await;
    let prober = prober(&ctx);
    prober
        .update(vec![gateway_spec(gateway.addr)])
        .expect("valid spec");
    wait_for(&ctx, &gateway, Health::Up).await;

    prober.shutdown().await;
    let settled = gateway.probe_count();
    sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.probe_count(), settled);

    // A reload after shutdown updates the registry but starts no probe.
    prober
        .update(vec![gateway_spec(gateway.addr)])
        .expect("valid spec");
    assert!(prober.probed_gateways().is_empty());
}

#[tokio::test]
async fn disabled_probe_sends_nothing() {
    let gateway = FakeGateway::start(200).await;
    let ctx = start_engine().await;
    let mut spec = gateway_spec(gateway.addr);
    spec.probe.enabled = false;
    prober(&ctx).update(vec![spec]).expect("valid spec");

    sleep(Duration::from_millis(200)).await;
    assert_eq!(gateway.probe_count(), 0);
    let health = prober(&ctx)
        .registry()
        .health(&GatewayId::new("shanghai-1"));
    assert_eq!(health, Some(Health::Unknown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_gateway_probed_up_then_down() {
    require_sipp();
    let dir = TestDir::new("sipp_gateway_probed");
    let ports = Ports::allocate();
    let gateway_addr: SocketAddr = ([127, 0, 0, 1], ports.agent()).into();

    // The builder waits for SIPp's port with blocking sleeps, so it runs off the runtime.
    let builder = SippBuilder::agent(
        &dir,
        "gateway",
        &scenario("gateway_options.xml"),
        ports.agent(),
        ports.agent_media(),
    );
    let sipp = tokio::task::spawn_blocking(move || builder.start())
        .await
        .expect("SIPp starts");

    let ctx = start_engine().await;
    let id = GatewayId::new("shanghai-1");
    prober(&ctx)
        .update(vec![gateway_spec(gateway_addr)])
        .expect("valid spec");
    let registry = Arc::clone(prober(&ctx).registry());
    let deadline = Instant::now() + WAIT;
    while registry.health(&id) != Some(Health::Up) {
        assert!(
            Instant::now() < deadline,
            "gateway not up:\n{}",
            sipp.report()
        );
        sleep(Duration::from_millis(5)).await;
    }

    // SIPp exits after its one call, so the next probes time out.
    let sipp = tokio::task::spawn_blocking(move || {
        let mut sipp = sipp;
        sipp.expect_success();
        sipp
    })
    .await
    .expect("SIPp succeeds");
    let deadline = Instant::now() + WAIT;
    while registry.health(&id) != Some(Health::Down) {
        assert!(
            Instant::now() < deadline,
            "gateway not down:\n{}",
            sipp.report()
        );
        sleep(Duration::from_millis(5)).await;
    }

    prober(&ctx).shutdown().await;
}
