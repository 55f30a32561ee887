//! `botsync start`: bring a root's engine up (idempotent).

use serde::Serialize;

use super::{Report, RootOptions};
use crate::engine::{BinaryLocator, Engine, StartOutcome};
use crate::daemon::process::DaemonStart;
use crate::error::Result;
use crate::root::SyncRoot;

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartReport {
    pub root: String,
    pub state: String,
    /// False if Syncthing was running already.
    pub started: bool,
    /// The background process's PID.
    pub daemon_pid: u32,
    pub device_id: String,
    pub syncthing_version: String,
}

pub async fn run(options: &RootOptions) -> Result<StartReport> {
    let root = options.locate()?;
    let mut engine = Engine::load(&root)?;
    crate::daemon::notify::NotifySettings::check_env(&root)?;
    crate::daemon::process::binary()?;
    let outcome = engine.start(&BinaryLocator::from_env()).await?;
    // Roots made before versioning existed get it here.
    crate::engine::versioning::ensure(&engine.rest(), None).await?;
    // And Syncthing's case checks off where the filesystem tells names apart by case.
    crate::engine::case_sensitivity::ensure(&engine.rest(), &root).await?;
    let daemon = start_daemon(&root).await?;
    Ok(StartReport {
        root: root.path().display().to_string(),
        state: crate::engine::RunState::Running.as_str().into(),
        started: matches!(outcome, StartOutcome::Started { .. }),
        daemon_pid: daemon.pid(),
        device_id: engine.device_id().to_string(),
        syncthing_version: engine.state().syncthing.version.to_string(),
    })
}

/// Starts the background process once the engine answers. Notification settings from the
/// environment are recorded first: the daemon is detached and may not see this environment.
pub async fn start_daemon(root: &SyncRoot) -> Result<DaemonStart> {
    crate::daemon::notify::NotifySettings::from_env(root)?;
    Ok(crate::daemon::process::ensure_running(root).await?)
}

impl Report for StartReport {
    fn human(&self) -> String {
        let how = if self.started { "started" } else { "already running" };
        format!("Syncthing {} {how} for {}", self.syncthing_version, crate::root::tilde(std::path::Path::new(&self.root)))
    }
}
