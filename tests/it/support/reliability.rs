//! Shared by the reliability suite (`tests/reliability_*.rs`): the CLI in a child process (so it
//! can be killed or run inside a network namespace), a relay on its own thread, two paired roots,
//! waits that poll, and content hashes. Every test still runs under `support::isolated`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use botsync::commands::{self, init::InitOptions, join::JoinOptions, RootOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{processes_mentioning, StopOnDrop};

/// The CLI arguments (JSON array) a child test process runs instead of a test.
const CLI_ARGS_ENV: &str = "BOTSYNC_TEST_CLI_ARGS";

/// The body of each suite file's ignored `cli_entry` test: when started by `cli_command`, runs
/// the CLI with the given arguments and exits with its status, without the test harness's verdict.
pub fn cli_entry() {
    let Some(args) = std::env::var_os(CLI_ARGS_ENV) else { return };
    let args: Vec<String> = serde_json::from_str(args.to_str().expect("UTF-8 args")).expect("JSON args");
    let argv = std::iter::once("botsync".to_string()).chain(args).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let code = runtime.block_on(botsync::cli::run(argv));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// `botsync <args>` as a child process (this test binary re-run as the CLI), optionally inside
/// the named network namespace.
pub fn cli_command(netns: Option<&str>, args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command
        .args(["--include-ignored", "--exact", "cli_entry", "--nocapture", "--test-threads=1"])
        .env(CLI_ARGS_ENV, serde_json::to_string(args).unwrap())
        .env("BOTSYNC_DAEMON_BIN", daemon_bin())
        .stdin(Stdio::null());
    command
}

/// What a CLI child printed: its exit status and the JSON object it printed (with `--json`).
#[derive(Debug)]
pub struct CliRun {
    pub status: i32,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    pub fn from_output(output: Output) -> CliRun {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // The harness prints "running 1 test" first; the CLI's JSON is the one line that is an object.
        let json = stdout
            .lines()
            .chain(stderr.lines())
            // The harness's "test cli_entry ... " may precede it on the same line.
            .filter_map(|l| l.find('{').map(|at| &l[at..]))
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null);
        CliRun { status: output.status.code().unwrap_or(-1), json, stdout, stderr }
    }

    /// The stable error code of a failed `--json` run.
    pub fn error_code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str().or_else(|| self.json["code"].as_str())
    }
}

pub fn cli(netns: Option<&str>, args: &[&str]) -> CliRun {
    CliRun::from_output(cli_command(netns, args).output().expect("run the CLI child"))
}

pub fn cli_spawn(netns: Option<&str>, args: &[&str]) -> Child {
    cli_command(netns, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn the CLI child")
}

pub fn daemon_bin() -> &'static str {
    env!("CARGO_BIN_EXE_botsync-daemon")
}

/// Call first inside an isolated test: commands started in-process find the daemon binary.
pub fn use_daemon_bin() {
    std::env::set_var("BOTSYNC_DAEMON_BIN", daemon_bin());
}

/// A relay serving on 127.0.0.1 from its own thread and runtime, so it outlives the short
/// runtimes `support::block_on` makes. Stopped when dropped.
pub struct RelayThread {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RelayThread {
    pub fn start(config: botsync::relay::RelayConfig) -> RelayThread {
        Self::start_on("127.0.0.1:0", config)
    }

    pub fn start_on(listen: &str, config: botsync::relay::RelayConfig) -> RelayThread {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listen = listen.to_string();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async move {
                let relay = botsync::relay::start(&listen, &botsync::relay::Backend::Memory, config).await.expect("relay starts");
                url_tx.send(relay.url()).unwrap();
                let _ = stopped.await;
                relay.shutdown().await;
            });
        });
        let url = url_rx.recv_timeout(Duration::from_secs(10)).expect("relay URL");
        RelayThread { url, stop: Some(stop), thread: Some(thread) }
    }

    /// Generous limits: the suite makes many codes from one address.
    pub fn unlimited() -> RelayThread {
        Self::start(super::relay::unlimited())
    }
}

