//! Every row of both API tables (original `/pair` and v2 mailboxes), against an in-process relay
//! on 127.0.0.1:0, once with the memory store and once with a real Redis.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use botsync::relay::{MailboxId, PairCode, RateLimits, RelayConfig};
use crate::support::relay::{client, unlimited, Kind, TestRelay, DEVICE_ID};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

for_both_stores!(
    status_names_the_service,
    pair_code_resolves_once,
    pair_create_rejects_bad_bodies,
    pair_lookup_rejects_malformed_codes,
    pair_codes_expire,
    pair_rate_limits_hold,
    preflight_allows_any_origin_with_authorization,
    no_trace_of_the_network_secret_survives_a_take,
    no_plaintext_network_secret_survives_expiry,
    mailbox_creation,
    mailbox_exchange_runs_and_host_data_is_read_once,
    long_poll_wakes_on_write_and_times_out_empty,
    mailbox_requests_are_validated,
    concurrent_guest_pake_writes_have_one_winner,
    mailboxes_expire,
    mailbox_rate_limits_hold,
    mailbox_ids_are_distinct,
);

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("error bodies are JSON");
    body["error"].as_str().expect("{\"error\": string}").to_string()
}

async fn create_code(relay: &TestRelay, body: Value) -> String {
    let response = client().post(relay.at("/pair")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["code"].as_str().unwrap().to_string()
}

async fn status_names_the_service(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let response = client().get(relay.at("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "status": "ok", "service": "botsync-relay", "version": botsync::VERSION }));
}

async fn pair_code_resolves_once(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let code = create_code(&relay, json!({ "deviceId": DEVICE_ID, "networkId": "net-1", "networkSecret": "s3cret" })).await;
    assert!(PairCode::parse(&code).is_ok(), "{code} is 5 BIP-39 words");
    let first = client().get(relay.at(&format!("/pair/{code}"))).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["access-control-allow-origin"], "*");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body, json!({ "deviceId": DEVICE_ID, "networkId": "net-1", "networkSecret": "s3cret" }));
    let second = client().get(relay.at(&format!("/pair/{code}"))).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(second).await, "code not found or expired");

    // Without network fields the answer has networkId null and no networkSecret, as the original.
    let plain = create_code(&relay, json!({ "deviceId": DEVICE_ID })).await;
    let body: Value = client().get(relay.at(&format!("/pair/{plain}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(body, json!({ "deviceId": DEVICE_ID, "networkId": null }));
}

async fn pair_create_rejects_bad_bodies(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let http = client();
    for (body, error) in [
        (json!({}).to_string(), "deviceId required"),
        (json!({ "deviceId": 42 }).to_string(), "deviceId required"),
        (json!({ "deviceId": "" }).to_string(), "deviceId required"),
        (json!({ "deviceId": "MFZWI3D-BONSGYC-YLTMRWG" }).to_string(), "invalid deviceId format"),
        (json!({ "deviceId": format!("{DEVICE_ID}; DROP") }).to_string(), "invalid deviceId format"),
        (json!({ "deviceId": DEVICE_ID, "networkSecret": ["x"] }).to_string(), "invalid networkSecret"),
        (json!([DEVICE_ID]).to_string(), "invalid request body"),
        ("deviceId=abc".to_string(), "invalid request body"),
        (String::new(), "invalid request body"),
    ] {
        let response = http
            .post(relay.at("/pair"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_of(response).await, error, "{body}");
    }
}

async fn pair_lookup_rejects_malformed_codes(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let http = client();
    for code in [
        "abc",
        "abandon-ability-able-about",
        "Abandon-ability-able-about-above",
        "abandon-ability-able-about-xyzzy",
        "abandon-ability-able-about-above-absent",
        "abandon%20ability",
    ] {
        let response = http.get(relay.at(&format!("/pair/{code}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{code}");
        assert_eq!(error_of(response).await, "invalid code format");
    }
    let unknown = http.get(relay.at("/pair/abandon-ability-able-about-above")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

async fn pair_codes_expire(kind: Kind) {
    let config = RelayConfig { pairing_ttl: Duration::from_millis(700), ..unlimited() };
    let relay = TestRelay::start(kind, config).await;
    let code = create_code(&relay, json!({ "deviceId": DEVICE_ID })).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let response = client().get(relay.at(&format!("/pair/{code}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn pair_rate_limits_hold(kind: Kind) {
    let relay = TestRelay::start(kind, RelayConfig::default()).await;
    let http = client();
    for i in 0..10 {
        let response = http.post(relay.at("/pair")).json(&json!({ "deviceId": DEVICE_ID })).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "create #{i}");
    }
    let limited = http.post(relay.at("/pair")).json(&json!({ "deviceId": DEVICE_ID })).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "60");
    assert!(error_of(limited).await.contains("rate limited"));

    // Lookups have their own budget of 20, spent by malformed guesses too.
    for i in 0..20 {
        let response = http.get(relay.at("/pair/not-a-code")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "lookup #{i}");
    }
    let limited = http.get(relay.at("/pair/abandon-ability-able-about-above")).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "60");
}

async fn preflight_allows_any_origin_with_authorization(kind: Kind) {
    let relay = TestRelay::start(kind, RelayConfig::default()).await;
    let http = client();
    for path in ["/pair", "/pair/abandon-ability-able-about-above", "/v2/mailboxes", "/v2/mailboxes/zoo-zone/host-pake"] {
        let response = http
            .request(reqwest::Method::OPTIONS, relay.at(path))
            .header("origin", "https://example.org")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
            .await
            .unwrap();
        // 200, as the original relay answers and its clients and tests expect.
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
        assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    }
    // Preflights do not spend the lookup budget.
    let response = http.get(relay.at("/pair/abandon-ability-able-about-above")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

async fn no_trace_of_the_network_secret_survives_a_take(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let secret = "plaintext-network-secret-4f9a";
    let code = create_code(&relay, json!({ "deviceId": DEVICE_ID, "networkId": "mesh-7", "networkSecret": secret })).await;
    // During the pairing window the secret is in the one-time record (the joiner needs it).
    assert!(relay.store.dump().await.iter().any(|(_, v)| v.contains(secret)));
    let response = client().get(relay.at(&format!("/pair/{code}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let dump = relay.store.dump().await;
    assert!(!dump.iter().any(|(k, v)| k.contains(secret) || v.contains(secret)), "plaintext left: {dump:?}");
    let hash = sha256_hex(secret);
    assert!(!dump.iter().any(|(k, v)| k.contains("mesh-7") || v.contains(&hash)), "nothing of the network is kept: {dump:?}");
}

async fn no_plaintext_network_secret_survives_expiry(kind: Kind) {
    let config = RelayConfig { pairing_ttl: Duration::from_millis(500), ..unlimited() };
    let relay = TestRelay::start(kind, config).await;
    let secret = "expiring-network-secret-77c1";
    create_code(&relay, json!({ "deviceId": DEVICE_ID, "networkId": "mesh-8", "networkSecret": secret })).await;
    // The memory store sweeps every second; Redis expires keys itself.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let dump = relay.store.dump().await;
    assert!(!dump.iter().any(|(k, v)| k.contains(secret) || v.contains(secret)), "plaintext left: {dump:?}");
    assert!(!dump.iter().any(|(k, v)| k.contains("mesh-8") || v.contains(&sha256_hex(secret))), "{dump:?}");
}

/// A mailbox id and its host token.
async fn create_mailbox(relay: &TestRelay) -> (String, String) {
    let response = client().post(relay.at("/v2/mailboxes")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    (body["mailbox"].as_str().unwrap().to_string(), body["hostToken"].as_str().unwrap().to_string())
}

/// The guest token these tests claim mailboxes with.
const GUEST: &str = "0123456789abcdef0123456789abcdef";

/// The token a side shows for `slot`: the host's for host slots and guest slots it reads.
fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn mailbox_creation(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let http = client();
    for body in ["", "{}", "{\"client\":\"botsync 0.5\"}", "  "] {
        let before = now_ms();
        let response = http.post(relay.at("/v2/mailboxes")).body(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{body:?}");
        let answer: Value = response.json().await.unwrap();
        assert!(MailboxId::parse_strict(answer["mailbox"].as_str().unwrap()).is_some(), "{answer}");
        assert_eq!(answer["hostToken"].as_str().unwrap().len(), 32, "{answer}");
        let expires_at = answer["expiresAt"].as_u64().unwrap();
        assert!(expires_at >= before + 599_000 && expires_at <= now_ms() + 601_000, "{answer}");
    }
    for body in ["[]", "null", "nope"] {
        let response = http.post(relay.at("/v2/mailboxes")).body(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body:?}");
        error_of(response).await;
    }
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1100));
    let response = http.post(relay.at("/v2/mailboxes")).body(big).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    error_of(response).await;
}

async fn put(relay: &TestRelay, mailbox: &str, slot: &str, token: &str, bytes: &[u8]) -> reqwest::Response {
    client()
        .put(relay.at(&format!("/v2/mailboxes/{mailbox}/{slot}")))
        .header("content-type", "application/octet-stream")
        .header("authorization", bearer(token))
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn get(relay: &TestRelay, mailbox: &str, slot: &str, token: &str, wait_ms: u64) -> reqwest::Response {
    let url = relay.at(&format!("/v2/mailboxes/{mailbox}/{slot}?wait={wait_ms}"));
    client().get(url).header("authorization", bearer(token)).send().await.unwrap()
}

async fn mailbox_exchange_runs_and_host_data_is_read_once(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let (mailbox, host) = create_mailbox(&relay).await;
    let binary: Vec<u8> = (0..=255u8).collect();

    let response = put(&relay, &mailbox, "host-pake", &host, &binary).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
    let response = get(&relay, &mailbox, "host-pake", &host, 0).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/octet-stream");
    assert_eq!(response.bytes().await.unwrap().to_vec(), binary, "bytes come back exactly");

    assert_eq!(put(&relay, &mailbox, "guest-pake", GUEST, b"guest").await.status(), StatusCode::CREATED);
    let again = put(&relay, &mailbox, "guest-pake", GUEST, b"intruder").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_of(again).await, "code already used");
    assert_eq!(get(&relay, &mailbox, "guest-pake", &host, 0).await.bytes().await.unwrap().as_ref(), b"guest");

    assert_eq!(put(&relay, &mailbox, "guest-data", GUEST, b"sealed guest info").await.status(), StatusCode::CREATED);
    assert_eq!(get(&relay, &mailbox, "guest-data", &host, 0).await.bytes().await.unwrap().as_ref(), b"sealed guest info");
    assert_eq!(put(&relay, &mailbox, "host-data", &host, b"sealed host info").await.status(), StatusCode::CREATED);

    // Reading host-data once ends the mailbox: nothing of it stays on the relay.
    let response = get(&relay, &mailbox, "host-data", GUEST, 0).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"sealed host info");
    let after = get(&relay, &mailbox, "host-data", GUEST, 0).await;
    assert_eq!(after.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(after).await, "unknown or expired code");
    assert_eq!(get(&relay, &mailbox, "host-pake", &host, 0).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(put(&relay, &mailbox, "guest-pake", GUEST, b"late").await.status(), StatusCode::NOT_FOUND);
    let dump = relay.store.dump().await;
    assert!(!dump.iter().any(|(k, _)| k.contains(&mailbox)), "mailbox gone: {dump:?}");

    // DELETE is idempotent.
    // DELETE needs the host's token; a second one finds nothing.
    let (other, other_host) = create_mailbox(&relay).await;
    let url = relay.at(&format!("/v2/mailboxes/{other}"));
    assert_eq!(client().delete(&url).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(client().delete(&url).header("authorization", bearer(GUEST)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let deleted = client().delete(&url).header("authorization", bearer(&other_host)).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let again = client().delete(&url).header("authorization", bearer(&other_host)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&relay, &other, "host-pake", &other_host, 0).await.status(), StatusCode::NOT_FOUND);
}

async fn long_poll_wakes_on_write_and_times_out_empty(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let (mailbox, host) = create_mailbox(&relay).await;

    let started = Instant::now();
    let empty = get(&relay, &mailbox, "host-pake", &host, 400).await;
    assert_eq!(empty.status(), StatusCode::NO_CONTENT);
    assert!(started.elapsed() >= Duration::from_millis(390), "waited {:?}", started.elapsed());

    let waiter = {
        let url = relay.at(&format!("/v2/mailboxes/{mailbox}/host-pake?wait=20000"));
        tokio::spawn(async move {
            let started = Instant::now();
            let response = client().get(url).send().await.unwrap();
            (response.status(), response.bytes().await.unwrap(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(put(&relay, &mailbox, "host-pake", &host, b"hello").await.status(), StatusCode::CREATED);
    let (status, bytes, waited) = waiter.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes.as_ref(), b"hello");
    assert!(waited < Duration::from_secs(3), "long-poll answered after {waited:?}");

    // A long-poll on a mailbox that goes away answers 404.
    let gone = {
        let url = relay.at(&format!("/v2/mailboxes/{mailbox}/guest-pake?wait=20000"));
        let host = host.clone();
        tokio::spawn(async move { client().get(url).header("authorization", bearer(&host)).send().await.unwrap().status() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    client().delete(relay.at(&format!("/v2/mailboxes/{mailbox}"))).header("authorization", bearer(&host)).send().await.unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(3), gone).await.unwrap().unwrap(), StatusCode::NOT_FOUND);
}

async fn mailbox_requests_are_validated(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let (mailbox, host) = create_mailbox(&relay).await;
    let http = client();
    for bad_mailbox in ["zoo", "zoo-zone-zero", "Zoo-zone", "zoo-notaword", "zoo_zone"] {
        assert_eq!(put(&relay, bad_mailbox, "host-pake", &host, b"x").await.status(), StatusCode::BAD_REQUEST, "{bad_mailbox}");
        assert_eq!(get(&relay, bad_mailbox, "host-pake", &host, 0).await.status(), StatusCode::BAD_REQUEST, "{bad_mailbox}");
        let delete = http.delete(relay.at(&format!("/v2/mailboxes/{bad_mailbox}"))).send().await.unwrap();
        assert_eq!(delete.status(), StatusCode::BAD_REQUEST, "{bad_mailbox}");
        error_of(delete).await;
    }
    for bad_slot in ["host", "HOST-PAKE", "guest-pake2"] {
        let response = put(&relay, &mailbox, bad_slot, &host, b"x").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad_slot}");
        error_of(response).await;
        assert_eq!(get(&relay, &mailbox, bad_slot, &host, 0).await.status(), StatusCode::BAD_REQUEST, "{bad_slot}");
    }
    // Sizes: empty and over 16 KiB are bad; exactly 16 KiB is fine.
    assert_eq!(put(&relay, &mailbox, "host-pake", &host, b"").await.status(), StatusCode::BAD_REQUEST);
    let oversized = put(&relay, &mailbox, "host-pake", &host, &vec![7u8; 16 * 1024 + 1]).await;
    assert_eq!(oversized.status(), StatusCode::BAD_REQUEST);
    error_of(oversized).await;
    assert_eq!(put(&relay, &mailbox, "host-pake", &host, &vec![7u8; 16 * 1024]).await.status(), StatusCode::CREATED);
    // The wait parameter is bounded.
    for wait in ["30001", "-1", "abc", "1e3"] {
        let response = http.get(relay.at(&format!("/v2/mailboxes/{mailbox}/guest-pake?wait={wait}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "wait={wait}");
        error_of(response).await;
    }
    // Unknown (well-formed) mailboxes are 404 for reads and writes.
    let unknown = if mailbox == "abandon-ability" { "zoo-zone" } else { "abandon-ability" };
    let response = put(&relay, unknown, "host-pake", &host, b"x").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(response).await, "unknown or expired code");
    assert_eq!(get(&relay, unknown, "host-pake", &host, 0).await.status(), StatusCode::NOT_FOUND);
}

async fn concurrent_guest_pake_writes_have_one_winner(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let (mailbox, host) = create_mailbox(&relay).await;
    let url = relay.at(&format!("/v2/mailboxes/{mailbox}/guest-pake"));
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut joiners = Vec::new();
    for i in 0..20u8 {
        let (url, barrier) = (url.clone(), barrier.clone());
        joiners.push(tokio::spawn(async move {
            let http = client();
            barrier.wait().await;
            let token = format!("{i:032x}");
            let response = http.put(url).header("authorization", bearer(&token)).body(vec![i; 33]).send().await.unwrap();
            (i, response.status())
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for joiner in joiners {
        match joiner.await.unwrap() {
            (i, StatusCode::CREATED) => winners.push(i),
            (_, StatusCode::CONFLICT) => conflicts += 1,
            (i, other) => panic!("joiner {i}: unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one 201");
    assert_eq!(conflicts, 19, "nineteen 409");
    let stored = get(&relay, &mailbox, "guest-pake", &host, 0).await.bytes().await.unwrap();
    assert_eq!(stored.to_vec(), vec![winners[0]; 33], "the winner's bytes are the ones kept");
}

async fn mailboxes_expire(kind: Kind) {
    let config = RelayConfig { mailbox_ttl: Duration::from_millis(700), ..unlimited() };
    let relay = TestRelay::start(kind, config).await;
    let (mailbox, host) = create_mailbox(&relay).await;
    assert_eq!(put(&relay, &mailbox, "host-pake", &host, b"x").await.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(get(&relay, &mailbox, "host-pake", &host, 0).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(put(&relay, &mailbox, "guest-pake", GUEST, b"x").await.status(), StatusCode::NOT_FOUND);
}

async fn mailbox_rate_limits_hold(kind: Kind) {
    let limits = RateLimits { slot_access: Some(5), ..RateLimits::default() };
    let relay = TestRelay::start(kind, RelayConfig { limits, ..RelayConfig::default() }).await;
    let mut mailboxes = Vec::new();
    for _ in 0..10 {
        mailboxes.push(create_mailbox(&relay).await);
    }
    let ((first, host), (second, second_host)) = (mailboxes[0].clone(), mailboxes[1].clone());
    let limited = client().post(relay.at("/v2/mailboxes")).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "60");
    error_of(limited).await;

    for i in 0..5 {
        assert_ne!(get(&relay, &first, "host-pake", &host, 0).await.status(), StatusCode::TOO_MANY_REQUESTS, "#{i}");
    }
    let limited = put(&relay, &second, "host-pake", &second_host, b"x").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "60");
}

async fn mailbox_ids_are_distinct(kind: Kind) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let mut seen = HashSet::new();
    for _ in 0..300 {
        assert!(seen.insert(create_mailbox(&relay).await.0), "a live mailbox id was handed out twice");
    }
}
