//! botsync's own record of a root's engine, in `<root>/.botsync/config.json` (0600, written
//! atomically). Keys other layers add to the same file are kept untouched.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::api_key::ApiKey;
use super::binary::SyncthingBinary;
use super::profile::NetworkProfile;
use super::EngineError;
use crate::device_id::DeviceId;
use crate::state_file;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineState {
    pub network: NetworkProfile,
    /// Syncthing's GUI/REST port on 127.0.0.1.
    pub gui_port: u16,
    /// The sync protocol port (TCP, and UDP for QUIC outside `direct`).
    pub listen_port: u16,
    pub api_key: ApiKey,
    pub device_id: DeviceId,
    pub device_name: String,
    pub syncthing: SyncthingBinary,
    /// Everything else in config.json (other layers' keys), written back as found.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl EngineState {
    pub fn load(path: &Path) -> Result<Option<EngineState>, EngineError> {
        Ok(state_file::read_json(path)?)
    }

    /// Rewrites config.json, keeping keys other layers wrote since this state was loaded.
    pub fn save(&self, path: &Path) -> Result<(), EngineError> {
        let mut merged: Map<String, Value> = match state_file::read_json::<Map<String, Value>>(path) {
            Ok(Some(current)) => current,
            _ => self.other.clone(),
        };
        let own = EngineState { other: Map::new(), ..self.clone() };
        let Value::Object(mine) = serde_json::to_value(&own).expect("engine state serializes") else {
            unreachable!("a struct serializes to an object")
        };
        merged.extend(mine);
        state_file::write_json(path, &merged)?;
        Ok(())
    }
}
