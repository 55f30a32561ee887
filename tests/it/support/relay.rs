//! Shared by the relay integration tests: an in-process relay on 127.0.0.1:0 over either
//! store, and a throwaway `redis-server` stopped by PID when dropped.

#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use botsync::relay::{serve, MemoryStore, RateLimits, RedisStore, RelayConfig, RunningRelay};

/// A private Redis on a free loopback port, without persistence; killed by PID on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        // Find a free port, then hand it to redis-server; retry if another process wins it.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (Debian package redis-server)");
            // Dropping a server that failed to come up kills it by PID.
            let mut server = RedisServer { child, port, _dir: dir };
            if server.wait_ready(Duration::from_secs(5)) {
                return server;
            }
        }
        panic!("redis-server did not start");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut connection) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut connection).is_ok() {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Redis,
}

#[derive(Clone)]
pub enum StoreHandle {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl StoreHandle {
    /// Every (key, value) the store physically holds.
    pub async fn dump(&self) -> Vec<(String, String)> {
        match self {
            StoreHandle::Memory(store) => store.dump(),
            StoreHandle::Redis(store) => store.dump().await.expect("redis dump"),
        }
    }
}

/// A relay under test. Field order matters: the relay stops before its Redis does.
pub struct TestRelay {
    pub url: String,
    pub store: StoreHandle,
    pub running: Option<RunningRelay>,
    pub redis: Option<std::sync::Arc<RedisServer>>,
}

impl TestRelay {
    pub async fn start(kind: Kind, config: RelayConfig) -> Self {
        match kind {
            Kind::Memory => Self::with_memory(MemoryStore::new(), config).await,
            Kind::Redis => {
                let redis = std::sync::Arc::new(RedisServer::start());
                Self::with_redis(redis, config).await
            }
        }
    }

    pub async fn with_memory(store: MemoryStore, config: RelayConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve(listener, store.clone(), config).unwrap();
        TestRelay { url: running.url(), store: StoreHandle::Memory(store), running: Some(running), redis: None }
    }

    /// Another relay instance on the same Redis (state shared, nothing else).
    pub async fn with_redis(redis: std::sync::Arc<RedisServer>, config: RelayConfig) -> Self {
        let store = RedisStore::connect(&redis.url(), "test:").await.expect("connect to redis");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve(listener, store.clone(), config).unwrap();
        TestRelay { url: running.url(), store: StoreHandle::Redis(store), running: Some(running), redis: Some(redis) }
    }

    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// Defaults, but no rate limits: for tests about something else (all test traffic is one IP).
pub fn unlimited() -> RelayConfig {
    RelayConfig { limits: RateLimits::unlimited(), ..RelayConfig::default() }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(40)).build().unwrap()
}

/// A valid-looking Syncthing device ID.
pub const DEVICE_ID: &str = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD";

/// Runs an async test body once per store, each in its own test function.
#[macro_export]
macro_rules! for_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::relay::Kind::Memory).await
                }
            )*
        }
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::relay::Kind::Redis).await
                }
            )*
        }
    };
}
