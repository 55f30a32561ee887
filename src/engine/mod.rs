//! The Syncthing engine: obtaining the binary, configuring it, running it and talking to its REST API.
//!
//! A root's Syncthing lives in `<root>/.botsync/syncthing` (its "home"). `Engine::init` creates and
//! configures it (config.xml is edited once, before the first start); afterwards every setting goes
//! through `RestClient`. `Engine::start` / `Engine::stop` are idempotent and only ever touch
//! processes that the OS confirms are this root's Syncthing (see `crate::platform`).

pub mod api_key;
pub mod binary;
pub mod case_sensitivity;
pub mod config_xml;
pub mod conformance;
pub mod events;
pub mod gui_login;
pub mod ignores;
pub mod manifest;
pub mod peers;
pub mod ports;
pub mod process;
pub mod profile;
pub mod rest;
pub mod state;
pub mod versioning;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use api_key::ApiKey;
pub use binary::{BinaryLocator, SyncthingBinary, SyncthingVersion};
pub use profile::{NetworkProfile, UnknownProfile};
pub use rest::{RestClient, RestError};
pub use state::EngineState;

use crate::device_id::DeviceId;
use crate::root::{SharedFolder, SyncRoot};
use crate::state_file::{self, StateFileError};
use config_xml::{ConfigEdit, ConfigXml};
use gui_login::GuiLogin;
use process::PidRecord;

/// How often readiness is polled: fine enough that `init` returns within a poll of Syncthing
/// answering, cheap because a refused loopback connect costs microseconds.
const READY_POLL: Duration = Duration::from_millis(20);
/// A first start on a slow disk can take a while (2.x migrates/creates its database).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// `status` must not hang on a wedged worker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{} is not a botsync root yet: run `botsync init` first", .0.display())]
    NotInitialized(PathBuf),
    #[error("{} exists and is not a directory; choose another --root", .0.display())]
    RootNotDirectory(PathBuf),
    #[error("cannot write to {}: {reason}; choose another --root or fix its permissions", .path.display())]
    RootNotWritable { path: PathBuf, reason: String },
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error(transparent)]
    UnknownProfile(#[from] UnknownProfile),
    #[error("Syncthing not found at {}", .path.display())]
    SyncthingMissing { path: PathBuf },
    #[error("{} cannot be run as Syncthing: {reason}", .path.display())]
    SyncthingNotExecutable { path: PathBuf, reason: String },
    #[error("Syncthing at {} is {version} but botsync needs v1.19 or newer; upgrade it", .path.display())]
    SyncthingTooOld { path: PathBuf, version: SyncthingVersion },
    #[error("{0} (set by BOTSYNC_SYNCTHING; fix or unset it)")]
    FromEnvVar(Box<EngineError>),
    #[error("cannot get Syncthing: {reason}{}. Install it with your package manager (apt install syncthing, brew install syncthing, …) or set BOTSYNC_SYNCTHING to a Syncthing binary", rejected_note(.rejected))]
    SyncthingNotFound { reason: String, rejected: Vec<String> },
    #[error("downloading {url} failed: {reason}")]
    DownloadFailed { url: String, reason: String },
    #[error("{file} failed Syncthing's release signature check ({reason}); nothing was installed")]
    SignatureInvalid { file: String, reason: String },
    #[error("Syncthing {version} at {} is newer than botsync knows and lacks what botsync uses ({missing}); install Syncthing 1.19–2.x or set BOTSYNC_SYNCTHING to one", .path.display())]
    SyncthingUnknownCli { path: PathBuf, version: SyncthingVersion, missing: String },
    #[error("cannot unpack {}: {reason}", .file.display())]
    Unpack { file: PathBuf, reason: String },
    #[error("`syncthing generate` failed: {0}")]
    Generate(String),
    #[error("Syncthing's configuration {} is unusable: {reason}", .path.display())]
    ConfigXml { path: PathBuf, reason: String },
    #[error("Syncthing's configuration is missing from {}; restore it from a backup, or move .botsync away and run `botsync init` again (this makes a new identity)", .0.display())]
    ConfigMissing(PathBuf),
    #[error("port 127.0.0.1:{port} recorded for this root's Syncthing API is taken by another program; stop that program and run `botsync start` again")]
    ApiPortTaken { port: u16 },
    #[error("port {port} recorded for this root's Syncthing to receive peers on is taken by another program; stop that program and run `botsync start` again")]
    ListenPortTaken { port: u16 },
    #[error("no free port found for Syncthing")]
    NoFreePort,
    #[error("cannot start {}: {source}", .binary.display())]
    Spawn { binary: PathBuf, source: io::Error },
    #[error("Syncthing exited during startup; its log says: {log_tail}")]
    ExitedDuringStart { log_tail: String },
    #[error("this root's Syncthing database was last used by Syncthing {used}, and {found} at {} cannot read it; set BOTSYNC_SYNCTHING to a Syncthing 2.x (or remove the older one from PATH)", .path.display())]
    SyncthingDowngrade { used: SyncthingVersion, found: SyncthingVersion, path: PathBuf },
    #[error("Syncthing did not answer within {waited_s} s; its log says: {log_tail}")]
    NotReady { waited_s: u64, log_tail: String },
    #[error("could not stop Syncthing processes {pids:?}")]
    StopFailed { pids: Vec<u32> },
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn rejected_note(rejected: &[String]) -> String {
    if rejected.is_empty() {
        String::new()
    } else {
        format!(" (not usable: {})", rejected.join("; "))
    }
}

impl EngineError {
    pub fn io(context: impl Into<String>, source: io::Error) -> EngineError {
        EngineError::Io { context: context.into(), source }
    }

    fn via_env_var(self) -> EngineError {
        EngineError::FromEnvVar(Box::new(self))
    }

    /// The error behind a `FromEnvVar` wrapper (for classifying it).
    pub fn innermost(&self) -> &EngineError {
        match self {
            EngineError::FromEnvVar(inner) => inner.innermost(),
            other => other,
        }
    }
}

/// `error: source: source…` on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = inner.source();
    }
    text
}

