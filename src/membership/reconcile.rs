//! Makes Syncthing's configuration match the member list: every member a device sharing the
//! three folders and the members folder, with no introducer flag; every removed machine gone
//! from the configuration and on Syncthing's ignore list. Idempotent: a converged root makes no
//! configuration change, so the `ConfigSaved` events the daemon listens to settle.

use std::collections::HashSet;

use super::ledger::{self, Added};
use super::{announce, MembershipError, Store, FOLDER_ID};
use crate::clock;
use crate::device_id::DeviceId;
use crate::engine::peers::NewPeer;
use crate::engine::rest::DeviceConfig;
use crate::engine::Engine;
use crate::root::SharedFolder;

/// What one pass changed in Syncthing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Members configured by this pass (added through another member, or adopted).
    pub added: Vec<DeviceId>,
    /// Removed machines this pass dropped from the configuration.
    pub dropped: Vec<DeviceId>,
    /// Members configured paused. botsync pauses a peer only between the two commits of
    /// `Engine::add_peers`, so one that stays paused is one whose resume never came (the process
    /// was killed in between); the daemon resumes it once it has stayed paused for a while.
    pub paused: Vec<DeviceId>,
}

/// One pass: merge the ledgers, then bring Syncthing in line with the view. Needs Syncthing running.
pub async fn reconcile(engine: &Engine) -> Result<Reconciled, MembershipError> {
    let rest = engine.rest();
    let me = engine.device_id();
    let store = Store::of(engine);
    let configured: Vec<_> = rest.devices().await?.into_iter().filter(|d| d.device_id != me).collect();
    let now = clock::now_ms();
    let updated = store.update(|own, others| {
        let seen = ledger::view(own, others);
        let trusted = others.iter().filter(|l| l.writer.is_some_and(|w| !seen.is_removed(&w)));
        let mut changed = own.absorb(trusted);
        // Devices configured without a record: a mesh from before the member list, or a pairing
        // whose hook has not run yet. Every device botsync configures came through an
        // authenticated exchange, so each is recorded as a member (by nobody in particular).
        let known: HashSet<DeviceId> = std::iter::once(&*own).chain(others).flat_map(|l| l.added.iter().map(|a| a.device)).collect();
        for device in &configured {
            if !seen.is_removed(&device.device_id) && !known.contains(&device.device_id) {
                let addresses = device.addresses.iter().filter(|a| *a != "dynamic").cloned().collect();
                changed |= own.add(Added { device: device.device_id, name: device.name.clone(), addresses, by: None, at_ms: now });
            }
        }
        if !configured.is_empty() && !known.contains(&me) {
            changed |= own.add(Added { device: me, name: engine.device_name().to_string(), addresses: engine.direct_addresses(), by: None, at_ms: now });
        }
        changed
    })?;
    let view = ledger::view(&updated.own, &updated.others);
    engine.ensure_members_folder().await?;
    if updated.republished {
        announce(engine).await;
    }

    let mut outcome = Reconciled::default();
    // Removed machines: out of the configuration (Syncthing drops them from every folder with
    // it), then ignored, so a connection from them is refused and never listed as pending.
    let mut to_ignore: Vec<(DeviceId, String)> = Vec::new();
    for device in configured.iter().filter(|d| view.is_removed(&d.device_id)) {
        rest.remove_device(&device.device_id).await?;
        outcome.dropped.push(device.device_id);
        to_ignore.push((device.device_id, device.name.clone()));
    }
    if !view.removed.is_empty() {
        for (id, pending) in rest.pending_devices().await.unwrap_or_default() {
            if let Ok(id) = id.parse::<DeviceId>() {
                if view.is_removed(&id) {
                    to_ignore.push((id, pending.name));
                }
            }
        }
    }
    if !to_ignore.is_empty() {
        rest.ignore_devices(&to_ignore).await?;
    }

    // Members: configured, not introducers, sharing every folder.
    let configured_ids: HashSet<DeviceId> = configured.iter().map(|d| d.device_id).collect();
    let missing: Vec<NewPeer> = view
        .members
        .values()
        .filter(|m| m.device != me && !configured_ids.contains(&m.device))
        .map(|m| NewPeer { device_id: m.device, name: m.name.clone(), addresses: m.addresses.clone() })
        .collect();
    // One batch, two configuration changes whatever its size (`engine::peers`).
    engine.add_peers(&missing).await?;
    outcome.added.extend(missing.iter().map(|p| p.device_id));
    // Members configured with no address to dial (a joiner leaves the dialling to the members
    // it was told of, see `commands::join`) get the addresses their own record gives, once they
    // are connected: from then on either side can dial the other after a restart.
    let unreachable: Vec<&DeviceConfig> = configured.iter().filter(|d| d.addresses.iter().all(|a| a == "dynamic")).collect();
    if !unreachable.is_empty() {
        let connections = rest.connections().await?;
        for device in unreachable {
            let connected = connections.is_connected(&device.device_id.to_string());
            let recorded = view.members.get(&device.device_id).map(|m| m.addresses.as_slice()).unwrap_or_default();
            if connected && !recorded.is_empty() {
                engine.set_peer_addresses(&device.device_id, recorded).await?;
            }
        }
    }
    for device in configured.iter().filter(|d| view.members.contains_key(&d.device_id)) {
        if device.other.get("introducer").and_then(|v| v.as_bool()) == Some(true) {
            rest.patch_json(&format!("/rest/config/devices/{}", device.device_id), &serde_json::json!({ "introducer": false })).await?;
        }
        if device.other.get("paused").and_then(|v| v.as_bool()) == Some(true) {
            outcome.paused.push(device.device_id);
        }
    }
    let folders = rest.folders().await?;
    let folder_ids: Vec<&str> = SharedFolder::ALL.iter().map(|f| f.folder_id()).chain([FOLDER_ID]).collect();
    for folder_id in folder_ids {
        let Some(folder) = folders.iter().find(|f| f.id == folder_id) else { continue };
        for member in view.members.keys().filter(|id| **id != me) {
            if !folder.devices.iter().any(|d| d.device_id == *member) {
                rest.share_folder(folder_id, member).await?;
            }
        }
    }
    Ok(outcome)
}
