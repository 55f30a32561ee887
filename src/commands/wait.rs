//! `botsync wait [PATH]` and `waitForSync()`: per-file delivery receipts.
//!
//! A path is delivered to a peer when that peer has announced the path's current (global)
//! version to us: Syncthing lists it in `/rest/db/file`'s `availability`. A peer announces a
//! version only after it has pulled and committed it, so this is a receipt from the other side,
//! not our own guess from aggregate completion. The wait scans the path first (so a file
//! written just before the call counts), then re-reads the availability whenever a peer sends
//! an index update (`RemoteIndexUpdated`), which arrives within milliseconds of the peer's commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::watch::{wait_limit, wait_on, SyncReport, WaitForSyncOptions};
use super::{Report, RootOptions};
use crate::engine::events::EventStream;
use crate::engine::rest::DbFile;
use crate::engine::{Engine, RestClient};
use crate::error::{Error, Result};
use crate::folder_path::FolderPath;
use crate::root::SyncRoot;

/// How long one events poll is held open while waiting; a peer's index update ends it early.
const POLL: Duration = Duration::from_secs(1);

pub async fn run(options: &WaitForSyncOptions) -> Result<SyncReport> {
    let root = RootOptions { root: options.root.clone() }.locate()?;
    let limit = wait_limit(options.timeout_ms);
    let wanted = options.peers.clone().unwrap_or_default();
    match options.path.as_deref() {
        Some(path) => {
            let cwd = std::env::current_dir().ok();
            let target = FolderPath::locate(&root, path, cwd.as_deref())?;
            wait_for_file(&root, &target, &wanted, limit).await
        }
        None => {
            let only = if wanted.is_empty() {
                None
            } else {
                let engine = Engine::load(&root)?;
                let rest = engine.rest();
                let devices = rest.devices().await?;
                let me = engine.device_id().to_string();
                let known: Vec<(String, String)> =
                    devices.into_iter().map(|d| (d.device_id.to_string(), d.name)).filter(|(id, _)| *id != me).collect();
                Some(resolve_peers(&known, &wanted)?.into_iter().map(|(id, _)| id).collect::<Vec<_>>())
            };
            Ok(wait_on(&Engine::load(&root)?.rest(), limit, only.as_deref()).await?)
        }
    }
}

/// The peers a path is waited for: (device ID, label).
pub type Targets = Vec<(String, String)>;

