//! The v2 pairing wire: the one definition of what travels between a botsync client and a relay,
//! used by both `relay` (the server) and `pairing::relay_client` (the client). PAIRING-PROTOCOL.md
//! is its prose; a change here is a change of the protocol.
//!
//! Mailbox ids, slot names, the limits a relay enforces, the allocation and capability answers
//! (typed serde on both sides) and the access tokens that authorize destructive calls: the host's
//! comes with the allocation, the guest's is bound when it claims the code.

use std::fmt;
use std::time::Duration;

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::wordlist::{self, WORD_COUNT};

/// Words of a code that name its mailbox: the part of a code the relay sees (22 bits).
pub const MAILBOX_WORDS: usize = 2;
/// How long a mailbox lives on the relay, from its allocation (writes do not extend it).
pub const MAILBOX_TTL: Duration = Duration::from_secs(10 * 60);
/// The largest slot a relay stores.
pub const MAX_SLOT_BYTES: usize = 16 * 1024;
/// The longest a slot GET may long-poll (`?wait=` in milliseconds).
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// The `service` a botsync relay names in `GET /` and `GET /v2`.
pub const SERVICE: &str = "botsync-relay";
/// The protocol version `GET /v2` reports.
pub const PROTOCOL_VERSION: u32 = 2;

/// The relay's name for a mailbox: two code words. Public by design.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxId([u16; MAILBOX_WORDS]);

impl MailboxId {
    pub fn from_indices(indices: [u16; MAILBOX_WORDS]) -> Self {
        MailboxId(indices.map(|i| i % WORD_COUNT as u16))
    }

    pub fn indices(&self) -> [u16; MAILBOX_WORDS] {
        self.0
    }

    /// A fresh id from the thread CSPRNG.
    pub fn random() -> Self {
        let mut rng = rand::rng();
        MailboxId::from_indices([(); MAILBOX_WORDS].map(|_| rng.random_range(0..WORD_COUNT as u16)))
    }

    /// Strict parse, as the relay validates ids: exactly two lowercase words joined by one '-',
    /// so two spellings of one id can never address two mailboxes.
    pub fn parse_strict(text: &str) -> Option<Self> {
        let mut indices = [0u16; MAILBOX_WORDS];
        let mut parts = text.split('-');
        for slot in indices.iter_mut() {
            let word = parts.next()?;
            *slot = wordlist::words().binary_search(&word).ok()? as u16;
        }
        parts.next().is_none().then_some(MailboxId(indices))
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", wordlist::word(self.0[0]), wordlist::word(self.0[1]))
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxId({self})")
    }
}

impl Serialize for MailboxId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MailboxId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        MailboxId::parse_strict(&text).ok_or_else(|| serde::de::Error::custom(format!("\"{text}\" is not a mailbox id")))
    }
}

/// Who is speaking in an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Host,
    Guest,
}

/// The four write-once slots of a mailbox, in the order the exchange fills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    HostPake,
    GuestPake,
    GuestData,
    HostData,
}

impl Slot {
    pub const ALL: [Slot; 4] = [Slot::HostPake, Slot::GuestPake, Slot::GuestData, Slot::HostData];

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::HostPake => "host-pake",
            Slot::GuestPake => "guest-pake",
            Slot::GuestData => "guest-data",
            Slot::HostData => "host-data",
        }
    }

    pub fn parse(text: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Position in `ALL`, for stores that keep a mailbox's slots in an array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The side that writes this slot.
    pub fn writer(self) -> Side {
        match self {
            Slot::HostPake | Slot::HostData => Side::Host,
            Slot::GuestPake | Slot::GuestData => Side::Guest,
        }
    }

    /// Who must show a token to write this slot. `guest-pake` needs none: writing it is how a
    /// guest claims the code (and binds its token); everything else needs the writer's token.
    pub fn write_needs(self) -> Option<Side> {
        (self != Slot::GuestPake).then_some(self.writer())
    }

    /// Who must show a token to read this slot. `host-pake` is what a joiner holding only the
    /// code reads first, so it needs none; each other slot is read only by the side it is for.
    pub fn read_needs(self) -> Option<Side> {
        match self {
            Slot::HostPake => None,
            Slot::GuestPake | Slot::GuestData => Some(Side::Host),
            Slot::HostData => Some(Side::Guest),
        }
    }

    /// The guest's last step: once it has read this slot the exchange is over, so reading it
    /// deletes the whole mailbox (pairing data is dropped on first read).
    pub fn consumes_mailbox(self) -> bool {
        self == Slot::HostData
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bearer token: 128 random bits as 32 lowercase hex characters, sent as
/// `Authorization: Bearer <token>`. Kept out of `Debug`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccessToken(String);

/// Hex characters in a token.
pub const TOKEN_CHARS: usize = 32;

impl AccessToken {
    pub fn random() -> Self {
        let mut bytes = [0u8; TOKEN_CHARS / 2];
        rand::rng().fill_bytes(&mut bytes);
        AccessToken(data_encoding::HEXLOWER.encode(&bytes))
    }

    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == TOKEN_CHARS && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
            .then(|| AccessToken(text.to_string()))
    }

    /// From an `Authorization` header value.
    pub fn from_header(value: &str) -> Option<Self> {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| Self::parse(token.trim())).flatten()
    }

    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What a relay stores instead of the token itself.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<hidden>)")
    }
}

