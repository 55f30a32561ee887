//! Notifications as one long-running task for the daemon: follow the root's Syncthing, derive
//! botsync events, hand them (and events other layers inject, like `Paired`) to the notifier.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::root::SyncRoot;

use super::feed::EventFeed;
use super::model::BotsyncEvent;
use super::run::{run_notifier, NotifierOptions};
use super::settings::NotifySettings;
use super::NotifyError;

/// Runs until `shutdown` resolves; then closes the open batch into the on-disk queue and returns.
/// Settings come from the environment (persisted on first use) or the root's saved file; without
/// a token it only waits for `shutdown`. Syncthing may be down at first: the feed is retried.
pub async fn serve(
    root: SyncRoot,
    injected: mpsc::Receiver<BotsyncEvent>,
    options: NotifierOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NotifyError> {
    let settings = NotifySettings::from_env(&root)?;
    serve_with(root, settings, injected, options, shutdown).await
}

/// `serve` with settings already resolved.
pub async fn serve_with(
    root: SyncRoot,
    settings: Option<NotifySettings>,
    mut injected: mpsc::Receiver<BotsyncEvent>,
    options: NotifierOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NotifyError> {
    let log = options.log.clone();
    tokio::pin!(shutdown);
    let Some(settings) = settings else {
        log("notifications off: OPENCLAW_HOOKS_TOKEN was never set for this root");
        shutdown.await;
        return Ok(());
    };
    log(&format!("notifying OpenClaw at {}", settings.redacted_url()));
    let (tx, rx) = mpsc::channel(1024);
    let notifier = tokio::spawn(run_notifier(root.clone(), Some(settings), rx, options));

    let mut complained = false;
    let feed = loop {
        let attempt = tokio::select! {
            opened = EventFeed::open(&root) => opened,
            _ = &mut shutdown => break None,
        };
        match attempt {
            Ok(feed) => break Some(feed),
            Err(NotifyError::Engine(e)) => {
                if !complained {
                    log(&format!("waiting for Syncthing: {e}"));
                    complained = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = &mut shutdown => break None,
                }
            }
            Err(other) => {
                drop(tx);
                let _ = notifier.await;
                return Err(other);
            }
        }
    };
    if let Some(mut feed) = feed {
        loop {
            let event = tokio::select! {
                event = feed.next() => event,
                Some(event) = injected.recv() => event,
                _ = &mut shutdown => break,
            };
            if tx.send(event).await.is_err() {
                break;
            }
        }
    }
    drop(tx);
    notifier.await.map_err(|e| NotifyError::Internal(format!("the notifier stopped: {e}")))?
}
