//! The stable `BOTSYNC_*` error codes and exit statuses: a leaf every layer may name (the daemon
//! records a failed invite's code for the CLI that waits on it). `error::Error` maps each layer's
//! error to one of these.

/// Stable identifiers, documented in the README. Never renumber or rename one: agents match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Usage,
    NotInitialized,
    InvalidRoot,
    StateCorrupted,
    Io,
    Internal,
    /// The root's Syncthing does not answer its API.
    EngineUnreachable,
    /// A wait (such as `waitForSync`) ran out of time.
    Timeout,
    CodeInvalid,
    CodeExpired,
    CodeUsed,
    CodeMismatch,
    PairingTimeout,
    PairingProtocol,
    RelayUnreachable,
    RelayRateLimited,
    RelayProtocol,
    RelayFailed,
    /// No usable Syncthing binary (missing, not executable, too old, cannot be downloaded).
    SyncthingUnavailable,
    /// A Syncthing download failed its checksum or could not be unpacked.
    DownloadRejected,
    /// A port recorded for this root is taken by another program.
    PortInUse,
    /// Syncthing failed to start, stop or answer.
    EngineFailed,
    /// botsync's background process is missing or failed to start or stop.
    DaemonFailed,
    /// The path (or the version of it asked for) does not exist.
    NotFound,
    /// A path outside its folder, or into botsync's or Syncthing's private directories.
    PathRefused,
    /// Content over a size cap.
    TooLarge,
    /// `remove`/`allow` named no member (or no removed machine) of the mesh.
    PeerUnknown,
    /// The machine was removed from the mesh and is refused until a member allows it again.
    PeerRemoved,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Usage => "BOTSYNC_USAGE",
            ErrorCode::NotInitialized => "BOTSYNC_NOT_INITIALIZED",
            ErrorCode::InvalidRoot => "BOTSYNC_INVALID_ROOT",
            ErrorCode::StateCorrupted => "BOTSYNC_STATE_CORRUPTED",
            ErrorCode::Io => "BOTSYNC_IO",
            ErrorCode::Internal => "BOTSYNC_INTERNAL",
            ErrorCode::EngineUnreachable => "BOTSYNC_ENGINE_UNREACHABLE",
            ErrorCode::Timeout => "BOTSYNC_TIMEOUT",
            ErrorCode::CodeInvalid => "BOTSYNC_CODE_INVALID",
            ErrorCode::CodeExpired => "BOTSYNC_CODE_EXPIRED",
            ErrorCode::CodeUsed => "BOTSYNC_CODE_USED",
            ErrorCode::CodeMismatch => "BOTSYNC_CODE_MISMATCH",
            ErrorCode::PairingTimeout => "BOTSYNC_PAIRING_TIMEOUT",
            ErrorCode::PairingProtocol => "BOTSYNC_PAIRING_PROTOCOL",
            ErrorCode::RelayUnreachable => "BOTSYNC_RELAY_UNREACHABLE",
            ErrorCode::RelayRateLimited => "BOTSYNC_RELAY_RATE_LIMITED",
            ErrorCode::RelayProtocol => "BOTSYNC_RELAY_PROTOCOL",
            ErrorCode::RelayFailed => "BOTSYNC_RELAY_FAILED",
            ErrorCode::SyncthingUnavailable => "BOTSYNC_SYNCTHING_UNAVAILABLE",
            ErrorCode::DownloadRejected => "BOTSYNC_DOWNLOAD_REJECTED",
            ErrorCode::PortInUse => "BOTSYNC_PORT_IN_USE",
            ErrorCode::EngineFailed => "BOTSYNC_ENGINE_FAILED",
            ErrorCode::DaemonFailed => "BOTSYNC_DAEMON_FAILED",
            ErrorCode::NotFound => "BOTSYNC_NOT_FOUND",
            ErrorCode::PathRefused => "BOTSYNC_PATH_REFUSED",
            ErrorCode::TooLarge => "BOTSYNC_TOO_LARGE",
            ErrorCode::PeerUnknown => "BOTSYNC_PEER_UNKNOWN",
            ErrorCode::PeerRemoved => "BOTSYNC_PEER_REMOVED",
        }
    }
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 28] = [
        ErrorCode::Usage,
        ErrorCode::NotInitialized,
        ErrorCode::InvalidRoot,
        ErrorCode::StateCorrupted,
        ErrorCode::Io,
        ErrorCode::Internal,
        ErrorCode::EngineUnreachable,
        ErrorCode::Timeout,
        ErrorCode::CodeInvalid,
        ErrorCode::CodeExpired,
        ErrorCode::CodeUsed,
        ErrorCode::CodeMismatch,
        ErrorCode::PairingTimeout,
        ErrorCode::PairingProtocol,
        ErrorCode::RelayUnreachable,
        ErrorCode::RelayRateLimited,
        ErrorCode::RelayProtocol,
        ErrorCode::RelayFailed,
        ErrorCode::SyncthingUnavailable,
        ErrorCode::DownloadRejected,
        ErrorCode::PortInUse,
        ErrorCode::EngineFailed,
        ErrorCode::DaemonFailed,
        ErrorCode::NotFound,
        ErrorCode::PathRefused,
        ErrorCode::TooLarge,
        ErrorCode::PeerUnknown,
        ErrorCode::PeerRemoved,
    ];

    /// The code spelled `text` (`BOTSYNC_CODE_MISMATCH`), as another process recorded it.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Process exit statuses; stable and documented.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_and_is_listed_once() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::parse("BOTSYNC_NOPE"), None);
    }
}
