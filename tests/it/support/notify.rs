//! Test doubles on loopback: a fake Syncthing REST API (events, status, config, completion) and a
//! fake OpenClaw hooks gateway that records what it receives.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

pub const API_KEY: &str = "fake-api-key-123";
/// A well-formed device ID for the fake's own device (botsync's REST types check device IDs).
pub const LOCAL_ID: &str = "XPLGZEI-SCVGZNT-OVAQHH6-KGTKN5R-6FWX57D-BHCCVHT-5EJCIH6-M4NCTQT";

/// botsync's REST client for a fake at `addr`, with the fake's key.
pub fn rest(addr: SocketAddr) -> botsync::engine::RestClient {
    botsync::engine::RestClient::new(addr.port(), botsync::engine::ApiKey::from_string(API_KEY.into()))
}

/// Makes `root` look initialized with its Syncthing at 127.0.0.1:`gui_port` (the fake's port),
/// the way the engine records it in `.botsync/config.json`.
pub fn record_engine(root: &botsync::SyncRoot, gui_port: u16) {
    let record = json!({
        "network": "lan", "guiPort": gui_port, "listenPort": 22000, "apiKey": API_KEY,
        "deviceId": LOCAL_ID, "deviceName": "fake",
        "syncthing": {"path": "/usr/bin/syncthing", "version": {"major": 1, "minor": 19, "patch": 2}},
    });
    botsync::state_file::write_json(&root.config_file(), &record).unwrap();
}

/// Serves `router` on 127.0.0.1 (port 0 unless given); aborting the handle closes the port.
pub async fn serve(router: Router, port: u16) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (addr, task)
}

// ---------------------------------------------------------------- fake Syncthing

#[derive(Default)]
pub struct SyncthingState {
    pub my_id: String,
    pub start_time: String,
    pub uptime: u64,
    /// Events of the current process, ids from 1.
    pub events: Vec<Value>,
    pub devices: Vec<Value>,
    pub folders: Vec<Value>,
    pub connections: Value,
    /// (folder, device or "") -> completion answer.
    pub completion: HashMap<(String, String), Value>,
    pub scans: Vec<String>,
    /// Answer 500 to this many event polls.
    pub fail_event_polls: u32,
    /// Every query string /rest/events received.
    pub event_queries: Vec<HashMap<String, String>>,
    /// How many times /rest/system/status was asked.
    pub status_queries: u32,
    pub bad_keys: u32,
}

#[derive(Clone, Default)]
pub struct FakeSyncthing(pub Arc<Mutex<SyncthingState>>);

impl FakeSyncthing {
    pub fn new(my_id: &str) -> Self {
        let fake = FakeSyncthing::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.my_id = my_id.to_string();
            s.start_time = "2026-01-01T00:00:00Z".into();
            s.uptime = 10;
            s.connections = json!({"connections": {}});
        }
        fake
    }

    /// Appends an event of the current process (its id is assigned here).
    pub fn push(&self, kind: &str, data: Value) -> u64 {
        let mut s = self.0.lock().unwrap();
        let id = s.events.len() as u64 + 1;
        s.events.push(json!({"id": id, "globalID": id, "type": kind, "time": format!("2026-01-01T00:00:{:02}Z", id % 60), "data": data}));
        id
    }

    /// Pushes recorded events verbatim but renumbered for the current process.
    pub fn push_recorded(&self, recorded: &[Value]) {
        for event in recorded {
            let mut s = self.0.lock().unwrap();
            let id = s.events.len() as u64 + 1;
            let mut event = event.clone();
            event["id"] = json!(id);
            s.events.push(event);
        }
    }

    /// Simulates a Syncthing restart: new start time, event ids from 1 again.
    pub fn restart(&self, start_time: &str) {
        let mut s = self.0.lock().unwrap();
        s.start_time = start_time.to_string();
        s.uptime = 0;
        s.events.clear();
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/rest/system/status", get(system_status))
            .route("/rest/events", get(events))
            .route("/rest/config/devices", get(config_devices))
            .route("/rest/config/folders", get(config_folders))
            .route("/rest/system/connections", get(connections))
            .route("/rest/db/completion", get(completion))
            .route("/rest/db/scan", post(scan))
            .with_state(self.clone())
    }

    pub async fn start(&self) -> (SocketAddr, JoinHandle<()>) {
        serve(self.router(), 0).await
    }
}

