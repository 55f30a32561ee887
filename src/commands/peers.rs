//! `botsync peers`: the members of this mesh (from the member list, see `membership`), whether
//! each is connected, where, when it was last seen and who added it; and the removed machines.

use serde::Serialize;

use super::{Report, RootOptions};
use crate::engine::{Engine, RunState};
use crate::error::Result;
use crate::membership;

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeersReport {
    pub root: String,
    /// This machine's device ID.
    pub device_id: String,
    /// The other members.
    pub peers: Vec<MemberStatus>,
    /// Machines removed from the mesh (refused until `botsync allow`).
    pub removed: Vec<RemovedMember>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub device_id: String,
    pub name: String,
    pub connected: bool,
    /// The address of the live connection, when connected.
    pub address: Option<String>,
    /// When it was last connected (RFC 3339), if ever.
    pub last_seen: Option<String>,
    /// The member that paired with it; absent for the mesh's first machine and for machines
    /// paired before botsync kept a member list.
    pub added_by: Option<PeerRef>,
    /// When it joined (RFC 3339).
    pub added_at: String,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerRef {
    pub device_id: String,
    pub name: Option<String>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedMember {
    pub device_id: String,
    pub name: Option<String>,
    pub removed_by: PeerRef,
    pub removed_at: String,
}

pub async fn run(options: &RootOptions) -> Result<PeersReport> {
    let root = options.locate()?;
    let engine = Engine::load(&root)?;
    let view = membership::view(&engine)?;
    let me = engine.device_id();
    let name_of = |id: &crate::device_id::DeviceId| {
        view.members.get(id).map(|m| m.name.clone()).or_else(|| view.removed.get(id).and_then(|r| r.name.clone()))
    };
    let reference = |id: &crate::device_id::DeviceId| PeerRef { device_id: id.to_string(), name: name_of(id) };
    let mut peers: Vec<MemberStatus> = view
        .members
        .values()
        .filter(|m| m.device != me)
        .map(|m| MemberStatus {
            device_id: m.device.to_string(),
            name: m.name.clone(),
            connected: false,
            address: None,
            last_seen: None,
            added_by: m.by.as_ref().map(reference),
            added_at: crate::clock::rfc3339(m.at_ms),
        })
        .collect();
    if engine.probe().await == RunState::Running {
        let rest = engine.rest();
        let (connections, stats) = tokio::join!(rest.connections(), rest.device_stats());
        let connections = connections.map(|c| c.connections).unwrap_or_default();
        let stats = stats.unwrap_or_default();
        for peer in &mut peers {
            if let Some(connection) = connections.get(&peer.device_id).filter(|c| c.connected) {
                peer.connected = true;
                peer.address = Some(connection.address.clone()).filter(|a| !a.is_empty());
            }
            peer.last_seen = stats.get(&peer.device_id).and_then(|s| s.last_seen.clone()).filter(|t| !t.starts_with("1970-"));
        }
    }
    let removed = view
        .removed
        .iter()
        .map(|(id, r)| RemovedMember {
            device_id: id.to_string(),
            name: r.name.clone(),
            removed_by: reference(&r.verdict.by),
            removed_at: crate::clock::rfc3339(r.verdict.at_ms),
        })
        .collect();
    Ok(PeersReport { root: root.path().display().to_string(), device_id: me.to_string(), peers, removed })
}

impl Report for PeersReport {
    fn human(&self) -> String {
        use crate::daemon::notify::untrusted::{escaped, MAX_NAME_CHARS};
        let label = |name: &Option<String>, id: &str| match name {
            Some(name) => format!("{} ({})", escaped(name, MAX_NAME_CHARS), &id[..7]),
            None => id[..7].to_string(),
        };
        let mut out = String::new();
        if self.peers.is_empty() {
            out.push_str("no peers yet: run `botsync invite`, then `botsync join -` on the other machine\n");
        }
        for peer in &self.peers {
            let link = match (&peer.address, peer.connected) {
                (Some(address), true) => format!("connected at {address}"),
                (None, true) => "connected".into(),
                _ => format!("offline, last seen {}", peer.last_seen.as_deref().unwrap_or("never")),
            };
            let by = peer.added_by.as_ref().map(|b| format!(", added by {}", label(&b.name, &b.device_id))).unwrap_or_default();
            out.push_str(&format!("{}  {}  {link}{by}\n", escaped(&peer.name, MAX_NAME_CHARS), peer.device_id));
        }
        for removed in &self.removed {
            out.push_str(&format!(
                "removed  {}  {} by {} on {} (`botsync allow {}` lets it pair again)\n",
                label(&removed.name, &removed.device_id),
                removed.device_id,
                label(&removed.removed_by.name, &removed.removed_by.device_id),
                removed.removed_at,
                removed.device_id
            ));
        }
        out.trim_end().to_string()
    }
}
