//! The error that crosses the CLI and JS boundary. Each core layer has its own error enum; this
//! one wraps them and gives every failure a stable code (for agents and the JS `code` property)
//! and an exit status.

use crate::daemon::notify::NotifyError;
use crate::daemon::DaemonError;
use crate::pairing::PairingError;
use crate::relay::RelayError;
use crate::engine::EngineError;
use crate::root::RootError;
use crate::state_file::StateFileError;

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
        }
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("{} is not a botsync root yet: run `botsync init` first", .0)]
    NotInitialized(String),
    #[error("paired with {peer}, but Syncthing has not connected to it after {waited_s} s: check that botsync runs there (`botsync status`) and that this machine can reach it")]
    NotConnected { peer: String, waited_s: u64 },
    #[error("connected, but the folder {folder} was still not ready after {waited_s} s; see `botsync status`")]
    FolderNotReady { folder: String, waited_s: u64 },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Usage(_) => ErrorCode::Usage,
            Error::NotInitialized(_) => ErrorCode::NotInitialized,
            Error::Root(_) => ErrorCode::InvalidRoot,
            Error::NotConnected { .. } | Error::FolderNotReady { .. } => ErrorCode::PairingTimeout,
            Error::State(StateFileError::Corrupted { .. }) => ErrorCode::StateCorrupted,
            Error::State(_) => ErrorCode::Io,
            Error::Internal(_) => ErrorCode::Internal,
            Error::Daemon(DaemonError::Engine(engine)) => engine_code(engine),
            Error::Daemon(DaemonError::State(StateFileError::Corrupted { .. })) => ErrorCode::StateCorrupted,
            Error::Daemon(_) => ErrorCode::DaemonFailed,
            Error::Notify(e) => match e {
                NotifyError::NotInitialized(_) => ErrorCode::NotInitialized,
                NotifyError::EngineNotConfigured(_) => ErrorCode::StateCorrupted,
                NotifyError::Engine(_) => ErrorCode::EngineUnreachable,
                NotifyError::BadHooksUrl(_) => ErrorCode::Usage,
                NotifyError::SyncTimeout { .. } => ErrorCode::Timeout,
                NotifyError::State(StateFileError::Corrupted { .. }) => ErrorCode::StateCorrupted,
                NotifyError::State(_) => ErrorCode::Io,
                NotifyError::Internal(_) => ErrorCode::Internal,
            },
            Error::Pairing(e) => pairing_code(e),
            Error::Relay(RelayError::ListenAddress { .. }) => ErrorCode::Usage,
            Error::Relay(_) => ErrorCode::RelayFailed,
            Error::Engine(engine) => engine_code(engine),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.code() {
            ErrorCode::Usage => exit::USAGE,
            _ => exit::FAILURE,
        }
    }
}

fn pairing_code(error: &PairingError) -> ErrorCode {
    match error {
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

fn engine_code(error: &EngineError) -> ErrorCode {
    match error.innermost() {
        EngineError::NotInitialized(_) => ErrorCode::NotInitialized,
        EngineError::RootNotDirectory(_) | EngineError::RootNotWritable { .. } => ErrorCode::InvalidRoot,
        EngineError::State(StateFileError::Corrupted { .. }) | EngineError::ConfigMissing(_) => ErrorCode::StateCorrupted,
        EngineError::State(_) | EngineError::Io { .. } => ErrorCode::Io,
        EngineError::UnknownProfile(_) => ErrorCode::Usage,
        EngineError::SyncthingMissing { .. }
        | EngineError::SyncthingNotExecutable { .. }
        | EngineError::SyncthingTooOld { .. }
        | EngineError::SyncthingNotFound { .. }
        | EngineError::DownloadFailed { .. } => ErrorCode::SyncthingUnavailable,
        EngineError::SignatureInvalid { .. } | EngineError::Unpack { .. } => ErrorCode::DownloadRejected,
        EngineError::SyncthingUnknownCli { .. } | EngineError::SyncthingDowngrade { .. } => ErrorCode::SyncthingUnavailable,
        EngineError::Migrating => ErrorCode::EngineFailed,
        EngineError::ApiPortTaken { .. } | EngineError::ListenPortTaken { .. } | EngineError::NoFreePort => ErrorCode::PortInUse,
        EngineError::FromEnvVar(_)
        | EngineError::Generate(_)
        | EngineError::ConfigXml { .. }
        | EngineError::Spawn { .. }
        | EngineError::ExitedDuringStart { .. }
        | EngineError::NotReady { .. }
        | EngineError::StopFailed { .. }
        | EngineError::RestUnreachable { .. }
        | EngineError::RestStatus { .. }
        | EngineError::RestDecode { .. } => ErrorCode::EngineFailed,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
