//! The relay against misbehaving clients: unknown routes, oversized and slow requests, shutdown
//! during long-polls, and the `botsync relay` command's start-up failures.

use std::time::{Duration, Instant};

use botsync::relay::RelayConfig;
use crate::support::relay::{client, unlimited, Kind, TestRelay, DEVICE_ID};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error bodies are JSON");
    body["error"].as_str().expect("{\"error\": string}").to_string()
}

fn quick_timeouts() -> RelayConfig {
    RelayConfig {
        header_read_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
        ..unlimited()
    }
}

/// Sends raw bytes, then reads until the server closes or `limit` passes.
async fn raw_exchange(relay: &TestRelay, request: &[u8], limit: Duration) -> (String, Duration, bool) {
    let address = relay.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&received).into_owned(), started.elapsed(), closed)
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let relay = TestRelay::start(Kind::Memory, unlimited()).await;
    let http = client();
    let response = http.get(relay.at("/nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(error_of(response).await, "not found");
    let response = http.get(relay.at("/v2/mailboxes/zoo-zone/host-pake/extra")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    error_of(response).await;
    for (method, path) in [("DELETE", "/pair"), ("PUT", "/pair/abandon-ability-able-about-above"), ("GET", "/v2/mailboxes"), ("POST", "/")] {
        let response = http.request(method.parse().unwrap(), relay.at(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(error_of(response).await, "method not allowed");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let relay = TestRelay::start(Kind::Memory, unlimited()).await;
    let padding = "x".repeat(17 * 1024);
    let response = client()
        .post(relay.at("/pair"))
        .json(&json!({ "deviceId": DEVICE_ID, "networkSecret": padding }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(response).await.contains("larger than"));

    // Without a Content-Length (chunked), the limit holds while reading.
    let mut request = b"POST /pair HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        request.extend_from_slice(format!("400\r\n{}\r\n", "y".repeat(0x400)).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (answer, _, _) = raw_exchange(&relay, &request, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("{\"error\":"), "{answer}");
}

#[tokio::test]
async fn slow_bodies_get_408() {
    let relay = TestRelay::start(Kind::Memory, quick_timeouts()).await;
    let request = b"POST /pair HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"deviceId\":";
    let (answer, waited, _) = raw_exchange(&relay, request, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("{\"error\":\"request body not received in time\"}"), "{answer}");
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let relay = TestRelay::start(Kind::Memory, quick_timeouts()).await;
    // A request head that never ends (slowloris): the connection is closed after the timeout.
    let (_, waited, closed) = raw_exchange(&relay, b"GET / HTTP/1.1\r\nHost: relay\r\nX-Slow: 1\r\n", Duration::from_secs(5)).await;
    assert!(closed, "the relay kept a slow-header connection open");
    assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
    // An idle connection that never sends anything is cut the same way.
    let (_, waited, closed) = raw_exchange(&relay, b"", Duration::from_secs(5)).await;
    assert!(closed && waited < Duration::from_secs(3), "idle connection: closed {closed} after {waited:?}");
    // A well-behaved client is unaffected.
    assert_eq!(client().get(relay.at("/")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn shutdown_answers_pending_long_polls() {
    let mut relay = TestRelay::start(Kind::Memory, unlimited()).await;
    let created: Value = client().post(relay.at("/v2/mailboxes")).send().await.unwrap().json().await.unwrap();
    let mailbox = created["mailbox"].as_str().unwrap().to_string();
    let url = relay.at(&format!("/v2/mailboxes/{mailbox}/host-pake?wait=30000"));
    let poll = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    relay.stop().await;
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
    let status = tokio::time::timeout(Duration::from_secs(2), poll).await.unwrap().unwrap().unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(client().get(format!("{}/", relay.url)).send().await.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn relay_command_reports_bad_addresses_and_busy_ports() {
    let argv = |extra: &[&str]| -> Vec<String> {
        ["botsync", "relay", "--json"].iter().chain(extra).map(|s| s.to_string()).collect()
    };
    assert_eq!(botsync::cli::run(argv(&["--listen", "not an address"])).await, 2);
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    assert_eq!(botsync::cli::run(argv(&["--listen", &format!("127.0.0.1:{port}")])).await, 1);
    assert_eq!(botsync::cli::run(argv(&["--ttl", "0", "--listen", "127.0.0.1:0"])).await, 2);
    let error = botsync::Error::from(botsync::relay::RelayError::Bind {
        address: "x".into(),
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    });
    assert_eq!(error.code().as_str(), "BOTSYNC_RELAY_FAILED");
}

#[test]
fn relay_flags_map_to_the_configuration() {
    use clap::Parser;
    let cli = botsync::cli::Cli::try_parse_from([
        "botsync", "relay", "--listen", "0.0.0.0:9000", "--ttl", "5", "--no-rate-limits", "--slot-limit", "50", "--trust-proxy",
    ])
    .unwrap();
    let botsync::cli::Command::Relay(args) = cli.command else { panic!("relay subcommand") };
    let options = args.options();
    assert_eq!(options.listen(), "0.0.0.0:9000");
    let config = options.config().unwrap();
    assert_eq!(config.pairing_ttl, Duration::from_secs(5));
    assert_eq!(config.mailbox_ttl, Duration::from_secs(5));
    assert_eq!(config.limits.pair_create, None);
    assert_eq!(config.limits.slot_access, Some(50));
    assert!(config.trust_forwarded_for);

    let defaults = botsync::cli::Cli::try_parse_from(["botsync", "relay"]).unwrap();
    let botsync::cli::Command::Relay(args) = defaults.command else { panic!("relay subcommand") };
    let config = args.options().config().unwrap();
    assert_eq!(args.options().listen(), "127.0.0.1:8787");
    assert_eq!(config.limits, botsync::relay::RateLimits::default());
    assert_eq!(config.pairing_ttl, Duration::from_secs(600));
    assert!(botsync::cli::Cli::try_parse_from(["botsync", "relay", "--redis-prefix", "x:"]).is_err(), "--redis-prefix needs --redis");
}
