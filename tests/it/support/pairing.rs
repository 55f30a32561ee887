//! Shared by the pairing integration tests: the real relay on loopback (as a `RelayClient`'s
//! other end), an original-only relay (the real relay behind a proxy that forwards only the
//! original protocol's routes), and mailbox wrappers that misbehave on purpose (a lying relay
//! as a server is `support::lying_relay`).
#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use botsync::device_id::DeviceId;
use botsync::pairing::{AccessToken, Allocation, MailboxId, Mailbox, MemberInfo, PairingError, PeerInfo, RelayClient, Slot};
use botsync::relay::{MemoryStore, RateLimits, RelayConfig, RunningRelay};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server on 127.0.0.1 that stops when dropped.
pub struct TestServer {
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(router: Router) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    TestServer { url, task }
}

/// The real relay (memory store, no rate limits: all test traffic is one address) on loopback.
pub struct Relay {
    pub url: String,
    pub store: MemoryStore,
    _running: RunningRelay,
}

impl Relay {
    pub async fn start() -> Relay {
        Self::with_config(unlimited()).await
    }

    pub async fn with_config(config: RelayConfig) -> Relay {
        let store = MemoryStore::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = botsync::relay::serve(listener, store.clone(), config).unwrap();
        Relay { url: running.url(), store, _running: running }
    }

    pub fn client(&self) -> RelayClient {
        RelayClient::new(&self.url).unwrap()
    }

    /// Mailboxes alive on the relay right now.
    pub fn live_mailboxes(&self) -> usize {
        self.store.dump().iter().filter(|(k, _)| k.starts_with("mb:") && k.matches(':').count() == 1).count()
    }
}

/// Relay defaults without rate limits.
pub fn unlimited() -> RelayConfig {
    RelayConfig { limits: RateLimits::unlimited(), ..RelayConfig::default() }
}

/// The real relay behind a proxy that forwards only the original API (`/`, `/pair`, `/pair/:code`);
/// everything else, `/v2/*` included, is a bare 404 like any server without those routes.
pub async fn original_only_proxy(upstream: &str) -> TestServer {
    use axum::body::Bytes;
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{header, Method, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};

    async fn forward(upstream: &str, method: Method, path: &str, body: Bytes) -> Response {
        let client = reqwest::Client::new();
        let mut request = client.request(method, format!("{upstream}{path}"));
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json").body(body);
        }
        let answer = request.send().await.expect("upstream relay answers");
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
        let content_type = answer.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = answer.bytes().await.unwrap();
        (status, [(header::CONTENT_TYPE, content_type)], bytes).into_response()
    }
    let router = axum::Router::new()
        .route("/", get(|State(up): State<String>| async move { forward(&up, Method::GET, "/", Bytes::new()).await }))
        .route("/pair", post(|State(up): State<String>, body: Bytes| async move { forward(&up, Method::POST, "/pair", body).await }))
        .route(
            "/pair/{code}",
            get(|State(up): State<String>, UrlPath(code): UrlPath<String>| async move {
                forward(&up, Method::GET, &format!("/pair/{code}"), Bytes::new()).await
            }),
        )
        .with_state(upstream.to_string());
    serve(router).await
}

pub fn device(n: u8) -> DeviceId {
    DeviceId::from_bytes([n; 32])
}

pub fn info(n: u8, name: &str) -> PeerInfo {
    PeerInfo {
        device_id: device(n),
        name: name.to_string(),
        addresses: vec![format!("tcp://10.0.0.{n}:22000")],
        members: vec![],
    }
}

pub fn host_info() -> PeerInfo {
    PeerInfo {
        members: vec![MemberInfo { device_id: device(200), name: "desk".into(), addresses: vec!["dynamic".into()] }],
        ..info(1, "agent-host")
    }
}

/// Flips one bit in the middle of whatever is written to `slot`, like a malicious relay.
pub struct Tamper<M> {
    pub inner: M,
    pub slot: Slot,
}

