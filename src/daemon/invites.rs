//! Open invitations, one 0600 file each under `<root>/.botsync/invites/`: the CLI that prints a
//! code records it here, and the background process completes the pairing while the code is
//! valid (so a CLI may exit, or be interrupted, right after printing it).

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::pairing::{AccessToken, HostProgress};
use crate::root::SyncRoot;
use crate::state_file::{self, StateFileError};

/// A finished invite's record is kept this long after its code expired, for `invite`'s waiting
/// CLI and for people reading the folder, then removed.
pub const KEEP_AFTER_EXPIRY_MS: u64 = 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum InviteKind {
    /// The v2 exchange (PAKE through a relay mailbox). `host_token` authorizes the host's calls
    /// on the mailbox; `progress` is what the host saw and sent, so a restarted daemon resends
    /// the exact reply and refuses another guest message.
    Relay {
        relay: String,
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host_token: Option<AccessToken>,
        #[serde(default)]
        progress: Box<HostProgress>,
    },
    /// An original-protocol code: the joiner proves the code with its device-name tag.
    Original { relay: String, code: String },
    /// No relay: the code itself carries our device ID, addresses and a secret.
    Offline { code: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum InviteStatus {
    Pending,
    Paired { device_id: String, name: String, at_ms: u64 },
    Failed { code: String, error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteRecord {
    /// File name stem; for relay codes the public mailbox words.
    pub id: String,
    #[serde(flatten)]
    pub kind: InviteKind,
    pub expires_at_ms: u64,
    pub status: InviteStatus,
}

impl InviteRecord {
    /// The code as the joiner types it.
    pub fn code(&self) -> &str {
        match &self.kind {
            InviteKind::Relay { code, .. } | InviteKind::Original { code, .. } | InviteKind::Offline { code } => code,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.status == InviteStatus::Pending
    }
}

pub fn dir(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("invites")
}

fn path(root: &SyncRoot, id: &str) -> PathBuf {
    dir(root).join(format!("{id}.json"))
}

pub fn save(root: &SyncRoot, record: &InviteRecord) -> Result<(), StateFileError> {
    state_file::write_json(&path(root, &record.id), record)
}

pub fn load(root: &SyncRoot, id: &str) -> Result<Option<InviteRecord>, StateFileError> {
    state_file::read_json(&path(root, id))
}

/// Every readable record; a damaged one is skipped (it is reported once, by `load`, to whoever
/// waits on it) rather than blocking the others.
pub fn load_all(root: &SyncRoot) -> Vec<InviteRecord> {
    let Ok(entries) = fs::read_dir(dir(root)) else { return Vec::new() };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "json" {
                return None;
            }
            state_file::read_json::<InviteRecord>(&path).ok().flatten()
        })
        .collect()
}

pub fn remove(root: &SyncRoot, id: &str) {
    let _ = fs::remove_file(path(root, id));
}

/// Whether `code` is one this root handed out (joining one's own code is a mistake to catch
/// before anything is sent).
pub fn is_own_code(root: &SyncRoot, code: &str) -> bool {
    load_all(root).iter().any(|record| record.code() == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_private_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = SyncRoot::at(dir.path().to_owned()).unwrap();
        let record = InviteRecord {
            id: "abandon-ability".into(),
            kind: InviteKind::Relay {
                relay: "http://127.0.0.1:1".into(),
                code: "abandon-ability-able-about-above".into(),
                host_token: Some(AccessToken::random()),
                progress: Box::default(),
            },
            expires_at_ms: 1,
            status: InviteStatus::Pending,
        };
        save(&root, &record).unwrap();
        assert_eq!(load(&root, &record.id).unwrap(), Some(record.clone()));
        assert_eq!(load_all(&root), vec![record.clone()]);
        assert!(is_own_code(&root, "abandon-ability-able-about-above"));
        assert!(!is_own_code(&root, "abandon-ability-able-about-absent"));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path(&root, &record.id)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        remove(&root, &record.id);
        assert!(load_all(&root).is_empty());
    }
}
