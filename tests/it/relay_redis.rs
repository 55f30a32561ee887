//! What only the Redis store promises: several relay instances (or a restarted one) share codes,
//! mailboxes and rate limits; expiry is Redis's own; a lost Redis is a JSON 503, not a hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use botsync::relay::{Backend, RateLimits, RelayConfig, RelayError};
use crate::support::relay::{client, unlimited, RedisServer, TestRelay, DEVICE_ID};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn create_code(relay: &TestRelay) -> String {
    let response = client().post(relay.at("/pair")).json(&json!({ "deviceId": DEVICE_ID })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["code"].as_str().unwrap().to_string()
}

/// A mailbox id and the `Authorization` value of its host.
async fn create_mailbox(relay: &TestRelay) -> (String, String) {
    let response = client().post(relay.at("/v2/mailboxes")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = response.json::<Value>().await.unwrap();
    (body["mailbox"].as_str().unwrap().to_string(), format!("Bearer {}", body["hostToken"].as_str().unwrap()))
}

const GUEST: &str = "Bearer 0123456789abcdef0123456789abcdef";
const OTHER_GUEST: &str = "Bearer fedcba9876543210fedcba9876543210";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_codes_and_mailboxes() {
    let redis = Arc::new(RedisServer::start());
    let a = TestRelay::with_redis(redis.clone(), unlimited()).await;
    let b = TestRelay::with_redis(redis.clone(), unlimited()).await;
    assert_ne!(a.url, b.url);

    let code = create_code(&a).await;
    assert_eq!(client().get(b.at(&format!("/pair/{code}"))).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(client().get(a.at(&format!("/pair/{code}"))).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // A long-poll on B sees a write made through A (B polls the shared store).
    let (mailbox, host) = create_mailbox(&a).await;
    let poll_url = b.at(&format!("/v2/mailboxes/{mailbox}/host-pake?wait=10000"));
    let waiter = tokio::spawn(async move {
        let response = client().get(poll_url).send().await.unwrap();
        (response.status(), response.bytes().await.unwrap(), Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written =
        client().put(a.at(&format!("/v2/mailboxes/{mailbox}/host-pake"))).header("authorization", &host).body("pake-A").send().await.unwrap();
    assert_eq!(written.status(), StatusCode::CREATED);
    let wrote_at = Instant::now();
    let (status, bytes, answered_at) = waiter.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes.as_ref(), b"pake-A");
    assert!(answered_at.duration_since(wrote_at) < Duration::from_millis(500), "cross-instance wake-up was slow");

    // Write-once holds across instances.
    let first = client().put(b.at(&format!("/v2/mailboxes/{mailbox}/guest-pake"))).header("authorization", GUEST).body("g1").send().await.unwrap();
    let second =
        client().put(a.at(&format!("/v2/mailboxes/{mailbox}/guest-pake"))).header("authorization", OTHER_GUEST).body("g2").send().await.unwrap();
    assert_eq!((first.status(), second.status()), (StatusCode::CREATED, StatusCode::CONFLICT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_instance_still_resolves_live_codes_and_mailboxes() {
    let redis = Arc::new(RedisServer::start());
    let mut first = TestRelay::with_redis(redis.clone(), unlimited()).await;
    let code = create_code(&first).await;
    let (mailbox, host) = create_mailbox(&first).await;
    let put = client()
        .put(first.at(&format!("/v2/mailboxes/{mailbox}/host-pake")))
        .header("authorization", &host)
        .body("before restart")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    first.stop().await;
    drop(first);

    let second = TestRelay::with_redis(redis.clone(), unlimited()).await;
    let resolved = client().get(second.at(&format!("/pair/{code}"))).send().await.unwrap();
    assert_eq!(resolved.status(), StatusCode::OK);
    assert_eq!(resolved.json::<Value>().await.unwrap()["deviceId"], DEVICE_ID);
    let slot = client().get(second.at(&format!("/v2/mailboxes/{mailbox}/host-pake"))).send().await.unwrap();
    assert_eq!(slot.status(), StatusCode::OK);
    assert_eq!(slot.bytes().await.unwrap().as_ref(), b"before restart");
    let guest = client().put(second.at(&format!("/v2/mailboxes/{mailbox}/guest-pake"))).header("authorization", GUEST).body("g").send().await.unwrap();
    assert_eq!(guest.status(), StatusCode::CREATED);
    // The host token from before the restart still authorizes the host, and only it.
    let url = second.at(&format!("/v2/mailboxes/{mailbox}/guest-pake"));
    assert_eq!(client().get(&url).header("authorization", GUEST).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(client().get(&url).header("authorization", &host).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_across_instances() {
    let redis = Arc::new(RedisServer::start());
    let a = TestRelay::with_redis(redis.clone(), RelayConfig::default()).await;
    let b = TestRelay::with_redis(redis.clone(), RelayConfig::default()).await;
    for i in 0..10 {
        let relay = if i % 2 == 0 { &a } else { &b };
        create_code(relay).await;
    }
    for relay in [&a, &b] {
        let response = client().post(relay.at("/pair")).json(&json!({ "deviceId": DEVICE_ID })).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "60");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_carries_its_own_expiry() {
    let redis = Arc::new(RedisServer::start());
    let config = RelayConfig { limits: RateLimits::default(), ..RelayConfig::default() };
    let relay = TestRelay::with_redis(redis.clone(), config).await;
    let response = client()
        .post(relay.at("/pair"))
        .json(&json!({ "deviceId": DEVICE_ID, "networkId": "mesh", "networkSecret": "s" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    create_mailbox(&relay).await;

    let mut connection = redis::Client::open(redis.url()).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("test:*").query(&mut connection).unwrap();
    assert_eq!(keys.len(), 5, "pair, mailbox, the live-mailbox index and two rate counters (no network hash): {keys:?}");
    for key in keys {
        let ttl_ms: i64 = redis::cmd("PTTL").arg(&key).query(&mut connection).unwrap();
        let bound_ms = match key.split(':').nth(1).unwrap() {
            "pair" | "mb" | "live" | "bytes" | "bytes-total" => 600_000,
            "rl" => 60_000,
            other => panic!("unexpected key kind {other} in {key}"),
        };
        assert!(ttl_ms > 0 && ttl_ms <= bound_ms, "{key}: PTTL {ttl_ms}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_fails_fast_at_start_and_503s_later() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let backend = Backend::Redis { url: format!("redis://127.0.0.1:{port}/"), key_prefix: "test:".into() };
    let started = Instant::now();
    match botsync::relay::start("127.0.0.1:0", &backend, unlimited()).await {
        Err(RelayError::Redis { .. }) => {}
        other => panic!("expected a Redis error, got {:?}", other.map(|r| r.url())),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());

    // Redis going away under a running relay: requests fail with a JSON 503, not a hang.
    let redis = Arc::new(RedisServer::start());
    let mut relay = TestRelay::with_redis(redis.clone(), unlimited()).await;
    create_code(&relay).await;
    relay.redis = None;
    // Dropping the last handle stops redis-server (by PID).
    drop(Arc::try_unwrap(redis).ok().expect("sole owner of the redis server"));
    let started = Instant::now();
    let response = client().post(relay.at("/pair")).json(&json!({ "deviceId": DEVICE_ID })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("storage unavailable"));
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
}
