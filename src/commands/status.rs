//! `botsync status`: the truth about a root, in each of its states.

use serde::Serialize;

use super::{Report, RootOptions};
use crate::error::Result;

/// Lifecycle state of a root's engine.
pub mod state {
    pub const UNINITIALIZED: &str = "uninitialized";
    pub const STOPPED: &str = "stopped";
    /// Syncthing's monitor is alive but its worker does not answer yet.
    pub const RESTARTING: &str = "restarting";
    pub const RUNNING: &str = "running";
}

/// What `status` reports; also the JSON contract of `botsync status --json`.
#[napi_derive::napi(object)]
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
}

#[napi_derive::napi(object)]
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

#[napi_derive::napi(object)]
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

#[napi_derive::napi(object)]
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

pub async fn run(options: &RootOptions) -> Result<StatusReport> {
    let root = options.locate()?;
    let root_display = root.path().display().to_string();
    if !root.config_file().exists() {
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
        });
    }
    Err(crate::Error::NotAvailable("status on an initialized root"))
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