impl Serialize for AccessToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AccessToken::parse(&text).ok_or_else(|| serde::de::Error::custom("not an access token (32 hex characters)"))
    }
}

/// SHA-256 of an access token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = data_encoding::HEXLOWER.decode(text.as_bytes()).ok()?;
        Some(TokenHash(bytes.try_into().ok()?))
    }

    /// Whether `token` is the one hashed here, in time independent of where they differ.
    pub fn admits(&self, token: &AccessToken) -> bool {
        let other = token.hash().0;
        self.0.iter().zip(other.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// The relay's answer to `POST /v2/mailboxes` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub mailbox: MailboxId,
    /// Unix milliseconds.
    pub expires_at: u64,
    /// The host's token: writes `host-pake`/`host-data`, reads `guest-pake`/`guest-data`, deletes.
    pub host_token: AccessToken,
}

/// The relay's answer to `GET /v2`: that it speaks this protocol, and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayInfo {
    pub service: String,
    pub protocol: u32,
    pub mailbox_ttl_ms: u64,
    pub max_slot_bytes: u64,
    pub max_wait_ms: u64,
}

impl RelayInfo {
    pub fn new(mailbox_ttl: Duration, max_slot_bytes: usize, max_wait: Duration) -> Self {
        RelayInfo {
            service: SERVICE.into(),
            protocol: PROTOCOL_VERSION,
            mailbox_ttl_ms: mailbox_ttl.as_millis() as u64,
            max_slot_bytes: max_slot_bytes as u64,
            max_wait_ms: max_wait.as_millis() as u64,
        }
    }
}

/// Every error answer: `{"error": "<one line>"}`, plus a stable `code` where one applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Stable `code`s in error bodies a client may act on.
pub mod error_code {
    /// 503: the relay holds as many live mailboxes as it allows.
    pub const MAILBOXES_FULL: &str = "mailboxes-full";
    /// 503: the relay stores as many slot bytes as it allows.
    pub const STORAGE_FULL: &str = "storage-full";
    /// 503: the relay has as many open connections as it allows.
    pub const CONNECTIONS_FULL: &str = "connections-full";
    /// 403: the call needs the token of the side that owns it.
    pub const FORBIDDEN: &str = "forbidden";
    /// 404: unknown or expired mailbox.
    pub const UNKNOWN: &str = "unknown";
    /// 429: over a per-client budget.
    pub const RATE_LIMITED: &str = "rate-limited";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_ids_are_strict_and_round_trip() {
        let id = MailboxId::random();
        assert_eq!(MailboxId::parse_strict(&id.to_string()), Some(id));
        assert!(MailboxId::parse_strict("abandon-zoo").is_some());
        for bad in ["Abandon-zoo", "abandon", "abandon-zoo-act", "aban-zoo", "abandon_zoo", "", "abandon--zoo"] {
            assert!(MailboxId::parse_strict(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn slot_authorization_matrix() {
        assert_eq!(Slot::GuestPake.write_needs(), None);
        assert_eq!(Slot::HostPake.write_needs(), Some(Side::Host));
        assert_eq!(Slot::GuestData.write_needs(), Some(Side::Guest));
        assert_eq!(Slot::HostData.write_needs(), Some(Side::Host));
        assert_eq!(Slot::HostPake.read_needs(), None);
        assert_eq!(Slot::HostData.read_needs(), Some(Side::Guest));
        assert!(Slot::ALL.iter().all(|s| Slot::parse(s.as_str()) == Some(*s)));
    }

    #[test]
    fn tokens_hash_parse_and_hide() {
        let token = AccessToken::random();
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        assert_eq!(AccessToken::from_header(&token.header_value()), Some(token.clone()));
        assert_eq!(AccessToken::from_header(&format!("bearer  {}", token.expose())), Some(token.clone()));
        assert!(AccessToken::from_header(token.expose()).is_none());
        assert!(AccessToken::parse("ABCDEF0123456789abcdef0123456789").is_none());
        let hash = token.hash();
        assert!(hash.admits(&token));
        assert!(!hash.admits(&AccessToken::random()));
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn allocation_json_is_camel_case() {
        let a = Allocation { mailbox: MailboxId::from_indices([0, 2047]), expires_at: 5, host_token: AccessToken::random() };
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["mailbox"], "abandon-zoo");
        assert_eq!(json["expiresAt"], 5);
        assert_eq!(json["hostToken"], a.host_token.expose());
        assert_eq!(serde_json::from_value::<Allocation>(json).unwrap(), a);
    }
}
