//! The API key never travels through a proxy: with HTTP_PROXY, HTTPS_PROXY and ALL_PROXY aimed at
//! a loopback proxy that records every connection, two real roots pair (`init`, `invite`,
//! `join`), the daemons fast-scan and sync a file, and `status`, `waitForSync` and the event
//! feed talk to Syncthing; the proxy must have seen nothing. A plain client that honours the
//! environment reaches the proxy at the end, so the proxy was really in the way.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botsync::commands::init::InitOptions;
use botsync::commands::invite::InviteOptions;
use botsync::commands::join::JoinOptions;
use botsync::commands::watch::WaitForSyncOptions;
use botsync::commands::{self, RootOptions};
use botsync::daemon::notify::{BotsyncEvent, EventFeed};
use botsync::engine::Engine;
use crate::support::{block_on, isolated, root_at, StopOnDrop};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROXY_VARS: [&str; 6] = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"];

/// A proxy on 127.0.0.1 that records the head of every request reaching it and answers 502.
struct RecordingProxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    async fn start() -> RecordingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let mut head = vec![0u8; 4096];
                    let n = socket.read(&mut head).await.unwrap_or(0);
                    record.lock().unwrap().push(String::from_utf8_lossy(&head[..n]).into_owned());
                    let _ = socket.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                });
            }
        });
        RecordingProxy { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn wait_for_file(path: &Path, expected: &str) {
    let started = Instant::now();
    while std::fs::read_to_string(path).ok().as_deref() != Some(expected) {
        assert!(started.elapsed() < Duration::from_secs(60), "{} never arrived", path.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn no_request_to_syncthing_goes_through_a_proxy() {
    isolated(test_path!("no_request_to_syncthing_goes_through_a_proxy"), |scratch| {
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (StopOnDrop(root_at(a.clone())), StopOnDrop(root_at(b.clone())));
        let root = |p: &Path| Some(p.display().to_string());
        block_on(async {
            let proxy = RecordingProxy::start().await;
            // Set before anything starts: the daemons and Syncthings inherit it too.
            for var in PROXY_VARS {
                std::env::set_var(var, &proxy.url);
            }
            std::env::remove_var("NO_PROXY");
            std::env::remove_var("no_proxy");

            // engine (init) and join's REST calls and event stream. Offline codes: the pairing relay
            // is a remote service that may rightly be reached through a proxy, Syncthing never.
            let network = Some("direct".to_string());
            let init = InitOptions { root: root(&a), network: network.clone(), offline: Some(true), ..Default::default() };
            commands::init::run(&init).await.expect("init a");
            let invite = InviteOptions { root: root(&a), offline: Some(true), ..Default::default() };
            let invite = commands::invite::run(&invite).await.expect("invite");
            let join = JoinOptions { code: invite.code, root: root(&b), network, timeout_seconds: Some(90), ..Default::default() };
            let joined = commands::join::run(&join).await.expect("join");
            assert_eq!(joined.peer.device_id, invite.device_id);

            // The notify feed, then the daemon's fast scan (and Syncthing) carrying a file over.
            let mut feed = EventFeed::open(&root_at(a.clone())).await.expect("event feed");
            std::fs::write(b.join("shared/through.txt"), "no proxy\n").unwrap();
            wait_for_file(&a.join("shared/through.txt"), "no proxy\n").await;
            let arrived = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    if let BotsyncEvent::File { path, .. } = feed.next().await {
                        break path;
                    }
                }
            });
            assert_eq!(arrived.await.expect("a file event"), "through.txt");

            // status and waitForSync.
            let status = commands::status::run(&RootOptions { root: root(&a) }).await.expect("status");
            assert_eq!(status.state, "running");
            assert_eq!(status.peers.len(), 1);
            assert!(status.peers[0].connected, "{status:?}");
            let synced = WaitForSyncOptions { root: root(&b), timeout_ms: Some(60_000), ..Default::default() };
            commands::watch::wait_for_sync(&synced).await.expect("waitForSync");

            let seen = proxy.seen();
            assert!(seen.is_empty(), "requests went through the proxy: {seen:#?}");

            // The control: a client that honours the environment does reach the proxy.
            let gui_port = Engine::load(&root_at(a.clone())).unwrap().state().gui_port;
            let answer = reqwest::Client::new().get(format!("http://127.0.0.1:{gui_port}/rest/system/ping")).send().await.unwrap();
            assert_eq!(answer.status().as_u16(), 502, "the proxy answers what reaches it");
            let seen = proxy.seen();
            assert_eq!(seen.len(), 1, "{seen:#?}");
            assert!(seen[0].contains(&format!("127.0.0.1:{gui_port}/rest/system/ping")), "{seen:#?}");
        });
    });
}
