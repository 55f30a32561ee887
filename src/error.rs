//! The error that crosses the CLI and JS boundary. Each core layer has its own error enum; this
//! one wraps them and gives every failure a stable code (for agents and the JS `code` property)
//! and an exit status. Only `commands`, `cli` and `node` use it; the codes themselves are the leaf
//! `error_code`, so a core layer that records a failure (the daemon, for a waiting `invite`) can
//! name its code without depending on this module.

pub use crate::error_code::{exit, ErrorCode};
use crate::daemon::notify::NotifyError;
use crate::daemon::DaemonError;
use crate::membership::MembershipError;
use crate::pairing::PairingError;
use crate::relay::RelayError;
use crate::engine::{EngineError, RestError};
use crate::root::RootError;
use crate::state_file::StateFileError;

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
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PathRefused(String),
    #[error("{0}")]
    TooLarge(String),
    /// A wait that ran out of time; the message names what is still missing.
    #[error("{0}")]
    Timeout(String),
    /// Talking to the root's Syncthing directly (`waitForSync`) found nobody answering.
    #[error("Syncthing is not running for this root ({0}); run `botsync start`")]
    EngineUnreachable(RestError),
    #[error("not in sync after {waited_ms} ms: {}", incomplete.join("; "))]
    SyncTimeout { waited_ms: u64, incomplete: Vec<String> },
    /// A failure another process recorded with its code (the daemon, for `invite --wait`).
    #[error("{message}")]
    Recorded { code: ErrorCode, message: String },
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
    #[error(transparent)]
    Membership(#[from] MembershipError),
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
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::PathRefused(_) => ErrorCode::PathRefused,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::Timeout(_) => ErrorCode::Timeout,
            Error::EngineUnreachable(_) => ErrorCode::EngineUnreachable,
            Error::SyncTimeout { .. } => ErrorCode::Timeout,
            Error::Recorded { code, .. } => *code,
            Error::Daemon(DaemonError::Engine(engine)) => engine_code(engine),
            Error::Daemon(DaemonError::State(StateFileError::Corrupted { .. })) => ErrorCode::StateCorrupted,
            Error::Daemon(_) => ErrorCode::DaemonFailed,
            Error::Notify(e) => match e {
                NotifyError::NotInitialized(_) => ErrorCode::NotInitialized,
                NotifyError::Engine(_) => ErrorCode::EngineUnreachable,
                NotifyError::BadHooksUrl(_) => ErrorCode::Usage,
                NotifyError::State(StateFileError::Corrupted { .. }) => ErrorCode::StateCorrupted,
                NotifyError::State(_) => ErrorCode::Io,
                NotifyError::Internal(_) => ErrorCode::Internal,
            },
            Error::Pairing(e) => e.code(),
            Error::Relay(RelayError::ListenAddress { .. }) => ErrorCode::Usage,
            Error::Relay(_) => ErrorCode::RelayFailed,
            Error::Engine(engine) => engine_code(engine),
            Error::Membership(e) => match e {
                MembershipError::UnknownPeer(_) | MembershipError::NotRemoved(_) => ErrorCode::PeerUnknown,
                MembershipError::Ambiguous { .. } | MembershipError::IsSelf(_) => ErrorCode::Usage,
                MembershipError::Removed { .. } => ErrorCode::PeerRemoved,
                MembershipError::State(StateFileError::Corrupted { .. }) => ErrorCode::StateCorrupted,
                MembershipError::State(_) | MembershipError::Io { .. } => ErrorCode::Io,
                MembershipError::Engine(engine) => engine_code(engine),
                MembershipError::Rest(rest) if rest.is_unreachable() => ErrorCode::EngineUnreachable,
                MembershipError::Rest(_) => ErrorCode::EngineFailed,
            },
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.code() {
            ErrorCode::Usage => exit::USAGE,
            _ => exit::FAILURE,
        }
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
        EngineError::ApiPortTaken { .. } | EngineError::ListenPortTaken { .. } | EngineError::NoFreePort => ErrorCode::PortInUse,
        EngineError::FromEnvVar(_)
        | EngineError::Generate(_)
        | EngineError::ConfigXml { .. }
        | EngineError::Spawn { .. }
        | EngineError::ExitedDuringStart { .. }
        | EngineError::NotReady { .. }
        | EngineError::StopFailed { .. }
        | EngineError::Rest(_) => ErrorCode::EngineFailed,
    }
}

/// A REST call a command makes itself: nobody answering is `BOTSYNC_ENGINE_UNREACHABLE`,
/// anything else an engine failure.
impl From<RestError> for Error {
    fn from(error: RestError) -> Self {
        if error.is_unreachable() {
            Error::EngineUnreachable(error)
        } else {
            Error::Engine(EngineError::Rest(error))
        }
    }
}

impl From<crate::folder_path::PathRefused> for Error {
    fn from(refused: crate::folder_path::PathRefused) -> Self {
        Error::PathRefused(refused.0)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
