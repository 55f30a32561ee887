//! Two real Syncthings paired on loopback, configured through REST only (like
//! /work/shared/tools/raw-syncthing.sh), for the watcher's end-to-end test and the latency
//! benchmark (`examples/latency_bench.rs` includes this file by path).
//!
//! Network hygiene: everything runs inside a private network namespace (`unshare -n`, only
//! loopback): tests through `support::isolated`; the benchmark, which is not a test binary,
//! re-executes itself with [`reexec_in_private_netns`]. On top of that discovery, relays, NAT and
//! announcements are switched off before any folder exists.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const NETNS_ENV: &str = "BOTSYNC_TEST_IN_PRIVATE_NETNS";

/// The syncthing binary: `$SYNCTHING`, else `$BOTSYNC_SYNCTHING` (what botsync's own roots use,
/// so one variable switches every subject of a benchmark to another version), else `syncthing`
/// on PATH.
pub fn syncthing_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SYNCTHING").or_else(|| std::env::var_os("BOTSYNC_SYNCTHING")) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("syncthing")).find(|p| p.is_file()))
}

/// True when already inside the private namespace (then loopback is brought up). Otherwise runs
/// the current executable again with `args` under `unshare -n` and returns its success.
pub enum NetnsRun {
    Inside,
    Ran(bool),
}

pub fn reexec_in_private_netns(args: &[&str]) -> NetnsRun {
    if std::env::var_os(NETNS_ENV).is_some() {
        let status = Command::new("ip").args(["link", "set", "lo", "up"]).status().expect("run ip");
        assert!(status.success(), "ip link set lo up failed");
        return NetnsRun::Inside;
    }
    let exe = std::env::current_exe().expect("current exe");
    let status = Command::new("unshare")
        .arg("-n")
        .arg("--")
        .arg(exe)
        .args(args)
        .env(NETNS_ENV, "1")
        .status()
        .expect("run unshare (needs root or user namespaces)");
    NetnsRun::Ran(status.success())
}

/// One Syncthing process (single process: `STMONITORED` skips the monitor parent), killed on drop.
pub struct SyncthingNode {
    pub name: String,
    pub home: PathBuf,
    pub gui_port: u16,
    pub listen_port: u16,
    pub api_key: String,
    pub device_id: String,
    child: Option<Child>,
    http: reqwest::Client,
}

