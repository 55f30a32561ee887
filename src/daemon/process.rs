//! Starting, finding and stopping a root's background process (`botsync-daemon --root=<root>`).
//! One per root: the daemon holds an exclusive lock on `<root>/.botsync/daemon.lock` for its
//! whole life, so of two started at once one exits at once. It is recognized by PID file plus
//! /proc (alive and started with our `--root=`), never by name.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::DaemonError;
use crate::engine::process::{alive_with_arg, log_tail, spawn_detached, terminate_marked, DetachedSpawnError};
use crate::root::SyncRoot;
use crate::state_file;

/// Where the daemon executable can be named explicitly (tests, unusual installs).
pub const BINARY_ENV: &str = "BOTSYNC_DAEMON_BIN";
pub const BINARY_NAME: &str = "botsync-daemon";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct PidRecord {
    pid: u32,
}

pub fn root_arg(root: &SyncRoot) -> String {
    format!("--root={}", root.path().display())
}

fn pid_file(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("daemon.pid")
}

pub fn log_file(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("daemon.log")
}

/// The running daemon's PID, verified against /proc. The PID file is the fast path; when it is
/// missing, damaged or stale, the holder of the root's lock is looked up in /proc/locks, so a
/// daemon is never reported gone (and a second one never started) just because its PID file was
/// lost. (Not "any daemon process of this root": one that just lost the lock race is one too.)
pub fn running_pid(root: &SyncRoot) -> Option<u32> {
    let marker = root_arg(root);
    let recorded = state_file::read_json::<PidRecord>(&pid_file(root)).ok().flatten().map(|r| r.pid);
    if let Some(pid) = recorded.filter(|&pid| is_daemon(pid, &marker)) {
        return Some(pid);
    }
    lock_holder(&lock_file(root)).filter(|&pid| is_daemon(pid, &marker))
}

fn lock_file(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("daemon.lock")
}

/// The PID holding a flock on `path`, from /proc/locks (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE …`).
fn lock_holder(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).ok()?;
    let file_id = format!("{:02x}:{:02x}:{}", libc::major(meta.dev()), libc::minor(meta.dev()), meta.ino());
    let locks = fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Lines of blocked waiters carry `->` after the number, shifting the fields.
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&file_id.as_str())).then(|| fields[4].parse().ok()).flatten()
    })
}

/// A live `botsync-daemon` started for the root `marker` names (not, say, a CLI given `--root=`).
fn is_daemon(pid: u32, marker: &str) -> bool {
    alive_with_arg(pid, marker)
        && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
            let program = raw.split(|b| *b == 0).next().unwrap_or_default();
            Path::new(std::ffi::OsStr::from_bytes(program)).file_name() == Some(std::ffi::OsStr::new(BINARY_NAME))
        })
}

/// The daemon executable: `$BOTSYNC_DAEMON_BIN`, else `botsync-daemon` next to the loaded addon
/// (the platform package ships both), else next to the current executable.
pub fn binary() -> Result<PathBuf, DaemonError> {
    if let Some(explicit) = std::env::var_os(BINARY_ENV).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(explicit);
        return if path.is_file() { Ok(path) } else { Err(DaemonError::BinaryMissing { looked: vec![path] }) };
    }
    let mut looked = Vec::new();
    for base in [this_library(), std::env::current_exe().ok()].into_iter().flatten() {
        // Cargo puts test executables in `deps/`, one level below the binaries.
        for dir in base.ancestors().skip(1).take(2) {
            let candidate = dir.join(BINARY_NAME);
            if candidate.is_file() {
                return Ok(candidate);
            }
            looked.push(candidate);
        }
    }
    Err(DaemonError::BinaryMissing { looked })
}