/// Where a root's engine is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// No process of ours runs.
    Stopped,
    /// Syncthing's monitor is alive but the API does not answer yet (starting, or the worker is
    /// being restarted after a crash).
    Restarting,
    /// The API answers with our key.
    Running,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Stopped => "stopped",
            RunState::Restarting => "restarting",
            RunState::Running => "running",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// We spawned Syncthing (the monitor's PID) and it answers.
    Started { monitor_pid: u32 },
    /// It was running (or restarting, and now answers) already.
    AlreadyRunning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOutcome {
    /// The PIDs that were ours and are gone now; empty if nothing ran.
    pub stopped: Vec<u32>,
}

pub struct InitRequest {
    /// `None` keeps the recorded profile of an initialized root, or `internet` for a new one.
    pub network: Option<NetworkProfile>,
    pub locator: BinaryLocator,
}

pub struct InitOutcome {
    pub engine: Engine,
    /// False when the root was initialized already (identity and pairings kept).
    pub created: bool,
    pub start: StartOutcome,
}

/// One root's Syncthing.
#[derive(Debug, Clone)]
pub struct Engine {
    root: SyncRoot,
    state: EngineState,
}

impl Engine {
    /// The engine of an initialized root, `None` if the root was never initialized. An empty or
    /// corrupted config.json is an error, never "not initialized".
    pub fn open(root: &SyncRoot) -> Result<Option<Engine>, EngineError> {
        Ok(EngineState::load(&root.config_file())?.map(|state| Engine { root: root.clone(), state }))
    }

    pub fn load(root: &SyncRoot) -> Result<Engine, EngineError> {
        Self::open(root)?.ok_or_else(|| EngineError::NotInitialized(root.path().to_owned()))
    }

