//! From Syncthing events to botsync events.
//!
//! A file "arrived" when the puller finished it without error (`ItemFinished`, error null) and
//! Syncthing committed it as a remote change (`RemoteChangeDetected`, which names the sender's
//! short device ID). The two are joined on (folder, path); in 1.19 the second follows the first
//! within milliseconds, but either order is accepted, and a half that stays alone for
//! `join_window` is reported on its own (without a sender, or without the puller's confirmation).
//!
//! Never reported: this machine's own writes (they only produce Local* events), directories,
//! Syncthing's temporary files, folders that are not botsync's. Conflict copies are reported as
//! `conflict` events, whether they arrive from a peer or are made here by Syncthing.
//!
//! Syncthing 1.19 says `modified` for new files too, so `added` versus `modified` comes from the
//! set of files known to exist here: seeded from disk (`seed_from_disk`) and kept current from
//! the events.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::events::{ChangeDetected, EventData, ItemEvent, SyncthingEvent};
use crate::root::{SharedFolder, SyncRoot};

use super::model::{BotsyncEvent, FileAction, Peer};

/// How long one half of the ItemFinished/RemoteChangeDetected pair waits for the other.
pub const DEFAULT_JOIN_WINDOW: Duration = Duration::from_secs(5);

const CONFLICT_MARKER: &str = ".sync-conflict-";

type SizeOf = Box<dyn Fn(&Path) -> Option<u64> + Send + Sync>;
/// (Syncthing folder ID, path in the folder). `SharedFolder` itself is not hashable.
type Key = (&'static str, String);

fn folder_of(key: &Key) -> SharedFolder {
    SharedFolder::from_folder_id(key.0).expect("keys are only made for botsync folders")
}

#[derive(Debug)]
enum Half {
    /// The puller finished the item; waiting to learn who sent it.
    Finished { action: FileAction, at: String, deadline: Instant },
    /// Syncthing committed a remote change; waiting for the puller's ItemFinished.
    Changed { sender: String, action: String, at: String, deadline: Instant },
}

impl Half {
    fn deadline(&self) -> Instant {
        match self {
            Half::Finished { deadline, .. } | Half::Changed { deadline, .. } => *deadline,
        }
    }
}

pub struct EventDeriver {
    root: SyncRoot,
    local_short_id: Option<String>,
    /// Full device ID -> name, for turning short IDs into peers.
    peers: HashMap<String, String>,
    /// Names this machine chose (from its config); preferred to the names peers announce.
    configured_names: HashSet<String>,
    known_files: HashSet<Key>,
    pending: HashMap<Key, Half>,
    reported_conflicts: HashSet<Key>,
    join_window: Duration,
    size_of: SizeOf,
}

impl std::fmt::Debug for EventDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventDeriver").field("root", &self.root).field("pending", &self.pending.len()).finish()
    }
}

impl EventDeriver {
    pub fn new(root: SyncRoot) -> Self {
        EventDeriver {
            root,
            local_short_id: None,
            peers: HashMap::new(),
            configured_names: HashSet::new(),
            known_files: HashSet::new(),
            pending: HashMap::new(),
            reported_conflicts: HashSet::new(),
            join_window: DEFAULT_JOIN_WINDOW,
            size_of: Box::new(|path| std::fs::symlink_metadata(path).ok().filter(|m| !m.is_dir()).map(|m| m.len())),
        }
    }

    pub fn root(&self) -> &SyncRoot {
        &self.root
    }

    pub fn with_join_window(mut self, window: Duration) -> Self {
        self.join_window = window;
        self
    }

    /// Replaces the size lookup (tests replaying recorded events have no files on disk).
    pub fn with_size_lookup(mut self, size_of: impl Fn(&Path) -> Option<u64> + Send + Sync + 'static) -> Self {
        self.size_of = Box::new(size_of);
        self
    }

    /// This machine's device ID: changes it made are never reported as arrivals.
    pub fn set_local_device(&mut self, device_id: &str) {
        self.local_short_id = Some(short_id(device_id).to_string());
    }

