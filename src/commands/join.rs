//! `botsync join <code>`: pair this machine with the one that printed the code. Succeeds only
//! once Syncthing reports the other machine connected; the host configures us (device and all
//! three folders) before it answers the exchange, so a connection means the folders are shared.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::init::{init_engine, InitOptions};
use super::invite::{relay_url, PairedPeer};
use super::Report;
use crate::daemon::invite_completion::my_info;
use crate::daemon::invites;
use crate::device_id::DeviceId;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::pairing::exchange::guest::{self, Joined};
use crate::pairing::name_tag::tagged_name;
use crate::pairing::original::{self, OriginalCode};
use crate::pairing::{JoinCode, Mailbox, PairingCode, PairingError, RelayClient, Slot};
use crate::root::{SharedFolder, SyncRoot};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_POLL: Duration = Duration::from_millis(25);
/// What a joiner calls a host that told it nothing but its device ID (original and offline codes).
const UNNAMED_HOST: &str = "botsync peer";

#[napi_derive::napi(object)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinOptions {
    /// The 5-word code (or an offline code) printed by `init` or `invite` on the other machine.
    pub code: String,
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
    /// Network profile for this machine if it is set up now: `internet` (default), `lan`, `direct`.
    pub network: Option<String>,
    /// Pairing relay URL. Defaults to `$BOTSYNC_RELAY`, then the public botsync relay.
    pub relay: Option<String>,
    /// Give up after this many seconds [default: 60].
    pub timeout_seconds: Option<u32>,
}

#[napi_derive::napi(object)]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinReport {
    pub root: String,
    /// This machine's device ID.
    pub device_id: String,
    /// The machine that printed the code.
    pub peer: PairedPeer,
    /// `relay`, `original` or `offline`.
    pub kind: String,
    /// Where Syncthing reached the peer.
    pub address: String,
    /// Other members of the mesh added along with the peer.
    pub members: u32,
    /// From the start of `join` to the end of the code exchange.
    pub paired_ms: u32,
    /// From the start of `join` to Syncthing reporting the peer connected.
    pub connected_ms: u32,
}

pub async fn run(options: &JoinOptions) -> Result<JoinReport> {
    let started = Instant::now();
    let timeout = options.timeout_seconds.map(|s| Duration::from_secs(s.into())).unwrap_or(DEFAULT_TIMEOUT);
    let deadline = started + timeout;
    // Everything that can be refused without the network or the disk is refused first.
    let code = JoinCode::parse(&options.code)?;
    let network = super::init::parse_network(options.network.as_deref())?;
    let root = SyncRoot::locate(options.root.as_deref().map(std::path::Path::new))?;
    let canonical = match &code {
        JoinCode::Words(words) => words.to_string(),
        JoinCode::Offline(offline) => offline.to_string(),
    };
    if invites::is_own_code(&root, &canonical) {
        return Err(own_code());
    }
    let relay = RelayClient::new(&relay_url(options.relay.as_deref()))?;
    if let JoinCode::Words(words) = &code {
        preflight(&relay, words).await?;
    }

    let init = InitOptions { root: options.root.clone(), network: network.map(|n| n.to_string()), ..Default::default() };
    let engine = init_engine(&init).await?.engine;
    super::start::start_daemon(&root).await?;
    let me = my_info(&engine, None);
    let my_id = engine.device_id();

    let (peer, kind, members, tagged) = match code {
        JoinCode::Words(words) => {
            let exchange = guest::join_via_relay(&relay, &words, &me);
            let joined = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), exchange)
                .await
                .map_err(|_| PairingError::Timeout("the inviting machine (is its botsync running?)"))??;
            match joined {
                Joined::V2(host) => {
                    if host.device_id == my_id {
                        return Err(own_code());
                    }
                    engine.add_peer(&host.device_id, &host.name, &host.addresses).await?;
                    for member in host.members.iter().filter(|m| m.device_id != my_id) {
                        engine.add_peer(&member.device_id, &member.name, &member.addresses).await?;
                    }
                    let peer = PairedPeer { device_id: host.device_id.to_string(), name: host.name };
                    (peer, "relay", host.members.len() as u32, false)
                }
                Joined::Original(payload) => {
                    let tag = original::device_name_tag(&OriginalCode::from(&words), &my_id);
                    announce_name(&engine, &tagged_name(engine.device_name(), &tag)).await?;
                    engine.add_peer(&payload.device_id, UNNAMED_HOST, &[]).await?;
                    (PairedPeer { device_id: payload.device_id.to_string(), name: UNNAMED_HOST.into() }, "original", 0, true)
                }
            }
        }
        JoinCode::Offline(offline) => {
            if offline.device_id == my_id {
                return Err(own_code());
            }
            announce_name(&engine, &tagged_name(engine.device_name(), &offline.device_name_tag(&my_id))).await?;
            engine.add_peer(&offline.device_id, UNNAMED_HOST, &offline.syncthing_addresses()).await?;
            (PairedPeer { device_id: offline.device_id.to_string(), name: UNNAMED_HOST.into() }, "offline", 0, true)
        }
    };
    let paired_ms = started.elapsed().as_millis() as u32;
    let peer_id: DeviceId = peer.device_id.parse().map_err(|e| Error::Internal(format!("{e}")))?;
    let connected = wait_connected(&engine, &peer_id, deadline).await;
    if tagged {
        // The tag has done its job once the host accepted us; keep our plain name from now on.
        announce_name(&engine, engine.device_name()).await?;
    }
    let address = connected.ok_or_else(|| Error::NotConnected {
        peer: format!("{} ({})", peer.name, &peer.device_id[..7]),
        waited_s: timeout.as_secs(),
    })?;
    // Sharing a folder with a new device restarts it in Syncthing; a file written during that
    // restart would wait for Syncthing's own watcher. Done means ready to sync at full speed.
    if let Some(folder) = wait_folders_ready(&engine, deadline).await {
        return Err(Error::FolderNotReady { folder, waited_s: timeout.as_secs() });
    }
    Ok(JoinReport {
        root: root.path().display().to_string(),
        device_id: my_id.to_string(),
        peer,
        kind: kind.into(),
        address,
        members,
        paired_ms,
        connected_ms: started.elapsed().as_millis() as u32,
    })
}

