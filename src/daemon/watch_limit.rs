//! The inotify watch limit, told once: when `fs.inotify.max_user_watches` is too small for the
//! synced folders, the watcher gives up (part of) a folder, frees its watches for Syncthing's own
//! watcher and scans that folder on a timer instead (`watcher::WatcherConfig::fallback_scan`).
//! The daemon records that here so that `status` and `doctor` can say so, with the fix; a daemon
//! that watches everything again removes the record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::root::SyncRoot;

/// What the watcher could not watch, and what the limit was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchLimit {
    /// Folder IDs left to Syncthing's watcher and botsync's timed scans.
    pub folders: Vec<String>,
    /// `fs.inotify.max_user_watches` when it happened (`None` where it cannot be read).
    pub max_user_watches: Option<u64>,
    /// Directories in the folders botsync watches: each takes one watch, and Syncthing's own
    /// watcher takes as many again.
    pub directories: u64,
    /// Seconds between the timed scans of those folders.
    pub fallback_scan_s: u64,
}

const SYSCTL: &str = "/proc/sys/fs/inotify/max_user_watches";

impl WatchLimit {
    /// The limit that fits these folders twice (botsync and Syncthing), with room to grow, and
    /// never below Linux's usual default.
    pub fn suggested_limit(&self) -> u64 {
        (self.directories * 4).max(self.max_user_watches.unwrap_or(0) * 2).max(524_288)
    }

    /// One line for `status` and the detail of `doctor`'s check.
    pub fn summary(&self) -> String {
        let limit = self.max_user_watches.map_or("unknown".to_string(), |l| l.to_string());
        format!(
            "the inotify watch limit (fs.inotify.max_user_watches = {limit}) is too small for {} directories: {} synced within {} s by timed scans and Syncthing's own watcher instead of at once",
            self.directories,
            self.folders.join(", "),
            self.fallback_scan_s
        )
    }

    /// The fix, as a command.
    pub fn fix(&self) -> String {
        let n = self.suggested_limit();
        format!("sudo sysctl -w fs.inotify.max_user_watches={n} (keep it: echo fs.inotify.max_user_watches={n} | sudo tee /etc/sysctl.d/90-botsync.conf), then `botsync stop` and `botsync start`")
    }
}

/// The current `fs.inotify.max_user_watches`, where the platform has it.
pub fn max_user_watches() -> Option<u64> {
    std::fs::read_to_string(SYSCTL).ok()?.trim().parse().ok()
}

/// Directories under `dirs` (each one included), not following symlinks: what a recursive
/// inotify watch of them costs.
pub fn count_directories(dirs: &[PathBuf]) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        1 + entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| walk(&e.path())).sum::<u64>()
    }
    dirs.iter().map(|d| walk(d)).sum()
}

fn record_path(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("watch-limit.json")
}

/// Records `limit` for `status` and `doctor`.
pub fn record(root: &SyncRoot, limit: &WatchLimit) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(limit).map_err(std::io::Error::other)?;
    std::fs::write(record_path(root), json)
}

/// Every folder is watched: forget an earlier record.
pub fn clear(root: &SyncRoot) {
    let _ = std::fs::remove_file(record_path(root));
}

/// The recorded limit, if the running (or last) daemon hit one.
pub fn read(root: &SyncRoot) -> Option<WatchLimit> {
    serde_json::from_slice(&std::fs::read(record_path(root)).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advice_names_the_limit_and_a_fix_that_fits_twice() {
        let limit = WatchLimit { folders: vec!["botsync-shared".into()], max_user_watches: Some(1000), directories: 300_000, fallback_scan_s: 10 };
        assert!(limit.summary().contains("max_user_watches = 1000"));
        assert!(limit.summary().contains("botsync-shared"));
        assert_eq!(limit.suggested_limit(), 1_200_000);
        assert!(limit.fix().contains("fs.inotify.max_user_watches=1200000"));
        let small = WatchLimit { directories: 10, ..limit };
        assert_eq!(small.suggested_limit(), 524_288);
    }

    #[test]
    fn directories_are_counted_without_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("a/file"), b"x").unwrap();
        assert_eq!(count_directories(&[dir.path().to_path_buf()]), 5);
    }
}
