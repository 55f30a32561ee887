//! Pairing: codes, the PAKE exchange, offline codes and the relay client.
//!
//! The protocol is in PAIRING-PROTOCOL.md (v2: relay mailbox + SPAKE2). Layers, bottom-up:
//! `wordlist` and `code` (what people type), `pake` (SPAKE2 and the per-direction AEAD, no I/O),
//! `mailbox` (the relay's store as a trait, plus an in-memory one), `relay_client` (that trait over
//! HTTP), `exchange` (the host and guest drivers), and the fallbacks: `original` (relays that only
//! speak the original protocol) and `offline` (no relay at all). `name_tag` is how a joiner proves,
//! through its Syncthing device name, that it holds a code when no PAKE ran.

pub mod code;
pub mod exchange;
pub mod mailbox;
pub mod name_tag;
pub mod offline;
pub mod original;
pub mod pake;
pub mod peer_info;
pub mod relay_client;
pub mod wordlist;

pub use code::{MailboxId, PairingCode};
pub use exchange::{guest, host, Invite};
pub use mailbox::{Allocation, Mailbox, MemoryMailbox, Slot};
pub use offline::OfflineCode;
pub use peer_info::{MemberInfo, PeerInfo};
pub use relay_client::RelayClient;

use crate::error_code::ErrorCode;

/// Every way pairing fails, each one line a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// The text is not a code (wrong word count, unknown word); the message says which part.
    #[error("{0}")]
    CodeInvalid(String),
    // The relay forgets a mailbox once the exchange completed, so a code used to the end reads as unknown.
    #[error("this pairing code is unknown, expired or already used (codes last 10 minutes and work once); get a new one with `botsync invite`")]
    CodeExpired,
    #[error("this pairing code was already used by another machine (a code works once); get a new one with `botsync invite`")]
    CodeAlreadyUsed,
    #[error("code mismatch: the two machines did not use the same code, or the relay tampered with the exchange; check the code or get a new one with `botsync invite`")]
    CodeMismatch,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("cannot reach the relay at {url} ({reason}); use another relay with --relay <url> or BOTSYNC_RELAY=<url>, or pair without a relay using an offline code (`botsync invite --offline`)")]
    RelayUnreachable { url: String, reason: String },
    #[error("the relay at {url} is rate limiting this address; try again in {retry_after_secs} s")]
    RateLimited { url: String, retry_after_secs: u64 },
    /// The server answered, but not like a botsync relay (HTML, garbage, an unexpected status).
    #[error("the relay at {url} {detail}")]
    RelayProtocol { url: String, detail: String },
    /// `POST /v2/mailboxes` answered 404/405: use `original` instead.
    #[error("the relay at {url} speaks only the original botsync pairing protocol")]
    OriginalOnlyRelay { url: String },
    /// The other machine decrypted fine but sent something this version cannot use.
    #[error("the other machine sent pairing data this botsync cannot use: {0}")]
    PeerProtocol(String),
    /// The exchange verified the peer, but this machine could not configure it.
    #[error("paired, but could not add the other machine here: {0}")]
    AcceptFailed(String),
    #[error("this offline code is truncated: copy all of it (it starts with `{}`)", offline::PREFIX)]
    OfflineCodeTruncated,
    #[error("this offline code is corrupted (its checksum does not match): copy it again exactly")]
    OfflineCodeCorrupted,
    #[error("{0}")]
    OfflineCodeInvalid(String),
}

impl PairingError {
    /// The stable code agents match on (the daemon records it for a waiting `invite`).
    pub fn code(&self) -> ErrorCode {
        match self {
            PairingError::CodeInvalid(_)
            | PairingError::OfflineCodeTruncated
            | PairingError::OfflineCodeCorrupted
            | PairingError::OfflineCodeInvalid(_) => ErrorCode::CodeInvalid,
            PairingError::CodeExpired => ErrorCode::CodeExpired,
            PairingError::CodeAlreadyUsed => ErrorCode::CodeUsed,
            PairingError::CodeMismatch => ErrorCode::CodeMismatch,
            PairingError::Timeout(_) => ErrorCode::PairingTimeout,
            PairingError::PeerProtocol(_) | PairingError::AcceptFailed(_) => ErrorCode::PairingProtocol,
            PairingError::RelayUnreachable { .. } => ErrorCode::RelayUnreachable,
            PairingError::RateLimited { .. } => ErrorCode::RelayRateLimited,
            PairingError::RelayProtocol { .. } | PairingError::OriginalOnlyRelay { .. } => ErrorCode::RelayProtocol,
        }
    }
}

/// Either kind of code a person may hand to `join`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinCode {
    Words(PairingCode),
    Offline(OfflineCode),
}

impl JoinCode {
    /// Offline codes are recognized by their prefix; everything else must be a word code.
    pub fn parse(input: &str) -> Result<Self, PairingError> {
        if offline::looks_offline(input) {
            Ok(JoinCode::Offline(input.parse()?))
        } else {
            Ok(JoinCode::Words(input.parse()?))
        }
    }
}
