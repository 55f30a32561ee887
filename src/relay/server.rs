//! The HTTP surface: the original-compatible `/pair` API and the v2 mailbox API over any
//! [`Store`], served by a hardened hyper accept loop (header-read timeout, body limits and
//! timeouts, bounded long-polls, JSON errors for every failure).

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::codes::{self, MailboxId, PairCode, Slot};
use super::rate_limit::{self, RateLimits, Verdict};
use super::store::{MailboxKeys, PairingRecord, RateClass, SlotRead, SlotWrite, Store, StoreError};
use crate::pairing::wire::{self, error_code, AccessToken, Allocation, ErrorBody, RelayInfo, Side};

/// Everything about the relay's behaviour that an operator or a test may want to change.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// How long a `POST /pair` code stays resolvable.
    pub pairing_ttl: Duration,
    /// How long a v2 mailbox lives (from creation; slot writes do not extend it).
    pub mailbox_ttl: Duration,
    pub limits: RateLimits,
    /// Live mailboxes the relay holds at most (all instances on one store together); past it,
    /// `POST /v2/mailboxes` answers 503 `mailboxes-full`.
    pub max_mailboxes: u64,
    /// Slot bytes the relay stores at most; past it, slot writes answer 503 `storage-full`.
    pub max_stored_bytes: u64,
    /// Connections this instance keeps open at most; past it, new ones get 503 `connections-full`.
    pub max_connections: usize,
    /// Largest request body (`POST /pair`, slot data).
    pub max_body_bytes: usize,
    /// Largest `POST /v2/mailboxes` body (it carries nothing).
    pub max_create_body_bytes: usize,
    /// A connection must deliver a complete request head within this long (also bounds idle
    /// keep-alive connections), against slow-header clients.
    pub header_read_timeout: Duration,
    /// A request body must arrive completely within this long; otherwise 408.
    pub body_read_timeout: Duration,
    /// Upper bound of a slot GET's `wait`.
    pub max_wait: Duration,
    /// How often a long-poll re-reads a store other instances also write to.
    pub shared_store_poll: Duration,
    /// Count rate limits by the last `X-Forwarded-For` hop (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// On shutdown, how long in-flight requests may take before their connections are cut.
    pub shutdown_grace: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            pairing_ttl: wire::MAILBOX_TTL,
            mailbox_ttl: wire::MAILBOX_TTL,
            limits: RateLimits::default(),
            max_mailboxes: 100_000,
            max_stored_bytes: 256 * 1024 * 1024,
            max_connections: 4096,
            max_body_bytes: wire::MAX_SLOT_BYTES,
            max_create_body_bytes: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_wait: wire::MAX_WAIT,
            shared_store_poll: Duration::from_millis(20),
            trust_forwarded_for: false,
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

/// Longest accepted device ID: Syncthing's is 63 characters; leave room, refuse junk.
const MAX_DEVICE_ID_CHARS: usize = 128;
/// The original relay's check: at least this many characters once dashes are removed.
const MIN_DEVICE_ID_CHARS: usize = 40;
const MAX_NETWORK_ID_CHARS: usize = 128;
const MAX_NETWORK_SECRET_CHARS: usize = 1024;
/// Random picks before giving up on finding a free code or mailbox id.
const ALLOCATION_ATTEMPTS: usize = 32;

/// Wakes long-polls when a slot of "their" mailbox changes on this instance. Sharded rather
/// than per-mailbox so that nothing needs cleaning up; a shared shard only costs a spurious
/// wake-up and a re-read.
struct Wakeups {
    shards: Box<[Notify]>,
}

impl Wakeups {
    fn new(shards: usize) -> Self {
        Wakeups { shards: (0..shards).map(|_| Notify::new()).collect() }
    }

    fn for_mailbox(&self, id: &MailboxId) -> &Notify {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        &self.shards[(hasher.finish() % self.shards.len() as u64) as usize]
    }

    fn wake(&self, id: &MailboxId) {
        self.for_mailbox(id).notify_waiters();
    }
}

struct AppState<S> {
    store: S,
    config: RelayConfig,
    wakeups: Wakeups,
    closing: watch::Receiver<bool>,
}

