//! The relay client against HTTP servers on loopback that are not (quite) v2 relays: an
//! original-only relay, and relays that are down, rate limiting, slow, or not relays at all.
//! (The v2 exchange over HTTP against the real relay is tests/pairing_exchange.rs.)

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use botsync::pairing::original::{self, OriginalCode, OriginalPayload};
use botsync::pairing::{guest, host, name_tag, Mailbox, PairingCode, PairingError, RelayClient};
use crate::support::lying_relay::{LyingRelay, Verdict};
use crate::support::pairing::*;

/// The real relay behind a proxy that has no v2 API, like an original-only relay.
async fn original_only() -> LyingRelay {
    LyingRelay::start(|seen, _| {
        if seen.target.starts_with("/v2") {
            Verdict::Answer(404, "text/plain", b"404 page not found".to_vec())
        } else {
            Verdict::Forward
        }
    })
    .await
}

#[tokio::test]
async fn original_only_relay_is_detected_and_its_flow_works() {
    let server = original_only().await;
    let relay = RelayClient::new(&server.url).unwrap();
    assert_eq!(
        host::open_invite(&relay).await.unwrap_err(),
        PairingError::OriginalOnlyRelay { url: server.url.clone() }
    );
    assert_eq!(relay.info().await, Ok(None));
    assert!(server.upstream.client().info().await.unwrap().is_some(), "the real relay speaks v2");

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
        let e = guest::join(&relay, &code, &info(2, "g")).await.unwrap_err();
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
