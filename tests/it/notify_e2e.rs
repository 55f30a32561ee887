//! Notifications between two real paired roots: the background process of the receiving root
//! tells OpenClaw (a fake gateway on loopback) what arrived and from whom; the event feed agents
//! read sees the same file; `waitForSync` on the sender resolves once the peer has everything.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use botsync::commands::{self, init::InitOptions, join::JoinOptions, watch::WaitForSyncOptions};
use botsync::daemon::notify::{BotsyncEvent, EventFeed};
use botsync::relay::{Backend, RelayConfig};
use crate::support::{block_on, isolated, root_at, StopOnDrop};

type Received = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;

async fn fake_openclaw() -> (String, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/hooks/agent",
            post(|State(seen): State<Received>, headers: HeaderMap, Json(body): Json<serde_json::Value>| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
                seen.lock().unwrap().push((auth, body));
                "ok"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/agent", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn options(root: &Path, relay: &str) -> InitOptions {
    InitOptions { root: Some(root.display().to_string()), network: Some("direct".into()), relay: Some(relay.into()), ..Default::default() }
}

async fn wait_until<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(found) = probe() {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[test]
fn a_file_from_the_peer_reaches_openclaw_and_the_event_feed() {
    isolated(test_path!("a_file_from_the_peer_reaches_openclaw_and_the_event_feed"), |scratch| {
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (StopOnDrop(root_at(a.clone())), StopOnDrop(root_at(b.clone())));
        block_on(async {
            let relay = botsync::relay::start("127.0.0.1:0", &Backend::Memory, RelayConfig::default()).await.unwrap();
            let (hooks_url, received) = fake_openclaw().await;
            // A's daemon picks these up from the settings `init` records before starting it.
            std::env::set_var("OPENCLAW_HOOKS_TOKEN", "test-token-not-a-secret");
            std::env::set_var("OPENCLAW_HOOKS_URL", &hooks_url);
            let init = commands::init::run(&options(&a, &relay.url())).await.expect("init A");
            std::env::remove_var("OPENCLAW_HOOKS_TOKEN");
            std::env::remove_var("OPENCLAW_HOOKS_URL");
            let joined = commands::join::run(&JoinOptions {
                code: init.invite.code.clone(),
                root: Some(b.display().to_string()),
                network: Some("direct".into()),
                relay: Some(relay.url()),
                timeout_seconds: Some(60),
                ..Default::default()
            })
            .await
            .expect("join B");

            let connected = wait_until(Duration::from_secs(10), || {
                received.lock().unwrap().iter().find(|(_, body)| body["message"].as_str().unwrap_or("").contains("connected")).cloned()
            })
            .await
            .expect("a device-connected notification");
            assert_eq!(connected.0.as_deref(), Some("Bearer test-token-not-a-secret"));
            assert_eq!(connected.1["name"], "BotSync");
            assert_eq!(connected.1["wakeMode"], "now");

            let mut feed = EventFeed::open(&root_at(a.clone())).await.expect("event feed on A");
            std::fs::write(b.join("shared/report.md"), "# results\n").unwrap();
            let event = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    if let BotsyncEvent::File { path, peer, .. } = feed.next().await {
                        if path == "report.md" {
                            return peer;
                        }
                    }
                }
            })
            .await
            .expect("a file event on A");
            assert_eq!(event.map(|p| p.device_id), Some(joined.device_id.clone()), "the event names the sender");

            let batch = wait_until(Duration::from_secs(15), || {
                received.lock().unwrap().iter().find(|(_, body)| body["message"].as_str().unwrap_or("").contains("report.md")).cloned()
            })
            .await
            .expect("a file notification after the debounce");
            let message = batch.1["message"].as_str().unwrap();
            assert!(message.contains(&format!("({})", &joined.device_id[..7])), "the message names the sender: {message}");
            assert_eq!(batch.1["deliver"], true);
            assert!(batch.1["sessionKey"].as_str().unwrap().starts_with("hook:botsync:"));

            std::fs::write(b.join("deliverables/answer.txt"), "42\n").unwrap();
            let synced = commands::watch::wait_for_sync(&WaitForSyncOptions {
                root: Some(b.display().to_string()),
                timeout_ms: Some(30_000),
                ..Default::default()
            })
            .await
            .expect("waitForSync on B");
            assert_eq!(synced.peers.len(), 1, "{synced:?}");
            // Syncthing reports the peer complete as its last rename lands; allow that instant.
            let arrived = wait_until(Duration::from_secs(1), || a.join("deliverables/answer.txt").exists().then_some(())).await;
            assert!(arrived.is_some(), "waitForSync resolved but the file is not on A: {synced:?}");
            assert_eq!(std::fs::read_to_string(a.join("deliverables/answer.txt")).unwrap(), "42\n");

            let status = commands::status::run(&commands::RootOptions { root: Some(a.display().to_string()) }).await.unwrap();
            assert!(status.notifications.enabled);
            assert!(status.daemon.running);
            // A message stays queued until the gateway has answered its POST, and answer.txt's
            // arrival on A makes one: the queue drains, it is not read empty at any instant.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                let status = commands::status::run(&commands::RootOptions { root: Some(a.display().to_string()) }).await.unwrap();
                if status.notifications.queued == 0 {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "notifications stay queued: {:?}", status.notifications);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for root in [&a, &b] {
                commands::stop::run(&commands::RootOptions { root: Some(root.display().to_string()) }).await.unwrap();
            }
            relay.shutdown().await;
        });
    });
}
