//! Support for the agents tests: two roots paired through an in-process relay.

use std::path::Path;

use botsync::commands::{self, init::InitOptions, join::JoinOptions, watch::WaitForSyncOptions};
use botsync::relay::{Backend, RelayConfig};

/// Debian sid's Syncthing 1.29.x: `BOTSYNC_TEST_SYNCTHING_NEW` (set by `.ci/run` from
/// `scripts/syncthing-sid.sh`), else where that script caches it by default.
pub fn sid_syncthing() -> String {
    std::env::var("BOTSYNC_TEST_SYNCTHING_NEW")
        .unwrap_or_else(|_| "/var/cache/botsync/syncthing-sid/x/usr/bin/syncthing".into())
}

/// Pairs `a` (init) and `b` (join) through an in-process relay; returns B's device ID.
pub async fn pair(a: &Path, b: &Path) -> String {
    let relay = botsync::relay::start("127.0.0.1:0", &Backend::Memory, RelayConfig::default()).await.unwrap();
    let init = commands::init::run(&InitOptions {
        root: Some(a.display().to_string()),
        network: Some("direct".into()),
        relay: Some(relay.url()),
        ..Default::default()
    })
    .await
    .expect("init A");
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
    relay.shutdown().await;
    joined.device_id
}

/// `waitForSync` options for one path.
pub fn wait_options(root: &Path, path: &str, timeout_ms: u32) -> WaitForSyncOptions {
    WaitForSyncOptions {
        root: Some(root.display().to_string()),
        timeout_ms: Some(timeout_ms),
        path: Some(path.into()),
        peers: None,
    }
}

/// Runs `body` like `isolated`, with Debian sid's Syncthing 1.29.x; skipped, saying so, where it
/// is not unpacked (run `scripts/syncthing-sid.sh`), except in CI, where that is a failure.
pub fn isolated_with_1_29(name: String, body: fn(&Path)) {
    let sid = sid_syncthing();
    if !Path::new(&sid).exists() {
        assert!(std::env::var_os("CI").is_none(), "{sid} is missing: CI must run scripts/syncthing-sid.sh first");
        eprintln!("skipped: {sid} is not unpacked here (scripts/syncthing-sid.sh fetches it)");
        return;
    }
    super::isolated(name, move |scratch| {
        std::env::set_var("BOTSYNC_SYNCTHING", &sid);
        body(scratch)
    });
}
