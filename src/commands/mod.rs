//! One module per command. Each takes typed options and returns a typed report; the CLI renders
//! reports as text or JSON and the Node binding returns them as plain objects, so both surfaces
//! run exactly the same code.

pub mod relay;
pub mod secret_input;
pub mod demo;
pub mod doctor;
pub mod init;
pub mod invite;
pub mod join;
pub mod peers;
pub mod remove;
pub mod start;
pub mod status;
pub mod stop;
pub mod versions;
pub mod wait;
pub mod watch;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::root::SyncRoot;

/// A command's result as the CLI shows it: `--json` prints the serialized report, otherwise
/// `human()` is printed.
pub trait Report: Serialize {
    fn human(&self) -> String;

    /// The exit status when the command itself succeeded (`doctor` exits 1 when a check fails).
    fn exit_status(&self) -> i32 {
        crate::error::exit::OK
    }
}

/// The option every command shares: which root it acts on.
#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootOptions {
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
}

impl RootOptions {
    pub fn locate(&self) -> Result<SyncRoot> {
        Ok(SyncRoot::locate(self.root.as_deref().map(std::path::Path::new))?)
    }
}
