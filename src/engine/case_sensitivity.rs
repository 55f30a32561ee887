//! Syncthing's case-conflict checks, kept only where a folder's filesystem needs them.
//!
//! Syncthing assumes any filesystem may be case-insensitive (`caseSensitiveFS` false, its
//! default). Before a file operation it looks the name's real case up in a cached listing of the
//! directory (`lib/fs/casefs.go`, 1.19 to 2.x), and a listing is dropped after a second and
//! whenever the directory changes. A burst of new files in one directory makes Syncthing read
//! that directory again and again: in `bench/latency.sh`'s 2,000-file burst, 45-49 % of the
//! receiving Syncthing's CPU went there (a Go CPU profile, `BENCH_CPUPROF_S`), on raw Syncthing
//! as on botsync. Syncthing's documentation (`folder-caseSensitiveFS`) has the checks off only
//! where the filesystem is "positively known to be case-sensitive": botsync finds out for each
//! folder by creating a file under it and looking for it under its name in the other case. A
//! folder it cannot tell about (the probe fails) keeps Syncthing's default, the checks.
//!
//! New roots get the setting in the configuration written at `init` (no folder restart); roots
//! made before it existed get it at `start`, through REST.

use std::path::Path;

use super::rest::RestClient;
use super::{members_dir, EngineError, MEMBERS_FOLDER_ID};
use crate::root::{SharedFolder, SyncRoot};

/// Whether the filesystem under `dir` tells names apart by case; `None` when the probe cannot
/// run (no such directory, read-only). The probe goes in Syncthing's `.stfolder` marker when the
/// folder has one, which Syncthing never syncs or scans.
pub fn probe(dir: &Path) -> Option<bool> {
    let marker = dir.join(".stfolder");
    let at = if marker.is_dir() { marker } else { dir.to_path_buf() };
    let name = format!("botsync-Case-Probe-{:016x}", rand::random::<u64>());
    let probe = at.join(&name);
    std::fs::File::create_new(&probe).ok()?;
    let other_case = at.join(name.to_lowercase());
    let sensitive = match std::fs::symlink_metadata(&other_case) {
        Ok(_) => Some(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(true),
        Err(_) => None,
    };
    let _ = std::fs::remove_file(&probe);
    sensitive
}

/// Each botsync folder's Syncthing ID with the directory it syncs.
pub fn folders(root: &SyncRoot) -> Vec<(&'static str, std::path::PathBuf)> {
    SharedFolder::ALL.iter().map(|f| (f.folder_id(), root.folder_dir(*f))).chain([(MEMBERS_FOLDER_ID, members_dir(root))]).collect()
}

/// Sets `caseSensitiveFS` on each botsync folder Syncthing has whose filesystem the probe could
/// tell about, where it differs. Returns the folders it changed (each one restarts once).
pub async fn ensure(rest: &RestClient, root: &SyncRoot) -> Result<Vec<&'static str>, EngineError> {
    let mut changed = Vec::new();
    for (folder_id, dir) in folders(root) {
        let Some(wanted) = probe(&dir) else { continue };
        let Some(config) = rest.folder(folder_id).await? else { continue };
        if config.other.get("caseSensitiveFS").and_then(serde_json::Value::as_bool) == Some(wanted) {
            continue;
        }
        rest.set_folder_case_sensitive(folder_id, wanted).await?;
        changed.push(folder_id);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linux_temp_directory_is_case_sensitive_and_the_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let expected = cfg!(target_os = "linux").then_some(true);
        let found = probe(dir.path());
        if expected.is_some() {
            assert_eq!(found, expected, "tmpfs and ext4 tell names apart by case");
        }
        assert!(found.is_some());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
    }

    #[test]
    fn the_probe_goes_into_syncthings_marker_when_there_is_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".stfolder")).unwrap();
        assert!(probe(dir.path()).is_some());
        assert_eq!(std::fs::read_dir(dir.path().join(".stfolder")).unwrap().count(), 0);
    }

    #[test]
    fn a_folder_that_cannot_be_probed_keeps_syncthings_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(&dir.path().join("missing")), None);
    }
}
