//! A typed client for Syncthing's REST API on loopback. Other layers (pairing, the daemon) use it
//! for everything after the first start: devices, folders, scans, pending devices.
//!
//! Order matters when pairing: add a device before sharing a folder with it, because a folder
//! PUT naming an unknown device silently drops that device.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::api_key::ApiKey;
use super::EngineError;
use crate::device_id::DeviceId;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct RestClient {
    base: String,
    api_key: ApiKey,
    http: reqwest::Client,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl RestClient {
    /// A client for the Syncthing whose GUI listens on `127.0.0.1:gui_port`.
    pub fn new(gui_port: u16, api_key: ApiKey) -> RestClient {
        Self::with_timeout(gui_port, api_key, DEFAULT_TIMEOUT)
    }

    /// As `new`, with another per-request timeout (long polls need more than the default 10 s).
    pub fn with_timeout(gui_port: u16, api_key: ApiKey, timeout: Duration) -> RestClient {
        let http = reqwest::Client::builder()
            .no_proxy() // loopback only; a proxy from the environment must never see the key
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client always builds");
        RestClient { base: format!("http://127.0.0.1:{gui_port}"), api_key, http }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request to `path` (such as `/rest/events`) with the API key set, for endpoints this
    /// client has no typed method for.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("X-API-Key", self.api_key.expose())
    }

    async fn send(&self, method: Method, path: &str, query: &[(&str, &str)], body: Option<&Value>) -> Result<reqwest::Response, EngineError> {
        let mut request = self.request(method.clone(), path).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| EngineError::RestUnreachable {
            method: method.to_string(),
            path: path.to_string(),
            reason: super::error_chain(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(EngineError::RestStatus { method: method.to_string(), path: path.to_string(), status: status.as_u16(), body: body.trim().chars().take(300).collect() })
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, EngineError> {
        let response = self.send(Method::GET, path, query, None).await?;
        response.json().await.map_err(|e| EngineError::RestDecode { path: path.to_string(), reason: super::error_chain(&e) })
    }

    pub async fn post(&self, path: &str, query: &[(&str, &str)]) -> Result<(), EngineError> {
        self.send(Method::POST, path, query, None).await.map(drop)
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Result<(), EngineError> {
        self.send(Method::PUT, path, &[], Some(body)).await.map(drop)
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Result<(), EngineError> {
        self.send(Method::PATCH, path, &[], Some(body)).await.map(drop)
    }

    pub async fn delete(&self, path: &str) -> Result<(), EngineError> {
        self.send(Method::DELETE, path, &[], None).await.map(drop)
    }

    /// Succeeds when Syncthing answers and accepts our key.
    /// Answers only when Syncthing's own API does: 2.x serves a plain-text page on the same
    /// address, to any request and without checking the key, while it migrates its database
    /// (see `conformance`), so a 200 alone proves nothing.
    pub async fn ping(&self) -> Result<(), EngineError> {
        const PATH: &str = "/rest/system/ping";
        let body = self.send(Method::GET, PATH, &[], None).await?.text().await.unwrap_or_default();
        if body.starts_with(super::conformance::MIGRATION_BANNER) {
            return Err(EngineError::Migrating);
        }
        match serde_json::from_str::<Value>(&body) {
            Ok(answer) if answer["ping"] == "pong" => Ok(()),
            _ => Err(EngineError::RestDecode { path: PATH.into(), reason: format!("not Syncthing's answer: {}", body.chars().take(80).collect::<String>()) }),
        }
    }

    pub async fn system_status(&self) -> Result<SystemStatus, EngineError> {
        self.get_json("/rest/system/status", &[]).await
    }

    pub async fn system_version(&self) -> Result<SystemVersion, EngineError> {
        self.get_json("/rest/system/version", &[]).await
    }

    /// Live connections by device ID (the map also lists ourselves, never connected).
    pub async fn connections(&self) -> Result<Connections, EngineError> {
        self.get_json("/rest/system/connections", &[]).await
    }

    /// Per-device statistics (`lastSeen`), by device ID.
    pub async fn device_stats(&self) -> Result<HashMap<String, DeviceStats>, EngineError> {
        self.get_json("/rest/stats/device", &[]).await
    }

    pub async fn devices(&self) -> Result<Vec<DeviceConfig>, EngineError> {
        self.get_json("/rest/config/devices", &[]).await
    }

    pub async fn device(&self, id: &DeviceId) -> Result<Option<DeviceConfig>, EngineError> {
        match self.get_json(&format!("/rest/config/devices/{id}"), &[]).await {
            Ok(device) => Ok(Some(device)),
            Err(EngineError::RestStatus { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates or replaces a device; fields not set in `device.other` take Syncthing's defaults.
    pub async fn put_device(&self, device: &DeviceConfig) -> Result<(), EngineError> {
        let body = serde_json::to_value(device).expect("device config serializes");
        self.put_json(&format!("/rest/config/devices/{}", device.device_id), &body).await
    }

    /// Adds (or updates) a peer with the addresses it is reachable at (`dynamic` uses discovery).
    pub async fn add_device(&self, id: &DeviceId, name: &str, addresses: &[String]) -> Result<(), EngineError> {
        let mut device = self.device(id).await?.unwrap_or_else(|| DeviceConfig::new(*id));
        device.name = name.to_string();
        device.addresses = if addresses.is_empty() { vec!["dynamic".into()] } else { addresses.to_vec() };
        self.put_device(&device).await
    }

    pub async fn remove_device(&self, id: &DeviceId) -> Result<(), EngineError> {
        self.delete(&format!("/rest/config/devices/{id}")).await
    }

    pub async fn folders(&self) -> Result<Vec<FolderConfig>, EngineError> {
        self.get_json("/rest/config/folders", &[]).await
    }

    pub async fn folder(&self, folder_id: &str) -> Result<Option<FolderConfig>, EngineError> {
        match self.get_json(&format!("/rest/config/folders/{folder_id}"), &[]).await {
            Ok(folder) => Ok(Some(folder)),
            Err(EngineError::RestStatus { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Shares `folder_id` with `device`, which must already be a configured device (see the module
    /// docs). Returns false if it was shared already.
    pub async fn share_folder(&self, folder_id: &str, device: &DeviceId) -> Result<bool, EngineError> {
        let folder = self.folder(folder_id).await?.ok_or_else(|| EngineError::RestStatus {
            method: "GET".into(),
            path: format!("/rest/config/folders/{folder_id}"),
            status: 404,
            body: "no such folder".into(),
        })?;
        if folder.devices.iter().any(|d| d.device_id == *device) {
            return Ok(false);
        }
        let mut devices: Vec<Value> = folder.devices.iter().map(|d| serde_json::to_value(d).expect("serializes")).collect();
        devices.push(serde_json::json!({ "deviceID": device.to_string() }));
        self.patch_json(&format!("/rest/config/folders/{folder_id}"), &serde_json::json!({ "devices": devices })).await?;
        Ok(true)
    }

    pub async fn options(&self) -> Result<Value, EngineError> {
        self.get_json("/rest/config/options", &[]).await
    }

    pub async fn patch_options(&self, patch: &Value) -> Result<(), EngineError> {
        self.patch_json("/rest/config/options", patch).await
    }

    pub async fn db_status(&self, folder_id: &str) -> Result<DbStatus, EngineError> {
        self.get_json("/rest/db/status", &[("folder", folder_id)]).await
    }

    /// How complete `folder_id` is on `device`, or aggregated over all remote devices when `None`.
    pub async fn db_completion(&self, folder_id: &str, device: Option<&DeviceId>) -> Result<Completion, EngineError> {
        let device = device.map(|d| d.to_string());
        let mut query = vec![("folder", folder_id)];
        if let Some(device) = device.as_deref() {
            query.push(("device", device));
        }
        self.get_json("/rest/db/completion", &query).await
    }

    /// Asks Syncthing to rescan `folder_id` now, only `sub` (a path inside the folder) when given.
    pub async fn scan(&self, folder_id: &str, sub: Option<&str>) -> Result<(), EngineError> {
        let mut query = vec![("folder", folder_id)];
        if let Some(sub) = sub {
            query.push(("sub", sub));
        }
        self.post("/rest/db/scan", &query).await
    }

    /// Devices that tried to connect but are not configured, by device ID.
    pub async fn pending_devices(&self) -> Result<HashMap<String, PendingDevice>, EngineError> {
        self.get_json("/rest/cluster/pending/devices", &[]).await
    }

    pub async fn pause_device(&self, id: &DeviceId) -> Result<(), EngineError> {
        self.post("/rest/system/pause", &[("device", &id.to_string())]).await
    }

    pub async fn resume_device(&self, id: &DeviceId) -> Result<(), EngineError> {
        self.post("/rest/system/resume", &[("device", &id.to_string())]).await
    }

    /// Whether a config change waits for a Syncthing restart.
    pub async fn restart_required(&self) -> Result<bool, EngineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            requires_restart: bool,
        }
        Ok(self.get_json::<Answer>("/rest/config/restart-required", &[]).await?.requires_restart)
    }
}

/// Whether an error means "nobody answered" rather than "answered with an error".
pub fn is_unreachable(error: &EngineError) -> bool {
    matches!(error, EngineError::RestUnreachable { .. })
}

pub fn is_forbidden(error: &EngineError) -> bool {
    matches!(error, EngineError::RestStatus { status, .. } if *status == StatusCode::FORBIDDEN.as_u16() || *status == StatusCode::UNAUTHORIZED.as_u16())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStatus {
    #[serde(rename = "myID")]
    pub my_id: DeviceId,
    #[serde(default)]
    pub uptime: u64,
    #[serde(default)]
    pub start_time: Option<String>,
    /// Listener state by listen address: `{"tcp://0.0.0.0:22001": {"error": null, ...}}`.
    #[serde(default)]
    pub connection_service_status: HashMap<String, ListenerStatus>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub lan_addresses: Option<Vec<String>>,
    #[serde(default)]
    pub wan_addresses: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemVersion {
    /// As Syncthing reports it, such as `v1.19.2-ds1`.
    pub version: String,
    #[serde(default)]
    pub long_version: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Connections {
    #[serde(default)]
    pub connections: HashMap<String, Connection>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    #[serde(default)]
    pub connected: bool,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub address: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub client_version: String,
    #[serde(default)]
    pub started_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStats {
    #[serde(default)]
    pub last_seen: Option<String>,
    #[serde(default)]
    pub last_connection_duration_s: Option<f64>,
}

/// A device as in `/rest/config/devices`; fields botsync does not model survive a round trip.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceConfig {
    #[serde(rename = "deviceID")]
    pub device_id: DeviceId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl DeviceConfig {
    pub fn new(device_id: DeviceId) -> DeviceConfig {
        DeviceConfig { device_id, name: String::new(), addresses: vec!["dynamic".into()], other: Map::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderConfig {
    pub id: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub devices: Vec<FolderDevice>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FolderDevice {
    #[serde(rename = "deviceID")]
    pub device_id: DeviceId,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbStatus {
    /// `idle`, `scanning`, `syncing`, `error`, …
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub need_bytes: u64,
    #[serde(default)]
    pub need_files: u64,
    #[serde(default)]
    pub global_bytes: u64,
    #[serde(default)]
    pub local_bytes: u64,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// Percent, 0–100.
    pub completion: f64,
    #[serde(default)]
    pub need_bytes: u64,
    #[serde(default)]
    pub need_items: u64,
    #[serde(default)]
    pub global_bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDevice {
    #[serde(default)]
    pub time: Option<String>,
    /// The name the peer gave itself.
    #[serde(default)]
    pub name: String,
    /// The peer's source address (its outgoing port, not where it listens).
    #[serde(default)]
    pub address: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_config_keeps_unknown_fields_on_round_trip() {
        let json = serde_json::json!({
            "deviceID": "XPLGZEI-SCVGZNT-OVAQHH6-KGTKN5R-6FWX57D-BHCCVHT-5EJCIH6-M4NCTQT",
            "name": "peer", "addresses": ["tcp://10.0.0.2:22001"], "compression": "metadata", "paused": false
        });
        let device: DeviceConfig = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(device.addresses, vec!["tcp://10.0.0.2:22001"]);
        assert_eq!(serde_json::to_value(&device).unwrap(), json);
    }
}