    /// Creates the root (folders, manifest, Syncthing identity and configuration) and starts
    /// Syncthing. On an initialized root it keeps identity and pairings and only makes sure it runs
    /// (applying `network` if it differs). On failure nothing it created is left behind and no
    /// process of ours runs.
    pub async fn init(root: &SyncRoot, request: InitRequest) -> Result<InitOutcome, EngineError> {
        let existed = check_root_usable(root)?;
        if let Some(mut engine) = Self::open(root)? {
            let start = engine.start(&request.locator).await?;
            if let Some(network) = request.network.filter(|n| *n != engine.state.network) {
                engine.set_network(network).await?;
            }
            return Ok(InitOutcome { engine, created: false, start });
        }
        let network = request.network.unwrap_or_default();
        let binary = request.locator.locate().await?;
        let gui_port = ports::pick(&[], ports::loopback_tcp_free).ok_or(EngineError::NoFreePort)?;
        let listen_port = ports::pick(&[gui_port], |p| ports::sync_port_free(p, network.uses_udp())).ok_or(EngineError::NoFreePort)?;

        let mut rollback = Rollback::default();
        let result = async {
            create_layout(root, existed, &mut rollback)?;
            for created in ignores::write_defaults(root)? {
                rollback.created(created);
            }
            let home = home_dir(root);
            generate(&binary, &home)?;
            let device_id = device_id_from_cert(&home.join("cert.pem"))?;
            let api_key = ApiKey::generate();
            let device_name = hostname();
            let profile = network.options(listen_port);
            let mut xml = ConfigXml::load(&home.join("config.xml"))?;
            let case_sensitive = case_sensitivity::folders(root).into_iter().filter_map(|(id, dir)| Some((id, case_sensitivity::probe(&dir)?))).collect();
            xml.apply(&ConfigEdit {
                device_id: &device_id.to_string(),
                device_name: &device_name,
                gui_port,
                api_key: api_key.expose(),
                profile: &profile,
                root,
                case_sensitive: &case_sensitive,
            })?;
            let login = GuiLogin::generate();
            xml.set_gui_login(&login.user, &login.bcrypt_hash());
            xml.save()?;
            let state = EngineState {
                network,
                gui_port,
                listen_port,
                api_key,
                device_id,
                device_name,
                syncthing: binary.clone(),
                other: Default::default(),
            };
            state.save(&root.config_file())?;
            let manifest = root.manifest_file();
            if !manifest.exists() && manifest::write(&manifest)? {
                rollback.created(manifest);
            }
            let mut engine = Engine { root: root.clone(), state };
            let start = engine.start(&request.locator).await?;
            Ok::<_, EngineError>((engine, start))
        }
        .await;
        match result {
            Ok((engine, start)) => {
                rollback.disarm();
                Ok(InitOutcome { engine, created: true, start })
            }
            Err(error) => {
                let home = home_dir(root);
                let leftovers = process::our_processes(&home, process::read_pid_record(&process::pid_path(&root.state_dir())));
                let _ = terminate(leftovers, home).await;
                drop(rollback);
                Err(error)
            }
        }
    }

