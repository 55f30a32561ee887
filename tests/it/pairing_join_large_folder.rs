//! `join` next to a folder whose initial sync takes longer than join's whole timeout (issue 14:
//! 100,000 files take minutes): join returns once the folders run and the peer is connected,
//! with the initial sync still going, instead of waiting for it and failing with "folder not
//! ready". The long sync is made by a bandwidth limit on A (loopback counts as LAN, so the limit
//! is applied in the LAN too).

use std::time::{Duration, Instant};

use botsync::commands::init::InitOptions;
use botsync::commands::join::JoinOptions;
use botsync::commands::{self, RootOptions};
use botsync::engine::Engine;
use botsync::root::SharedFolder;
use crate::support::relay::{unlimited, Kind, TestRelay};
use crate::support::{block_on, isolated, root_at, StopOnDrop};
use rand::RngCore;

const FILES: usize = 64;
const FILE_BYTES: usize = 64 * 1024;
/// 4 MiB at 100 KiB/s: ~40 s, longer than the join timeout below.
const SEND_KIBPS: u64 = 100;
const JOIN_TIMEOUT_S: u32 = 25;

#[test]
fn join_returns_while_a_long_initial_sync_runs() {
    isolated(test_path!("join_returns_while_a_long_initial_sync_runs"), |scratch| {
        let (path_a, path_b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (StopOnDrop(root_at(path_a.clone())), StopOnDrop(root_at(path_b.clone())));
        block_on(async {
            let relay = TestRelay::start(Kind::Memory, unlimited()).await;
            let init = commands::init::run(&InitOptions {
                root: Some(path_a.display().to_string()),
                network: Some("direct".into()),
                relay: Some(relay.url.clone()),
                ..Default::default()
            })
            .await
            .expect("init A");
            let a = Engine::load(&root_at(path_a.clone())).unwrap();
            let shared_a = a.root().folder_dir(SharedFolder::Shared);
            let mut content = vec![0u8; FILE_BYTES];
            for i in 0..FILES {
                rand::rng().fill_bytes(&mut content);
                std::fs::write(shared_a.join(format!("f{i:03}.bin")), &content).unwrap();
            }
            let rest_a = a.rest();
            let folder = SharedFolder::Shared.folder_id();
            let started = Instant::now();
            loop {
                let status = rest_a.db_status(folder).await.expect("A's status");
                if status.state == "idle" && status.other.get("localFiles").and_then(|v| v.as_u64()) == Some(FILES as u64) {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(60), "A never scanned its files: {status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            rest_a
                .patch_options(&serde_json::json!({ "maxSendKbps": SEND_KIBPS, "limitBandwidthInLan": true }))
                .await
                .expect("A's bandwidth limit");

            let joined = commands::join::run(&JoinOptions {
                code: init.invite.code.clone(),
                root: Some(path_b.display().to_string()),
                network: Some("direct".into()),
                relay: Some(relay.url.clone()),
                timeout_seconds: Some(JOIN_TIMEOUT_S),
                original: None,
            })
            .await
            .expect("join returns while the initial sync runs");
            assert_eq!(joined.peer.device_id, init.device_id);

            // The sync is still going: B does not have everything yet, and its folder runs.
            let b = Engine::load(&root_at(path_b.clone())).unwrap();
            let status = b.rest().db_status(folder).await.expect("B's status");
            let local = status.other.get("localFiles").and_then(|v| v.as_u64()).unwrap_or(0);
            assert!(local < FILES as u64, "B already had every file when join returned: {status:?}");
            assert!(status.state != "error", "{status:?}");
            // And it completes on its own (faster without the limit).
            rest_a.patch_options(&serde_json::json!({ "maxSendKbps": 0 })).await.expect("lift the limit");
            let started = Instant::now();
            loop {
                let status = b.rest().db_status(folder).await.expect("B's status");
                if status.need_files == 0 && status.other.get("localFiles").and_then(|v| v.as_u64()) == Some(FILES as u64) {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(120), "B never got every file: {status:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for root in [&path_a, &path_b] {
                commands::stop::run(&RootOptions { root: Some(root.display().to_string()) }).await.expect("stop");
            }
        });
    });
}
