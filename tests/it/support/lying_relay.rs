//! A lying relay of the tests' own: an HTTP server on loopback in front of the real relay that
//! records every request (line, headers and body) and answers each one as its policy says:
//! forwarded as is, forwarded with another body, or answered with bytes of its choosing.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use botsync::pairing::MailboxId;
use crate::support::pairing::{serve, Relay, TestServer};

/// One request as the lying relay received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// Everything the relay learned from this request, as text.
    pub fn text(&self) -> String {
        let headers: Vec<String> = self.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{} {}\n{}\n{}", self.method, self.target, headers.join("\n"), String::from_utf8_lossy(&self.body))
    }

    /// What the client chose to send: the target with the protocol's fixed slot names, a
    /// well-formed mailbox ID (the relay's own allocation, public: two random code words that a
    /// secret word of the same code can repeat) and query parameter names taken out (`?wait=` is the
    /// protocol's, and "wait" is also a code word), header values (names are HTTP's: "host" is
    /// also a code word; bearer tokens are random hex, whose letter runs could spell a short word
    /// by chance) and the body.
    fn chosen_text(&self) -> String {
        let (path, query) = self.target.split_once('?').unwrap_or((self.target.as_str(), ""));
        let segments: Vec<&str> = path.split('/').collect();
        let mut target = segments
            .iter()
            .enumerate()
            .map(|(i, segment)| if i > 0 && segments[i - 1] == "mailboxes" && segment.parse::<MailboxId>().is_ok() { " " } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        for fixed in ["host-pake", "guest-pake", "guest-data", "host-data"] {
            target = target.replace(fixed, " ");
        }
        for pair in query.split('&') {
            target.push(' ');
            target.push_str(pair.split_once('=').map_or(pair, |(_, value)| value));
        }
        let values: Vec<&str> = self.headers.iter().filter(|(k, _)| k != "authorization").map(|(_, v)| v.as_str()).collect();
        format!("{target}\n{}\n{}", values.join("\n"), String::from_utf8_lossy(&self.body))
    }

    pub fn is(&self, method: &str, suffix: &str) -> bool {
        self.method == method && self.target.split('?').next().unwrap_or("").ends_with(suffix)
    }
}

pub enum Verdict {
    Forward,
    /// Forward with this body instead.
    ForwardBody(Vec<u8>),
    Answer(u16, &'static str, Vec<u8>),
    /// Never answer (for 60 s, then 504): the caller is stuck in this request.
    Hang,
}

impl Verdict {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Verdict::Answer(status, "application/json", body.to_string().into_bytes())
    }
}

/// Decides the answer to a request, given every request seen before it.
pub type Policy = Arc<dyn Fn(&Seen, &[Seen]) -> Verdict + Send + Sync>;

struct Inner {
    upstream: String,
    http: reqwest::Client,
    log: Mutex<Vec<Seen>>,
    policy: Policy,
}

pub struct LyingRelay {
    pub url: String,
    pub upstream: Relay,
    inner: Arc<Inner>,
    _server: TestServer,
}

impl LyingRelay {
    pub async fn start(policy: impl Fn(&Seen, &[Seen]) -> Verdict + Send + Sync + 'static) -> Self {
        let upstream = Relay::start().await;
        let inner = Arc::new(Inner {
            upstream: upstream.url.clone(),
            http: reqwest::Client::new(),
            log: Mutex::new(Vec::new()),
            policy: Arc::new(policy),
        });
        let server = serve(Router::new().fallback(handle).with_state(inner.clone())).await;
        LyingRelay { url: server.url.clone(), upstream, inner, _server: server }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.inner.log.lock().unwrap().clone()
    }

    /// Fails if any request line, header or body the relay received contains any of `words`.
    pub fn assert_never_saw(&self, words: &[&str]) {
        let requests = self.requests();
        assert!(!requests.is_empty(), "the relay saw no request at all");
        for seen in &requests {
            let text = seen.chosen_text().to_ascii_lowercase();
            // Whole words: "ten" is a code word and also inside "content-type".
            let tokens: Vec<&str> = text.split(|c: char| !c.is_ascii_alphabetic()).collect();
            for word in words {
                let word = word.to_ascii_lowercase();
                assert!(!tokens.contains(&word.as_str()), "secret word {word:?} reached the relay in:\n{}", seen.text());
            }
        }
    }
}

async fn handle(State(inner): State<Arc<Inner>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let seen = Seen {
        method: method.to_string(),
        target: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect(),
        body: body.to_vec(),
    };
    let verdict = {
        let log = inner.log.lock().unwrap();
        (inner.policy)(&seen, &log)
    };
    inner.log.lock().unwrap().push(seen.clone());
    let body = match verdict {
        Verdict::Hang => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        Verdict::Answer(status, content_type, bytes) => {
            return (StatusCode::from_u16(status).unwrap(), [("content-type", content_type)], bytes).into_response();
        }
        Verdict::Forward => seen.body.clone(),
        Verdict::ForwardBody(bytes) => bytes,
    };
    let mut request = inner.http.request(method, format!("{}{}", inner.upstream, seen.target)).body(body);
    for name in ["authorization", "content-type"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let content_type = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, [("content-type", content_type)], bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

#[test]
fn protocol_names_and_the_mailbox_are_not_counted_as_what_the_client_chose() {
    let seen = Seen {
        method: "GET".into(),
        target: "/v2/mailboxes/blouse-accident/host-pake?wait=7999".into(),
        headers: vec![("host".into(), "127.0.0.1:1".into()), ("user-agent".into(), "botsync/0.5.0".into())],
        body: b"sealed".to_vec(),
    };
    let text = seen.chosen_text();
    for fixed in ["wait", "host", "pake", "agent", "blouse", "accident"] {
        assert!(!text.split(|c: char| !c.is_ascii_alphabetic()).any(|t| t == fixed), "{fixed:?} in {text:?}");
    }
    for chosen in ["7999", "botsync", "sealed"] {
        assert!(text.contains(chosen), "{chosen:?} missing from {text:?}");
    }
    // A path segment that is no mailbox ID (a third word in it) is what the client chose.
    let seen = Seen { target: "/v2/mailboxes/blouse-accident-foil/host-pake".into(), ..seen };
    assert!(seen.chosen_text().contains("foil"), "{}", seen.chosen_text());
}
