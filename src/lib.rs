//! botsync: peer-to-peer folder sync for AI agents.
//!
//! The flow reads top-down, and dependencies only point down:
//!
//! - `cli` and `node` (the JS binding) parse a request and hand it to
//! - `commands`, one module per command, which compose the core layers:
//! - `engine` (a private Syncthing; `engine::RestClient` is the only way anything talks to its REST
//!   API, `engine::events::EventStream` follows its events), `pairing` (codes, `pairing::wire`
//!   which `relay` shares, the PAKE exchange and the relay client), `relay` (the rendezvous
//!   server), `membership` (who belongs to the mesh: the member list each machine keeps, its
//!   reconciliation into Syncthing, and what a member tells a machine it pairs with) and
//!   `daemon` (the background process: pairing completion, notifications, fast scans; its
//!   process entry is `daemon::entry`, run by `src/bin/daemon.rs` and, in the npm package, by
//!   the launcher in `src/launcher` from the addon);
//! - `mcp` (the `botsync mcp` server) sits beside `commands` and calls them;
//! - the leaves every layer may use: `root`, `state_file`, `device_id`, `net`, `clock`,
//!   `folder_path`, `platform` (processes and file locks, the only OS-specific code) and
//!   `error_code` (the stable `BOTSYNC_*` codes).
//!
//! No core layer imports `commands` or `error`. Each layer has its own error type;
//! `error::Error` wraps them where they cross the CLI and JS boundary and gives each a stable code.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod daemon;
pub mod device_id;
pub mod engine;
pub mod error;
pub mod membership;
pub mod error_code;
pub mod folder_path;
pub mod mcp;
pub mod net;
pub mod pairing;
pub mod platform;
pub mod relay;
pub mod root;
pub mod state_file;

#[cfg(feature = "node")]
#[cfg_attr(test, allow(dead_code))]
mod node;

pub use error::{Error, ErrorCode};
pub use root::SyncRoot;

/// The version users see in `--version`, `status` and the relay's banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