/// An error answer: always `{"error": "..."}` (`wire::ErrorBody`), with a stable `code` where a
/// client may act on it.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError { status, message: message.into(), code: None }
    }

    fn coded(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError { status, message: message.into(), code: Some(code) }
    }

    fn unknown_mailbox() -> Self {
        Self::coded(StatusCode::NOT_FOUND, error_code::UNKNOWN, UNKNOWN_CODE)
    }

    fn forbidden(needed: Side) -> Self {
        let who = match needed {
            Side::Host => "the host's token (from the allocation)",
            Side::Guest => "the guest's token (bound when it wrote guest-pake)",
        };
        Self::coded(StatusCode::FORBIDDEN, error_code::FORBIDDEN, format!("this call needs {who}"))
    }

    fn rate_limited() -> Self {
        Self::coded(StatusCode::TOO_MANY_REQUESTS, error_code::RATE_LIMITED, "rate limited, try again in 60 seconds")
    }

    fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        eprintln!("botsync relay: store error: {error}");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "relay storage unavailable, try again")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.message.into_owned(), code: self.code.map(str::to_string) };
        let mut response = (self.status, Json(body)).into_response();
        match self.status {
            StatusCode::TOO_MANY_REQUESTS => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

/// The relay's routes over `store`. `closing` flips to true when the server shuts down, which
/// ends pending long-polls early.
fn router<S: Store>(store: S, config: RelayConfig, closing: watch::Receiver<bool>) -> Router {
    let state = Arc::new(AppState { store, config, wakeups: Wakeups::new(256), closing });
    Router::new()
        .route("/", get(service_status))
        .route("/pair", post(create_pairing::<S>))
        .route("/pair/{code}", get(take_pairing::<S>))
        .route("/v2", get(v2_info::<S>))
        .route("/v2/mailboxes", post(create_mailbox::<S>))
        .route("/v2/mailboxes/{mailbox}", axum::routing::delete(delete_mailbox::<S>))
        .route("/v2/mailboxes/{mailbox}/{slot}", put(write_slot::<S>).get(read_slot::<S>))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not found") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .with_state(state)
        .layer(middleware::from_fn(cors))
}

/// Pairing endpoints are called from CLIs and browsers alike: open CORS, preflight answered
/// here for every path (200, as the original relay answers and its clients expect), and nothing
/// cached (codes are one-time).
async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = StatusCode::OK.into_response();
        let headers = preflight.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, Authorization"));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        preflight
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn service_status() -> Response {
    Json(json!({ "status": "ok", "service": wire::SERVICE, "version": crate::VERSION })).into_response()
}

async fn v2_info<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    let config = &state.config;
    Json(RelayInfo::new(config.mailbox_ttl, config.max_body_bytes, config.max_wait)).into_response()
}

/// The client a request of `class` is counted against. IPv6 clients get a /64 each (one
/// subscriber's usual allocation), so rotating addresses does not multiply a budget; mailbox
/// creation is counted per /48 (a site's usual allocation), so one site cannot fill the 2^22 ids.
fn client_ip(config: &RelayConfig, class: RateClass, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let forwarded = config
        .trust_forwarded_for
        .then(|| headers.get_all("x-forwarded-for").iter().last())
        .flatten()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|hop| hop.trim().parse::<IpAddr>().ok());
    match forwarded.unwrap_or(peer.ip()) {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let kept = if class == RateClass::MailboxCreate { 3 } else { 4 };
                let mut segments = v6.segments();
                segments[kept..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
        v4 => v4,
    }
}

async fn enforce<S: Store>(state: &AppState<S>, class: RateClass, peer: SocketAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let client = client_ip(&state.config, class, peer, headers);
    match rate_limit::check(&state.store, &state.config.limits, class, client).await? {
        Verdict::Allowed => Ok(()),
        Verdict::Limited => Err(ApiError::rate_limited()),
    }
}

/// A client that has named too many unknown mailboxes this window is refused any mailbox
/// request, so that it cannot go on sweeping ids for live ones.
async fn refuse_probers<S: Store>(state: &AppState<S>, peer: SocketAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(budget) = state.config.limits.unknown_mailbox else { return Ok(()) };
    let client = client_ip(&state.config, RateClass::UnknownMailbox, peer, headers);
    if state.store.hits(RateClass::UnknownMailbox, client).await? >= u64::from(budget) {
        return Err(ApiError::rate_limited());
    }
    Ok(())
}

