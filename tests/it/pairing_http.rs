//! The relay client against real HTTP servers on loopback: the v2 contract, the original
//! protocol, and relays that are down, rate limiting, slow, or not relays at all.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use botsync::pairing::exchange::guest::{join_via_relay, Joined};
use botsync::pairing::mailbox::{Mailbox, Slot};
use botsync::pairing::original::{self, OriginalCode, OriginalPayload};
use botsync::pairing::{guest, host, name_tag, PairingCode, PairingError, RelayClient};
use crate::support::pairing::*;
use crate::support::relay::{unlimited, Kind, TestRelay};

/// The real relay in this process (memory store, no rate limits): v2 and the original protocol.
async fn real_relay() -> TestRelay {
    TestRelay::start(Kind::Memory, unlimited()).await
}

fn soon(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_exchange_over_http() {
    let server = real_relay().await;
    let host_relay = RelayClient::new(&server.url).unwrap();
    let guest_relay = RelayClient::new(&format!("{}/", server.url)).unwrap();
    let invite = host::open_invite(&host_relay).await.unwrap();
    let code = invite.code;
    let host_task = tokio::spawn(async move { host::complete(&host_relay, &code, &host_info(), soon(30)).await });
    // The guest starts first in real life too: its long-poll waits for host-pake.
    let got_host = guest::join(&guest_relay, &invite.code, &info(2, "laptop")).await.unwrap();
    assert_eq!(got_host, host_info());
    assert_eq!(host_task.await.unwrap().unwrap(), info(2, "laptop"));
    // host-data was read: the mailbox is gone, the code is spent.
    assert_eq!(
        guest_relay.get(invite.code.mailbox(), Slot::HostPake, Duration::ZERO).await,
        Err(PairingError::CodeExpired)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_when_the_slot_is_written() {
    let server = real_relay().await;
    let relay = RelayClient::new(&server.url).unwrap();
    let a = relay.allocate().await.unwrap();
    assert_eq!(relay.get(a.mailbox, Slot::GuestPake, Duration::from_millis(100)).await, Ok(None));
    let writer = relay.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        writer.put(a.mailbox, Slot::GuestPake, b"hello").await.unwrap();
    });
    let started = std::time::Instant::now();
    let got = relay.get(a.mailbox, Slot::GuestPake, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    assert!(started.elapsed() < Duration::from_secs(10), "long-poll did not return on write");
    assert_eq!(relay.put(a.mailbox, Slot::GuestPake, b"again").await, Err(PairingError::CodeAlreadyUsed));
    relay.delete(a.mailbox).await.unwrap();
    relay.delete(a.mailbox).await.unwrap();
    assert_eq!(relay.put(a.mailbox, Slot::HostPake, b"x").await, Err(PairingError::CodeExpired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_guests_over_http() {
    const GUESTS: usize = 20;
    let server = real_relay().await;
    let relay = Arc::new(RaceGuests::new(RelayClient::new(&server.url).unwrap(), GUESTS));
    let code = host::open_invite(&relay).await.unwrap().code;
    let guests: Vec<_> = (0..GUESTS)
        .map(|i| {
            let relay = relay.clone();
            tokio::spawn(async move { guest::join_until(&relay, &code, &info(10 + i as u8, "racer"), soon(30)).await })
        })
        .collect();
    host::complete(&relay, &code, &host_info(), soon(30)).await.unwrap();
    let results: Vec<_> = futures_join(guests).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().filter(|r| r.is_err()).all(|r| *r == Err(PairingError::CodeAlreadyUsed)));
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_code_over_http_is_a_mismatch_on_both_sides() {
    let server = real_relay().await;
    let relay = RelayClient::new(&server.url).unwrap();
    let code = host::open_invite(&relay).await.unwrap().code;
    let mut words = code.words();
    words[2] = if words[2] == "zoo" { "zebra" } else { "zoo" };
    let wrong = PairingCode::parse(&words.join(" ")).unwrap();
    let host_relay = relay.clone();
    let host_task = tokio::spawn(async move { host::complete(&host_relay, &code, &host_info(), soon(30)).await });
    assert_eq!(guest::join(&relay, &wrong, &info(2, "g")).await, Err(PairingError::CodeMismatch));
    assert_eq!(host_task.await.unwrap(), Err(PairingError::CodeMismatch));
}

#[tokio::test]
async fn original_only_relay_is_detected_and_its_flow_works() {
    let upstream = real_relay().await;
    let server = original_only_proxy(&upstream.url).await;
    let relay = RelayClient::new(&server.url).unwrap();
    assert_eq!(
        host::open_invite(&relay).await.unwrap_err(),
        PairingError::OriginalOnlyRelay { url: server.url.clone() }
    );

    // Host: publish the device ID. Joiner: trade the code for it, once.
    let host_payload = OriginalPayload { device_id: device(1), network_id: None, network_secret: None };
    let code = original::create(&relay, &host_payload).await.unwrap();
    let typed = OriginalCode::parse(&code.as_str().to_uppercase().replace('-', " ")).unwrap();
    assert_eq!(original::lookup(&relay, &typed).await.unwrap(), host_payload);
    assert_eq!(original::lookup(&relay, &typed).await, Err(PairingError::CodeExpired));

    // The joiner's Syncthing name proves it held the code; the host checks its pending devices.
    let joiner = device(2);
    let announced = name_tag::tagged_name("laptop", &original::device_name_tag(&typed, &joiner));
    assert!(original::verify_device_name(&code, &joiner, &announced));
    assert!(!original::verify_device_name(&code, &device(3), &announced));
    assert!(!original::verify_device_name(&code, &joiner, "laptop"));
}

#[tokio::test]
async fn a_joiner_falls_back_to_the_original_protocol() {
    // Against an original-only relay, and against a dual relay with an original code.
    let (dual, upstream) = (real_relay().await, real_relay().await);
    let original_only = original_only_proxy(&upstream.url).await;
    for url in [&original_only.url, &dual.url] {
        let relay = RelayClient::new(url).unwrap();
        let payload = OriginalPayload { device_id: device(1), network_id: Some("n".into()), network_secret: None };
        let code = original::create(&relay, &payload).await.unwrap();
        let code = PairingCode::parse(code.as_str()).unwrap();
        assert_eq!(join_via_relay(&relay, &code, &info(2, "g")).await, Ok(Joined::Original(payload)));
        assert_eq!(join_via_relay(&relay, &code, &info(2, "g")).await, Err(PairingError::CodeExpired));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_on_a_dual_relay_uses_v2_for_v2_codes() {
    let server = real_relay().await;
    let relay = RelayClient::new(&server.url).unwrap();
    let code = host::open_invite(&relay).await.unwrap().code;
    let host_relay = relay.clone();
    let host_task = tokio::spawn(async move { host::complete(&host_relay, &code, &host_info(), soon(30)).await });
    assert_eq!(join_via_relay(&relay, &code, &info(2, "g")).await, Ok(Joined::V2(host_info())));
    host_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_relay_that_is_down_is_unreachable_with_alternatives() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let relay = RelayClient::new(&url).unwrap();
    let e = host::open_invite(&relay).await.unwrap_err();
    assert!(matches!(e, PairingError::RelayUnreachable { .. }), "{e:?}");
    let text = e.to_string();
    for needle in [url.as_str(), "--relay", "BOTSYNC_RELAY", "offline", "refused"] {
        assert!(text.contains(needle), "{needle:?} missing in: {text}");
    }
    assert!(!text.contains('\n'));
}

#[tokio::test]
async fn a_relay_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accept and hold connections without ever answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let relay = RelayClient::with_timeouts(&url, Duration::from_secs(1), Duration::from_millis(300)).unwrap();
    let started = std::time::Instant::now();
    let e = relay.allocate().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(&e, PairingError::RelayUnreachable { reason, .. } if reason.contains("no answer")), "{e:?}");
    holder.abort();
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let router = Router::new().fallback(|| async {
        (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "42")], Json(serde_json::json!({"error": "slow down"})))
    });
    let server = serve(router).await;
    let relay = RelayClient::new(&server.url).unwrap();
    let e = host::open_invite(&relay).await.unwrap_err();
    assert_eq!(e, PairingError::RateLimited { url: server.url.clone(), retry_after_secs: 42 });
    assert!(e.to_string().contains("try again in 42 s"));
    let code: PairingCode = "abandon-ability-able-about-above".parse().unwrap();
    assert!(matches!(guest::join(&relay, &code, &info(2, "g")).await, Err(PairingError::RateLimited { .. })));
}

#[tokio::test]
async fn an_html_server_is_not_a_relay() {
    let page = "<!doctype html><html><body>Welcome to nginx!</body></html>";
    for status in [StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED] {
        let router = Router::new()
            .fallback(move || async move { (status, [(header::CONTENT_TYPE, "text/html")], page).into_response() });
        let server = serve(router).await;
        let relay = RelayClient::new(&server.url).unwrap();
        let e = host::open_invite(&relay).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the relay at {} answered with HTML, not a botsync relay", server.url),
            "status {status}"
        );
        let code: PairingCode = "abandon-ability-able-about-above".parse().unwrap();
        let e = join_via_relay(&relay, &code, &info(2, "g")).await.unwrap_err();
        assert!(matches!(e, PairingError::RelayProtocol { .. }), "status {status}: {e:?}");
    }
}

#[tokio::test]
async fn garbage_json_is_a_protocol_error() {
    let router = Router::new().fallback(|| async { (StatusCode::CREATED, Json(serde_json::json!({"ok": true}))) });
    let server = serve(router).await;
    let relay = RelayClient::new(&server.url).unwrap();
    let e = relay.allocate().await.unwrap_err();
    assert!(matches!(e, PairingError::RelayProtocol { .. }), "{e:?}");
}
