//! Versions a peer cannot destroy: every botsync folder keeps the previous version of each file
//! that a peer overwrites or deletes, through Syncthing's trash-can versioning (the old copy
//! moves to `<folder>/.stversions/<path>`, one per path, cleaned out after `keep_days`).
//!
//! Set through REST right after the engine starts (`init` and `start`), before any peer can
//! send anything on a new root. A folder whose versioning someone chose by hand is left alone
//! unless `keep_days` is given explicitly.

use serde_json::{json, Value};

use super::rest::RestClient;
use super::EngineError;
use crate::root::SharedFolder;

/// How long a replaced or deleted file is kept when nothing else is said.
pub const DEFAULT_KEEP_DAYS: u32 = 30;

/// Syncthing's trash-can settings for `keep_days` (0: keep for ever).
pub fn trashcan(keep_days: u32) -> Value {
    json!({ "type": "trashcan", "params": { "cleanoutDays": keep_days.to_string() } })
}

/// Turns versioning on for each botsync folder that has none, or (with `keep_days`) sets it on
/// all of them. Returns the folders it changed.
pub async fn ensure(rest: &RestClient, keep_days: Option<u32>) -> Result<Vec<&'static str>, EngineError> {
    let mut changed = Vec::new();
    for folder in SharedFolder::ALL {
        let Some(config) = rest.folder(folder.folder_id()).await? else { continue };
        let current = config.other.get("versioning").cloned().unwrap_or(Value::Null);
        let wanted = match keep_days {
            Some(days) => trashcan(days),
            None if versioning_type(&current).is_empty() => trashcan(DEFAULT_KEEP_DAYS),
            None => continue,
        };
        if same_versioning(&current, &wanted) {
            continue;
        }
        rest.set_folder_versioning(folder.folder_id(), &wanted).await?;
        changed.push(folder.folder_id());
    }
    Ok(changed)
}

fn versioning_type(versioning: &Value) -> &str {
    versioning.get("type").and_then(Value::as_str).unwrap_or("")
}

fn same_versioning(current: &Value, wanted: &Value) -> bool {
    versioning_type(current) == versioning_type(wanted) && current.get("params") == wanted.get("params")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_type_and_params_decide_whether_to_patch() {
        let as_syncthing_has_it = json!({"type": "trashcan", "params": {"cleanoutDays": "30"}, "cleanupIntervalS": 3600, "fsPath": "", "fsType": "basic"});
        assert!(same_versioning(&as_syncthing_has_it, &trashcan(30)));
        assert!(!same_versioning(&as_syncthing_has_it, &trashcan(7)));
        assert_eq!(versioning_type(&json!({"type": "", "params": {}})), "");
    }
}
