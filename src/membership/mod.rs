//! Who belongs to the mesh, as botsync's own data instead of Syncthing's introducer flag.
//!
//! With introducers, any member could add any device to every machine, and a device removed on
//! one machine came back from the others. Here membership is a list every member keeps and
//! checks:
//!
//! - **Authenticated at the door.** A machine enters the list only when it pairs through an
//!   authenticated exchange: the host records the guest and the guest records the host (hooks in
//!   `commands::join` and `daemon::invite_completion`).
//! - **Changed only by members.** Each machine publishes its `ledger::Ledger` as
//!   `<its device ID>.json` in a fourth Syncthing folder, `botsync-members`
//!   (`<root>/.botsync/members`), shared with members only. Syncthing accepts changes to it only
//!   from configured devices, whose TLS identities are their device IDs, so nobody outside the
//!   mesh can write the list.
//! - **Removals stick.** A removal is a tombstone that wins over every add; each member copies it
//!   into its own ledger (and a private copy outside the folder), so it survives its first
//!   ledger being lost or deleted. Only an explicit `allow`, made later, lets the machine back.
//! - **Reconciled into Syncthing** by `reconcile`: members become devices sharing all four
//!   folders (no introducer flag), removed machines are deleted from Syncthing's config and put
//!   on its ignore list, so their connections are refused and they never show up as pending.

pub mod ledger;
pub mod reconcile;

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::clock;
use crate::device_id::DeviceId;
use crate::engine::{Engine, EngineError, RestError};
use crate::pairing::{MemberInfo, PeerInfo};
use crate::root::SyncRoot;
use crate::state_file::{self, StateFileError};
pub use ledger::{Added, Ledger, Verdict, View};
pub use reconcile::reconcile;

/// Syncthing's ID for the members folder.
pub const FOLDER_ID: &str = crate::engine::MEMBERS_FOLDER_ID;

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("no member of this mesh is called or has the ID `{0}`; `botsync peers` lists them")]
    UnknownPeer(String),
    #[error("`{name}` names more than one member ({}); use the device ID", .ids.join(", "))]
    Ambiguous { name: String, ids: Vec<String> },
    #[error("`{0}` is this machine: remove it from another member, or stop it with `botsync stop`")]
    IsSelf(String),
    #[error("`{0}` is not a removed machine; `botsync peers` lists the removed ones")]
    NotRemoved(String),
    #[error("{device} was removed from this mesh on {at}; to let it pair again, run `botsync allow {device}` on a member first")]
    Removed { device: String, at: String },
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

/// The ledgers of one root on disk.
struct Store {
    root: SyncRoot,
    me: DeviceId,
}

impl Store {
    fn of(engine: &Engine) -> Store {
        Store { root: engine.root().clone(), me: engine.device_id() }
    }

    /// This machine's ledger: the private copy (authoritative), else the published one.
    fn own(&self) -> Result<Ledger, MembershipError> {
        let local: Option<Ledger> = state_file::read_json(&self.private_file())?;
        let published = || state_file::read_json::<Ledger>(&self.published_file()).ok().flatten();
        Ok(local.or_else(published).filter(|l| l.writer == Some(self.me)).unwrap_or_else(|| Ledger::new(self.me)))
    }

    /// Everyone else's published ledger. Files that are not `<device ID>.json` written by that
    /// device (conflict copies, temporaries, anything else) are ignored.
    fn others(&self) -> Vec<Ledger> {
        let Ok(entries) = fs::read_dir(folder_dir(&self.root)) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let writer: DeviceId = name.strip_suffix(".json")?.parse().ok()?;
                if writer == self.me {
                    return None;
                }
                let ledger: Ledger = serde_json::from_slice(&fs::read(entry.path()).ok()?).ok()?;
                (ledger.writer == Some(writer)).then_some(ledger)
            })
            .collect()
    }

    /// Saves the ledger privately and publishes it (unless the published copy says the same).
    /// Returns whether the published copy was rewritten.
    fn save(&self, ledger: &Ledger) -> Result<bool, MembershipError> {
        state_file::write_json(&self.private_file(), ledger)?;
        self.publish(ledger)
    }

    fn publish(&self, ledger: &Ledger) -> Result<bool, MembershipError> {
        let dir = folder_dir(&self.root);
        ensure_folder_dir(&dir)?;
        let published: Option<Ledger> = state_file::read_json(&self.published_file()).ok().flatten();
        let stale = published.as_ref() != Some(ledger);
        if stale {
            state_file::write_json(&self.published_file(), ledger)?;
        }
        Ok(stale)
    }

    fn private_file(&self) -> PathBuf {
        self.root.state_dir().join("membership.json")
    }

    fn published_file(&self) -> PathBuf {
        folder_dir(&self.root).join(format!("{}.json", self.me))
    }

    /// Serializes read-modify-write of the ledger between the CLI and the daemon.
    fn lock(&self) -> Result<LedgerLock, MembershipError> {
        let path = self.root.state_dir().join("membership.lock");
        // Held for a file read and write, never across a network call.
        let lock = crate::platform::lock::LockFile::acquire_blocking(&path)
            .map_err(|source| MembershipError::Io { context: format!("locking {}", path.display()), source })?;
        Ok(LedgerLock { _file: lock })
    }

    /// Applies `change` to this machine's ledger under the lock; saves if it changed anything.
    fn update(&self, change: impl FnOnce(&mut Ledger, &[Ledger]) -> bool) -> Result<Updated, MembershipError> {
        let _lock = self.lock()?;
        let mut own = self.own()?;
        let others = self.others();
        let changed = change(&mut own, &others);
        let republished = if changed || !self.private_file().exists() { self.save(&own)? } else { self.publish(&own)? };
        Ok(Updated { own, others, republished })
    }

    fn view(&self) -> Result<View, MembershipError> {
        Ok(ledger::view(&self.own()?, &self.others()))
    }
}