/// The file this code was loaded from: the `.node` addon inside Node, the executable otherwise.
fn this_library() -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    let anchor = this_library as *const libc::c_void;
    // SAFETY: dladdr only reads the loader's tables for an address inside this library.
    if unsafe { libc::dladdr(anchor, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(name.to_string_lossy().into_owned());
    path.canonicalize().ok().or(Some(path))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonStart {
    Started(u32),
    AlreadyRunning(u32),
}

impl DaemonStart {
    pub fn pid(self) -> u32 {
        match self {
            DaemonStart::Started(pid) | DaemonStart::AlreadyRunning(pid) => pid,
        }
    }
}

/// Starts the daemon unless one runs; returns once it holds its lock (or another one won).
pub async fn ensure_running(root: &SyncRoot) -> Result<DaemonStart, DaemonError> {
    if let Some(pid) = running_pid(root) {
        return Ok(DaemonStart::AlreadyRunning(pid));
    }
    let binary = binary()?;
    let mut command = Command::new(&binary);
    command.arg(root_arg(root)).current_dir(root.state_dir());
    let log = log_file(root);
    let spawned = spawn_detached(command, &log).map_err(|e| match e {
        DetachedSpawnError::Log(source) | DetachedSpawnError::Spawn(source) => DaemonError::Spawn { binary: binary.clone(), source },
    })?;
    let started = Instant::now();
    loop {
        if let Some(pid) = running_pid(root) {
            return Ok(if pid == spawned { DaemonStart::Started(pid) } else { DaemonStart::AlreadyRunning(pid) });
        }
        if started.elapsed() > READY_TIMEOUT || !alive_with_arg(spawned, &root_arg(root)) {
            // It may have lost the lock race to a daemon that is just writing its PID file.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(pid) = running_pid(root) {
                return Ok(DaemonStart::AlreadyRunning(pid));
            }
            return Err(DaemonError::DidNotStart { log_tail: log_tail(&log, 3) });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Tells the running daemon (if any) to look at the invites folder now.
pub fn nudge(root: &SyncRoot) {
    if let Some(pid) = running_pid(root) {
        // SAFETY: kill(2) on the PID `running_pid` just verified to be this root's daemon.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGUSR1);
        }
    }
}

/// Stops the daemon if it runs and waits until it is gone; returns its PID. Idempotent.
pub async fn stop(root: &SyncRoot) -> Result<Option<u32>, DaemonError> {
    let Some(pid) = running_pid(root) else {
        let _ = fs::remove_file(pid_file(root));
        return Ok(None);
    };
    let marker = root_arg(root);
    tokio::task::spawn_blocking(move || terminate_marked(&[pid], &marker, STOP_GRACE))
        .await
        .map_err(|e| DaemonError::StopFailed { pid, reason: e.to_string() })?
        .map_err(|_| DaemonError::StopFailed { pid, reason: "it survived SIGKILL".into() })?;
    let _ = fs::remove_file(pid_file(root));
    Ok(Some(pid))
}

/// Held by the running daemon: the lock file stays locked until the process ends, however it ends.
pub struct InstanceLock {
    _file: File,
    pid_file: PathBuf,
}

impl InstanceLock {
    /// Takes the root's lock and records our PID; `Ok(None)` if another daemon holds it.
    pub fn acquire(root: &SyncRoot) -> Result<Option<InstanceLock>, DaemonError> {
        let path = lock_file(root);
        let io_error = |source| DaemonError::Io { path: path.clone(), source };
        state_file::create_private_dir(&root.state_dir()).map_err(io_error)?;
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&path).map_err(io_error)?
        };
        // SAFETY: flock on a descriptor we own; the lock is released when the file closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Ok(None);
        }
        let pid_file = pid_file(root);
        state_file::write_json(&pid_file, &PidRecord { pid: std::process::id() })?;
        Ok(Some(InstanceLock { _file: file, pid_file }))
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.pid_file);
    }
}

/// For messages: where a daemon's output goes.
pub fn describe_log(root: &SyncRoot) -> String {
    crate::root::tilde(Path::new(&log_file(root)))
}