    /// Starts Syncthing (with its monitor) unless it already runs; waits until its API answers.
    /// Idempotent. This is where `botsync start` and `init` bring the engine up; the background
    /// process is started next to the call in `commands::start`.
    pub async fn start(&mut self, locator: &BinaryLocator) -> Result<StartOutcome, EngineError> {
        // Two starts at once (`botsync start` twice, `invite` next to `start`) would each see
        // "stopped" and spawn a Syncthing on the same home; the second waits here instead.
        let _lock = StartLock::acquire(&self.root.state_dir()).await?;
        let home = self.home();
        match self.probe().await {
            RunState::Running if self.live_monitor().is_some() => {
                self.lock_running_gui().await?;
                return Ok(StartOutcome::AlreadyRunning);
            }
            // A worker whose monitor was killed answers, but nothing would restart it after a
            // crash: it is replaced below by a monitored one.
            RunState::Running => {}
            RunState::Restarting => {
                if let Some(monitor) = self.live_monitor() {
                    self.wait_ready(monitor).await?;
                    self.lock_running_gui().await?;
                    return Ok(StartOutcome::AlreadyRunning);
                }
            }
            RunState::Stopped => {}
        }
        // A worker whose monitor was killed, not answering: clear it before starting afresh.
        let leftovers = process::our_processes(&home, None);
        if !leftovers.is_empty() {
            terminate(leftovers, home.clone()).await?;
        }
        if !home.join("config.xml").is_file() || !home.join("cert.pem").is_file() {
            return Err(EngineError::ConfigMissing(home));
        }
        lock_gui_before_start(&home)?;
        let binary = locator.resolve(Some(&self.state.syncthing)).await?;
        let used = self.state.syncthing.version;
        if used.is_v2_or_later() && !binary.version.is_v2_or_later() && home.join(binary::V2_DATABASE).exists() {
            return Err(EngineError::SyncthingDowngrade { used, found: binary.version, path: binary.path });
        }
        if binary != self.state.syncthing {
            self.state.syncthing = binary;
            self.state.save(&self.root.config_file())?;
        }
        if !ports::loopback_tcp_free(self.state.gui_port) {
            return Err(EngineError::ApiPortTaken { port: self.state.gui_port });
        }
        // Syncthing would start anyway and only log that it cannot listen: peers could never
        // reach this machine while `status` said "running".
        if !ports::sync_port_free(self.state.listen_port, self.state.network.uses_udp()) {
            return Err(EngineError::ListenPortTaken { port: self.state.listen_port });
        }
        let log = process::log_path(&self.root.state_dir());
        let monitor = process::spawn_syncthing(&process::SpawnRequest {
            binary: &self.state.syncthing.path,
            home: &home,
            gui_port: self.state.gui_port,
            api_key: &self.state.api_key,
            log: &log,
        })?;
        let pid_file = process::pid_path(&self.root.state_dir());
        let ready = async {
            state_file::write_json(&pid_file, &PidRecord { monitor })?;
            self.wait_ready(monitor).await
        }
        .await;
        match ready {
            Ok(()) => Ok(StartOutcome::Started { monitor_pid: monitor }),
            Err(error) => {
                let ours = process::our_processes(&home, Some(PidRecord { monitor }));
                let _ = terminate(ours, home).await;
                let _ = fs::remove_file(&pid_file);
                Err(error)
            }
        }
    }

    /// A root set up before botsync locked the GUI, found running: Syncthing takes the login
    /// through REST (and hashes the password itself), so it is locked without a restart.
    async fn lock_running_gui(&self) -> Result<(), EngineError> {
        if ConfigXml::load(&self.home().join("config.xml"))?.has_gui_login() {
            return Ok(());
        }
        let login = GuiLogin::generate();
        self.rest().set_gui_login(&login.user, login.expose_password()).await?;
        self.await_gui_restart().await
    }

    /// A changed GUI configuration makes Syncthing close its API listener and open it again just
    /// after answering: the next request (e.g. `start`'s versioning check) would hit the gap.
    /// Waits briefly for the listener to go down, then until it answers again (`wait_ready`).
    async fn await_gui_restart(&self) -> Result<(), EngineError> {
        let rest = self.rest().with_timeout(PROBE_TIMEOUT);
        let went_down = Instant::now() + Duration::from_secs(1);
        while Instant::now() < went_down && rest.ping().await.is_ok() {
            tokio::time::sleep(READY_POLL).await;
        }
        match self.live_monitor() {
            Some(monitor) => self.wait_ready(monitor).await,
            None => Err(EngineError::ExitedDuringStart {
                log_tail: process::log_tail(&process::log_path(&self.root.state_dir()), 4),
            }),
        }
    }