/// Waits until every peer in `wanted` (default: every peer the folder is shared with) holds the
/// current version of `target`.
pub async fn wait_for_file(root: &SyncRoot, target: &FolderPath, wanted: &[String], limit: Duration) -> Result<SyncReport> {
    let started = Instant::now();
    let deadline = started + limit;
    target.check_no_escape(root)?;
    let engine = Engine::load(root)?;
    let rest = engine.rest();
    let folder_id = target.folder.folder_id();
    let targets = folder_peers(&rest, &engine, folder_id, wanted).await?;
    // Subscribe before the first look, so that an index update between the look and the poll
    // is not missed.
    let mut updates = EventStream::new(rest.clone(), &["RemoteIndexUpdated"]).with_poll_timeout(POLL);
    updates.skip_to_now().await?;
    let subs: Vec<&str> = if target.relative.is_empty() { Vec::new() } else { vec![target.relative.as_str()] };
    rest.scan(folder_id, &subs).await?;
    loop {
        let file = current_file(&rest, root, target).await?;
        let lacking: Vec<&(String, String)> = targets.iter().filter(|(id, _)| !file.holds_global(id)).collect();
        if lacking.is_empty() {
            return Ok(SyncReport {
                peers: targets.iter().map(|(_, label)| label.clone()).collect(),
                folders: vec![folder_id.to_string()],
                waited_ms: crate::clock::Millis::since(started),
                path: Some(target.display()),
                version: Some(file.global.version_string()),
                deleted: Some(file.global.deleted),
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let names: Vec<&str> = lacking.iter().map(|(_, label)| label.as_str()).collect();
            return Err(Error::Timeout(format!(
                "{} has not reached {} after {} ms (version {})",
                target.display(),
                names.join(", "),
                started.elapsed().as_millis(),
                file.global.version_string()
            )));
        }
        tokio::select! {
            batch = updates.next_batch() => {
                if batch.is_err() {
                    tokio::time::sleep(Duration::from_millis(100).min(left)).await;
                }
            }
            _ = tokio::time::sleep(left) => {}
        }
    }
}

/// The path's record; a path Syncthing does not know is an error that says why.
async fn current_file(rest: &RestClient, root: &SyncRoot, target: &FolderPath) -> Result<DbFile> {
    let file = rest.db_file(target.folder.folder_id(), &target.relative).await?;
    match file {
        Some(file) if !file.local.ignored && !file.global.ignored => Ok(file),
        Some(_) => Err(ignored(target)),
        None if target.local_path(root).exists() => Err(ignored(target)),
        None => Err(Error::NotFound(format!("{} does not exist: it is not on disk and was never synced", target.display()))),
    }
}

fn ignored(target: &FolderPath) -> Error {
    Error::NotFound(format!(
        "{} is not synced: it matches a pattern in {}/.stignore",
        target.display(),
        target.folder.dir_name()
    ))
}

/// The folder's peers (everyone it is shared with but us), narrowed to `wanted` when given.
pub async fn folder_peers(rest: &RestClient, engine: &Engine, folder_id: &str, wanted: &[String]) -> Result<Targets> {
    let me = engine.device_id().to_string();
    let folder = rest
        .folder(folder_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("Syncthing has no folder {folder_id}; run `botsync start` to repair the root")))?;
    let names: HashMap<String, String> = rest.devices().await?.into_iter().map(|d| (d.device_id.to_string(), d.name)).collect();
    let shared: Vec<(String, String)> = folder
        .devices
        .iter()
        .map(|d| d.device_id.to_string())
        .filter(|id| *id != me)
        .map(|id| {
            let name = names.get(&id).cloned().unwrap_or_default();
            (id, name)
        })
        .collect();
    if shared.is_empty() {
        return Err(Error::NotFound(format!(
            "no peer shares {} yet, so nothing can be delivered; pair a machine with `botsync invite`",
            crate::root::SharedFolder::from_folder_id(folder_id).map_or(folder_id, |f| f.dir_name())
        )));
    }
    if wanted.is_empty() {
        return Ok(shared.iter().map(|(id, name)| (id.clone(), label(id, name))).collect());
    }
    resolve_peers(&shared, wanted)
}

/// Each of `wanted` (a name, a device ID or its prefix, any case) matched to exactly one of
/// `known` (device ID, name); returns (device ID, label).
pub fn resolve_peers(known: &[(String, String)], wanted: &[String]) -> Result<Targets> {
    let mut out: Targets = Vec::new();
    for want in wanted {
        let needle = want.trim().to_ascii_uppercase();
        let matches: Vec<&(String, String)> = known
            .iter()
            .filter(|(id, name)| name.eq_ignore_ascii_case(want.trim()) || (needle.len() >= 4 && id.to_ascii_uppercase().starts_with(&needle)))
            .collect();
        match matches.as_slice() {
            [(id, name)] => {
                if !out.iter().any(|(o, _)| o == id) {
                    out.push((id.clone(), label(id, name)));
                }
            }
            [] => {
                let list: Vec<String> = known.iter().map(|(id, name)| label(id, name)).collect();
                return Err(Error::Usage(format!("no peer named {want:?}; the peers are: {}", list.join(", "))));
            }
            _ => return Err(Error::Usage(format!("{want:?} matches more than one peer; give more of its device ID"))),
        }
    }
    Ok(out)
}

/// `laptop (ABCDEF1)`, or the short ID alone.
pub fn label(id: &str, name: &str) -> String {
    let short = id.get(..7).unwrap_or(id);
    if name.is_empty() || name == short {
        short.to_string()
    } else {
        format!("{name} ({short})")
    }
}

impl Report for SyncReport {
    fn human(&self) -> String {
        let peers = if self.peers.is_empty() { "every peer".to_string() } else { self.peers.join(", ") };
        match &self.path {
            Some(path) if self.deleted == Some(true) => format!("deletion of {path} reached {peers} ({} ms)", self.waited_ms),
            Some(path) => format!("{path} delivered to {peers} ({} ms)", self.waited_ms),
            None => format!("in sync with {peers} ({} ms)", self.waited_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_match_by_name_or_id_prefix() {
        let known = vec![
            ("ABCDEFG-111".to_string(), "laptop".to_string()),
            ("XYZWVUT-222".to_string(), "server".to_string()),
        ];
        let found = resolve_peers(&known, &["Laptop".into(), "xyzw".into()]).unwrap();
        assert_eq!(found, vec![("ABCDEFG-111".into(), "laptop (ABCDEFG)".into()), ("XYZWVUT-222".into(), "server (XYZWVUT)".into())]);
        let error = resolve_peers(&known, &["desktop".into()]).unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::Usage);
        assert!(error.to_string().contains("laptop (ABCDEFG), server (XYZWVUT)"), "{error}");
    }
}