    /// A peer and the name this machine gave it (from Syncthing's config).
    pub fn learn_peer(&mut self, device_id: &str, name: &str) {
        self.configured_names.insert(device_id.to_string());
        self.peers.insert(device_id.to_string(), name.to_string());
    }

    /// Marks a file as existing here, so that its next arrival reads `modified`.
    pub fn know_file(&mut self, folder: SharedFolder, path: &str) {
        self.known_files.insert((folder.folder_id(), path.to_string()));
    }

    /// Records every file present in the root's shared folders.
    pub fn seed_from_disk(&mut self) {
        for folder in SharedFolder::ALL {
            let base = self.root.folder_dir(folder);
            for (relative, _) in folder_files(&base, &base, usize::MAX).0 {
                self.known_files.insert((folder.folder_id(), relative));
            }
        }
    }

    /// Feeds one Syncthing event; returns the botsync events it completes.
    pub fn feed(&mut self, event: &SyncthingEvent, now: Instant) -> Vec<BotsyncEvent> {
        match &event.data {
            EventData::ItemFinished(item) => self.item_finished(item, &event.time, now),
            EventData::RemoteChangeDetected(change) => self.remote_change(change, &event.time, now),
            EventData::LocalChangeDetected(change) => self.local_change(change, &event.time),
            EventData::DeviceConnected(connected) => {
                if !self.configured_names.contains(&connected.id) && !connected.device_name.is_empty() {
                    self.peers.insert(connected.id.clone(), connected.device_name.clone());
                }
                vec![BotsyncEvent::DeviceConnected {
                    peer: self.peer(&connected.id),
                    address: connected.addr.clone(),
                    at: event.time.clone(),
                }]
            }
            EventData::DeviceDisconnected(gone) => vec![BotsyncEvent::DeviceDisconnected {
                peer: self.peer(&gone.id),
                reason: gone.error.clone(),
                at: event.time.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// Reports the halves whose partner did not come within the join window.
    pub fn flush_expired(&mut self, now: Instant) -> Vec<BotsyncEvent> {
        let expired: Vec<Key> = self.pending.iter().filter(|(_, h)| h.deadline() <= now).map(|(k, _)| k.clone()).collect();
        let mut out = Vec::new();
        for key in expired {
            match self.pending.remove(&key) {
                Some(Half::Finished { action, at, .. }) => out.extend(self.arrival(&key, action, None, at)),
                Some(Half::Changed { sender, action, at, .. }) => {
                    let action = self.action_from_change(&key, &action);
                    self.update_known(&key, action);
                    out.extend(self.arrival(&key, action, Some(sender), at));
                }
                None => {}
            }
        }
        out
    }

    /// Everything still waiting, reported now (on shutdown).
    pub fn flush_all(&mut self) -> Vec<BotsyncEvent> {
        self.flush_expired(Instant::now() + self.join_window + Duration::from_secs(3600))
    }

    /// When `flush_expired` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(Half::deadline).min()
    }

    fn item_finished(&mut self, item: &ItemEvent, at: &str, now: Instant) -> Vec<BotsyncEvent> {
        let Some(key) = self.key(&item.folder, &item.item, &item.item_type) else { return Vec::new() };
        if item.error.as_deref().is_some_and(|e| !e.is_empty()) {
            // Syncthing retries failed items; this attempt changed nothing here.
            self.pending.remove(&key);
            return Vec::new();
        }
        let action = match item.action.as_str() {
            "delete" => FileAction::Deleted,
            _ if self.known_files.contains(&key) => FileAction::Modified,
            _ => FileAction::Added,
        };
        self.update_known(&key, action);
        match self.pending.remove(&key) {
            Some(Half::Changed { sender, action: change_action, at: change_at, .. }) => {
                let action = if change_action == "added" { FileAction::Added } else { action };
                self.arrival(&key, action, Some(sender), change_at)
            }
            _ => {
                let deadline = now + self.join_window;
                self.pending.insert(key, Half::Finished { action, at: at.to_string(), deadline });
                Vec::new()
            }
        }
    }

    fn remote_change(&mut self, change: &ChangeDetected, at: &str, now: Instant) -> Vec<BotsyncEvent> {
        let Some(key) = self.key(change.folder_id(), &change.path, &change.item_type) else { return Vec::new() };
        if self.local_short_id.as_deref() == Some(change.modified_by.as_str()) {
            self.pending.remove(&key);
            return Vec::new();
        }
        match self.pending.remove(&key) {
            Some(Half::Finished { action, at: finished_at, .. }) => {
                let action = if change.action == "added" { FileAction::Added } else { action };
                self.arrival(&key, action, Some(change.modified_by.clone()), finished_at)
            }
            _ => {
                let deadline = now + self.join_window;
                self.pending.insert(
                    key,
                    Half::Changed {
                        sender: change.modified_by.clone(),
                        action: change.action.clone(),
                        at: at.to_string(),
                        deadline,
                    },
                );
                Vec::new()
            }
        }
    }

    fn local_change(&mut self, change: &ChangeDetected, at: &str) -> Vec<BotsyncEvent> {
        let Some(key) = self.key(change.folder_id(), &change.path, &change.item_type) else { return Vec::new() };
        let action = if change.action == "deleted" { FileAction::Deleted } else { FileAction::Modified };
        self.update_known(&key, action);
        // Syncthing renames the losing local version to a conflict copy itself; it shows up here.
        if action != FileAction::Deleted {
            if let Some(conflict) = self.conflict(&key, at) {
                return vec![conflict];
            }
        }
        Vec::new()
    }

    fn action_from_change(&self, key: &Key, action: &str) -> FileAction {
        match action {
            "deleted" => FileAction::Deleted,
            "added" => FileAction::Added,
            _ if self.known_files.contains(key) => FileAction::Modified,
            _ => FileAction::Added,
        }
    }

    fn update_known(&mut self, key: &Key, action: FileAction) {
        if action == FileAction::Deleted {
            self.known_files.remove(key);
        } else {
            self.known_files.insert(key.clone());
        }
    }

    /// A finished arrival: a conflict copy becomes a `conflict`, anything else a `file` event.
    fn arrival(&mut self, key: &Key, action: FileAction, sender: Option<String>, at: String) -> Vec<BotsyncEvent> {
        if conflict_original(&key.1).is_some() {
            if action == FileAction::Deleted {
                return Vec::new();
            }
            return self.conflict(key, &at).into_iter().collect();
        }
        let local_path = self.local_path(key);
        let size = match action {
            FileAction::Deleted => None,
            _ => (self.size_of)(&local_path).map(|s| s as i64),
        };
        vec![BotsyncEvent::File {
            folder: folder_of(key).dir_name().to_string(),
            path: key.1.clone(),
            local_path: local_path.display().to_string(),
            action,
            size,
            peer: sender.map(|short| self.peer(&short)),
            at,
        }]
    }

    fn conflict(&mut self, key: &Key, at: &str) -> Option<BotsyncEvent> {
        let original = conflict_original(&key.1)?;
        if !self.reported_conflicts.insert(key.clone()) {
            return None;
        }
        Some(BotsyncEvent::Conflict {
            folder: folder_of(key).dir_name().to_string(),
            path: original,
            copy: key.1.clone(),
            local_copy: self.local_path(key).display().to_string(),
            at: at.to_string(),
        })
    }

    fn local_path(&self, key: &Key) -> PathBuf {
        let mut path = self.root.folder_dir(folder_of(key));
        path.extend(key.1.split('/'));
        path
    }

    /// The botsync key of an item worth reporting: a file in one of botsync's folders.
    fn key(&self, folder_id: &str, path: &str, item_type: &str) -> Option<Key> {
        let folder = SharedFolder::from_folder_id(folder_id)?;
        if item_type == "dir" || item_type == "directory" {
            return None;
        }
        let path = path.replace('\\', "/");
        if is_syncthing_internal(&path) {
            return None;
        }
        Some((folder.folder_id(), path))
    }

    /// A peer from a full or short device ID.
    pub fn peer(&self, id: &str) -> Peer {
        let short = short_id(id);
        let found = self.peers.iter().find(|(full, _)| full.as_str() == id || short_id(full) == short);
        match found {
            Some((full, name)) => Peer { device_id: full.clone(), name: if name.is_empty() { short.to_string() } else { name.clone() } },
            None => Peer { device_id: id.to_string(), name: short.to_string() },
        }
    }
}

fn short_id(device_id: &str) -> &str {
    device_id.get(..7).unwrap_or(device_id)
}

/// Everything but directories under `start` (inside the folder at `base`), as (path relative to
/// `base` with `/` separators, metadata not following symlinks), skipping Syncthing's own
/// files; at most `limit` of them, and whether more were left out.
pub fn folder_files(base: &Path, start: &Path, limit: usize) -> (Vec<(String, std::fs::Metadata)>, bool) {
    let mut found = Vec::new();
    let mut stack = vec![start.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(relative) = path.strip_prefix(base) else { continue };
            let relative = relative.to_string_lossy().replace('\\', "/");
            if is_syncthing_internal(&relative) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if found.len() == limit {
                return (found, true);
            } else {
                found.push((relative, meta));
            }
        }
    }
    (found, false)
}

/// Syncthing's own files: temporaries while pulling, the folder marker, ignores, versions.
pub fn is_syncthing_internal(path: &str) -> bool {
    let first = path.split('/').next().unwrap_or("");
    if matches!(first, ".stfolder" | ".stversions" | ".stignore" | ".stignore.tmp") {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.starts_with(".syncthing.") || name.starts_with("~syncthing~")) && name.ends_with(".tmp")
}

/// `notes/plan.sync-conflict-20240101-120000-ABCDEF1.md` -> `notes/plan.md`.
pub fn conflict_original(path: &str) -> Option<String> {
    let (dir, name) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    let at = name.find(CONFLICT_MARKER)?;
    let rest = name[at + CONFLICT_MARKER.len()..].as_bytes();
    // YYYYMMDD-HHMMSS-XXXXXXX, then the original extension (if any).
    const STAMP: usize = 8 + 1 + 6 + 1 + 7;
    if rest.len() < STAMP {
        return None;
    }
    let shape_ok = rest[..8].iter().all(u8::is_ascii_digit)
        && rest[8] == b'-'
        && rest[9..15].iter().all(u8::is_ascii_digit)
        && rest[15] == b'-'
        && rest[16..23].iter().all(u8::is_ascii_alphanumeric);
    let ext = &name[at + CONFLICT_MARKER.len() + STAMP..];
    if !shape_ok || !(ext.is_empty() || ext.starts_with('.')) {
        return None;
    }
    Some(format!("{dir}{}{ext}", &name[..at]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names_map_back_to_the_original() {
        assert_eq!(conflict_original("plan.sync-conflict-20261123-225404-J2UJDNG.md").as_deref(), Some("plan.md"));
        assert_eq!(conflict_original("a/b/Makefile.sync-conflict-20240101-000000-ABCDEF1").as_deref(), Some("a/b/Makefile"));
        assert_eq!(conflict_original("x.tar.sync-conflict-20240101-000000-ABCDEF1.gz").as_deref(), Some("x.tar.gz"));
        assert_eq!(conflict_original("plan.md"), None);
        assert_eq!(conflict_original("plan.sync-conflict-notreally.md"), None);
    }

    #[test]
    fn syncthing_temporaries_are_internal() {
        assert!(is_syncthing_internal("dir/.syncthing.report.md.tmp"));
        assert!(is_syncthing_internal("~syncthing~report.md.tmp"));
        assert!(is_syncthing_internal(".stfolder"));
        assert!(!is_syncthing_internal("report.md"));
        assert!(!is_syncthing_internal("notes/.syncthing.md"));
    }
}
