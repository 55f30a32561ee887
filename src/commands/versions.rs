//! `botsync versions <path>` and `botsync restore <path> [--at TIME]`: the copies Syncthing's
//! trash can kept when a peer overwrote or deleted a file (see `engine::versioning`), and
//! bringing one back. A restored file is an ordinary local change: it syncs to the peers as a
//! new version, and the copy it replaces is kept in turn.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::Report;
use crate::engine::rest::FileVersion;
use crate::engine::{Engine, EngineError, RestError};
use crate::error::{Error, Result};
use crate::folder_path::FolderPath;
use crate::root::SyncRoot;

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionsOptions {
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
    /// The file: `shared/notes.md`, or absolute inside the root.
    pub path: String,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOptions {
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
    /// The file: `shared/notes.md`, or absolute inside the root.
    pub path: String,
    /// Restore the newest version kept at or before this time (RFC 3339, such as
    /// `2026-12-01T07:50:00Z`). Default: the newest version.
    pub at: Option<String>,
}

/// One kept version.
#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeptVersion {
    /// When it was replaced or deleted (RFC 3339); what `restore --at` compares with.
    pub version_time: String,
    /// Its modification time.
    pub mod_time: String,
    pub size: i64,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionsReport {
    /// `folder/relative`.
    pub path: String,
    /// Newest first; empty when nothing was kept.
    pub versions: Vec<KeptVersion>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    pub path: String,
    pub local_path: String,
    /// The version brought back.
    pub restored: KeptVersion,
}

/// The path, checked, and its root.
fn target(root: Option<&str>, path: &str) -> Result<(SyncRoot, FolderPath)> {
    let root = super::RootOptions { root: root.map(str::to_owned) }.locate()?;
    let cwd = std::env::current_dir().ok();
    let target = FolderPath::locate(&root, path, cwd.as_deref())?;
    if target.relative.is_empty() {
        return Err(Error::Usage(format!("{} is a folder; name a file in it", target.display())));
    }
    target.check_no_escape(&root)?;
    Ok((root, target))
}

async fn kept(engine: &Engine, target: &FolderPath) -> Result<Vec<KeptVersion>> {
    let mut all = engine.rest().folder_versions(target.folder.folder_id()).await?;
    let mut versions: Vec<KeptVersion> = all.remove(&target.relative).unwrap_or_default().into_iter().map(KeptVersion::from).collect();
    versions.sort_by_key(|v| std::cmp::Reverse(parse_time(&v.version_time).ok()));
    Ok(versions)
}

impl From<FileVersion> for KeptVersion {
    fn from(v: FileVersion) -> Self {
        KeptVersion { version_time: v.version_time, mod_time: v.mod_time, size: v.size }
    }
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeepOptions {
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
    /// Days a replaced or deleted file is kept (0: for ever). The default on every root is 30.
    pub days: u32,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeepReport {
    pub days: u32,
    /// Folders whose setting changed.
    pub changed: Vec<String>,
}

/// Sets how long every folder of the root keeps replaced and deleted files (`--keep-days`).
pub async fn keep(options: &KeepOptions) -> Result<KeepReport> {
    let root = super::RootOptions { root: options.root.clone() }.locate()?;
    let engine = Engine::load(&root)?;
    let changed = crate::engine::versioning::ensure(&engine.rest(), Some(options.days)).await?;
    Ok(KeepReport { days: options.days, changed: changed.into_iter().map(String::from).collect() })
}

pub async fn list(options: &VersionsOptions) -> Result<VersionsReport> {
    let (root, target) = target(options.root.as_deref(), &options.path)?;
    let engine = Engine::load(&root)?;
    Ok(VersionsReport { path: target.display(), versions: kept(&engine, &target).await? })
}

pub async fn restore(options: &RestoreOptions) -> Result<RestoreReport> {
    let (root, target) = target(options.root.as_deref(), &options.path)?;
    let at = options.at.as_deref().map(|at| parse_time(at).map_err(|_| Error::Usage(format!("--at {at:?} is not a time like 2026-12-01T07:50:00Z")))).transpose()?;
    let engine = Engine::load(&root)?;
    let versions = kept(&engine, &target).await?;
    let Some(oldest) = versions.last() else {
        return Err(Error::NotFound(format!(
            "no earlier version of {} is kept: it was never overwritten or deleted by a peer here",
            target.display()
        )));
    };
    let chosen = match at {
        None => versions[0].clone(),
        Some(at) => versions
            .iter()
            .find(|v| parse_time(&v.version_time).is_ok_and(|t| t <= at))
            .cloned()
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no version of {} is kept from {} or before; the oldest is from {}",
                    target.display(),
                    options.at.as_deref().unwrap_or_default(),
                    oldest.version_time
                ))
            })?,
    };
    let rest = engine.rest();
    let folder_id = target.folder.folder_id();
    let local_path = target.local_path(&root);
    if let Some(problem) = rest.restore_version(folder_id, &target.relative, &chosen.version_time).await? {
        if !is_restored_anyway(&problem, &local_path) {
            return Err(Error::Engine(EngineError::Rest(RestError::Status {
                method: "POST".into(),
                path: "/rest/folder/versions".into(),
                status: 200,
                body: problem,
            })));
        }
    }
    // Indexed now rather than at the watcher's next look: the peers get it at once.
    rest.scan(folder_id, &[target.relative.as_str()]).await?;
    Ok(RestoreReport { path: target.display(), local_path: local_path.display().to_string(), restored: chosen })
}

