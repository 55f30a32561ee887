//! `botsync join <code>`: pair this machine with the one that printed the code. Succeeds only
//! once Syncthing reports the other machine connected; the host configures us (device and all
//! three folders) before it answers the exchange, so a connection means the folders are shared.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::init::{init_engine, InitOptions};
use super::invite::{relay_url, PairedPeer};
use super::Report;
use crate::daemon::invites;
use crate::clock::Millis;
use crate::device_id::DeviceId;
use crate::engine::events::{EventData, EventStream};
use crate::engine::peers::NewPeer;
use crate::engine::{BinaryLocator, Engine, EngineError, NetworkProfile};
use crate::membership;
use crate::error::{Error, Result};
use crate::pairing::exchange::guest;
use crate::pairing::name_tag::tagged_name;
use crate::pairing::original::{self, OriginalPayload};
use crate::pairing::{JoinCode, PairingError, RelayClient};
use crate::root::{SharedFolder, SyncRoot};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_POLL: Duration = Duration::from_millis(25);
/// How long Syncthing holds an event poll open while `join` waits for the connection.
const CONNECT_HOLD: Duration = Duration::from_secs(1);
/// What a joiner calls a host that told it nothing but its device ID (original and offline codes).
const UNNAMED_HOST: &str = "botsync peer";

#[cfg_attr(feature = "node", napi_derive::napi(object))]
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
    /// The code is an original-protocol code (made with `--original`): its relay sees the whole
    /// code. Refused when the relay speaks v2.
    pub original: Option<bool>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
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
    #[cfg_attr(feature = "node", napi(ts_type = "number"))]
    pub paired_ms: Millis,
    /// From the start of `join` to Syncthing reporting the peer connected.
    #[cfg_attr(feature = "node", napi(ts_type = "number"))]
    pub connected_ms: Millis,
}

pub async fn run(options: &JoinOptions) -> Result<JoinReport> {
    let started = Instant::now();
    let timeout = options.timeout_seconds.map(|s| Duration::from_secs(s.into())).unwrap_or(DEFAULT_TIMEOUT);
    let deadline = started + timeout;
    // Everything that can be refused without the network or the disk is refused first.
    let code = JoinCode::parse(&options.code, options.original.unwrap_or(false))?;
    let network = super::init::parse_network(options.network.as_deref())?;
    let root = SyncRoot::locate(options.root.as_deref().map(std::path::Path::new))?;
    let canonical = match &code {
        JoinCode::Words(words) => words.to_string(),
        JoinCode::Offline(offline) => offline.to_string(),
        JoinCode::Original(original) => original.to_string(),
    };
    if invites::is_own_code(&root, &canonical) {
        return Err(own_code());
    }
    let relay = RelayClient::new(&relay_url(options.relay.as_deref()))?;
    if options.original.unwrap_or(false) {
        super::invite::refuse_original_on_v2(&relay).await?;
    }
    ready_to_set_up(&root).await?;
    let route = preflight(&relay, &code, effective_network(&root, network)?, deadline).await?;

    let fresh = FreshRoot::before_init(&root);
    let init = InitOptions { root: options.root.clone(), network: network.map(|n| n.to_string()), ..Default::default() };
    let ready = match init_engine(&init).await {
        Ok(ready) => ready,
        Err(error) => return Err(abandon(route, &relay, error).await),
    };
    let fresh = fresh.created(ready.created);
    let engine = ready.engine;
    // Until the other machine has us, a failure undoes what this call created: a refused code
    // leaves no root and no process behind.
    let connections = connection_events(&engine).await;
    let exchanged = async {
        if let Err(error) = super::start::start_daemon(&root).await {
            return Err(abandon(route, &relay, error).await);
        }
        exchange(&engine, code, route, &relay, deadline).await
    }
    .await;
    let (peer, kind, members, tagged) = match exchanged {
        Ok(paired) => paired,
        Err(error) => {
            fresh.undo(&engine).await;
            return Err(error);
        }
    };
    let my_id = engine.device_id();
    let paired_ms = Millis::since(started);
    let peer_id: DeviceId = peer.device_id.parse().map_err(|e| Error::Internal(format!("{e}")))?;
    let connected = wait_connected(&engine, &peer_id, connections, deadline).await;
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
    if let Some(folder) = wait_folder_lists(&engine, &peer_id, deadline).await {
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
        connected_ms: Millis::since(started),
    })
}

fn own_code() -> Error {
    PairingError::CodeInvalid("this is this machine's own code: run `botsync join` with it on the other machine".into()).into()
}

