//! Running Syncthing: spawned detached (own session, no stdio of the caller) with its monitor, so
//! a crashed or killed worker is restarted by the monitor. Processes are only ever signalled after
//! /proc confirms they are ours: alive (not a zombie) and started with our `--home=`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::api_key::ApiKey;
use super::EngineError;

/// How long a polite SIGTERM gets before SIGKILL. Syncthing 1.19 exits within a second unless a
/// peer is redialing it mid-shutdown, when one of its services waits out a 10 s stop timeout;
/// its database is crash-safe, so waiting that out buys nothing.
const TERM_GRACE: Duration = Duration::from_secs(4);
const KILL_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);
/// A log this big is moved aside at the next start.
const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// The PIDs we started, in `<root>/.botsync/syncthing.pid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    /// Syncthing's monitor process (our direct child); the worker is its child.
    pub monitor: u32,
}

pub fn read_pid_record(path: &Path) -> Option<PidRecord> {
    // A garbled PID file is no reason to refuse `stop`: the /proc scan by home dir still finds ours.
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

/// Starts `syncthing serve --home=<home>` with its monitor, detached (see `spawn_detached`). The
/// API key travels in the environment, never in argv (argv is world-readable in /proc). Returns
/// the monitor's PID.
pub fn spawn_syncthing(request: &SpawnRequest<'_>) -> Result<u32, EngineError> {
    let mut command = Command::new(request.binary);
    command
        .arg("serve")
        .arg(home_arg(request.home))
        .current_dir(request.home)
        .env("STGUIAPIKEY", request.api_key.expose())
        .env("STGUIADDRESS", format!("127.0.0.1:{}", request.gui_port))
        .env("STNOUPGRADE", "1");
    // Settings from the caller's environment that would point Syncthing elsewhere or change how it runs.
    for name in ["STHOMEDIR", "STCONFDIR", "STDATADIR", "STNORESTART", "STMONITORED", "STNODEFAULTFOLDER", "STGUIASSETS"] {
        command.env_remove(name);
    }
    spawn_detached(command, request.log).map_err(|e| match e {
        DetachedSpawnError::Log(source) => EngineError::io(format!("opening {}", request.log.display()), source),
        DetachedSpawnError::Spawn(source) => EngineError::Spawn { binary: request.binary.to_owned(), source },
    })
}

#[derive(Debug)]
pub enum DetachedSpawnError {
    Log(io::Error),
    Spawn(io::Error),
}

/// Secrets a botsync command may have been handed in its environment (see
/// `commands::secret_input`): nothing botsync starts needs them, so none inherits them.
pub const NEVER_INHERITED: [&str; 2] = ["BOTSYNC_CODE", "BOTSYNC_RELAY_REDIS"];

/// Starts `command` in a new session with stdin from /dev/null and output appended to `log`
/// (never the caller's terminal: a daemon holding it would keep pipes open and die with the
/// terminal). Returns its PID.
pub fn spawn_detached(mut command: Command, log: &Path) -> Result<u32, DetachedSpawnError> {
    rotate_log(log);
    let open_log = || {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new().create(true).append(true).mode(0o600).open(log)
    };
    let stdout = open_log().map_err(DetachedSpawnError::Log)?;
    let stderr = stdout.try_clone().map_err(DetachedSpawnError::Log)?;
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    for name in NEVER_INHERITED {
        command.env_remove(name);
    }
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; it detaches from the caller's terminal and process
        // group so Ctrl-C in the caller's shell never reaches the child.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(DetachedSpawnError::Spawn)?;
    let pid = child.id();
    // Reap the child when it exits, so a long-lived caller (Node, the daemon) never keeps a zombie.
    // A short-lived CLI simply exits and the child is re-parented.
    std::thread::Builder::new()
        .name("botsync-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        })
        .map_err(DetachedSpawnError::Spawn)?;
    Ok(pid)
}

fn rotate_log(log: &Path) {
    if fs::metadata(log).map(|m| m.len() > LOG_ROTATE_BYTES).unwrap_or(false) {
        let _ = fs::rename(log, log.with_extension("log.old"));
    }
}

/// The process state letter from /proc/PID/stat (`R`, `S`, `Z`, …), if the process exists.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is parenthesised and may itself contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// Alive (exists and not a zombie) and started with our `--home=`.
pub fn is_ours(pid: u32, home: &Path) -> bool {
    alive_with_arg(pid, &home_arg(home))
}

/// Alive (exists and not a zombie) and started with `arg` among its arguments: how a PID read
/// from a file is confirmed to still be the process we started (PIDs are reused).
pub fn alive_with_arg(pid: u32, arg: &str) -> bool {
    matches!(proc_state(pid), Some(state) if state != 'Z' && state != 'X')
        && cmdline(pid).map(|args| args.iter().any(|a| a == arg)).unwrap_or(false)
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Every live process of ours: the recorded monitor, its children, and any orphaned worker that
/// still runs with our home (its monitor killed), all verified against /proc.
pub fn our_processes(home: &Path, record: Option<PidRecord>) -> Vec<u32> {
    let mut found = Vec::new();
    let monitor = record.map(|r| r.monitor).filter(|&pid| is_ours(pid, home));
    let pids = all_pids();
    if let Some(monitor) = monitor {
        found.push(monitor);
    }
    for pid in pids {
        if Some(pid) != monitor && pid != std::process::id() && is_ours(pid, home) {
            found.push(pid);
        }
    }
    found
}

/// Syncthing's monitor starts its worker with `STMONITORED` in the environment (we remove it
/// from the monitor's own), which tells the two apart even before the worker exists or after
/// the monitor died.
pub fn is_worker(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|environ| environ.split(|b| *b == 0).any(|var| var.starts_with(b"STMONITORED=")))
        .unwrap_or(false)
}

/// The worker: a process of ours whose parent is the monitor.
pub fn worker_of(monitor: u32, home: &Path) -> Option<u32> {
    all_pids().into_iter().find(|&pid| parent_pid(pid) == Some(monitor) && is_ours(pid, home))
}

/// SIGTERM, wait, then SIGKILL whatever is left; returns once none of `pids` is ours any more.
/// Each PID is re-checked against /proc right before every signal (PIDs are reused).
pub fn terminate(pids: &[u32], home: &Path) -> Result<(), EngineError> {
    terminate_marked(pids, &home_arg(home), TERM_GRACE).map_err(|left| EngineError::StopFailed { pids: left })
}

/// `terminate` for processes recognized by `marker` (see `alive_with_arg`); on failure returns the
/// PIDs still alive.
pub fn terminate_marked(pids: &[u32], marker: &str, grace: Duration) -> Result<(), Vec<u32>> {
    signal_marked(pids, marker, libc::SIGTERM);
    if wait_gone_marked(pids, marker, grace) {
        return Ok(());
    }
    signal_marked(pids, marker, libc::SIGKILL);
    if wait_gone_marked(pids, marker, KILL_GRACE) {
        return Ok(());
    }
    Err(pids.iter().copied().filter(|&p| alive_with_arg(p, marker)).collect())
}

/// Sends `signal` to each of `pids` that is still the process `marker` identifies.
pub fn signal_marked(pids: &[u32], marker: &str, signal: i32) {
    for &pid in pids {
        if alive_with_arg(pid, marker) {
            // SAFETY: plain kill(2) on a PID just verified to be our live process.
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }
}

pub fn wait_gone(pids: &[u32], home: &Path, timeout: Duration) -> bool {
    wait_gone_marked(pids, &home_arg(home), timeout)
}

pub fn wait_gone_marked(pids: &[u32], marker: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&p| !alive_with_arg(p, marker)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
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
    fn reads_state_and_parent_of_ourselves() {
        let me = std::process::id();
        assert!(matches!(proc_state(me), Some('R') | Some('S')));
        assert_eq!(parent_pid(me), Some(std::os::unix::process::parent_id()));
        assert!(!is_ours(me, Path::new("/nonexistent/home")), "the test runner is never ours");
    }
}
