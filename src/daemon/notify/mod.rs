//! Notifications: botsync's event model (what agents see), how it is derived from Syncthing's
//! events, and delivery to OpenClaw with batching and a persistent queue.
//!
//! The pieces, in the order data flows: `feed::EventFeed` (Syncthing -> `model::BotsyncEvent`,
//! via `derive::EventDeriver`), then `run::run_notifier` (events -> `notifier::Notifier` ->
//! POSTs), with `outbox::Outbox` on disk and `settings::NotifySettings` for the URL and token.
//! `service::serve` runs the whole chain for the daemon.

pub mod delivery;
pub mod derive;
pub mod feed;
pub mod model;
pub mod notifier;
pub mod outbox;
pub mod run;
pub mod service;
pub mod settings;
pub mod untrusted;

use crate::engine::RestError;
use crate::root::SyncRoot;
use crate::state_file::StateFileError;

pub use feed::EventFeed;
pub use model::{BotsyncEvent, FileAction, Peer};
pub use notifier::{Notifier, NotifierConfig, Outcome};
pub use run::{run_notifier, LogSink, NotifierOptions};
pub use service::{serve, serve_with};
pub use settings::{HooksToken, NotifySettings};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0} is not a botsync root yet: run `botsync init` first")]
    NotInitialized(String),
    #[error("Syncthing is not running for this root ({0}); run `botsync start`")]
    Engine(#[from] RestError),
    #[error("OPENCLAW_HOOKS_URL must be an http:// or https:// URL, not {0:?}")]
    BadHooksUrl(String),
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error("{0}")]
    Internal(String),
}

/// What `status` shows about notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationSummary {
    /// Whether a token is saved.
    pub enabled: bool,
    /// Where messages go, without secrets.
    pub url: Option<String>,
    /// Messages waiting for the gateway.
    pub queued: usize,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
}

/// The notification state from the root's files only (no process needs to run).
pub fn notification_status(root: &SyncRoot) -> Result<NotificationSummary, NotifyError> {
    let settings = NotifySettings::load(root)?;
    let outbox = outbox::Outbox::load(&outbox::queue_file(root), usize::MAX)?;
    Ok(NotificationSummary {
        enabled: settings.is_some(),
        url: settings.map(|s| s.redacted_url()),
        queued: outbox.len(),
        dropped: outbox.dropped(),
    })
}