/// How a relay code pairs, settled before this machine is set up.
enum Route {
    /// A v2 code this machine has claimed (its SPAKE2 message is in): nobody else can use it.
    Claimed(guest::Claim),
    /// An original-protocol code, already traded for the host's device ID (it works once).
    Original(OriginalPayload),
}

/// Refuses a dead code before anything is set up on this machine: relay down or not a relay,
/// code unknown, expired or already used. A v2 code is claimed here (of several machines racing
/// for one code, the losers learn "already used" without starting anything); only its mailbox
/// words reach the relay, and a relay answering "unknown" or "no v2 here" ends the join: it is
/// never a reason to try the original protocol, which would show the relay the whole code. An
/// original-protocol code is traded for the host's device ID here, which uses it up.
async fn preflight(relay: &RelayClient, code: &JoinCode, network: NetworkProfile, deadline: Instant) -> Result<Option<Route>> {
    match code {
        JoinCode::Words(words) => {
            let left = deadline.saturating_duration_since(Instant::now());
            let claim = tokio::time::timeout(left, guest::claim(relay, words, std::time::SystemTime::now() + left))
                .await
                .map_err(|_| PairingError::Timeout("the inviting machine (is its botsync running?)"))??;
            Ok(Some(Route::Claimed(claim)))
        }
        JoinCode::Original(original) => {
            if network == NetworkProfile::Direct {
                // The original protocol tells us only the host's device ID; with discovery off
                // neither side could ever find the other.
                return Err(Error::Usage(
                    "an original-protocol code tells this machine only the other's device ID, and the `direct` network profile turns off the discovery it would need to find it: join with --network lan or internet, or ask for an offline code (`botsync invite --offline`)".into(),
                ));
            }
            Ok(Some(Route::Original(original::lookup(relay, original).await?)))
        }
        JoinCode::Offline(_) => Ok(None),
    }
}

/// The profile this root will have: the one asked for, else the one it has, else the default.
fn effective_network(root: &SyncRoot, asked: Option<NetworkProfile>) -> Result<NetworkProfile> {
    if let Some(network) = asked {
        return Ok(network);
    }
    Ok(Engine::open(root)?.map(|engine| engine.network()).unwrap_or_default())
}

type Exchanged = (PairedPeer, &'static str, u32, bool);

/// The pairing proper: the v2 exchange, or adopting the host of an original or offline code.
async fn exchange(engine: &Engine, code: JoinCode, route: Option<Route>, relay: &RelayClient, deadline: Instant) -> Result<Exchanged> {
    let me = membership::introduction(engine, None);
    let my_id = engine.device_id();
    match (code, route) {
        (JoinCode::Words(_), Some(Route::Claimed(claim))) => {
            let exchange = claim.finish(relay, &me);
            let host = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), exchange)
                .await
                .map_err(|_| PairingError::Timeout("the inviting machine to answer"))??;
            if host.device_id == my_id {
                return Err(own_code());
            }
            crate::membership::refuse_removed(engine, &host.device_id)?;
            // The host and every member it told us of, in one batch (`Engine::add_peers`): joining a
            // mesh of nine costs what joining one machine does (`engine::peers`). The members
            // dial us too, once the host's ledger names us. Where two machines dialling each
            // other at once can wait out a 20 s deadline (Syncthing before 1.20), only the host
            // is dialled and we learn the members' addresses once they are connected
            // (`membership::reconcile`). Elsewhere we dial them all at once: 1.28+ sends its
            // folder lists only once no new connection has come for a second
            // (`scheduleConnectionPromotion`), and members dialling in one by one kept
            // postponing the host's.
            let dial_members = !engine.state().syncthing.version.exchanges_hellos_one_at_a_time();
            let mut peers = vec![NewPeer { device_id: host.device_id, name: host.name.clone(), addresses: host.addresses.clone() }];
            for member in host.members.iter().filter(|m| m.device_id != my_id && m.device_id != host.device_id) {
                if crate::membership::refuse_removed(engine, &member.device_id).is_ok() {
                    let addresses = if dial_members { member.addresses.clone() } else { Vec::new() };
                    peers.push(NewPeer { device_id: member.device_id, name: member.name.clone(), addresses });
                }
            }
            // The host is recorded before it is configured: Syncthing dials it the moment it is,
            // and the index it sends then must already hold the ledger that names the host (the
            // host would otherwise pull a version rewritten under it, and fail; see
            // `membership::record_host`). The exchange has authenticated the host either way.
            crate::membership::record_host(engine, &host.device_id, &host.name, &host.addresses)?;
            engine.add_peers(&peers).await?;
            let peer = PairedPeer { device_id: host.device_id.to_string(), name: host.name };
            Ok((peer, "relay", host.members.len() as u32, false))
        }
        (JoinCode::Original(code), Some(Route::Original(payload))) => {
            if payload.device_id == my_id {
                return Err(own_code());
            }
            crate::membership::refuse_removed(engine, &payload.device_id)?;
            let tag = original::device_name_tag(&code, &my_id);
            announce_name(engine, &tagged_name(engine.device_name(), &tag)).await?;
            crate::membership::record_host(engine, &payload.device_id, UNNAMED_HOST, &[])?;
            engine.add_peer(&payload.device_id, UNNAMED_HOST, &[]).await?;
            Ok((PairedPeer { device_id: payload.device_id.to_string(), name: UNNAMED_HOST.into() }, "original", 0, true))
        }
        (JoinCode::Offline(offline), _) => {
            if offline.device_id == my_id {
                return Err(own_code());
            }
            crate::membership::refuse_removed(engine, &offline.device_id)?;
            announce_name(engine, &tagged_name(engine.device_name(), &offline.device_name_tag(&my_id))).await?;
            crate::membership::record_host(engine, &offline.device_id, UNNAMED_HOST, &offline.syncthing_addresses())?;
            engine.add_peer(&offline.device_id, UNNAMED_HOST, &offline.syncthing_addresses()).await?;
            Ok((PairedPeer { device_id: offline.device_id.to_string(), name: UNNAMED_HOST.into() }, "offline", 0, true))
        }
        (JoinCode::Words(_) | JoinCode::Original(_), _) => {
            Err(Error::Internal("a relay code reached the exchange without its preflight".into()))
        }
    }
}

