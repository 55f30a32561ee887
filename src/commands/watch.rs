//! `botsync watch` (a line per event until interrupted), `events()` and `waitForSync()` in Node.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::RootOptions;
use crate::daemon::notify::model::human_size;
use crate::daemon::notify::EventFeed;
use crate::clock::Millis;
use crate::device_id::DeviceId;
use crate::engine::RestClient;
use crate::error::{Error, Result};
use crate::root::SharedFolder;

/// Prints every event of the root as it happens, one line each (a JSON object with `json`),
/// through `print`. Returns only on error: the caller is interrupted to stop.
pub async fn run(options: &RootOptions, json: bool, mut print: impl FnMut(&str)) -> Result<std::convert::Infallible> {
    let root = options.locate()?;
    let mut feed = EventFeed::open(&root).await?;
    loop {
        let event = feed.next().await;
        let line = if json { serde_json::to_string(&event).expect("events always serialize") } else { event.human() };
        print(&line);
    }
}

/// Opens the event feed of a root (used by `events()` in Node).
pub async fn open_feed(options: &RootOptions) -> Result<EventFeed> {
    Ok(EventFeed::open(&options.locate()?).await?)
}

/// Options of `waitForSync`.
#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitForSyncOptions {
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
    /// Give up after this many milliseconds (default 60000).
    pub timeout_ms: Option<u32>,
    /// Wait for this one path (`deliverables/report.md`, or absolute inside the root) to reach
    /// the peers, by Syncthing's per-file availability. Without it: everything in every folder.
    pub path: Option<String>,
    /// Peers to wait for, by name or device ID (a prefix will do). Default: every peer the
    /// folder is shared with.
    pub peers: Option<Vec<String>>,
}

/// What `waitForSync` resolves with.
#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Peers that have everything (with `path`: that hold its current version).
    pub peers: Vec<String>,
    /// Folders checked (Syncthing folder IDs).
    pub folders: Vec<String>,
    #[cfg_attr(feature = "node", napi(ts_type = "number"))]
    pub waited_ms: Millis,
    /// With `path`: the path waited for, as `folder/relative`.
    pub path: Option<String>,
    /// With `path`: the version the peers hold (Syncthing's version vector, `SHORTID:counter,…`).
    pub version: Option<String>,
    /// With `path`: whether that version is a deletion.
    pub deleted: Option<bool>,
}

const DEFAULT_WAIT: Duration = Duration::from_secs(60);
const CHECK_EVERY: Duration = Duration::from_millis(200);
const CONFIRM_AFTER: Duration = Duration::from_millis(50);

/// Resolves once this machine has what its peers offer and every connected peer has everything
/// in botsync's folders (with `path`: once the peers hold that path's current version, see
/// `commands::wait`). Scans first, so files written just before the call count.
pub async fn wait_for_sync(options: &WaitForSyncOptions) -> Result<SyncReport> {
    super::wait::run(options).await
}

/// The default wait, in milliseconds given or not.
pub fn wait_limit(timeout_ms: Option<u32>) -> Duration {
    timeout_ms.map_or(DEFAULT_WAIT, |ms| Duration::from_millis(ms.into()))
}

/// Everything-in-sync against any Syncthing; `only` limits the peers waited for (device IDs).
pub async fn wait_on(rest: &RestClient, limit: Duration, only: Option<&[String]>) -> Result<SyncReport> {
    let started = Instant::now();
    let deadline = started + limit;
    let remaining = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let me = rest.system_status().await.map_err(Error::EngineUnreachable)?.my_id;
    let folders: Vec<_> = rest
        .folders()
        .await
        .map_err(Error::EngineUnreachable)?
        .into_iter()
        .filter(|f| SharedFolder::from_folder_id(&f.id).is_some())
        .collect();
    // A scan request returns when the scan is done: what was written before this call is indexed.
    for folder in &folders {
        let scanned = rest.with_timeout(remaining()).scan::<&str>(&folder.id, &[]).await;
        if let Err(error) = scanned {
            if Instant::now() >= deadline {
                return Err(timeout(started, vec![format!("scanning {} did not finish", folder.id)]));
            }
            return Err(Error::EngineUnreachable(error));
        }
    }
    let names: HashMap<DeviceId, String> =
        rest.devices().await.map_err(Error::EngineUnreachable)?.into_iter().map(|d| (d.device_id, d.name)).collect();
    let label = |id: &DeviceId| match names.get(id).filter(|n| !n.is_empty()) {
        Some(name) => format!("{name} ({})", id.short()),
        None => id.short().to_string(),
    };
    let mut confirmed = false;
    loop {
        let connections = rest.connections().await.map_err(Error::EngineUnreachable)?;
        let connected = |id: &DeviceId| connections.is_connected(&id.to_string());
        let mut incomplete = Vec::new();
        let mut peers_in_sync = Vec::new();
        let mut any_peer = false;
        let mut any_connected = false;
        for folder in &folders {
            let local = rest.db_completion(&folder.id, None).await.map_err(Error::EngineUnreachable)?;
            if !local.is_complete() {
                incomplete.push(format!(
                    "this machine still needs {} {} ({}) of {}",
                    local.need_items,
                    if local.need_items == 1 { "item" } else { "items" },
                    human_size(local.need_bytes as i64),
                    folder.id
                ));
            }
            let wanted = |id: &DeviceId| only.is_none_or(|only| only.iter().any(|o| *o == id.to_string()));
            for device in folder.devices.iter().filter(|d| d.device_id != me && wanted(&d.device_id)) {
                any_peer = true;
                if !connected(&device.device_id) {
                    continue;
                }
                any_connected = true;
                let remote = rest.db_completion(&folder.id, Some(&device.device_id)).await.map_err(Error::EngineUnreachable)?;
                if remote.is_complete() {
                    if !peers_in_sync.contains(&device.device_id) {
                        peers_in_sync.push(device.device_id);
                    }
                } else {
                    incomplete.push(format!(
                        "{} is at {:.1}% of {} ({} {}, {} to go)",
                        label(&device.device_id),
                        remote.completion,
                        folder.id,
                        remote.need_items + remote.need_deletes,
                        if remote.need_items + remote.need_deletes == 1 { "item" } else { "items" },
                        human_size(remote.need_bytes as i64)
                    ));
                }
            }
        }
        if !any_peer {
            incomplete.push("no peer is paired yet".into());
        } else if !any_connected {
            incomplete.push("no peer is connected".into());
        }
        if incomplete.is_empty() && !confirmed {
            // Syncthing 1.19 counts a peer's finished download before the peer has renamed the
            // file into place; one more look shortly after lets that last step land.
            confirmed = true;
            tokio::time::sleep(CONFIRM_AFTER).await;
            continue;
        }
        if incomplete.is_empty() {
            // A peer counted in one folder but behind in another is in `incomplete`, so all are in sync here.
            return Ok(SyncReport {
                peers: peers_in_sync.iter().map(label).collect(),
                folders: folders.iter().map(|f| f.id.clone()).collect(),
                waited_ms: Millis::since(started),
                path: None,
                version: None,
                deleted: None,
            });
        }
        confirmed = false;
        if Instant::now() + CHECK_EVERY > deadline {
            return Err(timeout(started, incomplete));
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

fn timeout(started: Instant, incomplete: Vec<String>) -> Error {
    Error::SyncTimeout { waited_ms: Millis::since(started).0, incomplete }
}
