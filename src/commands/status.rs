//! `botsync status`: the truth about a root, in each of its states.

use serde::Serialize;

use super::{Report, RootOptions};
use crate::daemon::notify::NotificationSummary;
use crate::engine::{Engine, RunState};
use crate::error::Result;
use crate::root::SharedFolder;

/// Lifecycle state of a root's engine.
pub mod state {
    pub const UNINITIALIZED: &str = "uninitialized";
    pub const STOPPED: &str = "stopped";
    /// Syncthing's monitor is alive but its worker does not answer yet.
    pub const RESTARTING: &str = "restarting";
    pub const RUNNING: &str = "running";
}

/// What `status` reports; also the JSON contract of `botsync status --json`.
#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Whether `botsync init` (or `join`) has set this root up.
    pub initialized: bool,
    /// Whether Syncthing answers its API right now.
    pub running: bool,
    /// `uninitialized`, `stopped`, `restarting` or `running`.
    pub state: String,
    /// The sync root's absolute path.
    pub root: String,
    /// botsync's own version.
    pub version: String,
    pub syncthing_version: Option<String>,
    pub device_id: Option<String>,
    pub folders: Vec<FolderStatus>,
    pub peers: Vec<PeerStatus>,
    pub notifications: NotificationStatus,
    /// botsync's background process (pairing completion, notifications, fast scans).
    pub daemon: DaemonStatus,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonStatus {
    pub running: bool,
    pub pid: Option<u32>,
}

