//! The v2 relay API over HTTP. Transport and answer interpretation are split: `response` holds
//! pure functions from a raw answer to a result, so odd servers (HTML pages, captive portals,
//! proxies, garbage) are tested without a network.

use std::time::Duration;

use reqwest::Method;

use super::mailbox::Mailbox;
use super::wire::{AccessToken, Allocation, ErrorBody, MailboxId, RelayInfo, Slot, MAX_WAIT, SERVICE};
use super::PairingError;

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers are a few hundred bytes; anything much bigger is not a relay talking.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An HTTP answer reduced to what interpretation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Clone)]
pub struct RelayClient {
    base: String,
    http: reqwest::Client,
    request_timeout: Duration,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RelayClient({})", self.base)
    }
}

impl RelayClient {
    pub fn new(url: &str) -> Result<Self, PairingError> {
        Self::with_timeouts(url, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT)
    }

    /// `request_timeout` bounds each request; a long-poll gets its `wait` on top.
    pub fn with_timeouts(url: &str, connect: Duration, request_timeout: Duration) -> Result<Self, PairingError> {
        let base = url.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base).map_err(|e| PairingError::RelayProtocol {
            url: base.clone(),
            detail: format!("is not a valid URL ({e})"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(PairingError::RelayProtocol {
                url: base,
                detail: "is not an http:// or https:// URL".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("botsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PairingError::RelayUnreachable { url: base.clone(), reason: e.to_string() })?;
        Ok(RelayClient { base, http, request_timeout })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// One request; transport failures become `RelayUnreachable`, everything else a `RawAnswer`.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
        token: Option<&AccessToken>,
        extra_time: Duration,
    ) -> Result<RawAnswer, PairingError> {
        let timeout = self.request_timeout + extra_time;
        let mut builder = self.http.request(method, format!("{}{path}", self.base)).timeout(timeout);
        if let Some(token) = token {
            builder = builder.header(reqwest::header::AUTHORIZATION, token.header_value());
        }
        if let Some((content_type, bytes)) = body {
            builder = builder.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        let unreachable = |e: reqwest::Error| PairingError::RelayUnreachable {
            url: self.base.clone(),
            reason: transport_reason(&e, timeout),
        };
        let mut response = builder.send().await.map_err(unreachable)?;
        let header = |name| {
            response.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let retry_after = header(reqwest::header::RETRY_AFTER);
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(PairingError::RelayProtocol {
                    url: self.base.clone(),
                    detail: format!("answered with more than {MAX_ANSWER_BYTES} bytes, not a botsync relay"),
                });
            }
        }
        Ok(RawAnswer { status, content_type, retry_after, body })
    }

    /// Whether `GET /` names a botsync relay: tells an original-only relay from a random server.
    async fn is_botsync_relay(&self) -> Result<bool, PairingError> {
        let answer = self.request(Method::GET, "/", None, None, Duration::ZERO).await?;
        Ok(response::is_relay_banner(&answer))
    }

    /// `GET /v2`: the relay's v2 capabilities, or `None` when it has no v2 API (an original-only
    /// relay, or one that pretends to be). Creates nothing on the relay.
    pub async fn info(&self) -> Result<Option<RelayInfo>, PairingError> {
        let answer = self.request(Method::GET, "/v2", None, None, Duration::ZERO).await?;
        response::info(&self.base, &answer)
    }
}

/// The most specific cause: reqwest's own message is "error sending request for url (...)".
fn transport_reason(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", timeout.as_secs_f32().ceil());
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl Mailbox for RelayClient {
    async fn allocate(&self) -> Result<Allocation, PairingError> {
        let body = Some(("application/json", b"{}".to_vec()));
        let answer = self.request(Method::POST, "/v2/mailboxes", body, None, Duration::ZERO).await?;
        match response::allocation(&self.base, &answer) {
            Err(PairingError::OriginalOnlyRelay { .. }) if !self.is_botsync_relay().await? => {
                Err(response::not_a_relay(&self.base, &answer))
            }
            other => other,
        }
    }

    async fn put(&self, mailbox: MailboxId, slot: Slot, token: &AccessToken, data: &[u8]) -> Result<(), PairingError> {
        let path = format!("/v2/mailboxes/{mailbox}/{slot}");
        let body = Some(("application/octet-stream", data.to_vec()));
        let answer = self.request(Method::PUT, &path, body, Some(token), Duration::ZERO).await?;
        response::put(&self.base, &answer)
    }

    async fn get(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        token: Option<&AccessToken>,
        wait: Duration,
    ) -> Result<Option<Vec<u8>>, PairingError> {
        let wait = wait.min(MAX_WAIT);
        let path = format!("/v2/mailboxes/{mailbox}/{slot}?wait={}", wait.as_millis());
        let answer = self.request(Method::GET, &path, None, token, wait).await?;
        response::get(&self.base, &answer)
    }

    async fn delete(&self, mailbox: MailboxId, token: &AccessToken) -> Result<(), PairingError> {
        let path = format!("/v2/mailboxes/{mailbox}");
        let answer = self.request(Method::DELETE, &path, None, Some(token), Duration::ZERO).await?;
        response::delete(&self.base, &answer)
    }
}

/// Pure interpretation of relay answers, per PAIRING-PROTOCOL.md.
pub mod response {
    use super::*;

    pub fn looks_html(answer: &RawAnswer) -> bool {
        let typed_html = answer.content_type.as_deref().is_some_and(|t| t.to_ascii_lowercase().contains("html"));
        let first = answer.body.iter().find(|b| !b.is_ascii_whitespace());
        typed_html || first == Some(&b'<')
    }

    /// The relay's `{"error": "..."}`, if that is what the body is.
    pub fn error_message(answer: &RawAnswer) -> Option<String> {
        serde_json::from_slice::<ErrorBody>(&answer.body).ok().map(|e| e.error)
    }

    pub fn is_relay_banner(answer: &RawAnswer) -> bool {
        #[derive(serde::Deserialize)]
        struct Banner {
            service: String,
        }
        answer.status == 200
            && serde_json::from_slice::<Banner>(&answer.body).is_ok_and(|b| b.service == SERVICE)
    }

    pub fn not_a_relay(url: &str, answer: &RawAnswer) -> PairingError {
        let detail = if looks_html(answer) {
            "answered with HTML, not a botsync relay".to_string()
        } else {
            format!("answered HTTP {} with something other than a botsync relay's JSON", answer.status)
        };
        PairingError::RelayProtocol { url: url.to_string(), detail }
    }

    fn protocol(url: &str, detail: String) -> PairingError {
        PairingError::RelayProtocol { url: url.to_string(), detail }
    }

    /// Statuses that mean the same thing on every endpoint.
    pub fn common_failure(url: &str, answer: &RawAnswer) -> PairingError {
        let said = || error_message(answer).map(|m| format!(": {m}")).unwrap_or_default();
        match answer.status {
            429 => PairingError::RateLimited {
                url: url.to_string(),
                retry_after_secs: answer
                    .retry_after
                    .as_deref()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(60),
            },
            _ if looks_html(answer) => not_a_relay(url, answer),
            409 => PairingError::CodeAlreadyUsed,
            // A proxy in front of a relay that is down, or a relay whose storage is down: as good
            // as unreachable, and another relay may work.
            502..=504 => PairingError::RelayUnreachable {
                url: url.to_string(),
                reason: format!("it answered HTTP {}{}", answer.status, said()),
            },
            403 => protocol(url, format!("refused the request (HTTP 403){}: another machine holds this code's mailbox, or the relay is misbehaving", said())),
            400 | 413 => protocol(url, format!("rejected the request (HTTP {}){}", answer.status, said())),
            500..=599 => protocol(url, format!("failed with HTTP {}{}", answer.status, said())),
            status => protocol(url, format!("answered HTTP {status}{}, not what a botsync relay answers", said())),
        }
    }

    /// On slot requests a JSON 404 is the protocol's "unknown or expired"; any other 404 means
    /// there is no v2 API here (an original-only relay, or not a relay at all).
    fn slot_not_found(url: &str, answer: &RawAnswer) -> PairingError {
        if error_message(answer).is_some() {
            PairingError::CodeExpired
        } else if looks_html(answer) {
            not_a_relay(url, answer)
        } else {
            PairingError::OriginalOnlyRelay { url: url.to_string() }
        }
    }

    pub fn info(url: &str, answer: &RawAnswer) -> Result<Option<RelayInfo>, PairingError> {
        match answer.status {
            200 => serde_json::from_slice::<RelayInfo>(&answer.body)
                .ok()
                .filter(|info| info.service == SERVICE)
                .map(Some)
                .ok_or_else(|| not_a_relay(url, answer)),
            404 | 405 if !looks_html(answer) => Ok(None),
            _ => Err(common_failure(url, answer)),
        }
    }

    pub fn allocation(url: &str, answer: &RawAnswer) -> Result<Allocation, PairingError> {
        match answer.status {
            200 | 201 => serde_json::from_slice::<Allocation>(&answer.body).map_err(|e| {
                if looks_html(answer) {
                    not_a_relay(url, answer)
                } else {
                    protocol(url, format!("answered with an invalid mailbox allocation ({e})"))
                }
            }),
            404 | 405 => Err(PairingError::OriginalOnlyRelay { url: url.to_string() }),
            _ => Err(common_failure(url, answer)),
        }
    }

    pub fn put(url: &str, answer: &RawAnswer) -> Result<(), PairingError> {
        match answer.status {
            200..=204 if !looks_html(answer) => Ok(()),
            404 => Err(slot_not_found(url, answer)),
            _ => Err(common_failure(url, answer)),
        }
    }

    pub fn get(url: &str, answer: &RawAnswer) -> Result<Option<Vec<u8>>, PairingError> {
        match answer.status {
            // A captive portal answers 200 with a login page; slot data is never typed as HTML.
            200 if answer.content_type.as_deref().is_some_and(|t| t.to_ascii_lowercase().contains("html")) => {
                Err(not_a_relay(url, answer))
            }
            200 => Ok(Some(answer.body.clone())),
            204 => Ok(None),
            404 => Err(slot_not_found(url, answer)),
            _ => Err(common_failure(url, answer)),
        }
    }

    pub fn delete(url: &str, answer: &RawAnswer) -> Result<(), PairingError> {
        match answer.status {
            200..=204 | 404 => Ok(()),
            _ => Err(common_failure(url, answer)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::response::*;
    use super::*;

    fn answer(status: u16, content_type: &str, body: &str) -> RawAnswer {
        RawAnswer {
            status,
            content_type: Some(content_type.to_string()),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    const URL: &str = "http://relay.test";

    #[test]
    fn maps_statuses_to_pairing_errors() {
        let json = "application/json";
        assert_eq!(put(URL, &answer(409, json, r#"{"error":"code already used"}"#)), Err(PairingError::CodeAlreadyUsed));
        assert_eq!(
            get(URL, &answer(404, json, r#"{"error":"unknown or expired code"}"#)),
            Err(PairingError::CodeExpired)
        );
        assert_eq!(get(URL, &answer(204, json, "")), Ok(None));
        assert_eq!(get(URL, &answer(200, "application/octet-stream", "abc")), Ok(Some(b"abc".to_vec())));
        let mut limited = answer(429, json, r#"{"error":"slow down"}"#);
        limited.retry_after = Some("17".into());
        assert_eq!(
            put(URL, &limited),
            Err(PairingError::RateLimited { url: URL.into(), retry_after_secs: 17 })
        );
        assert!(matches!(allocation(URL, &answer(405, "text/plain", "")), Err(PairingError::OriginalOnlyRelay { .. })));
        assert!(matches!(get(URL, &answer(503, "text/plain", "")), Err(PairingError::RelayUnreachable { .. })));
    }

    #[test]
    fn html_is_called_out() {
        for a in [
            answer(200, "text/html; charset=utf-8", "<html>login</html>"),
            answer(201, "text/plain", "  <!DOCTYPE html>"),
            answer(500, "text/html", "<h1>oops</h1>"),
        ] {
            let e = allocation(URL, &a).unwrap_err();
            assert_eq!(e.to_string(), "the relay at http://relay.test answered with HTML, not a botsync relay");
        }
        let e = get(URL, &answer(200, "text/html", "<html>portal</html>")).unwrap_err();
        assert!(e.to_string().contains("answered with HTML"), "{e}");
    }

    #[test]
    fn allocation_parses_the_contract() {
        let a = allocation(URL, &answer(201, "application/json", r#"{"mailbox":"abandon-zoo","expiresAt":1700000000000,"hostToken":"0123456789abcdef0123456789abcdef"}"#))
            .unwrap();
        assert_eq!(a.mailbox.to_string(), "abandon-zoo");
        assert_eq!(a.expires_at, 1_700_000_000_000);
        let e = allocation(URL, &answer(201, "application/json", r#"{"mailbox":"not words","expiresAt":1,"hostToken":"0123456789abcdef0123456789abcdef"}"#));
        assert!(matches!(e, Err(PairingError::RelayProtocol { .. })));
    }

    #[test]
    fn rejects_non_http_urls() {
        assert!(RelayClient::new("ftp://x").is_err());
        assert!(RelayClient::new("relay.example").is_err());
        assert_eq!(RelayClient::new("http://127.0.0.1:9/").unwrap().url(), "http://127.0.0.1:9");
    }
}