fn authorized(fake: &FakeSyncthing, headers: &HeaderMap) -> bool {
    let ok = headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(API_KEY);
    if !ok {
        fake.0.lock().unwrap().bad_keys += 1;
    }
    ok
}

async fn system_status(State(fake): State<FakeSyncthing>, headers: HeaderMap) -> Response {
    if !authorized(&fake, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut s = fake.0.lock().unwrap();
    s.status_queries += 1;
    Json(json!({"myID": s.my_id, "startTime": s.start_time, "uptime": s.uptime})).into_response()
}

async fn events(State(fake): State<FakeSyncthing>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if !authorized(&fake, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let since: u64 = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let timeout: u64 = q.get("timeout").and_then(|s| s.parse().ok()).unwrap_or(60);
    let limit: usize = q.get("limit").and_then(|s| s.parse().ok()).unwrap_or(0);
    let wanted: Option<Vec<String>> = q.get("events").map(|e| e.split(',').map(str::to_string).collect());
    {
        let mut s = fake.0.lock().unwrap();
        s.event_queries.push(q.clone());
        if s.fail_event_polls > 0 {
            s.fail_event_polls -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let found: Vec<Value> = {
            let s = fake.0.lock().unwrap();
            s.events
                .iter()
                .filter(|e| e["id"].as_u64().unwrap() > since)
                .filter(|e| wanted.as_ref().is_none_or(|w| w.iter().any(|t| e["type"] == t.as_str())))
                .cloned()
                .collect()
        };
        if !found.is_empty() || Instant::now() >= deadline {
            let found = if limit > 0 && found.len() > limit { found[found.len() - limit..].to_vec() } else { found };
            return Json(found).into_response();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn config_devices(State(fake): State<FakeSyncthing>) -> Json<Value> {
    Json(Value::Array(fake.0.lock().unwrap().devices.clone()))
}

async fn config_folders(State(fake): State<FakeSyncthing>) -> Json<Value> {
    Json(Value::Array(fake.0.lock().unwrap().folders.clone()))
}

async fn connections(State(fake): State<FakeSyncthing>) -> Json<Value> {
    Json(fake.0.lock().unwrap().connections.clone())
}

async fn completion(State(fake): State<FakeSyncthing>, Query(q): Query<HashMap<String, String>>) -> Response {
    let key = (q.get("folder").cloned().unwrap_or_default(), q.get("device").cloned().unwrap_or_default());
    match fake.0.lock().unwrap().completion.get(&key) {
        Some(v) => Json(v.clone()).into_response(),
        None => Json(json!({"completion": 100, "needBytes": 0, "needItems": 0, "needDeletes": 0, "globalBytes": 0})).into_response(),
    }
}

async fn scan(State(fake): State<FakeSyncthing>, Query(q): Query<HashMap<String, String>>) -> StatusCode {
    fake.0.lock().unwrap().scans.push(q.get("folder").cloned().unwrap_or_default());
    StatusCode::OK
}

// ---------------------------------------------------------------- fake OpenClaw

#[derive(Debug, Clone)]
pub struct Hook {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Clone)]
pub struct FakeOpenClaw {
    pub received: Arc<Mutex<Vec<Hook>>>,
    /// The status the gateway answers with (200 when up).
    pub status: Arc<Mutex<u16>>,
}

impl FakeOpenClaw {
    pub fn new() -> Self {
        FakeOpenClaw { received: Arc::default(), status: Arc::new(Mutex::new(200)) }
    }

    pub fn router(&self) -> Router {
        Router::new().route("/hooks/agent", post(hook)).with_state(self.clone())
    }

    pub async fn start_on(&self, port: u16) -> (SocketAddr, JoinHandle<()>) {
        serve(self.router(), port).await
    }

    pub fn set_status(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.received.lock().unwrap().clone()
    }

    pub fn messages(&self) -> Vec<String> {
        self.hooks().iter().map(|h| h.body["message"].as_str().unwrap_or_default().to_string()).collect()
    }

    /// Waits until `n` requests were answered 2xx... or received at all, within `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Hook> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.received.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.hooks()
    }
}

async fn hook(State(fake): State<FakeOpenClaw>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    let status = *fake.status.lock().unwrap();
    if status == 200 {
        fake.received.lock().unwrap().push(Hook {
            authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
            content_type: headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string),
            body,
            at: Instant::now(),
        });
    }
    StatusCode::from_u16(status).unwrap()
}

/// Recorded Syncthing events from tests/fixtures.
pub fn fixture(name: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub fn fixture_ids() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ids.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