/// What a `join` on a root that did not exist yet must remove if the pairing fails: the
/// directories and files it created, and the processes it started.
struct FreshRoot {
    root: SyncRoot,
    /// Paths that did not exist before `init`, topmost first (only filled once `init` created the root).
    new_paths: Vec<PathBuf>,
}

impl FreshRoot {
    fn before_init(root: &SyncRoot) -> FreshRoot {
        let path = root.path();
        let new_paths = if !path.exists() {
            // The whole new branch, from the topmost directory that is missing.
            vec![path.ancestors().take_while(|a| !a.exists()).last().unwrap_or(path).to_owned()]
        } else {
            let mut candidates = vec![root.state_dir(), root.manifest_file()];
            candidates.extend(SharedFolder::ALL.map(|folder| root.folder_dir(folder)));
            candidates.into_iter().filter(|p| !p.exists()).collect()
        };
        FreshRoot { root: root.clone(), new_paths }
    }

    /// Keeps the list only if `init` created the root; an existing root is never undone.
    fn created(mut self, created: bool) -> FreshRoot {
        if !created {
            self.new_paths.clear();
        }
        self
    }

    async fn undo(self, engine: &Engine) {
        if self.new_paths.is_empty() {
            return;
        }
        let _ = crate::daemon::process::stop(&self.root).await;
        let _ = engine.stop().await;
        for path in self.new_paths {
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

/// A claimed code whose joiner cannot go on: the host is told at once (instead of waiting until
/// the code expires). Returns `error` for the caller to report.
async fn abandon(route: Option<Route>, relay: &RelayClient, error: Error) -> Error {
    if let Some(Route::Claimed(claim)) = route {
        claim.abandon(relay, &error.to_string()).await;
    }
    error
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
    engine.rest().set_device_name(&engine.device_id(), name).await.map_err(EngineError::from)?;
    Ok(())
}

/// The engine's connection events from now on, taken before any peer is added, so that no
/// connection event of the pairing is missed; and the devices connected already.
struct ConnectionWatch {
    events: EventStream,
    /// Connected when the watch began: accepted by the other side, which kept the connection.
    /// Pairing again with such a host (a killed `join`, then `start`) produces no new
    /// connection event, since `add_peers` pauses only peers that are not connected.
    connected_before: HashSet<String>,
}

async fn connection_events(engine: &Engine) -> ConnectionWatch {
    let mut events = EventStream::new(engine.rest(), &["DeviceConnected", "DeviceDisconnected"]).with_poll_timeout(CONNECT_HOLD);
    // Unreadable now: the stream then starts from what Syncthing still buffers, which is safe.
    let _ = events.skip_to_now().await;
    let connected_before = engine.rest().connections().await.map(|c| c.connected_ids()).unwrap_or_default();
    ConnectionWatch { events, connected_before }
}

/// The connection's address once `peer` has accepted us; `None` at the deadline.
///
/// "Connected" alone is not enough: Syncthing reports a connection as soon as the TLS and Hello
/// exchange is done, and a host that does not know us yet (every original or offline join: the
/// host learns of us from that very connection) drops it a moment later as an unknown device.
/// Syncthing tells its own name only to devices it knows, so the `DeviceConnected` event of a
/// connection the peer accepted carries the peer's name, and one it is about to reject an empty one.
async fn wait_connected(engine: &Engine, peer: &DeviceId, watch: ConnectionWatch, deadline: Instant) -> Option<String> {
    let rest = engine.rest();
    let key = peer.to_string();
    let ConnectionWatch { mut events, connected_before } = watch;
    let mut accepted = connected_before.contains(&key);
    loop {
        if accepted {
            if let Ok(connections) = rest.connections().await {
                if let Some(connection) = connections.connections.get(&key).filter(|c| c.connected) {
                    return Some(connection.address.clone());
                }
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        match events.next_batch().await {
            Ok(batch) => {
                for event in batch.events {
                    match event.data {
                        EventData::DeviceConnected(connected) if connected.id == key => accepted = !connected.device_name.is_empty(),
                        EventData::DeviceDisconnected(disconnected) if disconnected.id == key => accepted = false,
                        _ => {}
                    }
                }
            }
            Err(_) => tokio::time::sleep(CONNECT_POLL).await,
        }
    }
}

/// Whether a folder in this `db/status` state is running past its (re)start: idle, or pulling
/// what the peer has. A folder that syncs is ready too: the initial sync of a large folder takes
/// minutes (100,000 files: longer than join's whole timeout), and a scan asked for meanwhile is
/// served between pulls. Only a folder still restarting (no state, `scanning` its initial scan,
/// `error`) is waited for.
pub(crate) fn folder_state_ready(state: &str) -> bool {
    matches!(state, "idle" | "sync-waiting" | "sync-preparing" | "syncing" | "clean-waiting" | "cleaning")
}

/// Waits until every shared folder is running (idle or syncing); returns the first that is not
/// at the deadline.
async fn wait_folders_ready(engine: &Engine, deadline: Instant) -> Option<String> {
    let rest = engine.rest();
    for folder in SharedFolder::ALL {
        loop {
            let state = rest.db_status(folder.folder_id()).await.map(|s| s.state).unwrap_or_default();
            if folder_state_ready(&state) {
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

/// Waits until the peer's folder list (its ClusterConfig) has arrived for every shared folder;
/// returns the first folder still without one at the deadline.
///
/// Syncthing 1.28 and newer send their folder list, and so start sending indexes, only a second
/// after a connection is up (`scheduleConnectionPromotion` in lib/model/model.go resets a one-second
/// promotion timer), so a file written the moment "connected" is reported waited that second:
/// ~1 s for the first file after `join` on 1.29.5 against ~15 ms on 1.19.2. Done means files
/// flow now. Syncthing 1.19 sends the list at once and reports no `remoteState` at all.
async fn wait_folder_lists(engine: &Engine, peer: &DeviceId, deadline: Instant) -> Option<String> {
    let rest = engine.rest();
    for folder in SharedFolder::ALL {
        loop {
            match rest.db_completion(folder.folder_id(), Some(peer)).await {
                Ok(c) if c.remote_state.as_deref().is_none_or(|s| s == "valid") => break,
                _ if Instant::now() >= deadline => return Some(format!("{} (no folder list from the peer yet)", folder.folder_id())),
                _ => tokio::time::sleep(CONNECT_POLL).await,
            }
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
            self.paired_ms.as_secs_f64(),
            self.address,
            self.connected_ms.as_secs_f64(),
            crate::root::tilde(std::path::Path::new(&self.root)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::folder_state_ready;

    #[test]
    fn a_folder_that_pulls_is_ready_and_one_that_restarts_is_not() {
        // Syncthing's folder states (lib/model/folderstate.go, the same on 1.19 and 1.29).
        for state in ["idle", "sync-waiting", "sync-preparing", "syncing", "clean-waiting", "cleaning"] {
            assert!(folder_state_ready(state), "{state}");
        }
        for state in ["", "scanning", "scan-waiting", "error", "unknown"] {
            assert!(!folder_state_ready(state), "{state}");
        }
    }
}