struct LedgerLock {
    _file: crate::platform::lock::LockFile,
}

/// What `Store::update` did.
struct Updated {
    own: Ledger,
    others: Vec<Ledger>,
    /// The published copy in the members folder was rewritten (see `announce`).
    republished: bool,
}

/// Has Syncthing index this machine's ledger file at once instead of when its own watcher gets
/// to it (`fsWatcherDelayS`, 10 s). A peer that was sent the old version meanwhile asks for
/// blocks that no longer match: Syncthing answers "no such file" and the peer's folder retries
/// a minute later. That happened at every pairing: the host records its guest right after the
/// configuration change that shares the folder with it, whose scan saw the old ledger. A host
/// calls this right after answering its guest (see `record_guest`); a scan of an unchanged file
/// costs Syncthing a stat. A failed scan is left to the watcher.
pub async fn announce(engine: &Engine) {
    let own_file = format!("{}.json", engine.device_id());
    let _ = engine.rest().scan(FOLDER_ID, &[own_file]).await;
}

/// `<root>/.botsync/members`, the members folder.
pub fn folder_dir(root: &SyncRoot) -> PathBuf {
    crate::engine::members_dir(root)
}

fn ensure_folder_dir(dir: &std::path::Path) -> Result<(), MembershipError> {
    crate::engine::create_members_dir(dir).map_err(|source| MembershipError::Io { context: format!("creating {}", dir.display()), source })
}

/// The mesh as this machine sees it, from the files alone (works while Syncthing is stopped).
pub fn view(engine: &Engine) -> Result<View, MembershipError> {
    Store::of(engine).view()
}

/// Refuses a machine that was removed from the mesh (and not allowed back): what a host checks
/// before it configures a guest, and a joiner before it configures a host.
pub fn refuse_removed(engine: &Engine, device: &DeviceId) -> Result<(), MembershipError> {
    match Store::of(engine).view()?.removed.get(device) {
        Some(removed) => Err(MembershipError::Removed { device: device.to_string(), at: clock::rfc3339(removed.verdict.at_ms) }),
        None => Ok(()),
    }
}

/// Pairing hook, host side: `guest` paired with this machine through one of its codes. Then,
/// once the guest has its answer, `announce`: the ledger is indexed by the time the guest
/// connects, and the other members, who dial the guest as soon as they read it there, do so
/// after the guest's own connection to this machine (Syncthing 1.19 handles new connections
/// one at a time, see `commands::join`).
pub fn record_guest(engine: &Engine, guest: &DeviceId, name: &str, addresses: &[String]) -> Result<(), MembershipError> {
    let me = engine.device_id();
    let at_ms = clock::now_ms();
    let own_name = engine.device_name().to_string();
    let own_addresses = engine.direct_addresses();
    Store::of(engine).update(|own, others| {
        let mut changed = false;
        if !own.knows(&me) && !others.iter().any(|l| l.knows(&me)) {
            // The first pairing of the mesh's first machine.
            changed |= own.add(Added { device: me, name: own_name, addresses: own_addresses, by: None, at_ms });
        }
        changed | own.add(Added { device: *guest, name: name.to_string(), addresses: addresses.to_vec(), by: Some(me), at_ms })
    })?;
    Ok(())
}