    /// Polls the API every `READY_POLL` until it answers with our key; fails early if the monitor
    /// exits.
    async fn wait_ready(&self, monitor: u32) -> Result<(), EngineError> {
        let rest = self.rest().with_timeout(PROBE_TIMEOUT);
        let home = self.home();
        let mut started = Instant::now();
        let mut told = false;
        loop {
            match rest.ping().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_forbidden() => return Err(EngineError::ApiPortTaken { port: self.state.gui_port }),
                // 2.x's first start after 1.x migrates the database, for as long as it takes:
                // killing it then only makes the next start begin again.
                Err(RestError::Migrating) => {
                    if !told {
                        binary::notice(&RestError::Migrating.to_string());
                        told = true;
                    }
                    started = Instant::now();
                }
                Err(_) => {}
            }
            let log = process::log_path(&self.root.state_dir());
            if !process::is_ours(monitor, &home) {
                return Err(EngineError::ExitedDuringStart { log_tail: process::log_tail(&log, 4) });
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(EngineError::NotReady { waited_s: READY_TIMEOUT.as_secs(), log_tail: process::log_tail(&log, 4) });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Stops this root's Syncthing (monitor and worker) and waits until they are gone. Idempotent.
    pub async fn stop(&self) -> Result<StopOutcome, EngineError> {
        let home = self.home();
        let pid_file = process::pid_path(&self.root.state_dir());
        let ours = process::our_processes(&home, process::read_pid_record(&pid_file));
        if !ours.is_empty() {
            terminate(ours.clone(), home).await?;
        }
        match fs::remove_file(&pid_file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(format!("removing {}", pid_file.display()), e)),
        }
        Ok(StopOutcome { stopped: ours })
    }

    /// The truth about the engine right now (see `RunState`).
    pub async fn probe(&self) -> RunState {
        let rest = self.rest().with_timeout(PROBE_TIMEOUT);
        if rest.ping().await.is_ok() {
            return RunState::Running;
        }
        // A monitor alive and its worker not answering yet (just started, or being restarted).
        if self.live_monitor().is_some() {
            RunState::Restarting
        } else {
            RunState::Stopped
        }
    }

    /// The monitor from the PID file, or (file missing or damaged) the process of ours that is not
    /// a worker.
    fn live_monitor(&self) -> Option<u32> {
        let home = self.home();
        let recorded = process::read_pid_record(&process::pid_path(&self.root.state_dir())).map(|r| r.monitor);
        if let Some(pid) = recorded.filter(|&pid| process::is_ours(pid, &home)) {
            return Some(pid);
        }
        process::unmonitored_of(&home)
    }

    /// The running monitor and worker PIDs (either may be absent).
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        let monitor = self.live_monitor();
        let worker = monitor.and_then(|m| process::worker_of(m, &self.home()));
        (monitor, worker)
    }

    /// Switches the network profile of a running engine through REST and records it.
    pub async fn set_network(&mut self, network: NetworkProfile) -> Result<(), EngineError> {
        let options = network.options(self.state.listen_port);
        self.rest().patch_options(&options.to_rest_patch()).await?;
        self.state.network = network;
        self.state.save(&self.root.config_file())
    }

    /// A REST client for this root's Syncthing.
    pub fn rest(&self) -> RestClient {
        RestClient::new(self.state.gui_port, self.state.api_key.clone())
    }

    pub fn root(&self) -> &SyncRoot {
        &self.root
    }

    pub fn state(&self) -> &EngineState {
        &self.state
    }

    pub fn device_id(&self) -> DeviceId {
        self.state.device_id
    }

    pub fn device_name(&self) -> &str {
        &self.state.device_name
    }

    pub fn network(&self) -> NetworkProfile {
        self.state.network
    }

    pub fn listen_port(&self) -> u16 {
        self.state.listen_port
    }

    pub fn gui_port(&self) -> u16 {
        self.state.gui_port
    }

    /// Syncthing's home: `<root>/.botsync/syncthing`.
    pub fn home(&self) -> PathBuf {
        home_dir(&self.root)
    }

    pub fn log_file(&self) -> PathBuf {
        process::log_path(&self.root.state_dir())
    }

    /// Addresses a peer can dial us at without discovery (`tcp://<ip>:<listen port>` for every
    /// interface), for the pairing exchange.
    pub fn direct_addresses(&self) -> Vec<String> {
        crate::net::sync_addresses(self.state.listen_port)
    }

    /// Makes `id` a peer: a device at `addresses` (plus discovery where the profile has it) that
    /// shares all three folders with us. Never an introducer: which machines belong to the mesh
    /// is botsync's member list (`membership`), which every member reconciles into its own
    /// Syncthing, so a device added through any member still reaches every member, and one
    /// removed stays removed. See `add_peers`.
    pub async fn add_peer(&self, id: &DeviceId, name: &str, addresses: &[String]) -> Result<(), EngineError> {
        self.add_peers(&[peers::NewPeer { device_id: *id, name: name.to_string(), addresses: addresses.to_vec() }]).await
    }

