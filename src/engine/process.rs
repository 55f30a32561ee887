//! Running Syncthing: spawned detached (own session, no stdio of the caller) with its monitor, so
//! a crashed or killed worker is restarted by the monitor. Processes are only ever signalled after
//! the OS confirms they are ours (`crate::platform`): alive (not a zombie) and started with our
//! `--home=`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::api_key::ApiKey;
use super::EngineError;
use crate::platform::process::{self as platform, Identity};

/// How long a polite SIGTERM gets before SIGKILL. Syncthing 1.19 exits within a second unless a
/// peer is redialing it mid-shutdown, when one of its services waits out a 10 s stop timeout;
/// its database is crash-safe, so waiting that out buys nothing.
const TERM_GRACE: Duration = Duration::from_secs(4);
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// Set by Syncthing's monitor (1.x and 2.x) in its worker's environment; see `unmonitored_of`.
pub const MONITORED_ENV: &str = "STMONITORED";
/// A log this big is moved aside at the next start.
const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// The PIDs we started, in `<root>/.botsync/syncthing.pid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    /// Syncthing's monitor process (our direct child); the worker is its child.
    pub monitor: u32,
}

pub fn read_pid_record(path: &Path) -> Option<PidRecord> {
    // A garbled PID file is no reason to refuse `stop`: the process scan by home dir still finds ours.
    crate::state_file::read_json(path).ok().flatten()
}

/// The `--home=` argument that marks a process as one of ours.
pub fn home_arg(home: &Path) -> String {
    format!("--home={}", home.display())
}

pub struct SpawnRequest<'a> {
    pub binary: &'a Path,
    pub home: &'a Path,
    pub gui_port: u16,
    pub api_key: &'a ApiKey,
    pub log: &'a Path,
}

/// Variables from the caller's environment that would point Syncthing elsewhere or change how it
/// runs (the 2.x ones too: `STLOGFILE` would take its log away from the file we read it from,
/// `STPAUSED` would start every peer paused). See `conformance` for where each is read.
pub const CLEARED_ENV: [&str; 10] =
    ["STHOMEDIR", "STCONFDIR", "STDATADIR", "STNORESTART", "STMONITORED", "STNODEFAULTFOLDER", "STGUIASSETS", "STLOGFILE", "STPAUSED", "STALLOWNEWERCONFIG"];

/// `syncthing serve --home=<home>`, with the API address and key in the environment, never in
/// argv (any local user can read argv). The same line for 1.x and 2.x (see `conformance`).
pub fn serve_command(request: &SpawnRequest<'_>) -> Command {
    let mut command = Command::new(request.binary);
    command
        .arg("serve")
        .arg(home_arg(request.home))
        .current_dir(request.home)
        .env("STGUIAPIKEY", request.api_key.expose())
        .env("STGUIADDRESS", format!("127.0.0.1:{}", request.gui_port))
        .env("STNOUPGRADE", "1");
    for name in CLEARED_ENV {
        command.env_remove(name);
    }
    command
}

/// `syncthing generate --home=<home>`: 1.x needs `--no-default-folder` (or its variable) not to
/// create a "default" folder; 2.x creates none and rejects the flag as unknown.
pub fn generate_command(binary: &Path, version: super::SyncthingVersion, home: &Path) -> Command {
    let mut command = Command::new(binary);
    command.arg("generate").arg(home_arg(home));
    if !version.is_v2_or_later() {
        command.arg("--no-default-folder");
    }
    command.env("STNODEFAULTFOLDER", "1").env("STNOUPGRADE", "1");
    for name in CLEARED_ENV.into_iter().filter(|name| *name != "STNODEFAULTFOLDER") {
        command.env_remove(name);
    }
    command
}

/// Starts `serve_command` with its monitor, detached (see `spawn_detached`). Returns the
/// monitor's PID.
pub fn spawn_syncthing(request: &SpawnRequest<'_>) -> Result<u32, EngineError> {
    spawn_detached(serve_command(request), request.log).map_err(|e| match e {
        DetachedSpawnError::Log(source) => EngineError::io(format!("opening {}", request.log.display()), source),
        DetachedSpawnError::Spawn(source) => EngineError::Spawn { binary: request.binary.to_owned(), source },
    })
}

pub use crate::platform::process::DetachedSpawnError;

