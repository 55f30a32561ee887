//! `waitForSync` and `botsync watch` against a fake Syncthing on loopback, through a root whose
//! `.botsync/config.json` names the fake's port and key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use botsync::commands::watch::{self, WaitForSyncOptions};
use botsync::commands::RootOptions;
use botsync::{Error, ErrorCode, SyncRoot};
use crate::support::notify::{fixture, fixture_ids, FakeSyncthing};
use serde_json::json;

const ME: &str = crate::support::notify::LOCAL_ID;
const PEER: &str = "J2UJDNG-SLMVJP3-WA4Y2ZH-44PUZ2V-IOLHQMR-W4QYVQN-GGLL4UK-ZR6AEAV";

struct Setup {
    _dir: tempfile::TempDir,
    root: SyncRoot,
    fake: FakeSyncthing,
    server: tokio::task::JoinHandle<()>,
}

async fn setup(my_id: &str) -> Setup {
    let fake = FakeSyncthing::new(my_id);
    let (addr, server) = fake.start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = SyncRoot::at(dir.path().to_owned()).unwrap();
    crate::support::notify::record_engine(&root, addr.port());
    Setup { _dir: dir, root, fake, server }
}

fn share_with_peer(fake: &FakeSyncthing, connected: bool) {
    let mut s = fake.0.lock().unwrap();
    s.folders = vec![
        json!({"id": "botsync-shared", "devices": [{"deviceID": ME}, {"deviceID": PEER}]}),
        json!({"id": "botsync-inbox", "devices": [{"deviceID": ME}, {"deviceID": PEER}]}),
        json!({"id": "not-ours", "devices": [{"deviceID": ME}]}),
    ];
    s.devices = vec![json!({"deviceID": ME, "name": "me"}), json!({"deviceID": PEER, "name": "laptop"})];
    s.connections = json!({"connections": {ME: {"connected": false}, PEER: {"connected": connected}}});
}

fn set_peer_completion(fake: &FakeSyncthing, folder: &str, completion: f64, need_items: u64) {
    fake.0.lock().unwrap().completion.insert(
        (folder.to_string(), PEER.to_string()),
        json!({"completion": completion, "needBytes": need_items * 1000, "needItems": need_items, "needDeletes": 0, "globalBytes": 5000}),
    );
}

fn options(root: &SyncRoot, timeout_ms: u32) -> WaitForSyncOptions {
    WaitForSyncOptions { root: Some(root.path().display().to_string()), timeout_ms: Some(timeout_ms), ..Default::default() }
}

#[tokio::test]
async fn resolves_once_the_connected_peer_has_everything() {
    let s = setup(ME).await;
    share_with_peer(&s.fake, true);
    set_peer_completion(&s.fake, "botsync-shared", 80.0, 2);
    let fake = s.fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        set_peer_completion(&fake, "botsync-shared", 100.0, 0);
    });
    let report = watch::wait_for_sync(&options(&s.root, 10_000)).await.unwrap();
    assert_eq!(report.peers, vec!["laptop (J2UJDNG)"]);
    assert_eq!(report.folders, vec!["botsync-shared", "botsync-inbox"]);
    assert!(report.waited_ms.0 >= 500, "{}", report.waited_ms);
    // Scanned first, so that files written just before the call are counted; only our folders.
    assert_eq!(s.fake.0.lock().unwrap().scans, vec!["botsync-shared", "botsync-inbox"]);
    s.server.abort();
}

#[tokio::test]
async fn times_out_naming_what_is_incomplete() {
    let s = setup(ME).await;
    share_with_peer(&s.fake, true);
    set_peer_completion(&s.fake, "botsync-inbox", 62.5, 3);
    let error: Error = watch::wait_for_sync(&options(&s.root, 700)).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::Timeout);
    assert_eq!(error.code().as_str(), "BOTSYNC_TIMEOUT");
    let message = error.to_string();
    assert!(message.contains("laptop (J2UJDNG) is at 62.5% of botsync-inbox (3 items, 3.0 KB to go)"), "{message}");
    assert!(!message.contains("botsync-shared"), "{message}");
    s.server.abort();
}

#[tokio::test]
async fn waits_for_a_peer_to_be_connected() {
    let s = setup(ME).await;
    share_with_peer(&s.fake, false);
    let message = watch::wait_for_sync(&options(&s.root, 500)).await.unwrap_err().to_string();
    assert!(message.contains("no peer is connected"), "{message}");

    let fake = s.fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        share_with_peer(&fake, true);
    });
    let report = watch::wait_for_sync(&options(&s.root, 10_000)).await.unwrap();
    assert_eq!(report.peers.len(), 1);
    s.server.abort();
}

#[tokio::test]
async fn a_stopped_engine_and_a_fresh_root_have_their_own_codes() {
    let s = setup(ME).await;
    s.server.abort();
    let _ = s.server.await;
    let error = watch::wait_for_sync(&options(&s.root, 1000)).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::EngineUnreachable, "{error}");

    let empty = tempfile::tempdir().unwrap();
    let error = watch::wait_for_sync(&WaitForSyncOptions { root: Some(empty.path().display().to_string()), timeout_ms: None, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::NotInitialized, "{error}");
}

#[tokio::test]
async fn watch_prints_one_json_line_per_event() {
    let ids = fixture_ids();
    let s = setup(ids["b"].as_str().unwrap()).await;
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let options = RootOptions { root: Some(s.root.path().display().to_string()) };
    let watcher = tokio::spawn(async move {
        let _ = watch::run(&options, true, move |line| sink.lock().unwrap().push(line.to_string())).await;
    });
    // Let watch start (it skips what was buffered before it).
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.fake.push_recorded(&fixture("events-b.json"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lines.lock().unwrap().len() < 12 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let lines = lines.lock().unwrap().clone();
    let types: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("each line is JSON")["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types.iter().filter(|t| *t == "file").count(), 7, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "conflict").count(), 1, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "deviceConnected").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "deviceDisconnected").count(), 2, "{types:?}");
    let first_file: serde_json::Value = serde_json::from_str(lines.iter().find(|l| l.contains("\"file\"")).unwrap()).unwrap();
    assert_eq!(first_file["path"], "report.md");
    assert_eq!(first_file["folder"], "shared");
    assert_eq!(first_file["action"], "added");
    assert_eq!(first_file["peer"]["name"], "agent-box");
    s.server.abort();
}
