//! The relay under hostile input and load, beyond tests/relay_*.rs. Property tests of its request
//! handling (tests/pairing_fuzz.rs covers the client side: code parser, offline-code decoder, PAKE
//! messages, relay answers): its code, mailbox and slot parsers take any text without panicking,
//! and a live relay answers any method, path, query and body, and any raw bytes, with a 2xx or a
//! 4xx JSON error (never a 5xx) and keeps serving. And rate limits hold exactly under a burst of
//! concurrent requests, on both stores (tests/relay_api.rs checks them one request at a time).

use std::sync::OnceLock;
use std::time::Duration;

use botsync::relay::{MailboxId, PairCode, RateLimits, RelayConfig};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Shared {
    runtime: tokio::runtime::Runtime,
    url: String,
    http: reqwest::Client,
}

/// One relay for every case (a relay per case would spend the time on start-up).
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let config = RelayConfig {
            limits: RateLimits::unlimited(),
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
            ..RelayConfig::default()
        };
        let url = runtime.block_on(async {
            let relay = botsync::relay::start("127.0.0.1:0", &botsync::relay::Backend::Memory, config).await.unwrap();
            let url = relay.url();
            // Serves until the test process exits.
            std::mem::forget(relay);
            url
        });
        // No pooled connections: the relay closes idle keep-alive connections after the (short)
        // header timeout, and a request racing that close would fail for the client's reasons.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(0).build().unwrap();
        Shared { runtime, url, http }
    })
}

fn words() -> Vec<&'static str> {
    botsync::relay::codes::word_list().iter().take(64).copied().collect()
}

/// A path segment: a real word pair or code, a slot name, or junk of any kind.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        (prop::sample::select(words()), prop::sample::select(words())).prop_map(|(a, b)| format!("{a}-{b}")),
        prop::collection::vec(prop::sample::select(words()), 1..7).prop_map(|w| w.join("-")),
        prop::sample::select(vec!["host-pake", "guest-pake", "guest-data", "host-data", "pair", "v2", "mailboxes", "..", ".", ""])
            .prop_map(String::from),
        ".{0,40}",
        "[A-Za-z0-9%_-]{0,300}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![
        Just(serde_json::json!({})),
        ".{0,80}".prop_map(|id| serde_json::json!({ "deviceId": id })),
        (".{0,80}", ".{0,40}", ".{0,40}").prop_map(|(d, n, s)| serde_json::json!({ "deviceId": d, "networkId": n, "networkSecret": s })),
        any::<i64>().prop_map(|n| serde_json::json!({ "deviceId": n, "networkId": [n], "networkSecret": { "x": n } })),
        Just(serde_json::json!([1, "two", null])),
        Just(serde_json::Value::Null),
    ];
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..512),
        json.prop_map(|v| v.to_string().into_bytes()),
        (1usize..40).prop_map(|kb| vec![b'x'; kb * 1024]),
    ]
}

