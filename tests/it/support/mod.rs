//! Test support, one copy for every test module: every test that starts Syncthing runs in a fresh
//! process inside its own network and mount namespaces (`unshare -n -m`, [`isolated`]), so nothing
//! it starts can reach beyond loopback, and whatever it leaves running is killed afterwards by the
//! outer process. The submodules hold the doubles and harnesses: `relay` (the real relay
//! in-process, a private Redis), `notify` (fake Syncthing REST and OpenClaw endpoints), `pairing`
//! (the real relay as a client's other end, mailboxes that misbehave on purpose), `lying_relay`
//! (a server of the tests' own in front of the real relay that records and lies), `reliability` (the CLI as a
//! child process, paired roots), `watcher` (two raw Syncthings configured through REST), `agents`
//! (two roots paired in-process for receipts and versions).

#![allow(dead_code)]

pub mod agents;
pub mod lying_relay;
pub mod notify;
pub mod pairing;
#[macro_use]
pub mod relay;
pub mod reliability;
pub mod watcher;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use botsync::engine::process;
use botsync::SyncRoot;

const INNER_ENV: &str = "BOTSYNC_TEST_INNER";
const SCRATCH_ENV: &str = "BOTSYNC_TEST_SCRATCH";

/// `module::name` for a test in `module_path` (`it::engine_lifecycle`): the name libtest gives
/// it, without the crate. Use `test_path!("name")`, which passes the caller's module.
pub fn test_path(module_path: &str, name: &str) -> String {
    let module = module_path.split_once("::").map_or("", |(_crate, module)| module);
    if module.is_empty() { name.to_string() } else { format!("{module}::{name}") }
}

/// Runs `body` for the test called `name` (`test_path!("fn_name")`) in a new process inside
/// new network and mount namespaces, with a scratch directory that is removed afterwards. The
/// outer side fails the test if the inner one fails, and kills any process left running with the
/// scratch directory in its command line (the inner side may have crashed mid-way).
pub fn isolated(name: impl AsRef<str>, body: impl FnOnce(&Path)) {
    let name = name.as_ref();
    if std::env::var_os(INNER_ENV).is_some() {
        let lo = Command::new("ip").args(["link", "set", "lo", "up"]).status().expect("run ip");
        assert!(lo.success(), "cannot bring lo up inside the namespace");
        let scratch = PathBuf::from(std::env::var_os(SCRATCH_ENV).expect("scratch dir passed in"));
        body(&scratch);
        return;
    }
    let scratch = tempfile::Builder::new().prefix("botsync-engine-test-").tempdir().expect("scratch dir");
    let output = Command::new("unshare")
        .args(["-n", "-m", "--propagation", "private", "--"])
        .arg(std::env::current_exe().expect("test binary path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER_ENV, "1")
        .env(SCRATCH_ENV, scratch.path())
        // Never the user's real download cache; Debian's Syncthing unless `BOTSYNC_TEST_SYNCTHING`
        // (CI's version matrix) or the test says otherwise.
        .env("XDG_DATA_HOME", scratch.path().join("xdg-data"))
        .env("BOTSYNC_SYNCTHING", std::env::var_os("BOTSYNC_TEST_SYNCTHING").unwrap_or_else(|| "/usr/bin/syncthing".into()))
        .env("BOTSYNC_DAEMON_BIN", env!("CARGO_BIN_EXE_botsync-daemon"))
        // Nothing listens on the discard port: tests that do not start a relay get offline codes.
        .env("BOTSYNC_RELAY", "http://127.0.0.1:9")
        .env_remove("BOTSYNC_ROOT")
        .output()
        .expect("run unshare (tests need root for network namespaces)");
    let leftovers = kill_processes_mentioning(scratch.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ran = stdout.contains("1 passed") || stdout.contains("1 failed");
    if !(output.status.success() && ran) {
        eprintln!("isolated test {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}", output.status);
        // The inner panic once more, last and without a backtrace of this side: CI shows the head
        // and the tail of a long log, and the message was in the part it cut.
        eprintln!("--- {name}: {}", inner_panic(&stderr).unwrap_or_else(|| "no panic message (the inner test was killed?)".into()));
        std::panic::resume_unwind(Box::new(format!("isolated test {name} failed")));
    }
    assert!(leftovers.is_empty(), "test {name} left processes running: {leftovers:?}");
}

/// The first panic in a test's stderr: its `panicked at` line and message, without the backtrace.
fn inner_panic(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let panic = &stderr[start..];
    let end = panic.find("\nstack backtrace:").or_else(|| panic.find("\nnote: ")).unwrap_or(panic.len());
    Some(panic[..end].trim_end().to_string())
}

#[test]
fn inner_panic_is_the_message_without_the_backtrace() {
    let stderr = "log line\n\nthread 't' (7) panicked at tests/it/x.rs:3:5:\nassertion `left == right` failed: two\n  left: 1\n right: 2\nstack backtrace:\n   0: f\n";
    assert_eq!(inner_panic(stderr).as_deref(), Some("panicked at tests/it/x.rs:3:5:\nassertion `left == right` failed: two\n  left: 1\n right: 2"));
    assert_eq!(inner_panic("panicked at a.rs:1:1:\nboom\nnote: run with `RUST_BACKTRACE=1`").as_deref(), Some("panicked at a.rs:1:1:\nboom"));
    assert_eq!(inner_panic("killed"), None);
}

/// SIGKILLs every live process whose command line mentions `dir`; returns their PIDs.
pub fn kill_processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut killed = Vec::new();
    for pid in processes_mentioning(&needle) {
        // SAFETY: kill(2) on a PID whose cmdline we just checked.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
        killed.push(pid);
    }
    killed
}

pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() || matches!(process::proc_state(pid), None | Some('Z')) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// Stops a root's background process and Syncthing when dropped, also when the test panics.
pub struct StopOnDrop(pub SyncRoot);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = botsync::daemon::process::running_pid(&self.0) {
            let marker = botsync::daemon::process::root_arg(&self.0);
            let _ = process::terminate_marked(&[pid], &marker, std::time::Duration::from_secs(5));
        }
        let home = botsync::engine::home_dir(&self.0);
        let record = process::read_pid_record(&process::pid_path(&self.0.state_dir()));
        let ours = process::our_processes(&home, record);
        let _ = process::terminate(&ours, &home);
    }
}

/// A refused command's error as users see it: the stable `code`, one line, a failing exit
/// status, and the words that tell them what to fix.
pub fn assert_clean_error(error: &botsync::Error, code: botsync::ErrorCode, mentions: &[&str]) {
    let text = error.to_string();
    assert_eq!(error.code(), code, "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
    assert_ne!(error.exit_code(), 0);
    for needle in mentions {
        assert!(text.contains(needle), "`{text}` should mention `{needle}`");
    }
}

pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(future)
}

pub fn root_at(path: PathBuf) -> SyncRoot {
    SyncRoot::at(path).unwrap()
}

/// Every file and directory under `dir` with size and mtime, to prove a refused command changed nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (bool, u64, Option<SystemTime>)> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (bool, u64, Option<SystemTime>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            out.insert(path.clone(), (meta.is_dir(), meta.len(), meta.modified().ok()));
            if meta.is_dir() {
                walk(&path, out);
            }
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        out.insert(dir.to_owned(), (meta.is_dir(), meta.len(), meta.modified().ok()));
    }
    walk(dir, &mut out);
    out
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// A shell script posing as Syncthing that prints `version_line` for `--version`.
pub fn fake_syncthing(path: &Path, version_line: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\necho '{version_line}'\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