impl DaemonStatus {
    pub fn of(root: &crate::root::SyncRoot) -> DaemonStatus {
        let pid = crate::daemon::process::running_pid(root);
        DaemonStatus { running: pid.is_some(), pid }
    }
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderStatus {
    /// Syncthing folder ID, such as `botsync-shared`.
    pub id: String,
    pub path: String,
    /// Syncthing's folder state (`idle`, `scanning`, `syncing`, …), or `unknown` when stopped.
    pub state: String,
    /// Percent of the folder that every connected peer has (0–100).
    pub completion: f64,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    pub device_id: String,
    pub name: String,
    pub connected: bool,
    /// The address of the live connection, when connected.
    pub address: Option<String>,
    /// When the peer was last connected (RFC 3339), if ever.
    pub last_seen: Option<String>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationStatus {
    /// Whether OpenClaw notifications are configured (a token is set).
    pub enabled: bool,
    pub url: Option<String>,
    /// Notifications waiting for the gateway.
    pub queued: u32,
    /// Notifications dropped because the queue was full.
    pub dropped: u32,
}

impl From<NotificationSummary> for NotificationStatus {
    fn from(summary: NotificationSummary) -> Self {
        NotificationStatus {
            enabled: summary.enabled,
            url: summary.url,
            queued: u32::try_from(summary.queued).unwrap_or(u32::MAX),
            dropped: u32::try_from(summary.dropped).unwrap_or(u32::MAX),
        }
    }
}

pub async fn run(options: &RootOptions) -> Result<StatusReport> {
    let root = options.locate()?;
    let root_display = root.path().display().to_string();
    // `exists()` is false also when the file cannot be looked at (permissions): that would report
    // a root someone cannot read as never set up.
    let config = root.config_file();
    let initialized = config.try_exists().map_err(|source| crate::state_file::StateFileError::Read { path: config, source })?;
    if !initialized {
        return Ok(StatusReport {
            initialized: false,
            running: false,
            state: state::UNINITIALIZED.into(),
            root: root_display,
            version: crate::VERSION.into(),
            syncthing_version: None,
            device_id: None,
            folders: Vec::new(),
            peers: Vec::new(),
            notifications: NotificationStatus::default(),
            daemon: DaemonStatus::default(),
        });
    }
    let Some(engine) = Engine::open(&root)? else {
        unreachable!("config.json exists, so open either loads it or reports it corrupted")
    };
    let run_state = engine.probe().await;
    let mut report = StatusReport {
        initialized: true,
        running: run_state == RunState::Running,
        state: run_state.as_str().into(),
        root: root_display,
        version: crate::VERSION.into(),
        syncthing_version: Some(engine.state().syncthing.version.to_string()),
        device_id: Some(engine.device_id().to_string()),
        folders: offline_folders(&engine),
        peers: offline_peers(&engine),
        notifications: crate::daemon::notify::notification_status(&root).map(NotificationStatus::from).unwrap_or_default(),
        daemon: DaemonStatus::of(&root),
    };
    if run_state == RunState::Running {
        fill_live(&engine, &mut report).await;
    }
    Ok(report)
}

fn offline_folders(engine: &Engine) -> Vec<FolderStatus> {
    SharedFolder::ALL
        .into_iter()
        .map(|folder| FolderStatus {
            id: folder.folder_id().into(),
            path: engine.root().folder_dir(folder).display().to_string(),
            state: "unknown".into(),
            completion: 0.0,
        })
        .collect()
}

/// Peers as config.xml lists them: what is known while Syncthing is not answering.
fn offline_peers(engine: &Engine) -> Vec<PeerStatus> {
    engine
        .configured_peers()
        .unwrap_or_default()
        .into_iter()
        .map(|(device_id, name, _)| PeerStatus { device_id, name, connected: false, address: None, last_seen: None })
        .collect()
}

/// Asks the running Syncthing for everything at once. A call that fails (the worker may die
/// mid-way) leaves the offline value in place rather than failing `status`.
async fn fill_live(engine: &Engine, report: &mut StatusReport) {
    let rest = engine.rest();
    let folder = |folder: SharedFolder| {
        let rest = rest.clone();
        async move {
            let id = folder.folder_id();
            tokio::join!(rest.db_status(id), rest.db_completion(id, None))
        }
    };
    let (version, devices, connections, stats, shared, deliverables, inbox) = tokio::join!(
        rest.system_version(),
        rest.devices(),
        rest.connections(),
        rest.device_stats(),
        folder(SharedFolder::Shared),
        folder(SharedFolder::Deliverables),
        folder(SharedFolder::Inbox),
    );
    if let Ok(version) = version {
        report.syncthing_version = Some(version.version);
    }
    for (status, (db, completion)) in report.folders.iter_mut().zip([shared, deliverables, inbox]) {
        if let Ok(db) = db {
            status.state = db.state;
        }
        if let Ok(completion) = completion {
            status.completion = completion.completion;
        }
    }
    let Ok(devices) = devices else { return };
    let connections = connections.map(|c| c.connections).unwrap_or_default();
    let stats = stats.unwrap_or_default();
    let own = engine.device_id();
    report.peers = devices
        .into_iter()
        .filter(|d| d.device_id != own)
        .map(|device| {
            let id = device.device_id.to_string();
            let connection = connections.get(&id).cloned().unwrap_or_default();
            let last_seen = stats.get(&id).and_then(|s| s.last_seen.clone()).filter(|t| !t.starts_with("1970-"));
            PeerStatus {
                name: device.name,
                connected: connection.connected,
                address: connection.connected.then_some(connection.address).filter(|a| !a.is_empty()),
                last_seen,
                device_id: id,
            }
        })
        .collect();
}

impl Report for StatusReport {
    fn human(&self) -> String {
        let mut out = String::new();
        if !self.initialized {
            out.push_str(&format!("{} is not a botsync root yet. Run `botsync init` or `botsync join <code>`.", self.root));
            return out;
        }
        out.push_str(&format!("botsync {} · root {} · {}\n", self.version, self.root, self.state));
        if let Some(id) = &self.device_id {
            out.push_str(&format!("device  {id}\n"));
        }
        if let Some(v) = &self.syncthing_version {
            out.push_str(&format!("engine  Syncthing {v}\n"));
        }
        for folder in &self.folders {
            out.push_str(&format!("folder  {:<22} {:<9} {:>5.1}%  {}\n", folder.id, folder.state, folder.completion, folder.path));
        }
        if self.peers.is_empty() {
            out.push_str("peers   none yet: run `botsync invite` and `botsync join <code>` on the other machine\n");
        }
        for peer in &self.peers {
            let link = if peer.connected {
                format!("connected {}", peer.address.as_deref().unwrap_or(""))
            } else {
                format!("offline, last seen {}", peer.last_seen.as_deref().unwrap_or("never"))
            };
            out.push_str(&format!("peer    {} {} {}\n", peer.name, short_id(&peer.device_id), link));
        }
        match self.daemon.pid {
            Some(pid) => out.push_str(&format!("daemon  running (pid {pid})\n")),
            None => out.push_str("daemon  not running: run `botsync start`\n"),
        }
        let n = &self.notifications;
        if n.enabled {
            out.push_str(&format!("notify  {} ({} queued, {} dropped)\n", n.url.as_deref().unwrap_or(""), n.queued, n.dropped));
        }
        out.trim_end().to_string()
    }
}

fn short_id(device_id: &str) -> &str {
    device_id.get(..7).unwrap_or(device_id)
}