/// Pairing hook, joiner side: this machine paired with `host`, which added it to the mesh. Call
/// it before configuring the host: the folder restart that configuration causes indexes the
/// ledger before Syncthing first connects (`announce` here could start the daemon's reconcile
/// in a race with that change).
pub fn record_host(engine: &Engine, host: &DeviceId, name: &str, addresses: &[String]) -> Result<(), MembershipError> {
    let me = engine.device_id();
    let at_ms = clock::now_ms();
    let own = (engine.device_name().to_string(), engine.direct_addresses());
    Store::of(engine).update(|ledger, _| {
        let added_me = ledger.add(Added { device: me, name: own.0, addresses: own.1, by: Some(*host), at_ms });
        added_me | ledger.add(Added { device: *host, name: name.to_string(), addresses: addresses.to_vec(), by: None, at_ms })
    })?;
    Ok(())
}

/// A member chosen by name or device ID (a full ID, or a prefix of at least 7 characters).
fn resolve(view: &View, me: &DeviceId, own_name: &str, wanted: &str, among_removed: bool) -> Result<(DeviceId, String), MembershipError> {
    let wanted = wanted.trim();
    let by_id = |id: &DeviceId| {
        let text = id.to_string();
        text == wanted.to_ascii_uppercase() || (wanted.len() >= 7 && text.starts_with(&wanted.to_ascii_uppercase()))
    };
    if by_id(me) || (!among_removed && wanted == own_name && !view.members.iter().any(|(id, m)| id != me && m.name == wanted)) {
        return Err(MembershipError::IsSelf(wanted.to_string()));
    }
    let candidates: Vec<(DeviceId, String)> = if among_removed {
        view.removed.iter().map(|(id, r)| (*id, r.name.clone().unwrap_or_default())).collect()
    } else {
        view.members.iter().filter(|(id, _)| *id != me).map(|(id, m)| (*id, m.name.clone())).collect()
    };
    let matching: Vec<&(DeviceId, String)> = candidates.iter().filter(|(id, name)| by_id(id) || name == wanted).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] if among_removed && (view.members.keys().any(by_id) || view.members.values().any(|m| m.name == wanted)) => {
            Err(MembershipError::NotRemoved(wanted.to_string()))
        }
        [] => Err(MembershipError::UnknownPeer(wanted.to_string())),
        many => Err(MembershipError::Ambiguous { name: wanted.to_string(), ids: many.iter().map(|(id, _)| id.to_string()).collect() }),
    }
}

/// Finds the member `wanted` names, refusing this machine, unknown and ambiguous names, from the
/// files alone: a refusal changes nothing and starts nothing.
pub fn find_member(engine: &Engine, wanted: &str) -> Result<(DeviceId, String), MembershipError> {
    resolve(&view(engine)?, &engine.device_id(), engine.device_name(), wanted, false)
}

/// Finds the removed machine `wanted` names.
pub fn find_removed(engine: &Engine, wanted: &str) -> Result<(DeviceId, String), MembershipError> {
    resolve(&view(engine)?, &engine.device_id(), engine.device_name(), wanted, true)
}

/// Removes `device` from the mesh: a tombstone in this machine's ledger (which every member
/// copies and applies), applied here at once. Returns when it was recorded.
pub async fn remove(engine: &Engine, device: &DeviceId) -> Result<u64, MembershipError> {
    record_verdict(engine, device, Ledger::remove).await
}

/// Lets a removed machine pair again (it still needs a fresh code).
pub async fn allow(engine: &Engine, device: &DeviceId) -> Result<u64, MembershipError> {
    record_verdict(engine, device, Ledger::allow).await
}

async fn record_verdict(engine: &Engine, device: &DeviceId, record: fn(&mut Ledger, Verdict) -> bool) -> Result<u64, MembershipError> {
    let at_ms = clock::now_ms();
    let me = engine.device_id();
    if Store::of(engine).update(|own, _| record(own, Verdict { device: *device, by: me, at_ms }))?.republished {
        announce(engine).await;
    }
    reconcile(engine).await?;
    Ok(at_ms)
}

/// What a member tells a machine it pairs with: how to reach this one, and the rest of the mesh
/// (every configured peer but `except`), so the newcomer can connect to all members at once.
pub fn introduction(engine: &Engine, except: Option<&DeviceId>) -> PeerInfo {
    let members = engine
        .configured_peers()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, name, addresses)| {
            let device_id: DeviceId = id.parse().ok()?;
            (Some(&device_id) != except).then_some(MemberInfo { device_id, name, addresses })
        })
        .collect();
    PeerInfo {
        device_id: engine.device_id(),
        name: engine.device_name().to_string(),
        addresses: engine.direct_addresses(),
        members,
    }
}