impl SyncthingNode {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gui_port)
    }

    /// botsync's REST client for this node.
    pub fn rest(&self) -> botsync::engine::RestClient {
        botsync::engine::RestClient::new(self.gui_port, botsync::engine::ApiKey::from_string(self.api_key.clone()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Generates a home and starts `syncthing serve`. Call from a thread that outlives the node
    /// (the child gets SIGKILL when the spawning thread dies).
    pub fn spawn(work: &Path, name: &str, gui_port: u16, listen_port: u16) -> SyncthingNode {
        let bin = syncthing_binary().expect("syncthing binary");
        let home = work.join(format!("home-{name}"));
        let out = Command::new(&bin)
            .args(["generate", "--no-default-folder"])
            .arg(format!("--home={}", home.display()))
            .output()
            .expect("syncthing generate");
        assert!(out.status.success(), "syncthing generate: {}", String::from_utf8_lossy(&out.stderr));
        let out = Command::new(&bin).arg("serve").arg(format!("--home={}", home.display())).arg("--device-id").output().unwrap();
        let device_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(device_id.len(), 63, "device id {device_id:?}");
        let api_key = format!("k{}{}", name, rand::random::<u64>());
        let log = std::fs::File::create(work.join(format!("syncthing-{name}.log"))).unwrap();
        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .arg(format!("--home={}", home.display()))
            .args(["--no-browser", "--no-restart"])
            .env("STGUIADDRESS", format!("127.0.0.1:{gui_port}"))
            .env("STGUIAPIKEY", &api_key)
            .env("STNOUPGRADE", "1")
            .env("STMONITORED", "yes")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // Its own session, as every botsync root's Syncthing has (the daemon detaches with
        // setsid): Linux schedules each session as one group (autogroup), so raw Syncthings left
        // in the benchmark's session would share one CPU share against the machine's other load
        // where botsync's get one each.
        // SAFETY: setsid and prctl are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn syncthing");
        SyncthingNode {
            name: name.to_string(),
            home,
            gui_port,
            listen_port,
            api_key,
            device_id,
            child: Some(child),
            http: reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap(),
        }
    }

    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self.http.request(method.clone(), format!("{}{}", self.base_url(), path)).header("X-API-Key", &self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{method} {path} -> {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.api(reqwest::Method::GET, path, None).await
    }

    pub async fn wait_rest(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.get("/rest/system/ping").await.is_err() {
            assert!(Instant::now() < deadline, "{}: REST never came up", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Loopback only: static listen address, no discovery, relays, NAT, reporting.
    pub async fn configure_isolated(&self) {
        let options = json!({
            "listenAddresses": [format!("tcp://127.0.0.1:{}", self.listen_port)],
            "globalAnnounceEnabled": false, "localAnnounceEnabled": false, "relaysEnabled": false,
            "natEnabled": false, "urAccepted": -1, "crashReportingEnabled": false,
        });
        self.api(reqwest::Method::PATCH, "/rest/config/options", Some(options)).await.unwrap();
    }

    pub async fn add_device(&self, peer: &SyncthingNode) {
        let device = json!({
            "deviceID": peer.device_id, "name": peer.name,
            "addresses": [format!("tcp://127.0.0.1:{}", peer.listen_port)], "autoAcceptFolders": false,
        });
        self.api(reqwest::Method::PUT, &format!("/rest/config/devices/{}", peer.device_id), Some(device)).await.unwrap();
    }

    pub async fn add_folder(&self, folder_id: &str, path: &Path, peers: &[&SyncthingNode], watcher: FsWatcher) {
        std::fs::create_dir_all(path).unwrap();
        let mut devices = vec![json!({"deviceID": self.device_id})];
        devices.extend(peers.iter().map(|p| json!({"deviceID": p.device_id})));
        let (enabled, delay) = match watcher {
            FsWatcher::Off => (false, 1),
            FsWatcher::DelayS(d) => (true, d),
        };
        let folder = json!({
            "id": folder_id, "label": folder_id, "path": path, "type": "sendreceive",
            "fsWatcherEnabled": enabled, "fsWatcherDelayS": delay, "rescanIntervalS": 3600,
            "devices": devices,
        });
        self.api(reqwest::Method::PUT, &format!("/rest/config/folders/{folder_id}"), Some(folder)).await.unwrap();
    }

    pub async fn connected_to(&self, peer: &SyncthingNode) -> bool {
        match self.get("/rest/system/connections").await {
            Ok(v) => v["connections"][&peer.device_id]["connected"] == json!(true),
            Err(_) => false,
        }
    }

    /// Idle with nothing needed locally, and (if given) the peer at 100% for this folder.
    pub async fn folder_idle(&self, folder_id: &str, peer: Option<&SyncthingNode>) -> bool {
        let Ok(status) = self.get(&format!("/rest/db/status?folder={folder_id}")).await else { return false };
        if status["state"] != json!("idle") || status["needTotalItems"] != json!(0) {
            return false;
        }
        if let Some(peer) = peer {
            let Ok(c) = self.get(&format!("/rest/db/completion?folder={folder_id}&device={}", peer.device_id)).await else { return false };
            return c["completion"].as_f64() == Some(100.0);
        }
        true
    }

    pub async fn scan(&self, folder_id: &str, sub: &str) {
        self.api(reqwest::Method::POST, &format!("/rest/db/scan?folder={folder_id}&sub={sub}"), None).await.unwrap();
    }

    /// User + system CPU time of the Syncthing process so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.pid().map(proc_cpu_ticks).unwrap_or(0)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on our own child's PID, which is not reaped yet.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

impl Drop for SyncthingNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// utime + stime of a process (fields 14 and 15 of /proc/PID/stat), in clock ticks.
/// A Go CPU profile of the Syncthing behind `base_url` over `seconds`: GUI debugging on (read at
/// each request, no restart), then `/rest/debug/cpuprof`, whose answer is the profile itself.
pub async fn syncthing_cpu_profile(base_url: String, api_key: String, seconds: u64) -> Result<Vec<u8>, String> {
    let http = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
    let debugging = http.patch(format!("{base_url}/rest/config/gui")).header("X-API-Key", &api_key).json(&serde_json::json!({ "debugging": true })).send().await;
    debugging.and_then(|r| r.error_for_status()).map_err(|e| format!("switching debugging on: {e}"))?;
    let response = http
        .get(format!("{base_url}/rest/debug/cpuprof"))
        .query(&[("duration", format!("{seconds}s"))])
        .header("X-API-Key", &api_key)
        .timeout(Duration::from_secs(seconds + 30))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("profiling: {e}"))?;
    Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
}

pub fn proc_cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // The command name (field 2) may contain spaces; fields after the closing paren are plain.
    let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0) + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
pub enum FsWatcher {
    Off,
    DelayS(u32),
}

/// A (sender) and B (receiver) sharing one folder.
pub struct Pair {
    pub a: SyncthingNode,
    pub b: SyncthingNode,
    pub folder_id: String,
    pub dir_a: PathBuf,
    pub dir_b: PathBuf,
}

impl Pair {
    /// Must run on a thread that outlives the pair (see [`SyncthingNode::spawn`]).
    pub async fn start(work: &Path, folder_id: &str, watcher_a: FsWatcher, watcher_b: FsWatcher) -> Pair {
        Self::start_nth(work, folder_id, watcher_a, watcher_b, 0).await
    }

    /// The `n`th of several pairs running at once (each on its own ports).
    pub async fn start_nth(work: &Path, folder_id: &str, watcher_a: FsWatcher, watcher_b: FsWatcher, n: u16) -> Pair {
        let a = SyncthingNode::spawn(work, "A", 18384 + 2 * n, 22101 + 2 * n);
        let b = SyncthingNode::spawn(work, "B", 18385 + 2 * n, 22102 + 2 * n);
        a.wait_rest().await;
        b.wait_rest().await;
        a.configure_isolated().await;
        b.configure_isolated().await;
        a.add_device(&b).await;
        b.add_device(&a).await;
        let dir_a = work.join("data-A").join(folder_id);
        let dir_b = work.join("data-B").join(folder_id);
        a.add_folder(folder_id, &dir_a, &[&b], watcher_a).await;
        b.add_folder(folder_id, &dir_b, &[&a], watcher_b).await;
        let pair = Pair { a, b, folder_id: folder_id.to_string(), dir_a, dir_b };
        pair.wait_until(Duration::from_secs(120), "connected", || async { pair.a.connected_to(&pair.b).await && pair.b.connected_to(&pair.a).await })
            .await;
        pair.wait_idle(Duration::from_secs(120)).await;
        pair
    }

    pub async fn wait_idle(&self, timeout: Duration) {
        let f = &self.folder_id;
        self.wait_until(timeout, "folder idle on both", || async {
            self.a.folder_idle(f, Some(&self.b)).await && self.b.folder_idle(f, Some(&self.a)).await
        })
        .await;
    }

    pub async fn wait_until<F, Fut>(&self, timeout: Duration, what: &str, check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        poll_until(timeout, Duration::from_millis(20), what, check).await;
    }
}

/// Checks every `gap` until `check` holds; panics naming `what` after `timeout`.
pub async fn poll_until<F, Fut>(timeout: Duration, gap: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(gap).await;
    }
}

/// Whether `engine`'s shared folder is idle with nothing needed, and `peer` has all of it: a
/// botsync root of a benchmark at rest.
pub async fn shared_folder_settled(engine: &botsync::engine::Engine, peer: &botsync::device_id::DeviceId) -> bool {
    let rest = engine.rest();
    let folder = botsync::root::SharedFolder::Shared.folder_id();
    let Ok(status) = rest.db_status(folder).await else { return false };
    if status.state != "idle" || status.need_files != 0 {
        return false;
    }
    rest.db_completion(folder, Some(peer)).await.is_ok_and(|c| c.completion >= 100.0)
}

/// The benchmarks' `botsync` subject before B joins: an in-process relay on loopback (memory
/// backend), roots `root-A` and `root-B` under `work` (stopped on drop), and `init` run on A
/// with the `direct` profile.
pub struct DirectPair {
    pub relay: botsync::relay::RunningRelay,
    pub guard: StopRootsOnDrop,
    pub init: botsync::commands::init::InitReport,
}

impl DirectPair {
    pub async fn init(work: &Path) -> DirectPair {
        use botsync::commands::init::{self, InitOptions};
        use botsync::relay::{Backend, RelayConfig};
        let relay = botsync::relay::start("127.0.0.1:0", &Backend::Memory, RelayConfig::default()).await.expect("relay starts");
        let (root_a, root_b) = (work.join("root-A"), work.join("root-B"));
        let guard = StopRootsOnDrop(vec![botsync::root::SyncRoot::at(root_a.clone()).unwrap(), botsync::root::SyncRoot::at(root_b).unwrap()]);
        let init = init::run(&InitOptions {
            root: Some(root_a.display().to_string()),
            network: Some("direct".into()),
            relay: Some(relay.url()),
            offline: Some(false),
            wait: None,
            original: None,
        })
        .await
        .expect("init A");
        DirectPair { relay, guard, init }
    }

    /// `botsync join` on root B with A's code, `direct` profile, through the same relay.
    pub async fn join_b(&self, timeout_seconds: u32) -> botsync::commands::join::JoinReport {
        botsync::commands::join::run(&botsync::commands::join::JoinOptions {
            code: self.init.invite.code.clone(),
            root: Some(self.guard.0[1].path().display().to_string()),
            network: Some("direct".into()),
            relay: Some(self.relay.url()),
            timeout_seconds: Some(timeout_seconds),
            original: None,
        })
        .await
        .expect("join B")
    }
}

/// Feeds A's puller events to the watcher's suppression marks, as the daemon does, until the task
/// is aborted.
pub async fn feed_item_events(rest: botsync::engine::RestClient, marks: botsync::daemon::watcher::SuppressionHandle) {
    let (_keep_running, running) = tokio::sync::watch::channel(false);
    botsync::daemon::fast_scan::mark_pulled_items(rest, marks, running).await;
}

/// Wakes up on every fs event under a receiver directory (Syncthing lands files by rename), so
/// a benchmark sees an arrival within a millisecond without busy polling. `mode`: the large-folder
/// benchmark watches one directory only, so as not to put 10,000 watches of its own on the tree.
pub struct Arrivals {
    _watcher: notify::RecommendedWatcher,
    events: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Arrivals {
    pub fn new(dir: &Path, mode: notify::RecursiveMode) -> Arrivals {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |_| {
            let _ = tx.send(());
        })
        .unwrap();
        notify::Watcher::watch(&mut watcher, dir, mode).unwrap();
        Arrivals { _watcher: watcher, events }
    }

    /// Waits until `done()`; checks at most every `min_gap` (for expensive checks).
    pub async fn wait(&mut self, timeout: Duration, min_gap: Duration, mut done: impl FnMut() -> bool) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if done() {
                return Some(Instant::now());
            }
            if Instant::now() > deadline {
                return None;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.events.recv()).await;
            while self.events.try_recv().is_ok() {}
            if !min_gap.is_zero() {
                tokio::time::sleep(min_gap).await;
            }
        }
    }
}

/// Stops every process of the given botsync roots by PID on drop (the benchmarks' roots): the
/// daemons, then Syncthing's monitor and worker (read from the roots' pid records and verified
/// against /proc by `Engine::pids`).
pub struct StopRootsOnDrop(pub Vec<botsync::root::SyncRoot>);

impl StopRootsOnDrop {
    /// The roots' running daemons.
    pub fn daemon_pids(&self) -> Vec<u32> {
        self.0.iter().filter_map(botsync::daemon::process::running_pid).collect()
    }

    /// `botsync stop` on every root, as a user would end them; the drop then finds nothing left.
    pub async fn stop_all(&self) {
        for root in &self.0 {
            let options = botsync::commands::RootOptions { root: Some(root.path().display().to_string()) };
            if let Err(e) = botsync::commands::stop::run(&options).await {
                eprintln!("stop {}: {e}", root.display());
            }
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for root in &self.0 {
            pids.extend(botsync::daemon::process::running_pid(root));
            if let Ok(engine) = botsync::engine::Engine::load(root) {
                let (monitor, worker) = engine.pids();
                pids.extend(monitor);
                pids.extend(worker);
            }
        }
        pids
    }
}

impl Drop for StopRootsOnDrop {
    fn drop(&mut self) {
        let pids = self.pids();
        for &pid in &pids {
            // SAFETY: kill(2) on PIDs just verified to be this benchmark's processes.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while pids.iter().any(|&p| std::path::Path::new(&format!("/proc/{p}")).exists() && proc_state(p) != Some('Z')) {
            if Instant::now() > deadline {
                for &pid in &pids {
                    // SAFETY: as above.
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// A benchmark's samples in ms, as one line: count, min, median, p90, max.
pub fn stats(v: &[f64]) -> String {
    if v.is_empty() {
        return "n=0".into();
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    format!("n={} min {:.1} / med {:.1} / p90 {:.1} / max {:.1} ms", s.len(), s[0], pick(0.5), pick(0.9), s[s.len() - 1])
}