/// The 404 for an unknown mailbox, counted against the client's probing budget.
async fn unknown_mailbox<S: Store>(state: &AppState<S>, peer: SocketAddr, headers: &HeaderMap) -> ApiError {
    let client = client_ip(&state.config, RateClass::UnknownMailbox, peer, headers);
    if let Err(error) = state.store.count_hit(RateClass::UnknownMailbox, client, rate_limit::WINDOW).await {
        return error.into();
    }
    ApiError::unknown_mailbox()
}

/// The bearer token of a request, if it has a well-formed one.
fn bearer(headers: &HeaderMap) -> Option<AccessToken> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(AccessToken::from_header)
}

/// Checks that `token` belongs to `side` of the mailbox with `keys`.
fn authorize(keys: &MailboxKeys, side: Side, token: Option<&AccessToken>) -> Result<(), ApiError> {
    let owner = match side {
        Side::Host => Some(keys.host),
        Side::Guest => keys.guest,
    };
    match (owner, token) {
        (Some(owner), Some(token)) if owner.admits(token) => Ok(()),
        _ => Err(ApiError::forbidden(side)),
    }
}

enum BodyProblem {
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads a whole body, refusing more than `limit` bytes and anything slower than the timeout.
async fn read_body(config: &RelayConfig, headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyProblem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyProblem::TooLarge);
    }
    match tokio::time::timeout(config.body_read_timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyProblem::TimedOut),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(BodyProblem::TooLarge),
        Ok(Err(_)) => Err(BodyProblem::Broken),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn body_error(problem: BodyProblem, limit: usize) -> ApiError {
    match problem {
        BodyProblem::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {limit} bytes")),
        BodyProblem::TimedOut => ApiError::new(StatusCode::REQUEST_TIMEOUT, "request body not received in time"),
        BodyProblem::Broken => ApiError::bad_request("request body could not be read"),
    }
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

// ---- original protocol ----------------------------------------------------------------------

/// Reads an optional string field: absent or null is None, anything but a string is an error.
fn optional_string(body: &Map<String, Value>, field: &str, max_chars: usize) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max_chars => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("invalid {field}"))),
    }
}

fn parse_pairing_request(bytes: &[u8]) -> Result<PairingRecord, ApiError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(ApiError::bad_request("invalid request body"));
    };
    let device_id = match body.get("deviceId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(ApiError::bad_request("deviceId required")),
    };
    // The original relay's rule (length without dashes), plus a charset and size bound so the
    // relay never stores junk: Syncthing IDs are base32 letters and digits grouped by dashes.
    let significant = device_id.chars().filter(|c| *c != '-').count();
    if significant < MIN_DEVICE_ID_CHARS
        || device_id.len() > MAX_DEVICE_ID_CHARS
        || !device_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ApiError::bad_request("invalid deviceId format"));
    }
    let network_id = optional_string(&body, "networkId", MAX_NETWORK_ID_CHARS)?;
    let network_secret = optional_string(&body, "networkSecret", MAX_NETWORK_SECRET_CHARS)?;
    Ok(PairingRecord { device_id, network_id, network_secret })
}

async fn create_pairing<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    enforce(&state, RateClass::PairCreate, peer, &headers).await?;
    let limit = state.config.max_body_bytes;
    let bytes = read_body(&state.config, &headers, body, limit).await.map_err(|p| body_error(p, limit))?;
    // The network secret exists only inside this one-time record: nothing of it (not even a
    // hash) outlives the take or the expiry.
    let record = parse_pairing_request(&bytes)?;
    for _ in 0..ALLOCATION_ATTEMPTS {
        let code = PairCode::random(&mut rand::rng());
        if state.store.insert_pairing(&code, &record, state.config.pairing_ttl).await? {
            return Ok((StatusCode::CREATED, Json(json!({ "code": code.as_str() }))).into_response());
        }
    }
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no free code, try again"))
}

