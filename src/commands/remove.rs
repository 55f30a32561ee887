//! `botsync remove <name|device-id>` and `botsync allow <device-id>`: take a machine out of the
//! mesh on every member, for good, and let it back on purpose. Both are refused from the files
//! alone before anything starts, so a typo changes nothing (see `membership`).

use serde::{Deserialize, Serialize};

use super::Report;
use crate::engine::{BinaryLocator, Engine};
use crate::error::Result;
use crate::membership;

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerOptions {
    /// The machine: its name as `botsync peers` shows it, or its device ID (7 characters or more).
    pub peer: String,
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipChange {
    pub root: String,
    pub device_id: String,
    pub name: String,
    /// `removed` or `allowed`.
    pub action: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
}

/// Removes the machine from every member: dropped and ignored here at once, on the others as
/// soon as the member list reaches them; refused by every member until allowed again.
pub async fn remove(options: &PeerOptions) -> Result<MembershipChange> {
    let engine = open(options)?;
    let (device, name) = membership::find_member(&engine, &options.peer)?;
    let engine = running(engine).await?;
    let at = membership::remove(&engine, &device).await?;
    Ok(change(&engine, device, name, "removed", at))
}

/// Lets a removed machine pair again (with a fresh code from any member).
pub async fn allow(options: &PeerOptions) -> Result<MembershipChange> {
    let engine = open(options)?;
    let (device, name) = membership::find_removed(&engine, &options.peer)?;
    let engine = running(engine).await?;
    let at = membership::allow(&engine, &device).await?;
    Ok(change(&engine, device, name, "allowed", at))
}

fn open(options: &PeerOptions) -> Result<Engine> {
    let root = super::RootOptions { root: options.root.clone() }.locate()?;
    Ok(Engine::load(&root)?)
}

/// The change is applied to Syncthing at once and published through it, so both must run.
async fn running(mut engine: Engine) -> Result<Engine> {
    crate::daemon::notify::NotifySettings::check_env(engine.root())?;
    crate::daemon::process::binary()?;
    engine.start(&BinaryLocator::from_env()).await?;
    super::start::start_daemon(engine.root()).await?;
    Ok(engine)
}

fn change(engine: &Engine, device: crate::device_id::DeviceId, name: String, action: &str, at_ms: u64) -> MembershipChange {
    MembershipChange {
        root: engine.root().path().display().to_string(),
        device_id: device.to_string(),
        name,
        action: action.into(),
        at: crate::clock::rfc3339(at_ms),
    }
}

impl Report for MembershipChange {
    fn human(&self) -> String {
        let name = crate::daemon::notify::untrusted::escaped(&self.name, crate::daemon::notify::untrusted::MAX_NAME_CHARS);
        match self.action.as_str() {
            "removed" => format!(
                "Removed {name} ({}) from the mesh: every member drops it and refuses it from now on. It keeps the files it already has.\nTo let it pair again: botsync allow {}",
                &self.device_id[..7],
                self.device_id
            ),
            _ => format!("Allowed {name} ({}) to pair again: it needs a fresh code (`botsync invite`).", &self.device_id[..7]),
        }
    }
}
