//! The relay's global caps and its probing budget, on both stores: live mailboxes, stored slot
//! bytes and open connections each end in a 503 with a stable JSON `code`; a client that names
//! too many unknown mailboxes is refused further mailbox requests.

use std::time::Duration;

use botsync::relay::{RateLimits, RelayConfig};
use crate::support::relay::{client, unlimited, Kind, TestRelay};
use reqwest::StatusCode;
use serde_json::Value;

async fn allocate(relay: &TestRelay) -> reqwest::Response {
    client().post(relay.at("/v2/mailboxes")).send().await.unwrap()
}

async fn full(response: reqwest::Response, code: &str) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.contains('\n')), "{body}");
}

async fn live_mailboxes_are_capped(kind: Kind) {
    let relay = TestRelay::start(kind, RelayConfig { max_mailboxes: 3, ..unlimited() }).await;
    let mut hosts = Vec::new();
    for _ in 0..3 {
        let body: Value = allocate(&relay).await.json().await.unwrap();
        hosts.push((body["mailbox"].as_str().unwrap().to_string(), body["hostToken"].as_str().unwrap().to_string()));
    }
    full(allocate(&relay).await, "mailboxes-full").await;
    // Room again once the host ends one.
    let (mailbox, token) = &hosts[0];
    let deleted = client()
        .delete(relay.at(&format!("/v2/mailboxes/{mailbox}")))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(allocate(&relay).await.status(), StatusCode::CREATED);
}

async fn stored_bytes_are_capped(kind: Kind) {
    let relay = TestRelay::start(kind, RelayConfig { max_stored_bytes: 10_000, ..unlimited() }).await;
    let body: Value = allocate(&relay).await.json().await.unwrap();
    let (mailbox, token) = (body["mailbox"].as_str().unwrap(), format!("Bearer {}", body["hostToken"].as_str().unwrap()));
    let put = |slot: &str, size: usize, auth: String| {
        client().put(relay.at(&format!("/v2/mailboxes/{mailbox}/{slot}"))).header("authorization", auth).body(vec![1u8; size]).send()
    };
    assert_eq!(put("host-pake", 8_000, token.clone()).await.unwrap().status(), StatusCode::CREATED);
    full(put("host-data", 8_000, token.clone()).await.unwrap(), "storage-full").await;
    assert_eq!(put("host-data", 2_000, token).await.unwrap().status(), StatusCode::CREATED);
}

async fn unknown_mailbox_probes_have_a_small_budget(kind: Kind) {
    let limits = RateLimits { unknown_mailbox: Some(3), ..RateLimits::unlimited() };
    let relay = TestRelay::start(kind, RelayConfig { limits, ..RelayConfig::default() }).await;
    let body: Value = allocate(&relay).await.json().await.unwrap();
    let live = body["mailbox"].as_str().unwrap().to_string();
    let words = botsync::relay::codes::word_list();
    let mut probes = 0;
    for word in words.iter().take(50) {
        let guess = format!("{word}-{word}");
        if guess == live {
            continue;
        }
        let status = client().get(relay.at(&format!("/v2/mailboxes/{guess}/host-pake"))).send().await.unwrap().status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(status, StatusCode::NOT_FOUND);
        probes += 1;
    }
    assert_eq!(probes, 3, "the budget is exactly 3 unknown mailboxes");
    // Past the budget even a live mailbox is not revealed to this client.
    let status = client().get(relay.at(&format!("/v2/mailboxes/{live}/host-pake"))).send().await.unwrap().status();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

async fn open_connections_are_capped(kind: Kind) {
    let config = RelayConfig { max_connections: 4, header_read_timeout: Duration::from_secs(5), ..unlimited() };
    let relay = TestRelay::start(kind, config).await;
    let address = relay.url.trim_start_matches("http://").to_string();
    // Four idle connections hold every place.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap().get(relay.at("/")).send().await.unwrap();
    full(refused, "connections-full").await;
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap().get(relay.at("/")).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
}

for_both_stores!(live_mailboxes_are_capped, stored_bytes_are_capped, unknown_mailbox_probes_have_a_small_budget, open_connections_are_capped);
