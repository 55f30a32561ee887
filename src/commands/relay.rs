//! `botsync relay`: run a self-hosted pairing relay. The CLI runs it until the process is killed
//! (Node's default SIGINT/SIGTERM handling ends it; no signal handling here, see napi.md); the
//! Node binding gets a handle it can close.

use std::convert::Infallible;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Report;
use crate::error::{Error, Result};
use crate::relay::{self, Backend, RateLimits, RelayConfig, RunningRelay};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayOptions {
    /// `HOST:PORT` to listen on [default: 127.0.0.1:8787]; port 0 picks a free port.
    pub listen: Option<String>,
    /// `redis://…` URL: keep state in Redis so several relay instances share it [default:
    /// `$BOTSYNC_RELAY_REDIS`].
    pub redis: Option<String>,
    /// Key prefix in Redis [default: `botsync:relay:`].
    pub redis_prefix: Option<String>,
    /// How long codes and mailboxes stay valid, in seconds [default: 600].
    pub ttl_seconds: Option<u32>,
    /// Turn every per-client rate limit off (load tests, or behind a proxy that limits).
    pub no_rate_limits: Option<bool>,
    /// `POST /pair` per client per minute [default: 10].
    pub pair_create_per_minute: Option<u32>,
    /// `GET /pair/:code` per client per minute [default: 20].
    pub pair_lookup_per_minute: Option<u32>,
    /// `POST /v2/mailboxes` per client per minute [default: 10].
    pub mailbox_create_per_minute: Option<u32>,
    /// Mailbox slot reads and writes per client per minute [default: 600].
    pub slot_access_per_minute: Option<u32>,
    /// Count clients by `X-Forwarded-For` (only behind a reverse proxy you run).
    pub trust_proxy: Option<bool>,
}

impl RelayOptions {
    pub fn listen(&self) -> &str {
        self.listen.as_deref().unwrap_or(DEFAULT_LISTEN)
    }

    pub fn backend(&self) -> Backend {
        match super::secret_input::relay_redis_url(self.redis.as_deref()) {
            Some(url) => Backend::Redis {
                url,
                key_prefix: self.redis_prefix.clone().unwrap_or_else(|| relay::redis::DEFAULT_KEY_PREFIX.into()),
            },
            None => Backend::Memory,
        }
    }

    pub fn config(&self) -> Result<RelayConfig> {
        let mut config = RelayConfig::default();
        if let Some(seconds) = self.ttl_seconds {
            if seconds == 0 {
                return Err(Error::Usage("--ttl must be at least 1 second".into()));
            }
            config.pairing_ttl = Duration::from_secs(seconds.into());
            config.mailbox_ttl = config.pairing_ttl;
        }
        let mut limits = if self.no_rate_limits.unwrap_or(false) { RateLimits::unlimited() } else { RateLimits::default() };
        for (value, slot) in [
            (self.pair_create_per_minute, &mut limits.pair_create),
            (self.pair_lookup_per_minute, &mut limits.pair_lookup),
            (self.mailbox_create_per_minute, &mut limits.mailbox_create),
            (self.slot_access_per_minute, &mut limits.slot_access),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        config.limits = limits;
        config.trust_forwarded_for = self.trust_proxy.unwrap_or(false);
        Ok(config)
    }
}

/// What `botsync relay` prints once it listens (one JSON object with `--json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayStarted {
    /// Base URL for `--relay` / `BOTSYNC_RELAY`.
    pub url: String,
    /// The bound address (the real port when 0 was asked for).
    pub listen: String,
    /// `memory` or `redis`.
    pub store: String,
    pub version: String,
}

impl Report for RelayStarted {
    fn human(&self) -> String {
        format!(
            "botsync relay {} listening on {} ({} store)\nUse it with: botsync init --relay {}",
            self.version, self.url, self.store, self.url
        )
    }
}

/// Starts a relay on the current tokio runtime.
pub async fn start(options: &RelayOptions) -> Result<(RunningRelay, RelayStarted)> {
    let config = options.config()?;
    let backend = options.backend();
    let running = relay::start(options.listen(), &backend, config).await?;
    let started = RelayStarted {
        url: running.url(),
        listen: running.local_addr().to_string(),
        store: backend.describe().into(),
        version: crate::VERSION.into(),
    };
    Ok((running, started))
}

/// Starts a relay, tells `announce`, and serves until the process ends.
pub async fn serve(options: &RelayOptions, announce: impl FnOnce(&RelayStarted)) -> Result<Infallible> {
    let (running, started) = start(options).await?;
    announce(&started);
    running.wait().await;
    Err(Error::Internal("the relay stopped unexpectedly".into()))
}