/// Secrets a botsync command may have been handed in its environment (see
/// `commands::secret_input`): nothing botsync starts needs them, so none inherits them.
pub const NEVER_INHERITED: [&str; 2] = ["BOTSYNC_CODE", "BOTSYNC_RELAY_REDIS"];

/// `platform::process::spawn_detached`, with the log moved aside first when it has grown big and
/// the caller's secrets removed from the child's environment.
pub fn spawn_detached(mut command: Command, log: &Path) -> Result<u32, DetachedSpawnError> {
    rotate_log(log);
    for name in NEVER_INHERITED {
        command.env_remove(name);
    }
    crate::platform::process::spawn_detached(command, log)
}

fn rotate_log(log: &Path) {
    if fs::metadata(log).map(|m| m.len() > LOG_ROTATE_BYTES).unwrap_or(false) {
        let _ = fs::rename(log, log.with_extension("log.old"));
    }
}

/// `Some('R')` for a live process; `None` for a zombie or a PID that is gone (the shape the
/// reliability tests check).
pub fn proc_state(pid: u32) -> Option<char> {
    platform::alive(pid).then_some('R')
}

/// Alive (exists and not a zombie) and started with our `--home=`.
pub fn is_ours(pid: u32, home: &Path) -> bool {
    alive_with_arg(pid, &home_arg(home))
}

/// Alive (exists and not a zombie) and started with `arg` among its arguments: how a PID read
/// from a file is confirmed to still be the process we started (PIDs are reused).
pub fn alive_with_arg(pid: u32, arg: &str) -> bool {
    platform::is(pid, &Identity::by_arg(arg))
}

/// Every live process of ours: the recorded monitor first, then anything else still running with
/// our home (a worker, or an orphaned worker whose monitor was killed).
pub fn our_processes(home: &Path, record: Option<PidRecord>) -> Vec<u32> {
    let marker = home_arg(home);
    let found = platform::find(&Identity::by_arg(&marker));
    let monitor = record.map(|r| r.monitor).filter(|&pid| found.iter().any(|p| p.pid == pid));
    monitor.into_iter().chain(found.iter().map(|p| p.pid).filter(|&pid| Some(pid) != monitor)).collect()
}

/// The monitor among our processes: Syncthing's monitor starts its worker with `STMONITORED` in
/// the environment (we remove it from the monitor's own), which tells the two apart even before
/// the worker exists or after the monitor died.
pub fn unmonitored_of(home: &Path) -> Option<u32> {
    let marker = home_arg(home);
    platform::find(&Identity::by_arg(&marker)).into_iter().find(|p| !p.has_env(MONITORED_ENV)).map(|p| p.pid)
}

/// The worker: a process of ours whose parent is the monitor.
pub fn worker_of(monitor: u32, home: &Path) -> Option<u32> {
    let marker = home_arg(home);
    platform::find(&Identity::by_arg(&marker)).into_iter().find(|p| p.parent == Some(monitor)).map(|p| p.pid)
}

/// SIGTERM, wait, then SIGKILL whatever is left; returns once none of `pids` is ours any more.
/// Each PID is re-checked right before every signal (PIDs are reused).
pub fn terminate(pids: &[u32], home: &Path) -> Result<(), EngineError> {
    terminate_marked(pids, &home_arg(home), TERM_GRACE).map_err(|left| EngineError::StopFailed { pids: left })
}

/// `terminate` for processes recognized by `marker` (see `alive_with_arg`); on failure returns the
/// PIDs still alive.
pub fn terminate_marked(pids: &[u32], marker: &str, grace: Duration) -> Result<(), Vec<u32>> {
    platform::terminate(pids, &Identity::by_arg(marker), grace, KILL_GRACE)
}

pub fn wait_gone(pids: &[u32], home: &Path, timeout: Duration) -> bool {
    platform::wait_gone(pids, &Identity::by_arg(&home_arg(home)), timeout)
}

/// The last `lines` lines of a log, for error messages.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("syncthing.log")
}

pub fn pid_path(state_dir: &Path) -> PathBuf {
    state_dir.join("syncthing.pid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_never_ours() {
        assert_eq!(proc_state(std::process::id()), Some('R'));
        assert!(!is_ours(std::process::id(), Path::new("/nonexistent/home")), "the test runner is never ours");
        assert!(our_processes(Path::new("/nonexistent/home"), Some(PidRecord { monitor: std::process::id() })).is_empty());
    }
}
