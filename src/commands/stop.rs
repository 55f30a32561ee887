//! `botsync stop`: stop exactly this root's Syncthing processes (idempotent).

use serde::Serialize;

use super::{Report, RootOptions};
use crate::engine::Engine;
use crate::error::Result;

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopReport {
    pub root: String,
    /// Whether anything was running.
    pub stopped: bool,
    /// The process IDs that were stopped.
    pub pids: Vec<u32>,
}

pub async fn run(options: &RootOptions) -> Result<StopReport> {
    let root = options.locate()?;
    let engine = Engine::load(&root)?;
    // The daemon first: it would otherwise report Syncthing's shutdown as a failure.
    let daemon = crate::daemon::process::stop(&root).await?;
    let mut pids = engine.stop().await?.stopped;
    pids.extend(daemon);
    Ok(StopReport { root: root.path().display().to_string(), stopped: !pids.is_empty(), pids })
}

impl Report for StopReport {
    fn human(&self) -> String {
        let root = crate::root::tilde(std::path::Path::new(&self.root));
        if self.stopped {
            format!("Stopped botsync for {root}")
        } else {
            format!("botsync was not running for {root}")
        }
    }
}
