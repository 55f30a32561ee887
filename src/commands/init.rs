//! `botsync init`: create the root and start the engine. On an initialized root it keeps identity
//! and pairings and only makes sure the engine runs.

use serde::{Deserialize, Serialize};

use super::invite::{InviteOptions, InviteReport};
use super::Report;
use crate::engine::{BinaryLocator, Engine, InitRequest, NetworkProfile, StartOutcome};
use crate::error::{Error, Result};
use crate::root::SyncRoot;

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitOptions {
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
    /// `internet` (default), `lan` or `direct`.
    pub network: Option<String>,
    /// Pairing relay URL. Defaults to `$BOTSYNC_RELAY`, then the public botsync relay.
    pub relay: Option<String>,
    /// Make an offline pairing code instead of using a relay.
    pub offline: Option<bool>,
    /// Make an original-protocol code, for a relay that speaks only that protocol (its relay sees
    /// the whole code). Refused when the relay speaks v2.
    pub original: Option<bool>,
    /// Resolve only once the other machine has paired (or the code expired).
    pub wait: Option<bool>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    pub root: String,
    /// False when the root was initialized already (identity and pairings kept).
    pub created: bool,
    /// `running` once init returns.
    pub state: String,
    /// Whether this call started Syncthing (false if it was running).
    pub started: bool,
    pub device_id: String,
    pub device_name: String,
    pub network: String,
    pub syncthing_version: String,
    pub syncthing_path: String,
    /// The sync protocol port peers connect to.
    pub listen_port: u32,
    /// The background process's PID.
    pub daemon_pid: u32,
    /// The pairing code for the other machine, and how to use it.
    pub invite: InviteReport,
}

/// The engine half of `init`, before a daemon or code exists.
pub struct EngineReady {
    pub engine: Engine,
    pub created: bool,
    pub started: bool,
}

/// Parses the profile before anything touches the disk, so a typo changes nothing.
pub fn parse_network(network: Option<&str>) -> Result<Option<NetworkProfile>> {
    network.map(|n| n.parse::<NetworkProfile>().map_err(|e| Error::Usage(e.to_string()))).transpose()
}

/// Creates (or reopens) the root and brings its engine up; `join` builds on this too.
pub async fn init_engine(options: &InitOptions) -> Result<EngineReady> {
    let network = parse_network(options.network.as_deref())?;
    let root = SyncRoot::locate(options.root.as_deref().map(std::path::Path::new))?;
    // The background process starts after the engine: refuse what would stop it before anything
    // exists (after the root itself, whose problems explain everything else).
    crate::engine::check_root_usable(&root)?;
    crate::daemon::notify::NotifySettings::check_env(&root)?;
    crate::daemon::process::binary()?;
    let outcome = Engine::init(&root, InitRequest { network, locator: BinaryLocator::from_env() }).await?;
    crate::engine::versioning::ensure(&outcome.engine.rest(), None).await?;
    if !outcome.created {
        // A new root has Syncthing's case checks set in its configuration already.
        crate::engine::case_sensitivity::ensure(&outcome.engine.rest(), &root).await?;
    }
    let started = matches!(outcome.start, StartOutcome::Started { .. });
    Ok(EngineReady { engine: outcome.engine, created: outcome.created, started })
}

pub async fn run(options: &InitOptions) -> Result<InitReport> {
    // A malformed relay URL or an impossible route would only be noticed after the root is set
    // up and running.
    let network = parse_network(options.network.as_deref())?;
    super::invite::check_route(options.relay.as_deref(), options.offline, options.original, network).await?;
    let EngineReady { engine, created, started } = init_engine(options).await?;
    let daemon = super::start::start_daemon(engine.root()).await?;
    let invite_options = InviteOptions {
        root: options.root.clone(),
        relay: options.relay.clone(),
        offline: options.offline,
        original: options.original,
        wait: options.wait,
    };
    let invite = super::invite::issue(&engine, &invite_options).await?;
    let state = engine.state();
    Ok(InitReport {
        root: engine.root().path().display().to_string(),
        created,
        state: crate::engine::RunState::Running.as_str().into(),
        started,
        device_id: state.device_id.to_string(),
        device_name: state.device_name.clone(),
        network: state.network.to_string(),
        syncthing_version: state.syncthing.version.to_string(),
        syncthing_path: state.syncthing.path.display().to_string(),
        listen_port: state.listen_port.into(),
        daemon_pid: daemon.pid(),
        invite,
    })
}

impl Report for InitReport {
    fn human(&self) -> String {
        let what = if self.created { "created" } else { "already set up; identity and pairings kept" };
        format!(
            "botsync root {} {what}\ndevice  {} ({})\nengine  Syncthing {} running · network {} · port {}\n{}",
            crate::root::tilde(std::path::Path::new(&self.root)),
            self.device_id,
            self.device_name,
            self.syncthing_version,
            self.network,
            self.listen_port,
            self.invite.human(),
        )
    }
}
