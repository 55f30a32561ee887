//! Support for the agents tests: two roots paired through an in-process relay.

use std::path::Path;

use botsync::commands::{self, init::InitOptions, join::JoinOptions, watch::WaitForSyncOptions};
use botsync::relay::{Backend, RelayConfig};

pub const SID_SYNCTHING: &str = "/var/cache/botsync/syncthing-sid/x/usr/bin/syncthing";

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
        original: None,
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

/// Runs `body` like `isolated`, with Debian sid's Syncthing 1.29.5; skipped, saying so, where it
/// is not unpacked.
pub fn isolated_with_1_29(name: String, body: fn(&Path)) {
    if !Path::new(SID_SYNCTHING).exists() {
        eprintln!("skipped: {SID_SYNCTHING} is not unpacked here");
        return;
    }
    super::isolated(name, |scratch| {
        std::env::set_var("BOTSYNC_SYNCTHING", SID_SYNCTHING);
        body(scratch)
    });
}