/// Syncthing 1.19's trash can restores a file that no longer exists and then fails to rename
/// the (never made) backup of the current copy: `rename …/.syncthing.<name>.tmp …: no such file
/// or directory`. The file is back; only that clean-up step failed. 1.29 answers `{}`.
fn is_restored_anyway(problem: &str, local_path: &std::path::Path) -> bool {
    problem.contains("restore: rename") && problem.contains(".syncthing.") && problem.ends_with("no such file or directory") && local_path.is_file()
}

fn parse_time(text: &str) -> std::result::Result<DateTime<FixedOffset>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text.trim())
}

impl Report for VersionsReport {
    fn human(&self) -> String {
        if self.versions.is_empty() {
            return format!("no earlier version of {} is kept", self.path);
        }
        let mut out = format!("{} earlier version(s) of {} (newest first):", self.versions.len(), self.path);
        for v in &self.versions {
            out.push_str(&format!("\n  {}  {}", v.version_time, crate::daemon::notify::model::human_size(v.size)));
        }
        out.push_str(&format!("\nbring one back with `botsync restore {} [--at TIME]`", self.path));
        out
    }
}

impl Report for KeepReport {
    fn human(&self) -> String {
        let how = if self.days == 0 { "for ever".to_string() } else { format!("for {} days", self.days) };
        format!("replaced and deleted files are kept {how} in each folder's .stversions/")
    }
}

impl Report for RestoreReport {
    fn human(&self) -> String {
        format!(
            "restored {} to the version from {} ({}); it syncs to the peers as a new version",
            self.path,
            self.restored.version_time,
            crate::daemon::notify::model::human_size(self.restored.size)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_known_1_19_cleanup_failure_counts_as_restored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.txt");
        let quirk = "trashcan versioner: restore: rename /r/shared/.stversions/.syncthing.x.txt.tmp /r/shared/.stversions/x.txt: no such file or directory";
        assert!(!is_restored_anyway(quirk, &file), "the file must really be back");
        std::fs::write(&file, "v1").unwrap();
        assert!(is_restored_anyway(quirk, &file));
        assert!(!is_restored_anyway("permission denied", &file));
    }

    #[test]
    fn times_compare_across_offsets() {
        assert!(parse_time("2026-12-01T08:50:00+01:00").unwrap() == parse_time("2026-12-01T07:50:00Z").unwrap());
        assert!(parse_time("yesterday").is_err());
    }
}
