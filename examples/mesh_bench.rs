//! The 10-machine mesh benchmark (issue 14): N machines, each a real botsync root whose CLI,
//! Syncthing and daemon run in its own network namespace (`mesh-<tag>-mNN`), every namespace
//! wired by a veth to a Linux bridge in a hub namespace (`mesh-<tag>-hub`, 10.231.0.254/24, the
//! machines at 10.231.0.1..N). This process moves itself into the hub and serves the pairing
//! relay there (memory backend); it runs every botsync command as a child process inside the
//! machine's namespace (`ip netns exec`, this binary in `__cli` mode) and reads each Syncthing's
//! REST API from a thread that entered that namespace (`setns`). Files are written and watched
//! from here through the shared filesystem.
//!
//! Run through `bench/mesh.sh` (root). Phases:
//! 1. Joins: machine 1 runs `init`; machine k (k >= 2) runs `join` with a code from machine k-1
//!    (its `init` code for k = 2, a fresh `invite` after that), so every join goes through a
//!    different member. Each join's wall time (the CLI process, start to exit) and then how long
//!    until every pair of members is connected and idle; the next join starts after that.
//! 2. 1 KiB files: MESH_SAMPLES files (default 20), the sender rotating over every machine, each
//!    600-900 ms after the previous one had arrived everywhere (past Syncthing's 250 ms pause
//!    after each index it sends); per file the first and the last of the N-1 arrivals (inotify on
//!    every receiver, full content checked).
//! 3. Removal: the busiest member (the most bytes sent + received over all its connections, from
//!    Syncthing's /rest/system/connections) is removed by `botsync remove` on the least busy one.
//!    Right after `remove` returns, MESH_AFTER_SAMPLES files (default N-1) go round the remaining
//!    machines while the removal spreads; then, once every remaining member has dropped it from
//!    its Syncthing configuration, as many again. The removed machine must get none of the
//!    second round.
//!
//! Env: MESH_N (10), MESH_SAMPLES (20), MESH_AFTER_SAMPLES (N-1), MESH_TAG (namespace tag,
//! default the PID), BOTSYNC_SYNCTHING (the Syncthing), BOTSYNC_DAEMON_BIN (the daemon),
//! MESH_KEEP (set: the machines' roots, logs included, are left in place).
//! Targets are printed as `met` / `MISSED`, never asserted.

use std::collections::BTreeSet;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use botsync::engine::Engine;
use botsync::root::{SharedFolder, SyncRoot};
use notify::Watcher as _;
use rand::RngCore;
use serde_json::Value;

const SUBNET: &str = "10.231.0";
const HUB_IP: &str = "10.231.0.254";
/// One file that has not reached everyone after this long counts as a timeout.
const FILE_TIMEOUT: Duration = Duration::from_secs(30);
const MESH_TIMEOUT: Duration = Duration::from_secs(180);
const JOIN_TARGET_MS: f64 = 2500.0;
const LAST_ARRIVAL_TARGET_MS: f64 = 100.0;
/// A file after `remove` that took longer than this to reach everyone counts as a stall.
const STALL_MS: f64 = 1000.0;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------------------------------
// Network namespaces
// ------------------------------------------------------------------------------------------

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).stdin(Stdio::null()).status().expect("run ip");
    assert!(status.success(), "ip {args:?} failed");
}

/// The hub and the machines' namespaces; deleted on drop (after the machines' processes are
/// stopped: `Mesh` drops first).
struct Namespaces {
    hub: String,
    machines: Vec<String>,
}

