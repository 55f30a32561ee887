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
use crate::engine::{BinaryLocator, Engine};
use crate::error::{Error, Result};
use crate::pairing::exchange::guest::{self, Claimed};
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
    ready_to_set_up(&root).await?;

    // The code is claimed before this machine is set up: of several machines racing for one
    // code, the losers learn "already used" without starting anything or touching their disk.
    let out_of_time = || PairingError::Timeout("the inviting machine (is its botsync running?)");
    let claimed = match &code {
        JoinCode::Words(words) => {
            let until = std::time::SystemTime::now() + deadline.saturating_duration_since(Instant::now());
            let claim = guest::claim_via_relay(&relay, words, until);
            Some(tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), claim).await.map_err(|_| out_of_time())??)
        }
        JoinCode::Offline(_) => None,
    };
    let init = InitOptions { root: options.root.clone(), network: network.map(|n| n.to_string()), ..Default::default() };
    let before = Untouched::note(&root);
    let mut created = false;
    let set_up = async {
        let ready = init_engine(&init).await?;
        created = ready.created;
        super::start::start_daemon(&root).await?;
        Ok::<_, Error>(ready.engine)
    }
    .await;
    let engine = match set_up {
        Ok(engine) => engine,
        Err(error) => {
            if let Some(Claimed::V2(claim)) = claimed {
                claim.abandon(&relay, &error.to_string()).await;
            }
            if created {
                before.restore(&root).await;
            }
            return Err(error);
        }
    };
    let me = my_info(&engine, None);
    let my_id = engine.device_id();

    let (peer, kind, members, tagged) = match (code, claimed) {
        (JoinCode::Words(_), Some(Claimed::V2(claim))) => {
            let exchange = claim.finish(&relay, &me);
            let exchanged = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), exchange)
                .await
                .unwrap_or(Err(PairingError::Timeout("the inviting machine to answer")))
                .map_err(Error::from)
                .and_then(|host| if host.device_id == my_id { Err(own_code()) } else { Ok(host) });
            let host = match exchanged {
                Ok(host) => host,
                Err(error) => {
                    // Nobody paired with a root set up for this join (a wrong code, a host that
                    // refused or never answered): leave the machine as it was.
                    if created {
                        before.restore(&root).await;
                    }
                    return Err(error);
                }
            };
            engine.add_peer(&host.device_id, &host.name, &host.addresses).await?;
            for member in host.members.iter().filter(|m| m.device_id != my_id) {
                engine.add_peer(&member.device_id, &member.name, &member.addresses).await?;
            }
            let peer = PairedPeer { device_id: host.device_id.to_string(), name: host.name };
            (peer, "relay", host.members.len() as u32, false)
        }
        (JoinCode::Words(words), Some(Claimed::Original(payload))) => {
            let tag = original::device_name_tag(&OriginalCode::from(&words), &my_id);
            announce_name(&engine, &tagged_name(engine.device_name(), &tag)).await?;
            engine.add_peer(&payload.device_id, UNNAMED_HOST, &[]).await?;
            (PairedPeer { device_id: payload.device_id.to_string(), name: UNNAMED_HOST.into() }, "original", 0, true)
        }
        (JoinCode::Offline(offline), _) => {
            if offline.device_id == my_id {
                return Err(own_code());
            }
            announce_name(&engine, &tagged_name(engine.device_name(), &offline.device_name_tag(&my_id))).await?;
            engine.add_peer(&offline.device_id, UNNAMED_HOST, &offline.syncthing_addresses()).await?;
            (PairedPeer { device_id: offline.device_id.to_string(), name: UNNAMED_HOST.into() }, "offline", 0, true)
        }
        (JoinCode::Words(_), None) => unreachable!("word codes are claimed above"),
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

/// What of a root existed before `join` set it up, so a join that paired nobody can take back
/// what it created (processes, state, empty folders) and leave the machine as it found it.
struct Untouched {
    root_existed: bool,
    existed: Vec<(std::path::PathBuf, bool)>,
}

impl Untouched {
    fn note(root: &SyncRoot) -> Untouched {
        let mut paths = vec![root.state_dir(), root.manifest_file()];
        paths.extend(SharedFolder::ALL.map(|f| root.folder_dir(f)));
        Untouched { root_existed: root.path().exists(), existed: paths.into_iter().map(|p| { let e = p.exists(); (p, e) }).collect() }
    }

    async fn restore(self, root: &SyncRoot) {
        let _ = crate::daemon::process::stop(root).await;
        if let Ok(engine) = Engine::load(root) {
            let _ = engine.stop().await;
        }
        if !self.root_existed {
            let _ = std::fs::remove_dir_all(root.path());
            return;
        }
        for (path, _) in self.existed.into_iter().filter(|(_, existed)| !existed) {
            if path == root.state_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else if path.is_dir() {
                // A shared folder: removed only while it holds nothing but Syncthing's marker.
                let _ = std::fs::remove_dir(path.join(".stfolder"));
                let _ = std::fs::remove_dir(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Fails, without changing anything, where setting this machine up would fail after the code is
/// used up: a corrupted root, a root that cannot be created, no usable Syncthing, no background
/// process binary, notification settings the background process would refuse.
async fn ready_to_set_up(root: &SyncRoot) -> Result<()> {
    if Engine::open(root)?.is_none() {
        crate::engine::check_root_usable(root)?;
        BinaryLocator::from_env().locate().await?;
    }
    crate::daemon::notify::NotifySettings::check_env(root)?;
    crate::daemon::process::binary()?;
    Ok(())
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
