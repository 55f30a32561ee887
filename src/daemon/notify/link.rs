//! Where a root's Syncthing listens and its API key, from `<root>/.botsync/config.json`
//! (written by the engine layer; only `guiPort` and `apiKey` matter here, other fields are ignored).

use serde_json::Value;

use crate::engine::events::{ApiKey, SyncthingLink};
use crate::root::SyncRoot;
use crate::state_file;

use super::NotifyError;

pub fn engine_link(root: &SyncRoot) -> Result<SyncthingLink, NotifyError> {
    let config: Value = state_file::read_json(&root.config_file())?
        .ok_or_else(|| NotifyError::NotInitialized(root.display()))?;
    let port = match config.get("guiPort") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|p| (1..=u16::MAX as u64).contains(p));
    let key = config.get("apiKey").and_then(Value::as_str).filter(|k| !k.is_empty());
    match (port, key) {
        (Some(port), Some(key)) => Ok(SyncthingLink::new(format!("http://127.0.0.1:{port}"), ApiKey::from_string(String::from(key)))),
        _ => Err(NotifyError::EngineNotConfigured(root.config_file().display().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_port_and_key_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = SyncRoot::at(dir.path().to_owned()).unwrap();
        assert!(matches!(engine_link(&root), Err(NotifyError::NotInitialized(_))));
        state_file::write_json(&root.config_file(), &serde_json::json!({"network": "lan", "guiPort": 8385, "apiKey": "k"})).unwrap();
        assert_eq!(engine_link(&root).unwrap().base_url(), "http://127.0.0.1:8385");
        state_file::write_json(&root.config_file(), &serde_json::json!({"network": "lan"})).unwrap();
        assert!(matches!(engine_link(&root), Err(NotifyError::EngineNotConfigured(_))));
    }
}
