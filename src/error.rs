//! The error that crosses the CLI and JS boundary. Each core layer has its own error enum; this
//! one wraps them and gives every failure a stable code (for agents and the JS `code` property)
//! and an exit status.

use crate::daemon::notify::NotifyError;
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
    NotAvailable,
    Internal,
    /// The root's Syncthing does not answer its API.
    EngineUnreachable,
    /// A wait (such as `waitForSync`) ran out of time.
    Timeout,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Usage => "BOTSYNC_USAGE",
            ErrorCode::NotInitialized => "BOTSYNC_NOT_INITIALIZED",
            ErrorCode::InvalidRoot => "BOTSYNC_INVALID_ROOT",
            ErrorCode::StateCorrupted => "BOTSYNC_STATE_CORRUPTED",
            ErrorCode::Io => "BOTSYNC_IO",
            ErrorCode::NotAvailable => "BOTSYNC_NOT_AVAILABLE",
            ErrorCode::Internal => "BOTSYNC_INTERNAL",
            ErrorCode::EngineUnreachable => "BOTSYNC_ENGINE_UNREACHABLE",
            ErrorCode::Timeout => "BOTSYNC_TIMEOUT",
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
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error("`botsync {0}` is not available in this build yet")]
    NotAvailable(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Usage(_) => ErrorCode::Usage,
            Error::NotInitialized(_) => ErrorCode::NotInitialized,
            Error::Root(_) => ErrorCode::InvalidRoot,
            Error::State(StateFileError::Corrupted { .. }) => ErrorCode::StateCorrupted,
            Error::State(_) => ErrorCode::Io,
            Error::NotAvailable(_) => ErrorCode::NotAvailable,
            Error::Internal(_) => ErrorCode::Internal,
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
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.code() {
            ErrorCode::Usage => exit::USAGE,
            _ => exit::FAILURE,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
