//! Starting, finding and stopping a root's background process (`botsync-daemon --root=<root>`).
//! One per root: the daemon holds an exclusive lock on `<root>/.botsync/daemon.lock` for its
//! whole life, and starters take `<root>/.botsync/daemon-start.lock` around "is one running? if
//! not, spawn one and wait until it holds its lock", so two `start`s at once spawn one daemon,
//! however the machine schedules them. It is recognized by PID file or lock holder, confirmed by
//! the OS (alive, `botsync-daemon`, started with our `--root=`), never by name alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::DaemonError;
use crate::engine::process::{log_tail, spawn_detached, DetachedSpawnError, KILL_GRACE};
use crate::platform::lock::{self, LockFile};
use crate::platform::process::{self as platform, Identity, Signal};
use crate::root::SyncRoot;
use crate::state_file;

/// Where the daemon executable can be named explicitly (tests, unusual installs).
pub const BINARY_ENV: &str = "BOTSYNC_DAEMON_BIN";
pub const BINARY_NAME: &str = "botsync-daemon";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// A daemon that lost the lock race exits right after trying; this bounds the wait for it.
const LOSER_EXIT: Duration = Duration::from_secs(10);
/// How long a starting daemon waits for a lock whose recorded holder is no longer alive.
const DYING_HOLDER: Duration = Duration::from_secs(2);

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

/// The running daemon's PID, confirmed by the OS. The PID file is the fast path; when it is
/// missing, damaged or stale, the lock's recorded holder is asked, so a daemon is never reported
/// gone (and a second one never started) just because its PID file was lost. (Not "any daemon
/// process of this root": one that just lost the lock race is one too.)
pub fn running_pid(root: &SyncRoot) -> Option<u32> {
    let marker = root_arg(root);
    let identity = daemon_identity(&marker);
    let recorded = state_file::read_json::<PidRecord>(&pid_file(root)).ok().flatten().map(|r| r.pid);
    if let Some(pid) = recorded.filter(|&pid| platform::is(pid, &identity)) {
        return Some(pid);
    }
    lock::recorded_holder(&lock_file(root)).filter(|&pid| platform::is(pid, &identity))
}

fn lock_file(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("daemon.lock")
}

fn start_lock_file(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("daemon-start.lock")
}

/// A live `botsync-daemon` started for the root `marker` names (not, say, a CLI given `--root=`).
fn daemon_identity(marker: &str) -> Identity<'_> {
    Identity { arg: marker, program: Some(BINARY_NAME) }
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

/// Starts the daemon unless one runs; returns once it holds its lock. Starters queue on the
/// start lock, so only one of them ever spawns, and none returns while a daemon it spawned is
/// still deciding whether it won.
pub async fn ensure_running(root: &SyncRoot) -> Result<DaemonStart, DaemonError> {
    if let Some(pid) = running_pid(root) {
        return Ok(DaemonStart::AlreadyRunning(pid));
    }
    let start_lock = start_lock_file(root);
    let io_error = |source| DaemonError::Io { path: start_lock.clone(), source };
    state_file::create_private_dir(&root.state_dir()).map_err(io_error)?;
    // Longer than one start can take, so a queued starter sees the outcome of the one before it.
    let _starting = LockFile::acquire(&start_lock, READY_TIMEOUT + LOSER_EXIT).await.map_err(io_error)?.ok_or_else(|| {
        DaemonError::DidNotStart { log_tail: format!("another `botsync start` of this root holds {}", start_lock.display()) }
    })?;
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
    let marker = root_arg(root);
    let spawned_identity = Identity::by_arg(&marker);
    let started = Instant::now();
    loop {
        if let Some(pid) = running_pid(root) {
            if pid == spawned {
                return Ok(DaemonStart::Started(pid));
            }
            // Another daemon (started by something that does not queue, e.g. by hand) holds the
            // lock: ours exits at once; wait for that, so we never leave two behind.
            let exited = platform::wait_gone(&[spawned], &spawned_identity, LOSER_EXIT);
            if !exited {
                platform::signal(spawned, &spawned_identity, Signal::Kill);
            }
            return Ok(DaemonStart::AlreadyRunning(pid));
        }
        if started.elapsed() > READY_TIMEOUT || !platform::is(spawned, &spawned_identity) {
            // It may have lost the lock race to a daemon that is just writing its PID file.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(pid) = running_pid(root) {
                return Ok(DaemonStart::AlreadyRunning(pid));
            }
            let _ = platform::terminate(&[spawned], &spawned_identity, STOP_GRACE, KILL_GRACE);
            return Err(DaemonError::DidNotStart { log_tail: log_tail(&log, 3) });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Tells the running daemon (if any) to look at the invites folder now.
pub fn nudge(root: &SyncRoot) {
    if let Some(pid) = running_pid(root) {
        platform::signal(pid, &daemon_identity(&root_arg(root)), Signal::Nudge);
    }
}

/// Stops the daemon if it runs and waits until it is gone; returns its PID. Idempotent.
pub async fn stop(root: &SyncRoot) -> Result<Option<u32>, DaemonError> {
    let Some(pid) = running_pid(root) else {
        let _ = fs::remove_file(pid_file(root));
        return Ok(None);
    };
    let marker = root_arg(root);
    tokio::task::spawn_blocking(move || platform::terminate(&[pid], &daemon_identity(&marker), STOP_GRACE, KILL_GRACE))
        .await
        .map_err(|e| DaemonError::StopFailed { pid, reason: e.to_string() })?
        .map_err(|_| DaemonError::StopFailed { pid, reason: "it survived SIGKILL".into() })?;
    let _ = fs::remove_file(pid_file(root));
    Ok(Some(pid))
}

/// Held by the running daemon: the lock file stays locked until the process ends, however it ends.
pub struct InstanceLock {
    _lock: LockFile,
    pid_file: PathBuf,
}

impl InstanceLock {
    /// Takes the root's lock and records our PID; `Ok(None)` if another daemon holds it.
    ///
    /// A daemon that was just killed can still hold the lock for a moment after it stops looking
    /// like our daemon (the kernel drops its command line before its open files), so a `stop` or
    /// `kill -9` followed at once by a start would see "another daemon serves" with nobody left.
    /// While the recorded holder is not a live daemon of this root, the lock is tried again for
    /// up to `DYING_HOLDER`; a live holder answers at once.
    pub async fn acquire(root: &SyncRoot) -> Result<Option<InstanceLock>, DaemonError> {
        let path = lock_file(root);
        let io_error = |source| DaemonError::Io { path: path.clone(), source };
        state_file::create_private_dir(&root.state_dir()).map_err(io_error)?;
        let marker = root_arg(root);
        let identity = daemon_identity(&marker);
        let started = Instant::now();
        let lock = loop {
            if let Some(lock) = LockFile::try_acquire_as_holder(&path).map_err(io_error)? {
                break lock;
            }
            let holder_alive = lock::recorded_holder(&path).is_some_and(|pid| platform::is(pid, &identity));
            if holder_alive || started.elapsed() > DYING_HOLDER {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        };
        let pid_file = pid_file(root);
        state_file::write_json(&pid_file, &PidRecord { pid: std::process::id() })?;
        Ok(Some(InstanceLock { _lock: lock, pid_file }))
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
