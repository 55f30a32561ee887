//! `botsync stop`: stop exactly this root's Syncthing processes (idempotent).

use serde::Serialize;

use super::{Report, RootOptions};
use crate::engine::Engine;
use crate::error::Result;

#[napi_derive::napi(object)]
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
    let outcome = engine.stop().await?;
    Ok(StopReport { root: root.path().display().to_string(), stopped: !outcome.stopped.is_empty(), pids: outcome.stopped })
}

impl Report for StopReport {
    fn human(&self) -> String {
        let root = crate::root::tilde(std::path::Path::new(&self.root));
        if self.stopped {
            format!("Stopped Syncthing for {root}")
        } else {
            format!("Syncthing was not running for {root}")
        }
    }
}
