//! The pairing relay server: the original-compatible API and the PAKE mailbox, over pluggable stores.
//!
//! `start` is the one entry point the CLI and the Node binding use: bind, pick the store, serve
//! in the background. Tests and embedders that want the store in hand use `server::serve`.

pub mod codes;
pub mod memory;
pub mod rate_limit;
pub mod redis;
pub mod server;
pub mod store;

use std::net::SocketAddr;

pub use codes::{MailboxId, PairCode, Slot};
pub use memory::MemoryStore;
pub use rate_limit::RateLimits;
pub use self::redis::RedisStore;
pub use server::{serve, RelayConfig, RunningRelay};
pub use store::{Store, StoreError};

/// Where the relay keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// In this process; lost on restart. The default.
    Memory,
    /// In Redis, shared by every relay instance pointing at it.
    Redis { url: String, key_prefix: String },
}

impl Backend {
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis { .. } => "redis",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("invalid listen address {address:?}: expected HOST:PORT, such as 127.0.0.1:8787")]
    ListenAddress { address: String },
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("cannot use Redis at {url}: {source}")]
    Redis { url: String, source: StoreError },
}

/// Binds `listen` (`HOST:PORT`; port 0 picks a free one) and serves the relay on the current
/// tokio runtime until the returned handle is shut down or dropped.
pub async fn start(listen: &str, backend: &Backend, config: RelayConfig) -> Result<RunningRelay, RelayError> {
    let address: SocketAddr = tokio::net::lookup_host(listen)
        .await
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| RelayError::ListenAddress { address: listen.to_string() })?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| RelayError::Bind { address: listen.to_string(), source })?;
    let bound = |result: std::io::Result<RunningRelay>| {
        result.map_err(|source| RelayError::Bind { address: listen.to_string(), source })
    };
    match backend {
        Backend::Memory => bound(serve(listener, MemoryStore::new(), config)),
        Backend::Redis { url, key_prefix } => {
            let store = RedisStore::connect(url, key_prefix)
                .await
                .map_err(|source| RelayError::Redis { url: redact(url), source })?;
            bound(serve(listener, store, config))
        }
    }
}

/// A Redis URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}://***{}", &url[..scheme_end], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_passwords_stay_out_of_messages() {
        assert_eq!(super::redact("redis://:hunter2@db:6379/0"), "redis://***@db:6379/0");
        assert_eq!(super::redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