async fn take_pairing<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    code: Result<Path<String>, PathRejection>,
) -> ApiResult {
    // Counted before validation: malformed guesses spend the budget too.
    enforce(&state, RateClass::PairLookup, peer, &headers).await?;
    let Ok(Path(code)) = code else {
        return Err(ApiError::bad_request("invalid code format"));
    };
    let code = PairCode::parse(&code).map_err(|_| ApiError::bad_request("invalid code format"))?;
    match state.store.take_pairing(&code).await? {
        Some(record) => {
            let mut answer = json!({ "deviceId": record.device_id, "networkId": record.network_id });
            if let Some(secret) = record.network_secret {
                answer["networkSecret"] = Value::String(secret);
            }
            Ok(Json(answer).into_response())
        }
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "code not found or expired")),
    }
}

// ---- v2 mailboxes ---------------------------------------------------------------------------

const UNKNOWN_CODE: &str = "unknown or expired code";

async fn create_mailbox<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    enforce(&state, RateClass::MailboxCreate, peer, &headers).await?;
    let limit = state.config.max_create_body_bytes;
    let bytes = read_body(&state.config, &headers, body, limit).await.map_err(|p| body_error(p, limit))?;
    if !bytes.iter().all(u8::is_ascii_whitespace) && !matches!(serde_json::from_slice::<Value>(&bytes), Ok(Value::Object(_))) {
        return Err(ApiError::bad_request("body must be empty or a JSON object"));
    }
    if state.store.usage().await?.mailboxes >= state.config.max_mailboxes {
        return Err(ApiError::coded(
            StatusCode::SERVICE_UNAVAILABLE,
            error_code::MAILBOXES_FULL,
            "the relay holds as many pairings as it can, try again in a few minutes",
        ));
    }
    let host_token = AccessToken::random();
    for _ in 0..ALLOCATION_ATTEMPTS {
        let mailbox = MailboxId::random();
        if state.store.create_mailbox(&mailbox, state.config.mailbox_ttl, &host_token.hash()).await? {
            let expires_at = unix_millis(SystemTime::now() + state.config.mailbox_ttl);
            return Ok((StatusCode::CREATED, Json(Allocation { mailbox, expires_at, host_token })).into_response());
        }
    }
    Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no free mailbox, try again"))
}

fn parse_mailbox(text: &str) -> Result<MailboxId, ApiError> {
    MailboxId::parse_strict(text)
        .ok_or_else(|| ApiError::bad_request(format!("invalid mailbox: expected {} code words joined by '-'", wire::MAILBOX_WORDS)))
}

fn parse_slot_path(path: Result<Path<(String, String)>, PathRejection>) -> Result<(MailboxId, Slot), ApiError> {
    let Ok(Path((mailbox, slot))) = path else {
        return Err(ApiError::bad_request("invalid mailbox path"));
    };
    let mailbox = parse_mailbox(&mailbox)?;
    let slot = codes::parse_slot(&slot).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((mailbox, slot))
}

async fn write_slot<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> ApiResult {
    enforce(&state, RateClass::SlotAccess, peer, &headers).await?;
    refuse_probers(&state, peer, &headers).await?;
    let (mailbox, slot) = parse_slot_path(path)?;
    let limit = state.config.max_body_bytes;
    let bytes = match read_body(&state.config, &headers, body, limit).await {
        Ok(bytes) if bytes.is_empty() => return Err(ApiError::bad_request("slot data is empty")),
        Ok(bytes) => bytes,
        // The protocol answers an oversized slot with 400 (a bad size), not 413.
        Err(BodyProblem::TooLarge) => return Err(ApiError::bad_request(format!("slot data larger than {limit} bytes"))),
        Err(problem) => return Err(body_error(problem, limit)),
    };
    let token = bearer(&headers);
    let Some(keys) = state.store.mailbox_keys(&mailbox).await? else {
        return Err(unknown_mailbox(&state, peer, &headers).await);
    };
    let bind_guest = match slot.write_needs() {
        Some(side) => {
            authorize(&keys, side, token.as_ref())?;
            None
        }
        // Claiming the code: the guest's token is bound with its message.
        None => Some(token.as_ref().ok_or_else(|| ApiError::forbidden(Side::Guest))?.hash()),
    };
    if state.store.usage().await?.stored_bytes + bytes.len() as u64 > state.config.max_stored_bytes {
        return Err(ApiError::coded(
            StatusCode::SERVICE_UNAVAILABLE,
            error_code::STORAGE_FULL,
            "the relay stores as much pairing data as it can, try again in a few minutes",
        ));
    }
    match state.store.write_slot(&mailbox, slot, bytes, bind_guest.as_ref()).await? {
        SlotWrite::Stored => {
            state.wakeups.wake(&mailbox);
            Ok((StatusCode::CREATED, Json(json!({}))).into_response())
        }
        SlotWrite::AlreadyWritten => Err(ApiError::new(StatusCode::CONFLICT, "code already used")),
        SlotWrite::UnknownMailbox => Err(unknown_mailbox(&state, peer, &headers).await),
    }
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    wait: Option<String>,
}

