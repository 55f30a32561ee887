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
pub mod link;
pub mod model;
pub mod notifier;
pub mod outbox;
pub mod run;
pub mod service;
pub mod settings;

use crate::commands::status::NotificationStatus;
use crate::engine::events::EventsError;
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
    #[error("{0} does not say where Syncthing listens (guiPort, apiKey); run `botsync start` to repair it")]
    EngineNotConfigured(String),
    #[error("Syncthing is not running for this root ({0}); run `botsync start`")]
    Engine(#[from] EventsError),
    #[error("OPENCLAW_HOOKS_URL must be an http:// or https:// URL, not {0:?}")]
    BadHooksUrl(String),
    #[error("not in sync after {waited_ms} ms: {}", incomplete.join("; "))]
    SyncTimeout { waited_ms: u64, incomplete: Vec<String> },
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error("{0}")]
    Internal(String),
}

/// What `status` shows about notifications, from the root's files only: whether a token is
/// saved, where messages go, and the queue's length and losses.
pub fn notification_status(root: &SyncRoot) -> Result<NotificationStatus, NotifyError> {
    let settings = NotifySettings::load(root)?;
    let outbox = outbox::Outbox::load(&outbox::queue_file(root), usize::MAX)?;
    Ok(NotificationStatus {
        enabled: settings.is_some(),
        url: settings.map(|s| s.redacted_url()),
        queued: u32::try_from(outbox.len()).unwrap_or(u32::MAX),
        dropped: u32::try_from(outbox.dropped()).unwrap_or(u32::MAX),
    })
}