    /// Makes every one of `peers` a peer as `add_peer` does, in two configuration changes however
    /// many peers the batch has (`peers`): the devices, paused unless connected, with their shares
    /// of the three folders and of the members folder (created here if Syncthing has none yet),
    /// then their resume, so a first connection comes only once every folder has restarted for it.
    pub async fn add_peers(&self, peers: &[peers::NewPeer]) -> Result<(), EngineError> {
        if peers.is_empty() {
            return Ok(());
        }
        let rest = self.rest();
        let mut config: serde_json::Value = rest.get_json("/rest/config", &[]).await?;
        let peers: Vec<peers::NewPeer> = peers.iter().map(|p| peers::NewPeer { addresses: self.peer_addresses(&p.addresses), ..p.clone() }).collect();
        let folder_ids: Vec<&str> = SharedFolder::ALL.iter().map(|f| f.folder_id()).chain([MEMBERS_FOLDER_ID]).collect();
        let dir = members_dir(&self.root);
        let members_folder = |devices: &[String]| self.members_folder(&dir, devices);
        let has_members_folder = config["folders"].as_array().is_some_and(|f| f.iter().any(|f| f["id"] == MEMBERS_FOLDER_ID));
        if !has_members_folder {
            create_members_dir(&dir).map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        }
        let changed = peers::apply(&mut config, &self.state.device_id, &peers, &folder_ids, Some((MEMBERS_FOLDER_ID, &members_folder)))
            .map_err(|reason| RestError::Decode { path: "/rest/config".into(), reason })?;
        let connected = rest.connections().await?.connected_ids();
        let held = peers::hold_unconnected(&mut config, &self.state.device_id, &peers, &connected);
        if changed || !held.is_empty() {
            rest.put_json("/rest/config", &config).await?;
        }
        if !held.is_empty() {
            peers::resume(&mut config, &held);
            rest.put_json("/rest/config", &config).await?;
        }
        Ok(())
    }

    /// The members folder's configuration, shared with `devices`.
    fn members_folder(&self, dir: &Path, devices: &[String]) -> serde_json::Value {
        serde_json::json!({
            "id": MEMBERS_FOLDER_ID,
            "label": "botsync members",
            "path": dir.display().to_string(),
            "type": "sendreceive",
            "devices": devices.iter().map(|id| serde_json::json!({ "deviceID": id })).collect::<Vec<_>>(),
            "fsWatcherEnabled": true,
            "fsWatcherDelayS": config_xml::FS_WATCHER_DELAY_S,
            // Each ledger is written whole by one machine; a conflict copy would only be noise.
            "maxConflicts": 0,
            "caseSensitiveFS": case_sensitivity::probe(dir).unwrap_or(false),
        })
    }

    /// Configures the members folder (see `membership`) if Syncthing does not have it yet,
    /// shared with every configured device. A new peer gets it in the same configuration change
    /// as its device (`add_peers`), like the three folders: a folder Syncthing learns of, or
    /// restarts for a new device, while a peer sends its index makes Syncthing drop that connection.
    pub async fn ensure_members_folder(&self) -> Result<(), EngineError> {
        let rest = self.rest();
        if rest.folder(MEMBERS_FOLDER_ID).await?.is_some() {
            return Ok(());
        }
        let dir = members_dir(&self.root);
        create_members_dir(&dir).map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let devices: Vec<String> = std::iter::once(self.state.device_id)
            .chain(rest.devices().await?.into_iter().map(|d| d.device_id).filter(|id| *id != self.state.device_id))
            .map(|id| id.to_string())
            .collect();
        let folder = self.members_folder(&dir, &devices);
        Ok(rest.put_folder(MEMBERS_FOLDER_ID, &folder).await?)
    }