async fn read_slot<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult {
    enforce(&state, RateClass::SlotAccess, peer, &headers).await?;
    refuse_probers(&state, peer, &headers).await?;
    let (mailbox, slot) = parse_slot_path(path)?;
    let max_wait_ms = state.config.max_wait.as_millis() as u64;
    let wait_ms = match query {
        Ok(Query(WaitQuery { wait: None })) => 0,
        Ok(Query(WaitQuery { wait: Some(text) })) => match text.parse::<u64>() {
            Ok(ms) if ms <= max_wait_ms => ms,
            _ => return Err(ApiError::bad_request(format!("wait must be 0..={max_wait_ms} milliseconds"))),
        },
        Err(_) => return Err(ApiError::bad_request("invalid query")),
    };
    let Some(keys) = state.store.mailbox_keys(&mailbox).await? else {
        return Err(unknown_mailbox(&state, peer, &headers).await);
    };
    if let Some(side) = slot.read_needs() {
        authorize(&keys, side, bearer(&headers).as_ref())?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut closing = state.closing.clone();
    loop {
        // Register for a wake-up before reading, so a write landing between the read and the
        // wait is not missed.
        let notified = state.wakeups.for_mailbox(&mailbox).notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match state.store.read_slot(&mailbox, slot).await? {
            SlotRead::Ready(bytes) => {
                if slot.consumes_mailbox() {
                    state.wakeups.wake(&mailbox);
                }
                return Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response());
            }
            SlotRead::UnknownMailbox => return Err(ApiError::unknown_mailbox()),
            SlotRead::Empty => {}
        }
        let now = tokio::time::Instant::now();
        if now >= deadline || *closing.borrow() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let next_look = if state.store.shared_with_other_instances() {
            deadline.min(now + state.config.shared_store_poll)
        } else {
            deadline
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(next_look) => {}
            _ = closing.changed() => {}
        }
    }
}

