//! Pairing: codes, the PAKE exchange, offline codes and the relay client.
//!
//! The protocol is in PAIRING-PROTOCOL.md (v2: relay mailbox + SPAKE2). Layers, bottom-up:
//! `wordlist` and `code` (what people type), `wire` (what travels between client and relay, shared
//! with the `relay` server), `pake` (SPAKE2 and the per-direction AEAD, no I/O), `mailbox` (the
//! relay's API as a trait), `relay_client` (that trait over HTTP), `exchange` (the host and guest
//! drivers), and the other routes: `offline` (no relay at all) and `original` (the original
//! protocol, used only when asked for: the relay sees the whole code). `name_tag` is how a joiner
//! proves, through its Syncthing device name, that it holds a code when no PAKE ran.
//!
//! No route downgrades on its own: a joiner sends secret words to a server only on the original
//! route, which it takes only for a code that cannot be a v2 code or with an explicit `--original`.

pub mod code;
pub mod exchange;
pub mod mailbox;
pub mod name_tag;
pub mod offline;
pub mod original;
pub mod pake;
pub mod peer_info;
pub mod relay_client;
pub mod wire;
pub mod wordlist;

pub use code::PairingCode;
pub use exchange::{guest, host, HostProgress, Invite};
pub use mailbox::Mailbox;
pub use wire::{AccessToken, Allocation, MailboxId, Slot};
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
    /// A host restarted mid-exchange was shown another guest message than the one it answered.
    #[error("code mismatch: after a restart the relay presented another joining machine than the one this machine already answered (a second guess at the code); refused: get a new code with `botsync invite`")]
    GuestReplaced,
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("cannot reach the relay at {url} ({reason}); use another relay with --relay <url> or BOTSYNC_RELAY=<url>, or pair without a relay using an offline code (`botsync invite --offline`)")]
    RelayUnreachable { url: String, reason: String },
    #[error("the relay at {url} is rate limiting this address; try again in {retry_after_secs} s")]
    RateLimited { url: String, retry_after_secs: u64 },
    /// The server answered, but not like a botsync relay (HTML, garbage, an unexpected status).
    #[error("the relay at {url} {detail}")]
    RelayProtocol { url: String, detail: String },
    /// The relay has no v2 API (404/405 on it). Never a reason to fall back on its own.
    #[error("the relay at {url} has no v2 pairing API (it speaks only the original botsync protocol, or pretends to); a v2 code cannot be used there: use another relay with --relay, or an offline code (`botsync invite --offline`); if the other machine made its code with --original, join with --original")]
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
            PairingError::CodeMismatch | PairingError::GuestReplaced => ErrorCode::CodeMismatch,
            PairingError::Timeout(_) => ErrorCode::PairingTimeout,
            PairingError::PeerProtocol(_) | PairingError::AcceptFailed(_) => ErrorCode::PairingProtocol,
            PairingError::RelayUnreachable { .. } => ErrorCode::RelayUnreachable,
            PairingError::RateLimited { .. } => ErrorCode::RelayRateLimited,
            PairingError::RelayProtocol { .. } | PairingError::OriginalOnlyRelay { .. } => ErrorCode::RelayProtocol,
        }
    }
}

/// Each kind of code a person may hand to `join`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinCode {
    Words(PairingCode),
    Offline(OfflineCode),
    /// For the original protocol: its relay sees the whole code.
    Original(original::OriginalCode),
}

impl JoinCode {
    /// Offline codes are recognized by their prefix. A word code is a v2 code unless
    /// `original` is asked for, or it cannot be one: some word is outside BIP-39 and is not a
    /// typo of a BIP-39 word (a typo in a v2 code must not send its other words to a server).
    pub fn parse(input: &str, original: bool) -> Result<Self, PairingError> {
        if offline::looks_offline(input) {
            if original {
                return Err(PairingError::CodeInvalid(
                    "--original is for word codes of an original-protocol relay; an offline code needs no relay: drop --original".into(),
                ));
            }
            return Ok(JoinCode::Offline(input.parse()?));
        }
        if original {
            return Ok(JoinCode::Original(original::OriginalCode::parse(input)?));
        }
        match PairingCode::parse(input) {
            Ok(code) => Ok(JoinCode::Words(code)),
            Err(e) if !could_be_v2(input) => match original::OriginalCode::parse(input) {
                Ok(code) => Ok(JoinCode::Original(code)),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// What the code is called in reports: `relay` (v2), `offline` or `original`.
    pub fn kind(&self) -> &'static str {
        match self {
            JoinCode::Words(_) => "relay",
            JoinCode::Offline(_) => "offline",
            JoinCode::Original(_) => "original",
        }
    }
}

/// Whether `input` may be a v2 code with a mistake in it: every word is a BIP-39 word, a prefix
/// of one, or close enough to one to be a typo.
fn could_be_v2(input: &str) -> bool {
    input
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|t| !t.is_empty())
        .all(|token| wordlist::resolve(token).is_ok() || wordlist::closest(token).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_codes_that_cannot_be_v2_take_the_original_route_unasked() {
        let v2 = "abandon-zoo-ability-act-zebra";
        assert!(matches!(JoinCode::parse(v2, false), Ok(JoinCode::Words(_))));
        assert!(matches!(JoinCode::parse(v2, true), Ok(JoinCode::Original(_))));
        // A typo or a missing word in a v2 code is an error, never the original route.
        assert!(matches!(JoinCode::parse("abandn-zoo-ability-act-zebra", false), Err(PairingError::CodeInvalid(_))));
        assert!(matches!(JoinCode::parse("abandon-zoo-ability-act", false), Err(PairingError::CodeInvalid(_))));
        // Words no BIP-39 word is near: only an original relay's code.
        assert!(matches!(JoinCode::parse("purple-xylophonist-quuxbar", false), Ok(JoinCode::Original(_))));
        assert!(matches!(JoinCode::parse("bso1aaaa", true), Err(PairingError::CodeInvalid(_))));
    }
}