    /// Unpauses a peer `add_peers` left paused (see `membership::Reconciled::paused`).
    pub async fn resume_peer(&self, id: &DeviceId) -> Result<(), EngineError> {
        Ok(self.rest().patch_json(&format!("/rest/config/devices/{id}"), &serde_json::json!({ "paused": false })).await?)
    }

    /// Records where a peer can be dialled (for example once it has connected to us).
    pub async fn set_peer_addresses(&self, id: &DeviceId, addresses: &[String]) -> Result<(), EngineError> {
        let addresses = self.peer_addresses(addresses);
        Ok(self.rest().patch_json(&format!("/rest/config/devices/{id}"), &serde_json::json!({ "addresses": addresses })).await?)
    }

    /// `addresses`, plus `dynamic` (discovery) where the profile has discovery or nothing else
    /// is known.
    fn peer_addresses(&self, addresses: &[String]) -> Vec<String> {
        let mut all = addresses.to_vec();
        if self.state.network != NetworkProfile::Direct || all.is_empty() {
            all.push("dynamic".into());
        }
        all.dedup();
        all
    }

    /// The configured peers as config.xml has them (works while stopped): (id, name, addresses).
    pub fn configured_peers(&self) -> Result<Vec<(String, String, Vec<String>)>, EngineError> {
        Ok(ConfigXml::load(&self.home().join("config.xml"))?.peers(&self.state.device_id.to_string()))
    }
}

/// Gives a root set up before botsync locked the GUI its login while Syncthing is stopped, so it
/// never serves an open GUI again (see `gui_login`).
fn lock_gui_before_start(home: &Path) -> Result<(), EngineError> {
    let mut xml = ConfigXml::load(&home.join("config.xml"))?;
    if !xml.has_gui_login() {
        let login = GuiLogin::generate();
        xml.set_gui_login(&login.user, &login.bcrypt_hash());
        xml.save()?;
    }
    Ok(())
}

/// Serializes `Engine::start` per root with an exclusive lock on `.botsync/engine.lock`, held
/// until dropped (or until the process dies, however it dies).
struct StartLock {
    _lock: crate::platform::lock::LockFile,
}

impl StartLock {
    async fn acquire(state_dir: &Path) -> Result<StartLock, EngineError> {
        let path = state_dir.join("engine.lock");
        match crate::platform::lock::LockFile::acquire(&path, READY_TIMEOUT).await {
            Ok(Some(lock)) => Ok(StartLock { _lock: lock }),
            Ok(None) => Err(EngineError::io(
                format!("waiting for another start of this root ({} is held)", path.display()),
                io::Error::from(io::ErrorKind::TimedOut),
            )),
            Err(e) => Err(EngineError::io(format!("opening {}", path.display()), e)),
        }
    }
}

/// `process::terminate` off the async threads: it polls for up to 9 s.
async fn terminate(pids: Vec<u32>, home: PathBuf) -> Result<(), EngineError> {
    tokio::task::spawn_blocking(move || process::terminate(&pids, &home))
        .await
        .map_err(|e| EngineError::io("waiting for Syncthing to stop", io::Error::other(e.to_string())))?
}

/// Syncthing's ID for the folder botsync's member list travels in (`membership`).
pub const MEMBERS_FOLDER_ID: &str = "botsync-members";

/// `<root>/.botsync/members`: the members folder, private like the rest of `.botsync`.
pub fn members_dir(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("members")
}

/// The members folder and Syncthing's marker in it, 0700.
pub fn create_members_dir(dir: &Path) -> io::Result<()> {
    state_file::create_private_dir(&dir.join(".stfolder"))
}

pub fn home_dir(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("syncthing")
}

/// Whether the root exists; fails if it (or the directory it would be created in) is not a
/// writable directory. Changes nothing on disk.
pub fn check_root_usable(root: &SyncRoot) -> Result<bool, EngineError> {
    let path = root.path();
    match fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => Err(EngineError::RootNotDirectory(path.to_owned())),
        Ok(_) => probe_writable(path).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let ancestor = path.ancestors().skip(1).find(|a| a.exists()).unwrap_or(Path::new("/"));
            if !ancestor.is_dir() {
                return Err(EngineError::RootNotDirectory(ancestor.to_owned()));
            }
            probe_writable(ancestor).map(|()| false)
        }
        Err(e) => Err(EngineError::RootNotWritable { path: path.to_owned(), reason: e.to_string() }),
    }
}