async fn delete_mailbox<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    mailbox: Result<Path<String>, PathRejection>,
) -> ApiResult {
    enforce(&state, RateClass::SlotAccess, peer, &headers).await?;
    refuse_probers(&state, peer, &headers).await?;
    let Ok(Path(mailbox)) = mailbox else {
        return Err(ApiError::bad_request("invalid mailbox path"));
    };
    let mailbox = parse_mailbox(&mailbox)?;
    // Only the host may end its mailbox: anyone else could otherwise burn any code whose two
    // public words they know.
    let Some(keys) = state.store.mailbox_keys(&mailbox).await? else {
        return Err(unknown_mailbox(&state, peer, &headers).await);
    };
    authorize(&keys, Side::Host, bearer(&headers).as_ref())?;
    state.store.delete_mailbox(&mailbox).await?;
    state.wakeups.wake(&mailbox);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- serving --------------------------------------------------------------------------------

/// A relay serving in the background on the current tokio runtime. Dropping it stops it.
pub struct RunningRelay {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningRelay {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://host:port`, the base URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting, lets in-flight requests finish (pending long-polls answer at once),
    /// and returns when every connection is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Resolves when the relay stops (after `shutdown` from a clone of its stop signal, or
    /// never for a relay that runs until the process is killed).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves the relay API over `store` on an already bound listener.
pub fn serve<S: Store>(listener: TcpListener, store: S, config: RelayConfig) -> std::io::Result<RunningRelay> {
    let local_addr = listener.local_addr()?;
    let (stop, stop_signal) = watch::channel(false);
    let app = router(store.clone(), config.clone(), stop_signal.clone());
    let task = tokio::spawn(accept_loop(listener, app, store, config, stop_signal));
    Ok(RunningRelay { local_addr, stop, task: Some(task) })
}

async fn accept_loop<S: Store>(
    listener: TcpListener,
    app: Router,
    store: S,
    config: RelayConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if connections.len() >= config.max_connections => {
                    // Answered outside the set, so refusals cannot pile up into connections.
                    tokio::spawn(refuse_connection(stream));
                }
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, app.clone(), config.header_read_timeout, stop.clone()));
                }
                // Out of file descriptors or a connection reset before accept: back off
                // briefly instead of spinning; the listener itself stays usable.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = sweep.tick() => store.purge_expired(),
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

/// A connection over the cap: one 503 JSON answer, then closed.
async fn refuse_connection(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = serde_json::to_string(&ErrorBody {
        error: "the relay has as many open connections as it allows, try again in a few seconds".into(),
        code: Some(error_code::CONNECTIONS_FULL.into()),
    })
    .expect("error body serializes");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 5\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        // Read the request head first: an answer that overtakes the request confuses clients.
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buffer[..n]),
                _ => break,
            }
        }
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Resolves once the stop signal is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here rather than across an await.
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(request.map(Body::new)).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let config = RelayConfig::default();
        let a: SocketAddr = "[2001:db8:1:2:aaaa::1]:1000".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:2:bbbb::9]:2000".parse().unwrap();
        let other: SocketAddr = "[2001:db8:1:3::1]:2000".parse().unwrap();
        let empty = HeaderMap::new();
        let slot = RateClass::SlotAccess;
        assert_eq!(client_ip(&config, slot, a, &empty), client_ip(&config, slot, b, &empty));
        assert_ne!(client_ip(&config, slot, a, &empty), client_ip(&config, slot, other, &empty));
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:1".parse().unwrap();
        assert_eq!(client_ip(&config, slot, mapped, &empty), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn mailbox_creation_is_counted_per_48() {
        let config = RelayConfig::default();
        let empty = HeaderMap::new();
        let a: SocketAddr = "[2001:db8:1:2::1]:1".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:ffff::1]:1".parse().unwrap();
        let other: SocketAddr = "[2001:db8:2:2::1]:1".parse().unwrap();
        let create = RateClass::MailboxCreate;
        assert_eq!(client_ip(&config, create, a, &empty), client_ip(&config, create, b, &empty));
        assert_ne!(client_ip(&config, create, a, &empty), client_ip(&config, create, other, &empty));
        assert_ne!(client_ip(&config, RateClass::SlotAccess, a, &empty), client_ip(&config, RateClass::SlotAccess, b, &empty));
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 203.0.113.7"));
        let mut config = RelayConfig::default();
        let class = RateClass::SlotAccess;
        assert_eq!(client_ip(&config, class, peer, &headers), peer.ip());
        config.trust_forwarded_for = true;
        assert_eq!(client_ip(&config, class, peer, &headers), "203.0.113.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn pairing_requests_are_validated_like_the_original() {
        let id = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD";
        assert!(parse_pairing_request(json!({ "deviceId": id }).to_string().as_bytes()).is_ok());
        let full = parse_pairing_request(
            json!({ "deviceId": id, "networkId": "n1", "networkSecret": "s" }).to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(full.network_id.as_deref(), Some("n1"));
        for bad in [
            json!({}),
            json!({ "deviceId": 5 }),
            json!({ "deviceId": "ABC-DEF" }),
            json!({ "deviceId": format!("{id}!") }),
            json!({ "deviceId": id, "networkId": 3 }),
            json!([id]),
        ] {
            assert_eq!(parse_pairing_request(bad.to_string().as_bytes()).unwrap_err().status, StatusCode::BAD_REQUEST);
        }
        assert!(parse_pairing_request(b"not json").is_err());
    }
}