fn own_code() -> Error {
    PairingError::CodeInvalid("this is this machine's own code: run `botsync join` with it on the other machine".into()).into()
}

/// Refuses a dead code before anything is set up on this machine: relay down, code unknown or
/// already used. (An unknown mailbox may still be an original-protocol code, which cannot be
/// peeked at without using it up, so that case goes on to the exchange.)
async fn preflight(relay: &RelayClient, code: &PairingCode) -> Result<(), PairingError> {
    match relay.get(code.mailbox(), Slot::GuestPake, Duration::ZERO).await {
        Ok(Some(_)) => Err(PairingError::CodeAlreadyUsed),
        Ok(None) | Err(PairingError::CodeExpired | PairingError::OriginalOnlyRelay { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets the name this device announces to peers it connects to.
async fn announce_name(engine: &Engine, name: &str) -> Result<()> {
    let rest = engine.rest();
    let own = engine.device_id();
    rest.patch_json(&format!("/rest/config/devices/{own}"), &serde_json::json!({ "name": name })).await?;
    Ok(())
}

/// The connection's address once Syncthing reports `peer` connected; `None` at the deadline.
async fn wait_connected(engine: &Engine, peer: &DeviceId, deadline: Instant) -> Option<String> {
    let rest = engine.rest();
    let key = peer.to_string();
    loop {
        if let Ok(connections) = rest.connections().await {
            if let Some(connection) = connections.connections.get(&key).filter(|c| c.connected) {
                return Some(connection.address.clone());
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(CONNECT_POLL).await;
    }
}

/// Waits until every shared folder is running and idle; returns the first that is not at the deadline.
async fn wait_folders_ready(engine: &Engine, deadline: Instant) -> Option<String> {
    let rest = engine.rest();
    for folder in SharedFolder::ALL {
        loop {
            let state = rest.db_status(folder.folder_id()).await.map(|s| s.state).unwrap_or_default();
            if state == "idle" {
                break;
            }
            if Instant::now() >= deadline {
                return Some(format!("{} ({})", folder.folder_id(), if state.is_empty() { "not running" } else { &state }));
            }
            tokio::time::sleep(CONNECT_POLL).await;
        }
    }
    None
}

impl Report for JoinReport {
    fn human(&self) -> String {
        let mesh = match self.members {
            0 => String::new(),
            n => format!(" and {n} other machine{}", if n == 1 { "" } else { "s" }),
        };
        format!(
            "Paired with {} ({}){mesh} in {:.1} s; connected at {} after {:.1} s.\n{} now syncs shared/, deliverables/ and inbox/.",
            self.peer.name,
            &self.peer.device_id[..7],
            f64::from(self.paired_ms) / 1000.0,
            self.address,
            f64::from(self.connected_ms) / 1000.0,
            crate::root::tilde(std::path::Path::new(&self.root)),
        )
    }
}
