//! Shared by the pairing integration tests: an original-only relay (a server speaking only the
//! original protocol, which the real relay never is; v2 tests use the real relay, `support::relay`),
//! and mailbox wrappers that misbehave on purpose.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use botsync::device_id::DeviceId;
use botsync::pairing::mailbox::{Allocation, Mailbox, Slot};
use botsync::pairing::{MailboxId, MemberInfo, PairingCode, PairingError, PeerInfo};
use serde_json::json;
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

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn banner() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "service": "botsync-relay", "version": "0.0.0-test" }))
}

/// An original-only relay: `POST /pair`, `GET /pair/:code` (once), no v2 routes at all.
pub fn original_router() -> Router {
    original_routes().route("/", get(|| async { banner() }))
}

fn original_routes() -> Router {
    type Pairs = Arc<Mutex<HashMap<String, serde_json::Value>>>;
    async fn create(State(pairs): State<Pairs>, Json(payload): Json<serde_json::Value>) -> Response {
        if payload.get("deviceId").and_then(|d| d.as_str()).is_none() {
            return error(StatusCode::BAD_REQUEST, "deviceId required");
        }
        let code = PairingCode::generate(&MailboxId::random()).to_string();
        pairs.lock().unwrap().insert(code.clone(), payload);
        (StatusCode::CREATED, Json(json!({ "code": code }))).into_response()
    }
    async fn lookup(State(pairs): State<Pairs>, Path(code): Path<String>) -> Response {
        match pairs.lock().unwrap().remove(&code) {
            Some(payload) => Json(payload).into_response(),
            None => error(StatusCode::NOT_FOUND, "unknown or expired code"),
        }
    }
    Router::new()
        .route("/pair", post(create))
        .route("/pair/{code}", get(lookup))
        .with_state(Pairs::default())
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
    async fn put(&self, mailbox: MailboxId, slot: Slot, data: &[u8]) -> Result<(), PairingError> {
        let mut data = data.to_vec();
        if slot == self.slot && !data.is_empty() {
            let middle = data.len() / 2;
            data[middle] ^= 0x01;
        }
        self.inner.put(mailbox, slot, &data).await
    }
    async fn get(&self, mailbox: MailboxId, slot: Slot, wait: Duration) -> Result<Option<Vec<u8>>, PairingError> {
        self.inner.get(mailbox, slot, wait).await
    }
    async fn delete(&self, mailbox: MailboxId) -> Result<(), PairingError> {
        self.inner.delete(mailbox).await
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
    async fn put(&self, mailbox: MailboxId, slot: Slot, data: &[u8]) -> Result<(), PairingError> {
        if slot != Slot::GuestPake {
            return self.inner.put(mailbox, slot, data).await;
        }
        self.ready.wait().await;
        let result = self.inner.put(mailbox, slot, data).await;
        self.written.wait().await;
        result
    }
    async fn get(&self, mailbox: MailboxId, slot: Slot, wait: Duration) -> Result<Option<Vec<u8>>, PairingError> {
        self.inner.get(mailbox, slot, wait).await
    }
    async fn delete(&self, mailbox: MailboxId) -> Result<(), PairingError> {
        self.inner.delete(mailbox).await
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
    async fn put(&self, mailbox: MailboxId, slot: Slot, data: &[u8]) -> Result<(), PairingError> {
        self.inner.put(mailbox, slot, data).await
    }
    async fn get(&self, mailbox: MailboxId, slot: Slot, wait: Duration) -> Result<Option<Vec<u8>>, PairingError> {
        use std::sync::atomic::Ordering;
        let left = self.failures.load(Ordering::SeqCst);
        if slot == self.slot && left > 0 && self.failures.compare_exchange(left, left - 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return Err(PairingError::RelayUnreachable { url: "flaky".into(), reason: "blip".into() });
        }
        self.inner.get(mailbox, slot, wait).await
    }
    async fn delete(&self, mailbox: MailboxId) -> Result<(), PairingError> {
        self.inner.delete(mailbox).await
    }
}