impl Drop for RelayThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Stops a root's daemon and Syncthing when dropped (also on panic), by PID file and /proc.
pub struct RootGuard {
    pub path: PathBuf,
    _engine: StopOnDrop,
}

impl RootGuard {
    pub fn new(path: &Path) -> RootGuard {
        RootGuard { path: path.to_owned(), _engine: StopOnDrop(crate::support::root_at(path.to_owned())) }
    }
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        let root = crate::support::root_at(self.path.clone());
        if let Some(pid) = botsync::daemon::process::running_pid(&root) {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        // Whatever else still names this root (a daemon whose PID file was damaged, a CLI child).
        crate::support::kill_processes_mentioning(&self.path);
    }
}

pub fn root_options(root: &Path) -> RootOptions {
    RootOptions { root: Some(root.display().to_string()) }
}

pub fn init_options(root: &Path, relay: &str) -> InitOptions {
    InitOptions {
        root: Some(root.display().to_string()),
        network: Some("direct".into()),
        relay: Some(relay.to_string()),
        ..Default::default()
    }
}

pub fn join_options(root: &Path, relay: &str, code: &str) -> JoinOptions {
    JoinOptions {
        code: code.to_string(),
        root: Some(root.display().to_string()),
        network: Some("direct".into()),
        relay: Some(relay.to_string()),
        timeout_seconds: Some(60),
        ..Default::default()
    }
}

/// Initializes `a` and joins `b` to it through `relay`; returns (a's device ID, b's device ID).
pub fn pair(a: &Path, b: &Path, relay: &str) -> (String, String) {
    crate::support::block_on(async {
        let init = commands::init::run(&init_options(a, relay)).await.expect("init a");
        assert_eq!(init.invite.kind, "relay", "{:?}", init.invite);
        let join = commands::join::run(&join_options(b, relay, &init.invite.code)).await.expect("join b");
        (init.device_id, join.device_id)
    })
}

pub fn status(root: &Path) -> commands::status::StatusReport {
    crate::support::block_on(commands::status::run(&root_options(root))).expect("status")
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `limit`. Returns how
/// long it took.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if condition() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn peer_connected(root: &Path) -> bool {
    let report = crate::support::block_on(commands::status::run(&root_options(root)));
    report.is_ok_and(|r| !r.peers.is_empty() && r.peers.iter().all(|p| p.connected))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// Every regular file under `dir` (relative path -> SHA-256), skipping Syncthing's own markers,
/// temporary files and `.stversions` (each machine's own kept copies, which are never synced).
pub fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".stfolder" || name == ".stversions" || name.starts_with(".syncthing.") || name.ends_with(".tmp") || name == ".stignore" {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                walk(base, &path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path.strip_prefix(base).unwrap().display().to_string(), sha256_hex(&bytes));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Writes `content` to `dir/name`, then waits until `other_dir/name` has it.
pub fn write_and_see_synced(dir: &Path, other_dir: &Path, name: &str, content: &[u8], limit: Duration) -> Duration {
    std::fs::write(dir.join(name), content).unwrap();
    wait_until(limit, &format!("{name} reaches {}", other_dir.display()), || {
        std::fs::read(other_dir.join(name)).is_ok_and(|c| c == content)
    })
}

/// The PIDs of live processes that name `root` in their command line.
pub fn processes_of(root: &Path) -> Vec<u32> {
    processes_mentioning(&root.display().to_string())
}

pub fn kill9(pid: u32) {
    // SAFETY: kill(2) on a PID the test just read from /proc or a PID file of its own root.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// Waits (up to 10 s) until `pid` no longer runs (gone or a zombie).
pub fn wait_dead(pid: u32) {
    wait_until(Duration::from_secs(10), &format!("process {pid} exits"), || {
        matches!(botsync::engine::process::proc_state(pid), None | Some('Z') | Some('X'))
    });
}
