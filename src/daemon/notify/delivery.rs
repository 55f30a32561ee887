//! `delivered` events: which of this machine's own changes each peer now holds.
//!
//! The tracker remembers the paths this machine changed (`LocalChangeDetected`) together with
//! the peers their folder is shared with. When a peer sends an index update for that folder
//! (`RemoteIndexUpdated`, which carries no file names), the feed looks the pending paths up in
//! `/rest/db/file` and hands each record to `observe`, which reports every peer that newly
//! holds the global version. While a peer still needs files in the folder (a burst is on its
//! way), only the `LOOKUPS_WHILE_BEHIND` oldest paths are looked up per update; once an owed
//! peer's completion says it needs nothing, all of them are. (Looking up every pending path
//! after every update made the sender's Syncthing answer up to 512 lookups several times a
//! second during a burst, work it does beside sending the burst.) A path is forgotten once every peer has it, or after
//! `DELIVERY_WINDOW` (a peer away for longer still shows up in `botsync wait`, just not here).
//! No I/O and no clock of its own: the feed passes both in.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::engine::rest::DbFile;
use crate::root::SharedFolder;

use super::derive::is_syncthing_internal;

pub const DELIVERY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Pending paths kept at most; the oldest goes first. Bounds the lookups per index update.
pub const MAX_PENDING: usize = 512;
/// Lookups per index update while every owed peer still needs files in the folder.
pub const LOOKUPS_WHILE_BEHIND: usize = 16;

#[derive(Debug)]
struct Pending {
    since: Instant,
    /// Peers the folder is shared with that have not been reported yet. A newer local change
    /// of the same path replaces the entry, so every peer is owed a receipt for it.
    waiting: HashSet<String>,
}

/// One receipt: `peer` (full device ID) holds `version` of `path` in `folder_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub folder_id: &'static str,
    pub path: String,
    pub peer: String,
    pub version: String,
    pub deleted: bool,
}

