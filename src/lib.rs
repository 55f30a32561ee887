//! botsync: peer-to-peer folder sync for AI agents.
//!
//! The flow reads top-down: `cli` (and `node`, the JS binding) parse a request and hand it to
//! `commands`, which compose the core layers: `engine` (a private Syncthing), `pairing` (codes,
//! the PAKE exchange and the relay client), `relay` (the rendezvous server), and `daemon` (the
//! background process: pairing completion, notifications, fast scans). Each layer has its own
//! error type; `error::Error` is what crosses the CLI and JS boundary, with a stable code.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod daemon;
pub mod device_id;
pub mod engine;
pub mod error;
pub mod net;
pub mod pairing;
pub mod platform;
pub mod relay;
pub mod root;
pub mod state_file;

#[cfg_attr(test, allow(dead_code))]
mod node;

pub use error::{Error, ErrorCode};
pub use root::SyncRoot;

/// The version users see in `--version`, `status` and the relay's banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
