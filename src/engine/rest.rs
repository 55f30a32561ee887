//! The one client for Syncthing's REST API on loopback: every layer that talks to Syncthing
//! (the engine, the daemon's scans and event feeds, `join`, `status`, `waitForSync`) goes through
//! it, so the security invariants live in one place: the API key is sent only to 127.0.0.1, never
//! through a proxy from the environment, and never printed (`ApiKey` hides it from `Debug`).
//!
//! Endpoints are typed methods; the response structs below are the only copies in the tree.
//! Order matters when pairing: add a device before sharing a folder with it, because a folder
//! PUT naming an unknown device silently drops that device.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::api_key::ApiKey;
use super::events::SyncthingEvent;
use crate::device_id::DeviceId;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Extra time a long poll gets beyond the `timeout` Syncthing was asked to hold it open.
const LONG_POLL_GRACE: Duration = Duration::from_secs(15);

/// Why a REST call failed: nobody answered, Syncthing refused, or the answer was not what the
/// endpoint returns.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("Syncthing's API did not answer {method} {path}: {reason}")]
    Unreachable { method: String, path: String, reason: String },
    #[error("Syncthing's API refused {method} {path} (HTTP {status}): {body}")]
    Status { method: String, path: String, status: u16, body: String },
    #[error("unexpected answer from Syncthing's API at {path}: {reason}")]
    Decode { path: String, reason: String },
    /// 2.x's temporary page while it migrates a 1.x database (see `conformance`).
    #[error("Syncthing is migrating its database to the 2.x format; wait for it (`botsync status` shows `restarting` until it is done), and do not stop it")]
    Migrating,
}