impl<M: Mailbox> Mailbox for Tamper<M> {
    async fn allocate(&self) -> Result<Allocation, PairingError> {
        self.inner.allocate().await
    }
    async fn put(&self, mailbox: MailboxId, slot: Slot, token: &AccessToken, data: &[u8]) -> Result<(), PairingError> {
        let mut data = data.to_vec();
        if slot == self.slot && !data.is_empty() {
            let middle = data.len() / 2;
            data[middle] ^= 0x01;
        }
        self.inner.put(mailbox, slot, token, &data).await
    }
    async fn get(&self, mailbox: MailboxId, slot: Slot, token: Option<&AccessToken>, wait: Duration) -> Result<Option<Vec<u8>>, PairingError> {
        self.inner.get(mailbox, slot, token, wait).await
    }
    async fn delete(&self, mailbox: MailboxId, token: &AccessToken) -> Result<(), PairingError> {
        self.inner.delete(mailbox, token).await
    }
}

/// Holds every `guest-pake` write until all guests are ready to write, so they truly race, and
/// holds each writer after its write until all have written, so the winner cannot finish (and the
/// relay drop the mailbox) before a slow loser's write lands: that loser would rightly be told
/// "expired", which is not the race under test.
pub struct RaceGuests<M> {
    pub inner: M,
    pub ready: tokio::sync::Barrier,
    pub written: tokio::sync::Barrier,
}

impl<M> RaceGuests<M> {
    pub fn new(inner: M, guests: usize) -> Self {
        RaceGuests { inner, ready: tokio::sync::Barrier::new(guests), written: tokio::sync::Barrier::new(guests) }
    }
}

impl<M: Mailbox> Mailbox for RaceGuests<M> {
    async fn allocate(&self) -> Result<Allocation, PairingError> {
        self.inner.allocate().await
    }
    async fn put(&self, mailbox: MailboxId, slot: Slot, token: &AccessToken, data: &[u8]) -> Result<(), PairingError> {
        if slot != Slot::GuestPake {
            return self.inner.put(mailbox, slot, token, data).await;
        }
        self.ready.wait().await;
        let result = self.inner.put(mailbox, slot, token, data).await;
        self.written.wait().await;
        result
    }
    async fn get(&self, mailbox: MailboxId, slot: Slot, token: Option<&AccessToken>, wait: Duration) -> Result<Option<Vec<u8>>, PairingError> {
        self.inner.get(mailbox, slot, token, wait).await
    }
    async fn delete(&self, mailbox: MailboxId, token: &AccessToken) -> Result<(), PairingError> {
        self.inner.delete(mailbox, token).await
    }
}

/// Fails the first `failures` reads of `slot` with `RelayUnreachable`, like a relay restarting
/// behind its load balancer or a laptop changing networks.
pub struct Flaky<M> {
    pub inner: M,
    pub slot: Slot,
    pub failures: std::sync::atomic::AtomicUsize,
}

impl<M: Mailbox> Mailbox for Flaky<M> {
    async fn allocate(&self) -> Result<Allocation, PairingError> {
        self.inner.allocate().await
    }
    async fn put(&self, mailbox: MailboxId, slot: Slot, token: &AccessToken, data: &[u8]) -> Result<(), PairingError> {
        self.inner.put(mailbox, slot, token, data).await
    }
    async fn get(&self, mailbox: MailboxId, slot: Slot, token: Option<&AccessToken>, wait: Duration) -> Result<Option<Vec<u8>>, PairingError> {
        use std::sync::atomic::Ordering;
        let left = self.failures.load(Ordering::SeqCst);
        if slot == self.slot && left > 0 && self.failures.compare_exchange(left, left - 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return Err(PairingError::RelayUnreachable { url: "flaky".into(), reason: "blip".into() });
        }
        self.inner.get(mailbox, slot, token, wait).await
    }
    async fn delete(&self, mailbox: MailboxId, token: &AccessToken) -> Result<(), PairingError> {
        self.inner.delete(mailbox, token).await
    }
}