#[derive(Debug, Default)]
pub struct DeliveryTracker {
    pending: HashMap<(&'static str, String), Pending>,
}

impl DeliveryTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// This machine changed `path`; `peers` are the devices its folder is shared with.
    pub fn local_change(&mut self, folder_id: &str, path: &str, item_type: &str, peers: &[String], now: Instant) {
        let Some(folder) = SharedFolder::from_folder_id(folder_id) else { return };
        if item_type == "dir" || item_type == "directory" || is_syncthing_internal(path) || peers.is_empty() {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            if let Some(oldest) = self.pending.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| k.clone()) {
                self.pending.remove(&oldest);
            }
        }
        self.pending.insert(
            (folder.folder_id(), path.to_string()),
            Pending { since: now, waiting: peers.iter().cloned().collect() },
        );
    }

    /// The pending paths of `folder_id`, oldest first, to look up after a peer's index update there.
    pub fn pending_in(&self, folder_id: &str) -> Vec<String> {
        let mut paths: Vec<(&Instant, &String)> = self.pending.iter().filter(|((f, _), _)| *f == folder_id).map(|((_, path), p)| (&p.since, path)).collect();
        paths.sort();
        paths.into_iter().map(|(_, path)| path.clone()).collect()
    }

    /// The peers still owed a receipt for some path of `folder_id` (full device IDs, sorted).
    pub fn owed_peers(&self, folder_id: &str) -> Vec<String> {
        let owed: BTreeSet<&String> = self.pending.iter().filter(|((f, _), _)| *f == folder_id).flat_map(|(_, p)| &p.waiting).collect();
        owed.into_iter().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The record of a pending path as Syncthing has it now; returns the new receipts. A
    /// version this machine did not make (a peer changed the file since) ends the tracking:
    /// the receipt would be for someone else's change.
    pub fn observe(&mut self, folder_id: &str, path: &str, file: Option<&DbFile>, local_short_id: &str) -> Vec<Receipt> {
        let Some(folder) = SharedFolder::from_folder_id(folder_id) else { return Vec::new() };
        let key = (folder.folder_id(), path.to_string());
        let Some(pending) = self.pending.get_mut(&key) else { return Vec::new() };
        let Some(file) = file else {
            self.pending.remove(&key);
            return Vec::new();
        };
        if file.global.modified_by != local_short_id {
            self.pending.remove(&key);
            return Vec::new();
        }
        let version = file.global.version_string();
        let arrived: Vec<String> = pending.waiting.iter().filter(|peer| file.holds_global(peer)).cloned().collect();
        for peer in &arrived {
            pending.waiting.remove(peer);
        }
        if pending.waiting.is_empty() {
            self.pending.remove(&key);
        }
        arrived
            .into_iter()
            .map(|peer| Receipt { folder_id: folder.folder_id(), path: path.to_string(), peer, version: version.clone(), deleted: file.global.deleted })
            .collect()
    }

    /// Forgets paths older than `DELIVERY_WINDOW`.
    pub fn expire(&mut self, now: Instant) {
        self.pending.retain(|_, p| now.duration_since(p.since) < DELIVERY_WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: &str, by: &str, holders: &[&str]) -> DbFile {
        serde_json::from_value(serde_json::json!({
            "availability": holders.iter().map(|h| serde_json::json!({"id": h, "fromTemporary": false})).collect::<Vec<_>>(),
            "global": {"name": "a.txt", "version": [version], "modifiedBy": by, "deleted": false, "size": 3},
            "local": {"name": "a.txt", "version": [version], "modifiedBy": by, "deleted": false, "size": 3},
        }))
        .unwrap()
    }

    #[test]
    fn each_peer_is_reported_once_then_the_path_is_forgotten() {
        let mut t = DeliveryTracker::new();
        let now = Instant::now();
        let peers = vec!["PEER1".to_string(), "PEER2".to_string()];
        t.local_change("botsync-shared", "a.txt", "file", &peers, now);
        t.local_change("botsync-shared", ".stversions/a.txt", "file", &peers, now);
        t.local_change("other", "b.txt", "file", &peers, now);
        assert_eq!(t.pending_in("botsync-shared"), vec!["a.txt"]);
        assert!(t.observe("botsync-shared", "a.txt", Some(&record("ME:1", "ME", &[])), "ME").is_empty());
        let first = t.observe("botsync-shared", "a.txt", Some(&record("ME:1", "ME", &["PEER1"])), "ME");
        assert_eq!(first.iter().map(|r| r.peer.as_str()).collect::<Vec<_>>(), vec!["PEER1"]);
        assert_eq!(first[0].version, "ME:1");
        assert!(t.observe("botsync-shared", "a.txt", Some(&record("ME:1", "ME", &["PEER1"])), "ME").is_empty(), "once per peer");
        let second = t.observe("botsync-shared", "a.txt", Some(&record("ME:1", "ME", &["PEER1", "PEER2"])), "ME");
        assert_eq!(second.len(), 1);
        assert!(t.is_empty(), "forgotten once every peer has it");
    }

    #[test]
    fn owed_peers_are_those_still_waiting_in_the_folder() {
        let mut t = DeliveryTracker::new();
        let now = Instant::now();
        t.local_change("botsync-shared", "a.txt", "file", &["P2".into(), "P1".into()], now);
        t.local_change("botsync-shared", "b.txt", "file", &["P3".into()], now);
        t.local_change("botsync-inbox", "c.txt", "file", &["P4".into()], now);
        assert_eq!(t.owed_peers("botsync-shared"), vec!["P1", "P2", "P3"]);
        t.observe("botsync-shared", "b.txt", Some(&record("ME:1", "ME", &["P3"])), "ME");
        assert_eq!(t.owed_peers("botsync-shared"), vec!["P1", "P2"]);
        assert!(t.owed_peers("botsync-deliverables").is_empty());
    }

    #[test]
    fn a_peers_later_change_ends_the_tracking() {
        let mut t = DeliveryTracker::new();
        t.local_change("botsync-shared", "a.txt", "file", &["PEER1".into()], Instant::now());
        assert!(t.observe("botsync-shared", "a.txt", Some(&record("PEER1:2", "PEER1", &["PEER1"])), "ME").is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn old_paths_expire_and_the_table_is_bounded() {
        let mut t = DeliveryTracker::new();
        let now = Instant::now();
        for i in 0..(MAX_PENDING + 10) {
            t.local_change("botsync-inbox", &format!("f{i}"), "file", &["P".into()], now + Duration::from_millis(i as u64));
        }
        let pending = t.pending_in("botsync-inbox");
        assert_eq!(pending.len(), MAX_PENDING);
        assert!(!pending.contains(&"f0".to_string()), "the oldest went first");
        assert_eq!(pending.first().map(String::as_str), Some("f10"), "listed oldest first");
        assert_eq!(pending.last().map(|p| p.as_str()), Some(format!("f{}", MAX_PENDING + 9).as_str()));
        t.expire(now + DELIVERY_WINDOW + Duration::from_secs(1));
        assert!(t.is_empty());
    }
}