impl RestError {
    /// Whether nobody answered, rather than Syncthing answering with an error.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RestError::Unreachable { .. })
    }

    /// Whether Syncthing refused our key (or something else holds the port).
    pub fn is_forbidden(&self) -> bool {
        matches!(self.status(), Some(s) if s == StatusCode::FORBIDDEN.as_u16() || s == StatusCode::UNAUTHORIZED.as_u16())
    }

    /// The HTTP status Syncthing answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct RestClient {
    base: String,
    api_key: ApiKey,
    http: reqwest::Client,
    /// Per request; long polls add their own hold time to it.
    timeout: Duration,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl RestClient {
    /// The client for the Syncthing whose GUI listens on `127.0.0.1:gui_port`; the only way to
    /// build one.
    pub fn new(gui_port: u16, api_key: ApiKey) -> RestClient {
        let http = reqwest::Client::builder()
            .no_proxy() // loopback only; a proxy from the environment must never see the key
            .connect_timeout(Duration::from_secs(2))
            // Syncthing's API server closes a keep-alive connection after 15 s idle (its
            // ReadTimeout, lib/api/api.go): drop ours first rather than race its close.
            .pool_idle_timeout(Duration::from_secs(10))
            .build()
            .expect("a plain HTTP client always builds");
        RestClient { base: format!("http://127.0.0.1:{gui_port}"), api_key, http, timeout: DEFAULT_TIMEOUT }
    }

    /// The same client (same connection pool) with another per-request timeout: shorter for
    /// probes, longer for scans of big folders.
    pub fn with_timeout(&self, timeout: Duration) -> RestClient {
        RestClient { timeout, ..self.clone() }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn send(&self, method: Method, path: &str, query: &[(&str, &str)], body: Option<&Value>, timeout: Duration) -> Result<reqwest::Response, RestError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("X-API-Key", self.api_key.expose())
            .query(query)
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| RestError::Unreachable {
            method: method.to_string(),
            path: path.to_string(),
            reason: super::error_chain(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(RestError::Status { method: method.to_string(), path: path.to_string(), status: status.as_u16(), body: body.trim().chars().take(300).collect() })
    }

    async fn decode<T: DeserializeOwned>(path: &str, response: reqwest::Response) -> Result<T, RestError> {
        response.json().await.map_err(|e| RestError::Decode { path: path.to_string(), reason: super::error_chain(&e) })
    }

    /// `GET path` decoded as `T`. For endpoints without a typed method yet, inside the crate only:
    /// add a typed method here rather than calling this from another layer.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, RestError> {
        let response = self.send(Method::GET, path, query, None, self.timeout).await?;
        Self::decode(path, response).await
    }

    pub(crate) async fn post(&self, path: &str, query: &[(&str, &str)]) -> Result<(), RestError> {
        self.send(Method::POST, path, query, None, self.timeout).await.map(drop)
    }

    pub(crate) async fn put_json(&self, path: &str, body: &Value) -> Result<(), RestError> {
        self.send(Method::PUT, path, &[], Some(body), self.timeout).await.map(drop)
    }

    pub(crate) async fn patch_json(&self, path: &str, body: &Value) -> Result<(), RestError> {
        self.send(Method::PATCH, path, &[], Some(body), self.timeout).await.map(drop)
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<(), RestError> {
        self.send(Method::DELETE, path, &[], None, self.timeout).await.map(drop)
    }

    /// Succeeds when Syncthing answers and accepts our key.
    /// Answers only when Syncthing's own API does: 2.x serves a plain-text page on the same
    /// address, to any request and without checking the key, while it migrates its database
    /// (see `conformance`), so a 200 alone proves nothing.
    pub async fn ping(&self) -> Result<(), RestError> {
        const PATH: &str = "/rest/system/ping";
        let body = self.send(Method::GET, PATH, &[], None, self.timeout).await?.text().await.unwrap_or_default();
        if body.starts_with(super::conformance::MIGRATION_BANNER) {
            return Err(RestError::Migrating);
        }
        match serde_json::from_str::<Value>(&body) {
            Ok(answer) if answer["ping"] == "pong" => Ok(()),
            _ => Err(RestError::Decode { path: PATH.into(), reason: format!("not Syncthing's answer: {}", body.chars().take(80).collect::<String>()) }),
        }
    }

    /// `GET /rest/events`: the events after `since` of the given types (comma-separated Syncthing
    /// names), held open up to `hold` when there are none (`hold` zero answers at once); only the
    /// newest `limit` when given. Entries that are not events are skipped, never fatal. Use
    /// `EventStream` to follow events across Syncthing restarts. `types` must not wake Syncthing's
    /// folder summaries (`events::wakes_folder_summaries`).
    pub async fn events(&self, since: u64, types: &str, hold: Duration, limit: Option<u32>) -> Result<Vec<SyncthingEvent>, RestError> {
        debug_assert!(!super::events::wakes_folder_summaries(types), "{types:?} would turn on Syncthing 1.19's folder summaries");
        let (since, hold_s, limit) = (since.to_string(), hold.as_secs().to_string(), limit.map(|l| l.to_string()));
        let mut query = vec![("since", since.as_str()), ("timeout", hold_s.as_str()), ("events", types)];
        if let Some(limit) = limit.as_deref() {
            query.push(("limit", limit));
        }
        let path = "/rest/events";
        let response = self.send(Method::GET, path, &query, None, self.timeout + hold + LONG_POLL_GRACE).await?;
        let values: Vec<Value> = Self::decode(path, response).await?;
        Ok(super::events::from_values(values))
    }

    pub async fn system_status(&self) -> Result<SystemStatus, RestError> {
        self.get_json("/rest/system/status", &[]).await
    }

    pub async fn system_version(&self) -> Result<SystemVersion, RestError> {
        self.get_json("/rest/system/version", &[]).await
    }

    /// Live connections by device ID (the map also lists ourselves, never connected).
    pub async fn connections(&self) -> Result<Connections, RestError> {
        self.get_json("/rest/system/connections", &[]).await
    }

    /// Per-device statistics (`lastSeen`), by device ID.
    pub async fn device_stats(&self) -> Result<HashMap<String, DeviceStats>, RestError> {
        self.get_json("/rest/stats/device", &[]).await
    }

    pub async fn devices(&self) -> Result<Vec<DeviceConfig>, RestError> {
        self.get_json("/rest/config/devices", &[]).await
    }

    pub async fn device(&self, id: &DeviceId) -> Result<Option<DeviceConfig>, RestError> {
        match self.get_json(&format!("/rest/config/devices/{id}"), &[]).await {
            Ok(device) => Ok(Some(device)),
            Err(RestError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates or replaces a device; fields not set in `device.other` take Syncthing's defaults.
    pub async fn put_device(&self, device: &DeviceConfig) -> Result<(), RestError> {
        let body = serde_json::to_value(device).expect("device config serializes");
        self.put_json(&format!("/rest/config/devices/{}", device.device_id), &body).await
    }

    /// Adds (or updates) a peer with the addresses it is reachable at (`dynamic` uses discovery).
    pub async fn add_device(&self, id: &DeviceId, name: &str, addresses: &[String]) -> Result<(), RestError> {
        let mut device = self.device(id).await?.unwrap_or_else(|| DeviceConfig::new(*id));
        device.name = name.to_string();
        device.addresses = if addresses.is_empty() { vec!["dynamic".into()] } else { addresses.to_vec() };
        self.put_device(&device).await
    }

    pub async fn remove_device(&self, id: &DeviceId) -> Result<(), RestError> {
        self.delete(&format!("/rest/config/devices/{id}")).await
    }

    pub async fn folders(&self) -> Result<Vec<FolderConfig>, RestError> {
        self.get_json("/rest/config/folders", &[]).await
    }

    pub async fn folder(&self, folder_id: &str) -> Result<Option<FolderConfig>, RestError> {
        match self.get_json(&format!("/rest/config/folders/{folder_id}"), &[]).await {
            Ok(folder) => Ok(Some(folder)),
            Err(RestError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Shares `folder_id` with `device`, which must already be a configured device (see the module
    /// docs). Returns false if it was shared already.
    pub async fn share_folder(&self, folder_id: &str, device: &DeviceId) -> Result<bool, RestError> {
        let folder = self.folder(folder_id).await?.ok_or_else(|| RestError::Status {
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

    pub async fn options(&self) -> Result<Value, RestError> {
        self.get_json("/rest/config/options", &[]).await
    }

    pub async fn patch_options(&self, patch: &Value) -> Result<(), RestError> {
        self.patch_json("/rest/config/options", patch).await
    }

    pub async fn db_status(&self, folder_id: &str) -> Result<DbStatus, RestError> {
        self.get_json("/rest/db/status", &[("folder", folder_id)]).await
    }

    /// How complete `folder_id` is on `device`, or aggregated over all remote devices when `None`.
    pub async fn db_completion(&self, folder_id: &str, device: Option<&DeviceId>) -> Result<Completion, RestError> {
        let device = device.map(|d| d.to_string());
        let mut query = vec![("folder", folder_id)];
        if let Some(device) = device.as_deref() {
            query.push(("device", device));
        }
        self.get_json("/rest/db/completion", &query).await
    }

    /// Asks Syncthing to rescan `subs` of `folder_id` now (folder-relative paths, `/`-separated:
    /// `POST /rest/db/scan?folder=F&sub=a&sub=b`), the whole folder when `subs` is empty. Returns
    /// when the scan is done: Syncthing's scan endpoint is synchronous. Syncthing reads every
    /// repeated `sub` and walks up to the nearest parent it already knows.
    pub async fn scan<S: AsRef<str>>(&self, folder_id: &str, subs: &[S]) -> Result<(), RestError> {
        let mut query = vec![("folder", folder_id)];
        query.extend(subs.iter().map(|sub| ("sub", sub.as_ref())));
        self.post("/rest/db/scan", &query).await
    }

    /// Sets the name this Syncthing announces for device `id` (its own name when `id` is ours).
    pub async fn set_device_name(&self, id: &DeviceId, name: &str) -> Result<(), RestError> {
        self.patch_json(&format!("/rest/config/devices/{id}"), &serde_json::json!({ "name": name })).await
    }

    /// Devices that tried to connect but are not configured, by device ID.
    pub async fn pending_devices(&self) -> Result<HashMap<String, PendingDevice>, RestError> {
        self.get_json("/rest/cluster/pending/devices", &[]).await
    }

    pub async fn pause_device(&self, id: &DeviceId) -> Result<(), RestError> {
        self.post("/rest/system/pause", &[("device", &id.to_string())]).await
    }

    pub async fn resume_device(&self, id: &DeviceId) -> Result<(), RestError> {
        self.post("/rest/system/resume", &[("device", &id.to_string())]).await
    }

    /// Whether a config change waits for a Syncthing restart.
    pub async fn restart_required(&self) -> Result<bool, RestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            requires_restart: bool,
        }
        Ok(self.get_json::<Answer>("/rest/config/restart-required", &[]).await?.requires_restart)
    }
}

// --- Used by trust (GUI login, member list reconciliation). ---
impl RestClient {
    /// Sets the GUI/REST login of a running Syncthing; it bcrypt-hashes `password` itself. An
    /// empty `user` turns the login off (Syncthing keeps a password it is sent empty).
    pub async fn set_gui_login(&self, user: &str, password: &str) -> Result<(), RestError> {
        self.patch_json("/rest/config/gui", &serde_json::json!({ "user": user, "password": password })).await
    }

    /// Puts devices on Syncthing's ignore list (`remoteIgnoredDevices`): their connections are
    /// refused and they are never listed as pending. Syncthing has no endpoint for the list
    /// alone, so this is a read-modify-write of the whole configuration, made only when a
    /// device is missing from the list.
    pub async fn ignore_devices(&self, devices: &[(DeviceId, String)]) -> Result<(), RestError> {
        let mut config: Value = self.get_json("/rest/config", &[]).await?;
        let list = config
            .as_object_mut()
            .ok_or_else(|| RestError::Decode { path: "/rest/config".into(), reason: "not an object".into() })?
            .entry("remoteIgnoredDevices")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(list) = list else {
            return Err(RestError::Decode { path: "/rest/config".into(), reason: "remoteIgnoredDevices is not a list".into() });
        };
        let mut changed = false;
        for (id, name) in devices {
            let key = id.to_string();
            if !list.iter().any(|entry| entry["deviceID"].as_str() == Some(key.as_str())) {
                let time = crate::clock::rfc3339(crate::clock::now_ms());
                list.push(serde_json::json!({ "deviceID": key, "name": name, "address": "", "time": time }));
                changed = true;
            }
        }
        if changed {
            self.put_json("/rest/config", &config).await?;
        }
        Ok(())
    }

    /// Creates or replaces a folder; fields not in `folder` take Syncthing's folder defaults.
    pub async fn put_folder(&self, folder_id: &str, folder: &Value) -> Result<(), RestError> {
        self.put_json(&format!("/rest/config/folders/{folder_id}"), folder).await
    }

    /// The device IDs on Syncthing's ignore list.
    pub async fn ignored_devices(&self) -> Result<Vec<String>, RestError> {
        let config: Value = self.get_json("/rest/config", &[]).await?;
        Ok(config["remoteIgnoredDevices"].as_array().into_iter().flatten().filter_map(|d| d["deviceID"].as_str().map(str::to_string)).collect())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStatus {
    #[serde(rename = "myID")]
    pub my_id: DeviceId,
    /// Seconds since start; going backwards also means a new process.
    #[serde(default)]
    pub uptime: u64,
    /// Changes when the Syncthing process changes (whole seconds on 1.19).
    #[serde(default)]
    pub start_time: String,
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

impl Connections {
    /// Whether the device (full ID) has a live connection.
    pub fn is_connected(&self, device_id: &str) -> bool {
        self.connections.get(device_id).is_some_and(|c| c.connected)
    }

    /// Every device with a live connection, by full ID.
    pub fn connected_ids(&self) -> HashSet<String> {
        self.connections.iter().filter(|(_, c)| c.connected).map(|(id, _)| id.clone()).collect()
    }
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
    pub need_deletes: u64,
    #[serde(default)]
    pub global_bytes: u64,
    /// Whether the peer told us its folder list with this folder in it (`valid`); Syncthing 1.19
    /// has no such field.
    #[serde(default)]
    pub remote_state: Option<String>,
}

impl Completion {
    /// Nothing left to fetch or delete.
    pub fn is_complete(&self) -> bool {
        self.need_bytes == 0 && self.need_items == 0 && self.need_deletes == 0 && self.completion >= 100.0
    }
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

// ---- Per-file state and versions (agents: delivery receipts, `versions`, `restore`) ----------

impl RestClient {
    /// `/rest/db/file`: the global and local record of one path and the devices that hold its
    /// global version. `None` when the path is not in the index (never seen, or a typo). The
    /// fields used are the same on 1.19 and 1.29 (checked against both).
    pub async fn db_file(&self, folder_id: &str, file: &str) -> Result<Option<DbFile>, RestError> {
        match self.get_json("/rest/db/file", &[("folder", folder_id), ("file", file)]).await {
            Ok(info) => Ok(Some(info)),
            Err(RestError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /rest/folder/versions`: the kept versions of every path in the folder, by path.
    pub async fn folder_versions(&self, folder_id: &str) -> Result<HashMap<String, Vec<FileVersion>>, RestError> {
        let versions: Option<HashMap<String, Vec<FileVersion>>> = self.get_json("/rest/folder/versions", &[("folder", folder_id)]).await?;
        Ok(versions.unwrap_or_default())
    }

    /// `POST /rest/folder/versions`: restores `path` to the version kept at `version_time` (as
    /// listed). Returns Syncthing's per-path error, if it reported one.
    pub async fn restore_version(&self, folder_id: &str, path: &str, version_time: &str) -> Result<Option<String>, RestError> {
        let body = serde_json::json!({ path: version_time });
        let response = self.send(Method::POST, "/rest/folder/versions", &[("folder", folder_id)], Some(&body), self.timeout).await?;
        let errors: Option<HashMap<String, String>> = Self::decode("/rest/folder/versions", response).await?;
        Ok(errors.unwrap_or_default().remove(path).filter(|e| !e.is_empty()))
    }

    /// `/rest/db/ignores`: the folder's ignore patterns as Syncthing parsed them, and its error
    /// if the file does not parse.
    pub async fn ignores(&self, folder_id: &str) -> Result<Ignores, RestError> {
        self.get_json("/rest/db/ignores", &[("folder", folder_id)]).await
    }

    /// Turns Syncthing's case-conflict checks for a folder off (`true`) or on (see
    /// `engine::case_sensitivity`).
    pub async fn set_folder_case_sensitive(&self, folder_id: &str, case_sensitive: bool) -> Result<(), RestError> {
        self.patch_json(&format!("/rest/config/folders/{folder_id}"), &serde_json::json!({ "caseSensitiveFS": case_sensitive })).await
    }

    /// Replaces a folder's versioning (`{"type": "trashcan", "params": {...}}`).
    pub async fn set_folder_versioning(&self, folder_id: &str, versioning: &Value) -> Result<(), RestError> {
        self.patch_json(&format!("/rest/config/folders/{folder_id}"), &serde_json::json!({ "versioning": versioning })).await
    }
}

/// One path's state as `/rest/db/file` has it.
#[derive(Debug, Clone, Deserialize)]
pub struct DbFile {
    /// Remote devices that hold the global version (never this device).
    #[serde(default)]
    pub availability: Option<Vec<Availability>>,
    pub global: FileRecord,
    pub local: FileRecord,
}

impl DbFile {
    /// Whether `device` announced the global version of this path.
    pub fn holds_global(&self, device: &str) -> bool {
        self.availability.iter().flatten().any(|a| a.id == device)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Availability {
    pub id: String,
}

/// A file record (global or local) from `/rest/db/file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub size: i64,
    /// RFC 3339 with nanoseconds.
    #[serde(default)]
    pub modified: String,
    /// Short ID (7 characters) of the device that made this version.
    #[serde(default)]
    pub modified_by: String,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub ignored: bool,
    #[serde(default)]
    pub invalid: bool,
    /// `FILE_INFO_TYPE_FILE`, `FILE_INFO_TYPE_DIRECTORY`, …
    #[serde(default, rename = "type")]
    pub kind: String,
    /// The version vector, as `SHORTID:counter` entries.
    #[serde(default)]
    pub version: Vec<String>,
}

impl FileRecord {
    /// The version vector as one string, for comparing and showing versions.
    pub fn version_string(&self) -> String {
        self.version.join(",")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Ignores {
    #[serde(default)]
    pub ignore: Option<Vec<String>>,
    #[serde(default)]
    pub error: Option<String>,
}

/// One kept version of a path (`/rest/folder/versions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileVersion {
    /// When the version was moved aside (RFC 3339, whole seconds); the key for restoring it.
    pub version_time: String,
    #[serde(default)]
    pub mod_time: String,
    #[serde(default)]
    pub size: i64,
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