impl Namespaces {
    fn create(tag: &str, n: usize) -> Namespaces {
        let hub = format!("mesh-{tag}-hub");
        let mut created = Namespaces { hub: hub.clone(), machines: Vec::new() };
        ip(&["netns", "add", &hub]);
        ip(&["-n", &hub, "link", "set", "lo", "up"]);
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub, "addr", "add", &format!("{HUB_IP}/24"), "dev", "br0"]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for k in 1..=n {
            let ns = format!("mesh-{tag}-m{k:02}");
            ip(&["netns", "add", &ns]);
            created.machines.push(ns.clone());
            let port = format!("v{k:02}");
            ip(&["link", "add", &port, "netns", &hub, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &hub, "link", "set", &port, "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{SUBNET}.{k}/24"), "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        }
        created
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.machines.iter().rev().chain([&self.hub]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Moves the calling thread into a named namespace (threads it starts later inherit it).
fn enter_netns(ns: &str) {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap_or_else(|e| panic!("open netns {ns}: {e}"));
    // SAFETY: setns on a file descriptor we own; CLONE_NEWNET affects only this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

// ------------------------------------------------------------------------------------------
// Per-machine REST access: a thread inside the machine's namespace with its own runtime
// ------------------------------------------------------------------------------------------

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime) + Send>;

struct Probe {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    fn start(ns: &str) -> Probe {
        let (tx, rx) = mpsc::channel::<Job>();
        let ns = ns.to_string();
        let thread = std::thread::spawn(move || {
            enter_netns(&ns);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            while let Ok(job) = rx.recv() {
                job(&runtime);
            }
        });
        Probe { tx: Some(tx), thread: Some(thread) }
    }

    fn run<T: Send + 'static, F: Future<Output = T>>(&self, job: impl FnOnce() -> F + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        let job: Job = Box::new(move |runtime| {
            let _ = done.send(runtime.block_on(job()));
        });
        self.tx.as_ref().unwrap().send(job).expect("probe thread alive");
        result.recv().expect("probe answered")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ------------------------------------------------------------------------------------------
// Machines
// ------------------------------------------------------------------------------------------

struct CliOut {
    status: i32,
    wall_ms: f64,
    json: Value,
    stderr: String,
}

struct Machine {
    k: usize,
    ns: String,
    root: PathBuf,
    id: String,
    probe: Probe,
}

impl Machine {
    fn label(&self) -> String {
        format!("m{:02}", self.k)
    }

    fn root_arg(&self) -> String {
        self.root.display().to_string()
    }

    fn shared(&self) -> PathBuf {
        self.root.join("shared")
    }

    /// `botsync --json --root <root> <args>` as a child process inside this machine's namespace.
    fn cli(&self, args: &[&str]) -> CliOut {
        let exe = std::env::current_exe().expect("own path");
        let started = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(exe)
            .args(["__cli", "--json", "--root", &self.root_arg()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the CLI");
        let wall_ms = ms(started.elapsed());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l.trim()).ok().filter(Value::is_object)).unwrap_or(Value::Null);
        CliOut { status: out.status.code().unwrap_or(-1), wall_ms, json, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
    }

    fn cli_ok(&self, args: &[&str]) -> CliOut {
        let out = self.cli(args);
        assert_eq!(out.status, 0, "{} botsync {args:?}: {} {}", self.label(), out.json, out.stderr);
        out
    }

    fn engine(&self) -> Engine {
        Engine::load(&SyncRoot::at(self.root.clone()).unwrap()).expect("initialized root")
    }

    /// The device IDs Syncthing reports connected right now.
    fn connected(&self) -> BTreeSet<String> {
        let engine = self.engine();
        self.probe.run(move || async move {
            match engine.rest().connections().await {
                Ok(c) => c.connections.into_iter().filter(|(_, c)| c.connected).map(|(id, _)| id).collect(),
                Err(_) => BTreeSet::new(),
            }
        })
    }

    /// The shared folder is idle here, and every one of `peers` has sent its folder list and holds
    /// everything we have.
    fn ready_with(&self, peers: Vec<String>) -> bool {
        let engine = self.engine();
        self.probe.run(move || async move {
            let rest = engine.rest();
            let folder = SharedFolder::Shared.folder_id();
            let Ok(status) = rest.db_status(folder).await else { return false };
            if status.state != "idle" || status.need_files != 0 {
                return false;
            }
            for peer in peers {
                let Ok(id) = peer.parse() else { return false };
                match rest.db_completion(folder, Some(&id)).await {
                    Ok(c) if c.completion >= 100.0 && c.remote_state.as_deref().is_none_or(|s| s == "valid") => {}
                    _ => return false,
                }
            }
            true
        })
    }

    /// Bytes received and sent over all connections since Syncthing started.
    fn traffic(&self) -> (u64, u64) {
        let engine = self.engine();
        self.probe.run(move || async move {
            let url = format!("{}/rest/system/connections", engine.rest().base_url());
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let body: Value = match client.get(url).header("X-API-Key", engine.state().api_key.expose()).send().await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let total = &body["total"];
            (total["inBytesTotal"].as_u64().unwrap_or(0), total["outBytesTotal"].as_u64().unwrap_or(0))
        })
    }

    /// Every process of this root (daemon, Syncthing monitor and worker), by PID.
    fn pids(&self) -> Vec<u32> {
        let Ok(root) = SyncRoot::at(self.root.clone()) else { return Vec::new() };
        let mut pids: Vec<u32> = botsync::daemon::process::running_pid(&root).into_iter().collect();
        if let Ok(engine) = Engine::load(&root) {
            let (monitor, worker) = engine.pids();
            pids.extend(monitor);
            pids.extend(worker);
        }
        pids
    }
}

/// The machines; stops every process of every root by PID on drop, also on panic.
struct Mesh {
    machines: Vec<Machine>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let pids: Vec<u32> = self.machines.iter().flat_map(Machine::pids).collect();
        for &pid in &pids {
            // SAFETY: kill(2) on PIDs read from this benchmark's own roots and checked by /proc.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while pids.iter().any(|&p| alive(p)) {
            if Instant::now() > deadline {
                for &pid in pids.iter().filter(|&&p| alive(p)) {
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

fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    stat.rfind(')').and_then(|at| stat[at + 2..].chars().next()).is_some_and(|s| s != 'Z')
}

// ------------------------------------------------------------------------------------------
// Arrivals: one inotify watcher over every machine's shared/
// ------------------------------------------------------------------------------------------

struct Target {
    name: String,
    content: Vec<u8>,
    arrived: Vec<Option<Instant>>,
}

struct Arrivals {
    _watcher: notify::RecommendedWatcher,
    state: Arc<(Mutex<Option<Target>>, Condvar)>,
    dirs: Vec<PathBuf>,
}

impl Arrivals {
    fn new(dirs: Vec<PathBuf>) -> Arrivals {
        let state: Arc<(Mutex<Option<Target>>, Condvar)> = Arc::default();
        let (shared, watched) = (state.clone(), dirs.clone());
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let (lock, cvar) = &*shared;
            let mut guard = lock.lock().unwrap();
            let Some(target) = guard.as_mut() else { return };
            for path in &event.paths {
                if path.file_name().is_none_or(|n| *n != *target.name) {
                    continue;
                }
                let Some(i) = watched.iter().position(|d| path.parent() == Some(d.as_path())) else { continue };
                if target.arrived[i].is_none() && std::fs::read(path).is_ok_and(|c| c == target.content) {
                    target.arrived[i] = Some(Instant::now());
                    cvar.notify_all();
                }
            }
        })
        .unwrap();
        for dir in &dirs {
            watcher.watch(dir, notify::RecursiveMode::NonRecursive).unwrap();
        }
        Arrivals { _watcher: watcher, state, dirs }
    }

    /// Writes a fresh 1 KiB file `name` into machine `sender`'s shared/ and waits until it is on
    /// every machine in `receivers` (or `FILE_TIMEOUT`). Per receiver: ms from the write, if it came.
    fn send(&self, sender: usize, name: &str, receivers: &[usize]) -> Vec<Option<f64>> {
        let mut content = vec![0u8; 1024];
        rand::rng().fill_bytes(&mut content);
        let (lock, cvar) = &*self.state;
        *lock.lock().unwrap() = Some(Target { name: name.to_string(), content: content.clone(), arrived: vec![None; self.dirs.len()] });
        let t0 = Instant::now();
        std::fs::write(self.dirs[sender].join(name), &content).unwrap();
        let deadline = t0 + FILE_TIMEOUT;
        let mut guard = lock.lock().unwrap();
        loop {
            let target = guard.as_mut().unwrap();
            // The watcher sees arrivals at once; a look every 50 ms catches an event it missed.
            for &r in receivers {
                if target.arrived[r].is_none() && std::fs::read(self.dirs[r].join(name)).is_ok_and(|c| c == content) {
                    target.arrived[r] = Some(Instant::now());
                }
            }
            if receivers.iter().all(|&r| target.arrived[r].is_some()) || Instant::now() > deadline {
                break;
            }
            guard = cvar.wait_timeout(guard, Duration::from_millis(50)).unwrap().0;
        }
        let target = guard.take().unwrap();
        receivers.iter().map(|&r| target.arrived[r].map(|t| ms(t - t0))).collect()
    }
}

/// One file's arrivals: first and last over the receivers (last is None if one never came).
struct Sample {
    sender: usize,
    per_receiver: Vec<(usize, Option<f64>)>,
}

impl Sample {
    fn first(&self) -> Option<f64> {
        self.per_receiver.iter().filter_map(|(_, t)| *t).reduce(f64::min)
    }

    /// The last arrival among receivers `among` (all if None); None if one of them never got it.
    fn last_among(&self, among: Option<&[usize]>) -> Option<f64> {
        let mut last: f64 = 0.0;
        let mut any = false;
        for (r, t) in &self.per_receiver {
            if among.is_some_and(|a| !a.contains(r)) {
                continue;
            }
            any = true;
            last = last.max((*t)?);
        }
        any.then_some(last)
    }

    fn last(&self) -> Option<f64> {
        self.last_among(None)
    }

    fn slowest(&self) -> Option<usize> {
        self.per_receiver.iter().filter_map(|(r, t)| t.map(|t| (*r, t))).max_by(|a, b| a.1.partial_cmp(&b.1).unwrap()).map(|(r, _)| r)
    }
}

fn run_samples(arrivals: &Arrivals, phase: &str, senders: &[usize], receivers_of: impl Fn(usize) -> Vec<usize>, count: usize, labels: &[String]) -> Vec<Sample> {
    let mut samples = Vec::new();
    for i in 0..count {
        std::thread::sleep(Duration::from_millis(rand::random_range(600..900)));
        let sender = senders[i % senders.len()];
        let receivers = receivers_of(sender);
        let name = format!("{phase}-{i:03}.bin");
        let times = arrivals.send(sender, &name, &receivers);
        let sample = Sample { sender, per_receiver: receivers.iter().copied().zip(times).collect() };
        println!(
            "  [{phase}] {name} from {}: first {} / last {} (slowest {})",
            labels[sender],
            fmt_ms(sample.first()),
            fmt_ms(sample.last()),
            sample.slowest().map_or("-".into(), |r| labels[r].clone())
        );
        samples.push(sample);
    }
    samples
}

// ------------------------------------------------------------------------------------------
// Figures
// ------------------------------------------------------------------------------------------

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("timeout".into(), |v| format!("{v:.1} ms"))
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s
}

fn median(v: &[f64]) -> Option<f64> {
    let s = sorted(v);
    if s.is_empty() {
        return None;
    }
    let mid = s.len() / 2;
    Some(if s.len() % 2 == 1 { s[mid] } else { (s[mid - 1] + s[mid]) / 2.0 })
}

fn stats(v: &[f64]) -> String {
    let s = sorted(v);
    if s.is_empty() {
        return "n=0".into();
    }
    let pick = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    format!("n={} min {:.1} / median {:.1} / p90 {:.1} / max {:.1} ms", s.len(), s[0], median(&s).unwrap(), pick(0.9), s[s.len() - 1])
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn syncthing_version() -> String {
    let bin = std::env::var("BOTSYNC_SYNCTHING").unwrap_or_else(|_| "syncthing".into());
    let out = Command::new(&bin).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    format!("{} ({bin})", out.split_whitespace().nth(1).unwrap_or("?"))
}

// ------------------------------------------------------------------------------------------
// The benchmark
// ------------------------------------------------------------------------------------------

/// The relay, on its own thread and runtime, listening on the hub's address.
fn start_relay() -> (String, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (url_tx, url_rx) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async move {
            let config = botsync::relay::RelayConfig { limits: botsync::relay::RateLimits::unlimited(), ..Default::default() };
            let relay = botsync::relay::start(&format!("{HUB_IP}:0"), &botsync::relay::Backend::Memory, config).await.expect("relay starts");
            url_tx.send(relay.url()).unwrap();
            let _ = stopped.await;
            relay.shutdown().await;
        });
    });
    (url_rx.recv_timeout(Duration::from_secs(10)).expect("relay URL"), stop, thread)
}

/// Waits until machines `members` are all connected to each other and idle with each other.
/// Returns (ms until all connected, ms until all ready), from `since`.
fn wait_meshed(mesh: &Mesh, members: &[usize], since: Instant) -> (Option<f64>, Option<f64>) {
    let deadline = Instant::now() + MESH_TIMEOUT;
    let ids = |except: usize| members.iter().filter(|&&m| m != except).map(|&m| mesh.machines[m].id.clone()).collect::<Vec<_>>();
    let mut connected_at = None;
    let mut reported = Instant::now();
    while connected_at.is_none() {
        let missing: Vec<(usize, usize)> = members
            .iter()
            .flat_map(|&m| {
                let connected = mesh.machines[m].connected();
                members.iter().filter(move |&&o| o != m && !connected.contains(&mesh.machines[o].id)).map(move |&o| (m, o)).collect::<Vec<_>>()
            })
            .collect();
        if missing.is_empty() {
            connected_at = Some(ms(since.elapsed()));
        } else if Instant::now() > deadline {
            return (None, None);
        } else {
            if reported.elapsed() > Duration::from_secs(3) {
                reported = Instant::now();
                let pairs: Vec<String> = missing.iter().map(|(m, o)| format!("{}-/->{}", mesh.machines[*m].label(), mesh.machines[*o].label())).collect();
                println!("  (+{:.1} s, not connected yet: {})", since.elapsed().as_secs_f64(), pairs.join(" "));
                if std::env::var_os("MESH_LOGS").is_some() {
                    let (m, o) = missing[0];
                    for (a, b) in [(m, o), (o, m)] {
                        let peers = mesh.machines[a].engine().configured_peers().unwrap_or_default();
                        let entry = peers.iter().find(|(id, _, _)| *id == mesh.machines[b].id);
                        println!("    {} configures {}: {:?}", mesh.machines[a].label(), mesh.machines[b].label(), entry.map(|e| &e.2));
                    }
                    for (a, b) in [(m, o), (o, m)] {
                        let short = &mesh.machines[b].id[..7];
                        let log = std::fs::read_to_string(botsync::engine::process::log_path(&mesh.machines[a].root.join(".botsync"))).unwrap_or_default();
                        for line in log.lines().filter(|l| l.contains(short)).collect::<Vec<_>>().iter().rev().take(std::env::var("MESH_LOG_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(8)).rev() {
                            println!("    {} log: {}", mesh.machines[a].label(), line.chars().take(220).collect::<String>());
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    loop {
        if members.iter().all(|&m| mesh.machines[m].ready_with(ids(m))) {
            return (connected_at, Some(ms(since.elapsed())));
        }
        if Instant::now() > deadline {
            return (connected_at, None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct JoinFigure {
    k: usize,
    host: usize,
    wall_ms: f64,
    paired_ms: f64,
    connected_ms: f64,
    meshed_ms: Option<f64>,
    ready_ms: Option<f64>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__cli") {
        let argv = std::iter::once("botsync".to_string()).chain(args[2..].iter().cloned()).collect();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let code = runtime.block_on(botsync::cli::run(argv));
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("mesh_bench needs root (it creates network namespaces)");
        std::process::exit(2);
    }
    let n = env_num("MESH_N", 10).clamp(3, 200) as usize;
    let samples = env_num("MESH_SAMPLES", 20) as usize;
    let after_samples = env_num("MESH_AFTER_SAMPLES", n as u64 - 1) as usize;
    let tag = std::env::var("MESH_TAG").unwrap_or_else(|_| std::process::id().to_string());
    let version = syncthing_version();
    println!("==== mesh benchmark: {n} machines, Syncthing {version}, load {} ====", loadavg());

    let mut work = tempfile::Builder::new().prefix("botsync-mesh-").tempdir().unwrap();
    if std::env::var_os("MESH_KEEP").is_some() {
        // Diagnostics: every root (its syncthing.log and daemon.log in .botsync/) stays after the run.
        work.disable_cleanup(true);
        println!("roots kept in {}", work.path().display());
    }
    let namespaces = Namespaces::create(&tag, n);
    // This thread (and every thread started from now on: the relay's) lives in the hub.
    enter_netns(&namespaces.hub);
    let (relay_url, relay_stop, relay_thread) = start_relay();
    println!("relay {relay_url} in {}; machines {SUBNET}.1-{n} in {}..{}", namespaces.hub, namespaces.machines[0], namespaces.machines[n - 1]);

    let mut mesh = Mesh { machines: Vec::new() };
    for k in 1..=n {
        let ns = namespaces.machines[k - 1].clone();
        mesh.machines.push(Machine { k, probe: Probe::start(&ns), ns, root: work.path().join(format!("m{k:02}")), id: String::new() });
    }
    let labels: Vec<String> = mesh.machines.iter().map(Machine::label).collect();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut mesh, &relay_url, samples, after_samples, &labels, &version)));
    drop(mesh);
    let _ = relay_stop.send(());
    let _ = relay_thread.join();
    drop(namespaces);
    drop(work);
    if outcome.is_err() {
        std::process::exit(1);
    }
}

fn run(mesh: &mut Mesh, relay: &str, samples: usize, after_samples: usize, labels: &[String], version: &str) {
    let n = mesh.machines.len();
    // ---- 1. joins, one by one, each through the machine that joined last
    let init = mesh.machines[0].cli_ok(&["init", "--network", "direct", "--relay", relay]);
    mesh.machines[0].id = init.json["deviceId"].as_str().unwrap().to_string();
    let mut code = init.json["invite"]["code"].as_str().expect("init prints a code").to_string();
    println!("m01 init {:.0} ms", init.wall_ms);
    let mut joins: Vec<JoinFigure> = Vec::new();
    for j in 1..n {
        let host = j - 1;
        if j > 1 {
            let invite = mesh.machines[host].cli_ok(&["invite", "--relay", relay]);
            code = invite.json["code"].as_str().expect("invite prints a code").to_string();
        }
        let joined = mesh.machines[j].cli_ok(&["join", &code, "--network", "direct", "--relay", relay, "--timeout", "60"]);
        let returned = Instant::now();
        mesh.machines[j].id = joined.json["deviceId"].as_str().unwrap().to_string();
        let members: Vec<usize> = (0..=j).collect();
        let (meshed_ms, ready_ms) = wait_meshed(mesh, &members, returned);
        let figure = JoinFigure {
            k: j + 1,
            host,
            wall_ms: joined.wall_ms,
            paired_ms: joined.json["pairedMs"].as_f64().unwrap_or(f64::NAN),
            connected_ms: joined.json["connectedMs"].as_f64().unwrap_or(f64::NAN),
            meshed_ms,
            ready_ms,
        };
        println!(
            "join {:>2} via {}: {:.0} ms (paired at {:.0} ms, done at {:.0} ms); then all {} connected +{} and idle +{}",
            figure.k,
            labels[host],
            figure.wall_ms,
            figure.paired_ms,
            figure.connected_ms,
            j + 1,
            fmt_ms(meshed_ms),
            fmt_ms(ready_ms)
        );
        assert!(ready_ms.is_some(), "the mesh of {} never settled", j + 1);
        joins.push(figure);
    }
    let load_after_joins = loadavg();

    // ---- 2. a 1 KiB file from every member in turn to all others
    let arrivals = Arrivals::new(mesh.machines.iter().map(Machine::shared).collect());
    let all: Vec<usize> = (0..n).collect();
    println!("1 KiB files, {samples} samples, load {}", loadavg());
    let before = run_samples(&arrivals, "before", &all, |s| all.iter().copied().filter(|&r| r != s).collect(), samples, labels);
    let load_samples = loadavg();

    // ---- 3. remove the busiest member from the least busy one
    let traffic: Vec<(u64, u64)> = mesh.machines.iter().map(Machine::traffic).collect();
    let total = |i: usize| traffic[i].0 + traffic[i].1;
    let busiest = (0..n).max_by_key(|&i| total(i)).unwrap();
    let remover = (0..n).filter(|&i| i != busiest).min_by_key(|&i| total(i)).unwrap();
    let rest: Vec<usize> = (0..n).filter(|&i| i != busiest).collect();
    let busiest_id = mesh.machines[busiest].id.clone();
    let removed = mesh.machines[remover].cli_ok(&["remove", &busiest_id]);
    let removed_at = Instant::now();
    // Watch every remaining member's configuration while the first round runs.
    let dropped: Arc<Mutex<Vec<Option<f64>>>> = Arc::new(Mutex::new(vec![None; n]));
    let stop_watch = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let roots: Vec<(usize, PathBuf)> = rest.iter().map(|&i| (i, mesh.machines[i].root.clone())).collect();
    let watch = {
        let (dropped, stop, id) = (dropped.clone(), stop_watch.clone(), busiest_id.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, root) in &roots {
                    let mut d = dropped.lock().unwrap();
                    if d[*i].is_none() {
                        let engine = Engine::load(&SyncRoot::at(root.clone()).unwrap()).unwrap();
                        if !engine.configured_peers().unwrap_or_default().iter().any(|(p, _, _)| *p == id) {
                            d[*i] = Some(ms(removed_at.elapsed()));
                        }
                    }
                }
                if roots.iter().all(|(i, _)| dropped.lock().unwrap()[*i].is_some()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    println!("removed {} (busiest) from {} in {:.0} ms; files among the other {}", labels[busiest], labels[remover], removed.wall_ms, rest.len());
    let others_of = |s: usize| rest.iter().copied().filter(|&r| r != s).collect::<Vec<_>>();
    let during = run_samples(&arrivals, "during", &rest, others_of, after_samples, labels);
    // Wait (up to a minute) until every remaining member has dropped it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rest.iter().all(|&i| dropped.lock().unwrap()[i].is_some()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop_watch.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watch.join();
    let dropped = dropped.lock().unwrap().clone();
    let all_dropped = rest.iter().all(|&i| dropped[i].is_some());
    let after = run_samples(&arrivals, "after", &rest, others_of, after_samples, labels);
    // The removed machine: which files of each round reached it (given 3 s more to show up).
    std::thread::sleep(Duration::from_secs(3));
    let reached = |phase: &str, count: usize| (0..count).filter(|i| mesh.machines[busiest].shared().join(format!("{phase}-{i:03}.bin")).exists()).count();
    let (reached_during, reached_after) = (reached("during", after_samples), reached("after", after_samples));
    let still_connected: Vec<String> = rest.iter().filter(|&&i| mesh.machines[i].connected().contains(&busiest_id)).map(|&i| labels[i].clone()).collect();

    // ---- report
    println!();
    println!("==== mesh of {n}, Syncthing {version} ====");
    println!("load (1/5/15 min): after the joins {load_after_joins}; after the 1 KiB samples {load_samples}; now {}", loadavg());
    println!("-- joins (machine k joins with a code from machine k-1)");
    for j in &joins {
        println!(
            "  join {:>2} via {}: wall {:.0} ms (paired {:.0} ms, done {:.0} ms in-process); after it returned: all {} connected +{}, idle +{}",
            j.k,
            labels[j.host],
            j.wall_ms,
            j.paired_ms,
            j.connected_ms,
            j.k,
            fmt_ms(j.meshed_ms),
            fmt_ms(j.ready_ms)
        );
    }
    let walls: Vec<f64> = joins.iter().map(|j| j.wall_ms).collect();
    println!("  all joins: {}", stats(&walls));
    let last_join = joins.last().unwrap();
    let first_join = joins.first().unwrap();
    println!(
        "  join {} wall {:.0} ms; ratio to join 2 (a mesh of one) {:.2}   target <= {JOIN_TARGET_MS:.0} ms: {}",
        last_join.k,
        last_join.wall_ms,
        last_join.wall_ms / first_join.wall_ms,
        verdict(last_join.wall_ms <= JOIN_TARGET_MS)
    );
    println!("-- 1 KiB file from each member in turn to the other {}", n - 1);
    let lasts: Vec<f64> = before.iter().filter_map(Sample::last).collect();
    let firsts: Vec<f64> = before.iter().filter_map(Sample::first).collect();
    let timeouts = before.iter().filter(|s| s.last().is_none()).count();
    println!("  first arrival  {}", stats(&firsts));
    println!("  last arrival   {}  timeouts={timeouts}", stats(&lasts));
    let median_last = median(&lasts);
    let ratio_last_first = match (median_last, median(&firsts)) {
        (Some(l), Some(f)) if f > 0.0 => format!("{:.2}", l / f),
        _ => "-".into(),
    };
    println!(
        "  median last arrival {} (ratio to the median first arrival {ratio_last_first})   target <= {LAST_ARRIVAL_TARGET_MS:.0} ms: {}",
        fmt_ms(median_last),
        verdict(timeouts == 0 && median_last.is_some_and(|m| m <= LAST_ARRIVAL_TARGET_MS))
    );
    let mut slowest_count = vec![0usize; n];
    for s in &before {
        if let Some(r) = s.slowest() {
            slowest_count[r] += 1;
        }
    }
    println!("  slowest receiver, times: {}", (0..n).filter(|&i| slowest_count[i] > 0).map(|i| format!("{} x{}", labels[i], slowest_count[i])).collect::<Vec<_>>().join(", "));
    println!("-- removing the busiest member");
    println!(
        "  traffic in+out (MiB): {}",
        (0..n).map(|i| format!("{} {:.2}", labels[i], total(i) as f64 / 1048576.0)).collect::<Vec<_>>().join(", ")
    );
    println!("  busiest {} (most bytes over its connections), removed from {} (least) with `botsync remove`: {:.0} ms", labels[busiest], labels[remover], removed.wall_ms);
    let drop_times: Vec<f64> = rest.iter().filter_map(|&i| dropped[i]).collect();
    println!(
        "  dropped from each remaining member's Syncthing, ms after `remove` returned: {}{}",
        rest.iter().map(|&i| format!("{} {}", labels[i], dropped[i].map_or("never".into(), |v| format!("{v:.0}")))).collect::<Vec<_>>().join(", "),
        if all_dropped { format!(" (all within {:.0} ms)", drop_times.iter().cloned().fold(0.0, f64::max)) } else { String::new() }
    );
    // The same receivers before removal: files not sent by the busiest, last arrival among the rest.
    let before_rest: Vec<f64> = before.iter().filter(|s| s.sender != busiest).filter_map(|s| s.last_among(Some(&rest))).collect();
    let during_last: Vec<f64> = during.iter().filter_map(Sample::last).collect();
    let after_last: Vec<f64> = after.iter().filter_map(Sample::last).collect();
    let during_timeouts = during.iter().filter(|s| s.last().is_none()).count();
    let after_timeouts = after.iter().filter(|s| s.last().is_none()).count();
    println!("  last arrival among the other {}, before removal (same receivers) {}", rest.len() - 1, stats(&before_rest));
    println!("  right after `remove` (while it spreads)          {}  timeouts={during_timeouts}", stats(&during_last));
    println!("  once every member dropped it                     {}  timeouts={after_timeouts}", stats(&after_last));
    let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    };
    println!(
        "  median ratios to before: right after {}, once dropped {}",
        r(median(&during_last), median(&before_rest)),
        r(median(&after_last), median(&before_rest))
    );
    println!(
        "  the removed machine got {reached_during} of the {after_samples} files written while the removal spread, {reached_after} of the {after_samples} written after; still connected to it: {}",
        if still_connected.is_empty() { "none".into() } else { still_connected.join(", ") }
    );
    let worst = during_last.iter().chain(&after_last).cloned().fold(0.0, f64::max);
    let no_stall = during_timeouts == 0 && after_timeouts == 0 && worst <= STALL_MS && all_dropped && reached_after == 0;
    println!(
        "  removal does not stall the rest (every file after `remove` on all {} others, none over {STALL_MS:.0} ms (worst {worst:.1} ms), dropped everywhere, the removed one gets none after): {}",
        rest.len() - 1,
        verdict(no_stall)
    );
    println!(
        "  median last arrival after removal {}   target <= {LAST_ARRIVAL_TARGET_MS:.0} ms: {}",
        fmt_ms(median(&after_last)),
        verdict(after_timeouts == 0 && median(&after_last).is_some_and(|m| m <= LAST_ARRIVAL_TARGET_MS))
    );
}