/// access(2) rather than a probe file, so a refused `init` leaves even the directory's mtime alone.
/// It also reports read-only file systems, which permission bits (and root) would not.
pub fn probe_writable(dir: &Path) -> Result<(), EngineError> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| EngineError::RootNotWritable { path: dir.to_owned(), reason: "path contains a NUL byte".into() })?;
    // SAFETY: access only reads the NUL-terminated path.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(EngineError::RootNotWritable { path: dir.to_owned(), reason: io::Error::last_os_error().to_string() })
    }
}

/// Removes what a failed `init` created, newest first.
#[derive(Default)]
struct Rollback {
    created: Vec<PathBuf>,
    disarmed: bool,
}

impl Rollback {
    fn created(&mut self, path: PathBuf) {
        self.created.push(path);
    }

    fn disarm(mut self) {
        self.disarmed = true;
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if self.disarmed {
            return;
        }
        for path in self.created.iter().rev() {
            let _ = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
        }
    }
}

/// Creates the root, `.botsync` (0700) and the three folders with Syncthing's folder markers.
fn create_layout(root: &SyncRoot, root_existed: bool, rollback: &mut Rollback) -> Result<(), EngineError> {
    let mkdir = |path: &Path| fs::create_dir(path).map_err(|e| EngineError::io(format!("creating {}", path.display()), e));
    if !root_existed {
        // Record the topmost directory we create, so a rollback removes the whole new branch.
        let topmost = root.path().ancestors().take_while(|a| !a.exists()).last().unwrap_or(root.path()).to_owned();
        fs::create_dir_all(root.path()).map_err(|e| EngineError::io(format!("creating {}", root.path().display()), e))?;
        rollback.created(topmost);
    }
    let state_dir = root.state_dir();
    if !state_dir.exists() {
        state_file::create_private_dir(&state_dir).map_err(|e| EngineError::io(format!("creating {}", state_dir.display()), e))?;
        rollback.created(state_dir);
    }
    for folder in SharedFolder::ALL {
        let dir = root.folder_dir(folder);
        if !dir.exists() {
            mkdir(&dir)?;
            rollback.created(dir.clone());
        }
        let marker = dir.join(".stfolder");
        if !marker.exists() {
            mkdir(&marker)?;
            rollback.created(marker);
        }
    }
    Ok(())
}

/// `syncthing generate`: Syncthing writes its own key, certificate and a config.xml of the schema
/// version it understands. Idempotent: an existing key is kept.
fn generate(binary: &SyncthingBinary, home: &Path) -> Result<(), EngineError> {
    let output = process::generate_command(&binary.path, binary.version, home)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| EngineError::Generate(e.to_string()))?;
    if !output.status.success() || !home.join("config.xml").is_file() {
        let text = String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(EngineError::Generate(format!("{} ({})", output.status, lines[lines.len().saturating_sub(3)..].join(" | "))));
    }
    Ok(())
}

/// A device ID is the SHA-256 of the device certificate (DER).
pub fn device_id_from_cert(cert_pem: &Path) -> Result<DeviceId, EngineError> {
    let text = fs::read_to_string(cert_pem).map_err(|e| EngineError::io(format!("reading {}", cert_pem.display()), e))?;
    let bad = |reason: &str| EngineError::ConfigXml { path: cert_pem.to_owned(), reason: reason.into() };
    let body = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .ok_or_else(|| bad("no certificate in it"))?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = data_encoding::BASE64.decode(compact.as_bytes()).map_err(|_| bad("certificate is not valid base64"))?;
    Ok(DeviceId::from_bytes(Sha256::digest(&der).into()))
}

/// This machine's name, for Syncthing's device name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).trim().to_string()
    } else {
        String::new()
    };
    if name.is_empty() {
        "botsync".into()
    } else {
        name
    }
}
