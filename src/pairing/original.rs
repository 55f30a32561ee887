//! The original botsync pairing protocol, for relays that speak nothing else: the host posts its
//! device ID and gets a code; a joiner trades the code for that device ID, once. There is no PAKE,
//! and the relay sees the whole code, so the host learns and authenticates the joiner only through
//! Syncthing: the joiner announces a device name tagged with `device_name_tag(code, its id)`.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::name_tag;
use super::relay_client::{response, RawAnswer, RelayClient};
use super::{PairingCode, PairingError};
use crate::device_id::DeviceId;

const TAG_DOMAIN: &[u8] = b"botsync-original-pair-v1";

/// What the original relay stores and hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginalPayload {
    pub device_id: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_secret: Option<String>,
}

/// A code as the original protocol knows it. Original relays may use words outside BIP-39, so
/// this only normalizes (case, separators); BIP-39 prefixes are expanded when they resolve.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OriginalCode(String);

impl OriginalCode {
    pub fn parse(input: &str) -> Result<Self, PairingError> {
        if let Ok(code) = PairingCode::parse(input) {
            return Ok(OriginalCode(code.to_string()));
        }
        let lowered = input.to_ascii_lowercase();
        let words: Vec<&str> =
            lowered.split(|c: char| c.is_whitespace() || "-_.,/:;".contains(c)).filter(|w| !w.is_empty()).collect();
        if words.is_empty() || words.iter().any(|w| !w.bytes().all(|b| b.is_ascii_lowercase())) {
            return Err(PairingError::CodeInvalid(format!("\"{}\" is not a pairing code", input.trim())));
        }
        Ok(OriginalCode(words.join("-")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OriginalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for OriginalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OriginalCode(…)")
    }
}

impl From<&PairingCode> for OriginalCode {
    fn from(code: &PairingCode) -> Self {
        OriginalCode(code.to_string())
    }
}

/// Host: `POST /pair`. The code comes back from the relay.
pub async fn create(relay: &RelayClient, payload: &OriginalPayload) -> Result<OriginalCode, PairingError> {
    let body = serde_json::to_vec(payload).expect("payload serializes");
    let answer = relay.request(Method::POST, "/pair", Some(("application/json", body)), None, Default::default()).await?;
    interpret_create(relay.url(), &answer)
}

/// Joiner: `GET /pair/:code`. Works once; the relay forgets the payload after.
pub async fn lookup(relay: &RelayClient, code: &OriginalCode) -> Result<OriginalPayload, PairingError> {
    let answer = relay.request(Method::GET, &format!("/pair/{}", code.as_str()), None, None, Default::default()).await?;
    interpret_lookup(relay.url(), &answer)
}

pub fn interpret_create(url: &str, answer: &RawAnswer) -> Result<OriginalCode, PairingError> {
    #[derive(Deserialize)]
    struct Created {
        code: String,
    }
    match answer.status {
        200 | 201 => serde_json::from_slice::<Created>(&answer.body)
            .ok()
            .and_then(|c| OriginalCode::parse(&c.code).ok())
            .ok_or_else(|| response::not_a_relay(url, answer)),
        404 | 405 => Err(response::not_a_relay(url, answer)),
        _ => Err(response::common_failure(url, answer)),
    }
}

pub fn interpret_lookup(url: &str, answer: &RawAnswer) -> Result<OriginalPayload, PairingError> {
    match answer.status {
        200 => serde_json::from_slice::<OriginalPayload>(&answer.body).map_err(|e| {
            if response::looks_html(answer) {
                response::not_a_relay(url, answer)
            } else {
                PairingError::RelayProtocol { url: url.to_string(), detail: format!("answered with an invalid pairing payload ({e})") }
            }
        }),
        404 if response::error_message(answer).is_some() => Err(PairingError::CodeExpired),
        404 => Err(response::not_a_relay(url, answer)),
        400 if !response::looks_html(answer) => {
            Err(PairingError::CodeInvalid("the relay says this is not a valid pairing code".into()))
        }
        _ => Err(response::common_failure(url, answer)),
    }
}

/// The tag a joiner puts in its Syncthing device name (see `name_tag::tagged_name`).
pub fn device_name_tag(code: &OriginalCode, joiner: &DeviceId) -> String {
    name_tag::tag(code.as_str().as_bytes(), TAG_DOMAIN, joiner)
}

/// Host side: accept a pending device only if its announced name carries its tag.
pub fn verify_device_name(code: &OriginalCode, device: &DeviceId, name: &str) -> bool {
    name_tag::name_carries(name, &device_name_tag(code, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalize_and_tags_verify() {
        let code = OriginalCode::parse("Aban ZOO ability act zebra").unwrap();
        assert_eq!(code.as_str(), "abandon-zoo-ability-act-zebra");
        let foreign = OriginalCode::parse("Purple_Tiger-kettle").unwrap();
        assert_eq!(foreign.as_str(), "purple-tiger-kettle");
        assert!(OriginalCode::parse("tiger7").is_err());
        assert_eq!(OriginalCode::parse("../admin").unwrap().as_str(), "admin");
        assert!(OriginalCode::parse(" - ").is_err());

        let joiner = DeviceId::from_bytes([9; 32]);
        let stranger = DeviceId::from_bytes([8; 32]);
        let name = name_tag::tagged_name("laptop", &device_name_tag(&code, &joiner));
        assert!(verify_device_name(&code, &joiner, &name));
        assert!(!verify_device_name(&code, &stranger, &name));
        assert!(!verify_device_name(&foreign, &joiner, &name));
        assert!(!verify_device_name(&code, &joiner, "laptop"));
    }
}
