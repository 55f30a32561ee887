//! The notifier as a tokio task: receives botsync events on a channel, POSTs to OpenClaw, keeps
//! the queue on disk. Holds no state of its own beyond `Notifier`, so a restart resumes from the
//! saved queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use crate::root::SyncRoot;
use crate::state_file::StateFileError;

use super::model::BotsyncEvent;
use super::notifier::{Notifier, NotifierConfig, Outcome};
use super::outbox::{queue_file, Outbox};
use super::settings::NotifySettings;
use super::NotifyError;

/// Where the notifier writes its log lines (the daemon's log). Lines never contain the token.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

pub fn stderr_log() -> LogSink {
    Arc::new(|line| eprintln!("botsync notify: {line}"))
}

#[derive(Clone)]
pub struct NotifierOptions {
    pub config: NotifierConfig,
    /// Bound on one POST, connection included.
    pub post_timeout: Duration,
    pub log: LogSink,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions { config: NotifierConfig::default(), post_timeout: Duration::from_secs(10), log: stderr_log() }
    }
}

/// Runs until every sender of `events` is dropped, then closes the open batch into the queue,
/// saves it and returns. Without settings (no token) nothing is ever sent: events are drained.
///
/// The daemon starts it once per root:
/// `tokio::spawn(run_notifier(root, NotifySettings::from_env(&root)?, rx, NotifierOptions::default()))`
/// and feeds `tx` from an `EventFeed` (plus `BotsyncEvent::Paired` from the pairing layer).
pub async fn run_notifier(
    root: SyncRoot,
    settings: Option<NotifySettings>,
    mut events: mpsc::Receiver<BotsyncEvent>,
    options: NotifierOptions,
) -> Result<(), NotifyError> {
    let Some(settings) = settings else {
        while events.recv().await.is_some() {}
        return Ok(());
    };
    let log = redacting(options.log.clone(), settings.token.expose().to_string());
    let queue_path = queue_file(&root);
    let outbox = match Outbox::load(&queue_path, options.config.queue_capacity) {
        Ok(outbox) => outbox,
        // A damaged queue must not silence notifications for good: keep it aside for a look.
        Err(StateFileError::Corrupted { reason, .. }) => {
            let aside = queue_path.with_extension("json.corrupt");
            let _ = std::fs::rename(&queue_path, &aside);
            log(&format!("the notification queue was unreadable ({reason}); moved it to {} and started a new one", aside.display()));
            Outbox::new(options.config.queue_capacity)
        }
        Err(other) => return Err(other.into()),
    };
    if !outbox.is_empty() {
        log(&format!("{} notification(s) queued from before; delivering to {}", outbox.len(), settings.redacted_url()));
    }
    let mut core = Notifier::new(options.config.clone(), outbox);
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(options.post_timeout)
        .build()
        .map_err(|e| NotifyError::Internal(e.to_string()))?;
    let save = |core: &mut Notifier| {
        if core.outbox().is_dirty() {
            if let Err(e) = core.outbox_mut().save(&queue_path) {
                log(&format!("cannot save the notification queue: {e}"));
            }
        }
    };
    let mut failing = false;
    let session = session_key(&root);
    loop {
        while let Ok(event) = events.try_recv() {
            core.push(&event, Instant::now());
        }
        if let Some(message) = core.poll_send(Instant::now()) {
            // The message is on disk before it goes out: a crash mid-POST sends it twice, never zero times.
            save(&mut core);
            let (outcome, detail) = post(&http, &settings, &message, &session, options.post_timeout).await;
            core.finish(outcome, Instant::now());
            save(&mut core);
            match outcome {
                Outcome::Delivered if failing => {
                    failing = false;
                    log(&format!("gateway is back; {} notification(s) still queued", core.outbox().len()));
                }
                Outcome::Delivered => {}
                Outcome::Rejected => log(&format!("gateway refused a notification for good ({detail}); dropped it")),
                Outcome::Retry => {
                    failing = true;
                    log(&format!(
                        "cannot deliver to {} ({detail}); retrying in {}s, {} queued",
                        settings.redacted_url(),
                        core.backoff().as_secs_f32(),
                        core.outbox().len()
                    ));
                }
            }
            continue;
        }
        save(&mut core);
        let received = match core.next_wakeup(Instant::now()) {
            Some(at) => tokio::select! {
                event = events.recv() => Some(event),
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => None,
            },
            None => Some(events.recv().await),
        };
        match received {
            Some(Some(event)) => core.push(&event, Instant::now()),
            Some(None) => {
                core.close_batch();
                save(&mut core);
                return Ok(());
            }
            None => {}
        }
    }
}

/// One POST of `message`, and how it went (with a short reason for the log).
async fn post(http: &reqwest::Client, settings: &NotifySettings, message: &str, session_key: &str, timeout: Duration) -> (Outcome, String) {
    let body = payload(message, session_key);
    let result = http
        .post(&settings.url)
        .bearer_auth(settings.token.expose())
        .json(&body)
        .timeout(timeout)
        .send()
        .await;
    match result {
        Ok(response) => {
            let status = response.status();
            let outcome = if status.is_success() {
                Outcome::Delivered
            } else if matches!(status.as_u16(), 400 | 413 | 422) {
                Outcome::Rejected
            } else {
                Outcome::Retry
            };
            (outcome, format!("HTTP {}", status.as_u16()))
        }
        Err(e) if e.is_timeout() => (Outcome::Retry, "timed out".into()),
        Err(e) if e.is_connect() => (Outcome::Retry, "connection refused".into()),
        Err(e) => (Outcome::Retry, e.without_url().to_string()),
    }
}

/// The OpenClaw hooks payload for one message, per the gateway's documented `/hooks/agent`
/// schema: `message` (required), `name`, `sessionKey`, `wakeMode`, `deliver`. No `channel`:
/// the gateway takes only a concrete channel id paired with `to` there (`"last"` is refused
/// with 400), so the agent's own routing decides where a reply goes.
pub fn payload(message: &str, session_key: &str) -> serde_json::Value {
    json!({
        "message": message,
        "name": "BotSync",
        "sessionKey": session_key,
        "wakeMode": "now",
        "deliver": true,
    })
}

/// `hook:botsync:<root>`: one stable conversation per root, so an agent sees a root's
/// deliveries together. The gateway must allow caller keys (`hooks.allowRequestSessionKey`)
/// with a prefix such as `hook:`.
pub fn session_key(root: &SyncRoot) -> String {
    let path = root.path().display().to_string();
    let slug: String = path
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' })
        .collect();
    format!("hook:botsync:{}", if slug.is_empty() { "root".into() } else { slug })
}

/// A log sink that blanks the token wherever it would appear (say, inside a URL in an error).
fn redacting(log: LogSink, token: String) -> impl Fn(&str) {
    move |line: &str| {
        if token.is_empty() || !line.contains(&token) {
            log(line)
        } else {
            log(&line.replace(&token, "<token>"))
        }
    }
}
