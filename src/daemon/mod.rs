//! The background process: one per root, native (`botsync-daemon`), started by init, join and
//! start and stopped by stop. It completes pairings while codes are valid, sends notifications
//! and asks Syncthing for immediate scans of what changed.

pub mod entry;
pub mod fast_scan;
pub mod invite_completion;
pub mod invites;
pub mod members;
pub mod notify;
pub mod process;
pub mod scanner;
pub mod watch_limit;
pub mod watcher;

use std::io;
use std::path::PathBuf;

use std::sync::Arc;

use tokio::sync::{mpsc, watch, Notify};

use crate::engine::{Engine, EngineError};
use crate::root::SyncRoot;
use crate::state_file::StateFileError;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("the background process `botsync-daemon` is missing (looked at {}); reinstall botsync or set BOTSYNC_DAEMON_BIN", looked_at(.looked))]
    BinaryMissing { looked: Vec<PathBuf> },
    #[error("cannot start {binary}: {source}")]
    Spawn { binary: PathBuf, source: io::Error },
    #[error("the background process did not start; its log says: {log_tail}")]
    DidNotStart { log_tail: String },
    #[error("cannot stop the background process {pid}: {reason}")]
    StopFailed { pid: u32, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

fn looked_at(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    if shown.is_empty() { "nowhere".into() } else { shown.join(", ") }
}

/// What `botsync-daemon` runs. Returns when `shutdown` turns true, or at once (Ok) if another
/// daemon already serves this root. `wake` is notified when a new invite was recorded
/// (`process::nudge`).
pub async fn run(root: SyncRoot, shutdown: watch::Receiver<bool>, wake: Arc<Notify>) -> Result<(), DaemonError> {
    let Some(_lock) = process::InstanceLock::acquire(&root).await? else {
        eprintln!("another botsync-daemon already serves {}", root.display());
        return Ok(());
    };
    let engine = Engine::load(&root)?;
    eprintln!("botsync-daemon {} serving {} (pid {})", crate::VERSION, root.display(), std::process::id());
    let (paired, paired_events) = mpsc::channel(16);
    let notifications = tokio::spawn(notify::serve(
        root.clone(),
        paired_events,
        notify::NotifierOptions::default(),
        changed(shutdown.clone()),
    ));
    tokio::join!(
        fast_scan::run(&engine, shutdown.clone()),
        members::run(engine.clone(), shutdown.clone()),
        invite_completion::run(engine.clone(), shutdown, paired, wake)
    );
    match notifications.await {
        Ok(Err(e)) => eprintln!("notifications stopped: {e}"),
        Err(e) => eprintln!("notifications task failed: {e}"),
        Ok(Ok(())) => {}
    }
    Ok(())
}

/// Resolves when `shutdown` turns true (or its sender is gone).
async fn changed(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