fn assert_well_formed(status: u16, body: &[u8], what: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{what}: HTTP {status}");
    // HEAD answers carry no body by definition.
    if status >= 400 && !what.starts_with("HEAD") {
        let parsed: serde_json::Value = serde_json::from_slice(body).map_err(|e| TestCaseError::fail(format!("{what}: HTTP {status} body is not JSON: {e}")))?;
        prop_assert!(parsed["error"].is_string(), "{what}: HTTP {status} without {{\"error\": string}}: {parsed}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn relay_parsers_never_panic(text in ".{0,120}") {
        if let Ok(code) = PairCode::parse(&text) {
            let again = PairCode::parse(code.as_str()).unwrap();
            prop_assert_eq!(again.as_str(), code.as_str());
        }
        if let Some(mailbox) = MailboxId::parse_strict(&text) {
            let again = MailboxId::parse_strict(&mailbox.to_string()).unwrap();
            prop_assert_eq!(again.to_string(), mailbox.to_string());
            prop_assert_eq!(mailbox.to_string().split('-').count(), 2);
        }
        if let Ok(slot) = botsync::relay::codes::parse_slot(&text) {
            prop_assert_eq!(slot.as_str(), text.as_str());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_a_clean_answer(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
        segments in prop::collection::vec(segment(), 0..5),
        wait in prop::option::of(prop_oneof![".{0,12}", (0u64..40_000).prop_map(|n| n.to_string())]),
        body in body(),
        json_header in any::<bool>(),
    ) {
        let shared = shared();
        let mut url = reqwest::Url::parse(&shared.url).unwrap();
        url.path_segments_mut().unwrap().extend(segments.iter().map(String::as_str));
        if let Some(wait) = &wait {
            // Long-polls would make the run slow; keep real waits short.
            let wait = match wait.parse::<u64>() { Ok(n) => (n % 200).to_string(), Err(_) => wait.clone() };
            url.query_pairs_mut().append_pair("wait", &wait);
        }
        let what = format!("{method} {url} ({} body bytes)", body.len());
        let (status, answer) = shared.runtime.block_on(async {
            let mut request = shared.http.request(method.parse().unwrap(), url.clone()).body(body.clone());
            if json_header {
                request = request.header("content-type", "application/json");
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    Some((status, response.bytes().await.unwrap_or_default().to_vec()))
                }
                // The relay may answer (404/405/413) and close before reading a large body it
                // will not use; the client then fails writing it. Only for bodies, never else.
                Err(e) => {
                    assert!(body.len() > 1024, "{what}: no answer: {e}");
                    None
                }
            }
        }).unzip();
        if let (Some(status), Some(answer)) = (status, answer) {
            assert_well_formed(status, &answer, &what)?;
        }
        let alive = shared.runtime.block_on(async { shared.http.get(&shared.url).send().await.map(|r| r.status().as_u16()) });
        prop_assert_eq!(alive.ok(), Some(200), "the relay stopped serving after {}", what);
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn raw_bytes_never_break_the_relay(bytes in prop::collection::vec(any::<u8>(), 0..2048), prefix in prop::sample::select(vec!["", "GET / HTTP/1.1\r\n", "POST /pair HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "PUT /v2/mailboxes/"])) {
        let shared = shared();
        let address = shared.url.trim_start_matches("http://").to_string();
        shared.runtime.block_on(async {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let _ = stream.write_all(prefix.as_bytes()).await;
            let _ = stream.write_all(&bytes).await;
            let mut sink = Vec::new();
            // The relay answers or hangs up within its header/body timeouts.
            let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut sink)).await;
            if sink.starts_with(b"HTTP/1.1 5") {
                panic!("a 5xx answer to raw bytes: {}", String::from_utf8_lossy(&sink));
            }
        });
        let alive = shared.runtime.block_on(async { shared.http.get(&shared.url).send().await.map(|r| r.status().as_u16()) });
        prop_assert_eq!(alive.as_ref().ok(), Some(&200), "the relay stopped serving: {:?}", alive);
    }
}

/// A burst of concurrent requests from one address: exactly the budget passes, on both stores
/// (the check-and-count must be atomic, or a burst would slip through).
async fn burst_respects_the_limit(kind: crate::support::relay::Kind) {
    let relay = crate::support::relay::TestRelay::start(kind, RelayConfig::default()).await;
    let http = crate::support::relay::client();
    let creations = (0..60).map(|_| {
        let (http, url) = (http.clone(), relay.at("/pair"));
        tokio::spawn(async move {
            http.post(url).json(&serde_json::json!({ "deviceId": crate::support::relay::DEVICE_ID })).send().await.unwrap().status().as_u16()
        })
    });
    let mailboxes = (0..60).map(|_| {
        let (http, url) = (http.clone(), relay.at("/v2/mailboxes"));
        tokio::spawn(async move { http.post(url).send().await.unwrap().status().as_u16() })
    });
    let lookups = (0..60).map(|i| {
        let (http, url) = (http.clone(), relay.at(&format!("/pair/guess-{i}")));
        tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
    });
    for (what, tasks, budget) in [
        ("POST /pair", creations.collect::<Vec<_>>(), 10),
        ("POST /v2/mailboxes", mailboxes.collect(), 10),
        ("GET /pair/:code", lookups.collect(), 20),
    ] {
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(statuses.len() - limited, budget, "{kind:?} {what}: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 429 || *s < 500), "{kind:?} {what}: {statuses:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_under_a_burst_in_memory() {
    burst_respects_the_limit(crate::support::relay::Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_under_a_burst_on_redis() {
    burst_respects_the_limit(crate::support::relay::Kind::Redis).await;
}
