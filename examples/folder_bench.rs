//! Large-folder benchmark (issue 14): a folder of 100,000 files (1 KiB-64 KiB, 8 directory
//! levels) on A, synced to B by raw Syncthing and by botsync, in the same run.
//!
//! Run through `bench/folder.sh`. The binary re-executes itself inside a private network
//! namespace (`unshare -n`, loopback only). Options (env):
//! - BENCH_FILES (100000), BENCH_FANOUT (3 subdirectories per directory), BENCH_DEPTH (8 levels),
//!   BENCH_MIN_KIB (1), BENCH_MAX_KIB (64), BENCH_SEED (14): the tree. Directories: every
//!   directory of levels 1..=DEPTH under the folder root, FANOUT children each (3, 8: 9,840
//!   directories); each file goes to one of them picked uniformly at random, with a size drawn
//!   log-uniformly from [MIN, MAX] KiB (ln(size) uniform: as many files of 1-8 KiB as of 8-64 KiB;
//!   mean ~15 KiB, ~1.5 GB for 100,000 files) and random content. Everything comes from one
//!   seeded RNG (ChaCha12), so both subjects and every run get the same tree.
//! - BENCH_IDLE_S (60): the idle CPU window (a longer one also prints each minute), once both
//!   setups have stayed idle (folder state, nothing needed, the peer complete) for BENCH_SETTLE_S
//!   (30) in a row. BENCH_SAMPLES (20): one-change samples.
//! - BENCH_X (experiments, not figures; comma-separated): `raw-ignores` / `raw-versioning` give the
//!   raw pair botsync's ignore patterns / trash-can versioning, `stop-daemon-b` stops B's daemon
//!   as `join` returns, `stop-daemons-idle` stops both daemons before the idle window,
//!   `cpuprof-idle` records a Go CPU profile of each of the four Syncthings over the idle window
//!   (`/rest/debug/cpuprof`, GUI debugging switched on first) into BENCH_PROF_DIR
//!   (/tmp/folder-bench-prof), for `go tool pprof -top`.
//! - BENCH_RAW_DELAY_S (10, Syncthing's default): the raw pair's fsWatcherDelayS.
//! - BENCH_ONLY (raw,botsync): leave one subject out while iterating.
//! - BENCH_FIRST (raw): which subject joins first (`botsync` swaps them). The later join's
//!   database is the fresher one when the idle window opens; swapping tells its cost apart from
//!   botsync's own.
//! - The Syncthing binary is $SYNCTHING, else $BOTSYNC_SYNCTHING (botsync's roots use that too);
//!   botsync's daemons are $BOTSYNC_DAEMON_BIN (folder.sh points it at the build).
//!
//! Subjects:
//! - `raw`: two Syncthings configured through REST. A's folder (its own watcher on, as Syncthing
//!   ships) is added with the tree in place and scanned, shared with nobody. The join clock
//!   starts right before both sides are told about each other (device + folder shared, on A and
//!   B at once) and stops when B's `/rest/db/status` shows needFiles == 0 and localFiles == the
//!   tree's file count; B's disk is checked afterwards (every file, every byte).
//! - `botsync`: `botsync init` on A (direct profile, in-process relay, release daemon), the tree
//!   moved into A's shared/ (three renames) and A's scan finished (localFiles == count, idle).
//!   The join clock starts right before `botsync join` on B (a fresh root: B's Syncthing start,
//!   pairing through the relay and the connection are inside it) and stops the same way as raw,
//!   on B's shared folder. Also printed: when `join` returned and its own connected time, and
//!   the sync part alone (join returned -> all files).
//!
//! After both joins: every directory watched (the daemons' inotify watch counts, read from
//! /proc/PID/fdinfo, against the tree's directories), the daemons' VmRSS / VmHWM; idle CPU of
//! both setups over the same window, side by side; then the one-change case: 1 KiB files
//! written into the deepest directory on A, 300-800 ms apart, alternating botsync and
//! `raw-scan` (the raw pair with one explicit `POST /rest/db/scan` naming the file right after
//! the write: the floor), each until it is on B.

#[path = "../tests/it/support/watcher.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use botsync::engine::Engine;
use botsync::relay::RunningRelay;
use botsync::root::SharedFolder;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::Value;
use support::{poll_until, proc_cpu_ticks, reexec_in_private_netns, shared_folder_settled, stats, Arrivals, DirectPair, FsWatcher, NetnsRun, StopRootsOnDrop, SyncthingNode};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whether BENCH_X (comma-separated) names this experiment.
fn experiment(name: &str) -> bool {
    std::env::var("BENCH_X").is_ok_and(|x| x.split(',').any(|x| x == name))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------------------------------
// The tree
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct TreeSpec {
    files: usize,
    fanout: usize,
    depth: usize,
    min_bytes: u64,
    max_bytes: u64,
    seed: u64,
}

impl TreeSpec {
    fn from_env() -> TreeSpec {
        TreeSpec {
            files: env_num("BENCH_FILES", 100_000) as usize,
            fanout: env_num("BENCH_FANOUT", 3).max(1) as usize,
            depth: env_num("BENCH_DEPTH", 8).max(1) as usize,
            min_bytes: env_num("BENCH_MIN_KIB", 1) * 1024,
            max_bytes: env_num("BENCH_MAX_KIB", 64) * 1024,
            seed: env_num("BENCH_SEED", 14),
        }
    }

    /// Every directory, parents before children: "d0", "d0/d0", ... down to `depth` levels.
    fn dirs(&self) -> Vec<String> {
        let mut all = Vec::new();
        let mut level: Vec<String> = vec![String::new()];
        for _ in 0..self.depth {
            let mut next = Vec::new();
            for parent in &level {
                for c in 0..self.fanout {
                    next.push(if parent.is_empty() { format!("d{c}") } else { format!("{parent}/d{c}") });
                }
            }
            all.extend(next.iter().cloned());
            level = next;
        }
        all
    }

    /// The deepest directory (where the one-change files go).
    fn deep_dir(&self) -> String {
        vec!["d0"; self.depth].join("/")
    }

    /// Writes the tree under `dest`; returns (files, bytes).
    fn generate(&self, dest: &Path) -> (usize, u64) {
        let dirs = self.dirs();
        for d in &dirs {
            std::fs::create_dir_all(dest.join(d)).unwrap();
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed);
        let (lo, hi) = ((self.min_bytes.max(1) as f64).ln(), (self.max_bytes.max(self.min_bytes).max(1) as f64).ln());
        let mut buf = vec![0u8; self.max_bytes.max(self.min_bytes) as usize];
        let mut total = 0u64;
        for i in 0..self.files {
            let dir = &dirs[rng.random_range(0..dirs.len())];
            let u: f64 = rng.random();
            let len = ((lo + u * (hi - lo)).exp().round() as u64).clamp(self.min_bytes, self.max_bytes.max(self.min_bytes)) as usize;
            rng.fill_bytes(&mut buf[..len]);
            std::fs::write(dest.join(dir).join(format!("f{i:06}.bin")), &buf[..len]).unwrap();
            total += len as u64;
        }
        (self.files, total)
    }
}

/// Regular files under `dir` (Syncthing's temp files, .stfolder and .stversions left out), and
/// their bytes.
fn disk_files(dir: &Path) -> (usize, u64) {
    fn walk(dir: &Path, top: bool, acc: &mut (usize, u64)) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if (top && (name == ".stfolder" || name == ".stversions" || name == ".stignore")) || botsync::daemon::watcher::is_syncthing_temp_name(&name) {
                continue;
            }
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                walk(&e.path(), false, acc);
            } else if t.is_file() {
                acc.0 += 1;
                acc.1 += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    let mut acc = (0, 0);
    walk(dir, true, &mut acc);
    acc
}

/// `cp -al`: a hard-linked copy (A's side only reads the files, so both subjects can share
/// the inodes of one generated tree).
fn link_copy(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp").arg("-al").arg(from).arg(to).status().expect("cp");
    assert!(status.success(), "cp -al {} {}", from.display(), to.display());
}

// ------------------------------------------------------------------------------------------
// Process figures
// ------------------------------------------------------------------------------------------

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// inotify watches a process holds (the `inotify wd:` lines of its inotify fds' fdinfo).
fn inotify_watches(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    let mut n = 0;
    for fd in fds.flatten() {
        if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify")) {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy())).unwrap_or_default();
            n += info.lines().filter(|l| l.starts_with("inotify wd:")).count();
        }
    }
    n
}

fn ticks(pids: &[u32]) -> u64 {
    pids.iter().map(|p| proc_cpu_ticks(*p)).sum()
}

fn tick_ms() -> f64 {
    // SAFETY: sysconf has no preconditions.
    1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}


fn local_files(status: &Value) -> u64 {
    status["localFiles"].as_u64().unwrap_or(0)
}

// ------------------------------------------------------------------------------------------
// Subjects
// ------------------------------------------------------------------------------------------

const RAW_FOLDER: &str = "bench";

struct RawSetup {
    a: SyncthingNode,
    b: SyncthingNode,
    dir_a: PathBuf,
    dir_b: PathBuf,
}

/// Join figures of one subject.
#[derive(Default, Debug, Clone)]
struct JoinFigures {
    /// A's scan of the tree (not part of the join clock).
    a_scan_ms: f64,
    /// Join start -> every file on B.
    total_ms: f64,
    /// botsync: join start -> `join` returned, and its own connected figure.
    join_returned_ms: Option<f64>,
    join_connected_ms: Option<f64>,
    /// Disk check on B after the clock stopped.
    b_disk: (usize, u64),
    /// CPU ticks during the join window.
    syncthing_ticks: u64,
    daemon_ticks: u64,
    /// botsync: the daemons' ticks during the join, A and B apart.
    daemon_ticks_ab: (u64, u64),
}


impl RawSetup {
    async fn start(work: &Path, master: &Path, spec: &TreeSpec, delay_s: u32, figures: &mut JoinFigures) -> RawSetup {
        let a = SyncthingNode::spawn(work, "A", 18384, 22101);
        let b = SyncthingNode::spawn(work, "B", 18385, 22102);
        a.wait_rest().await;
        b.wait_rest().await;
        a.configure_isolated().await;
        b.configure_isolated().await;
        let dir_a = work.join("data-A").join(RAW_FOLDER);
        let dir_b = work.join("data-B").join(RAW_FOLDER);
        std::fs::create_dir_all(dir_a.parent().unwrap()).unwrap();
        link_copy(master, &dir_a);
        // BENCH_X=raw-ignores / raw-versioning (experiments, not figures): the raw pair with
        // botsync's default ignore patterns / trash-can versioning, to price each on its own.
        if experiment("raw-ignores") {
            for dir in [&dir_a, &dir_b] {
                std::fs::create_dir_all(dir).unwrap();
                std::fs::write(dir.join(".stignore"), botsync::engine::ignores::DEFAULTS).unwrap();
            }
            println!("EXPERIMENT: raw folders with botsync's ignore patterns");
        }
        let versioning = experiment("raw-versioning").then(|| botsync::engine::versioning::trashcan(botsync::engine::versioning::DEFAULT_KEEP_DAYS));
        if versioning.is_some() {
            println!("EXPERIMENT: raw folders with botsync's trash-can versioning");
        }
        let watcher = FsWatcher::DelayS(delay_s);
        let t = Instant::now();
        a.add_folder(RAW_FOLDER, &dir_a, &[], watcher).await;
        async fn set_versioning(node: &SyncthingNode, versioning: Option<&Value>) {
            if let Some(v) = versioning {
                node.api(reqwest::Method::PATCH, &format!("/rest/config/folders/{RAW_FOLDER}"), Some(serde_json::json!({ "versioning": v }))).await.unwrap();
            }
        }
        set_versioning(&a, versioning.as_ref()).await;
        let want = spec.files as u64;
        poll_until(Duration::from_secs(1800), Duration::from_millis(200), "raw A scanned", || async {
            a.get(&format!("/rest/db/status?folder={RAW_FOLDER}")).await.is_ok_and(|s| s["state"] == "idle" && local_files(&s) == want)
        })
        .await;
        figures.a_scan_ms = ms(t.elapsed());
        println!("[raw] A scanned {} files in {:.0} ms", spec.files, figures.a_scan_ms);
        let pids: Vec<u32> = a.pid().into_iter().chain(b.pid()).collect();
        let ticks0 = ticks(&pids);
        // The join clock: both sides learn of each other at once. Each adds the other paused,
        // shares the folder, then resumes it (as botsync does): a connection made before the
        // folder is shared is dropped by Syncthing ("no such folder") and redialled only after
        // reconnectionIntervalS (60 s), which would measure the setup's race, not the sync.
        let t0 = Instant::now();
        async fn introduce(me: &SyncthingNode, peer: &SyncthingNode, dir: &Path, watcher: FsWatcher, versioning: Option<&Value>) {
            let device = serde_json::json!({
                "deviceID": peer.device_id, "name": peer.name, "paused": true,
                "addresses": [format!("tcp://127.0.0.1:{}", peer.listen_port)], "autoAcceptFolders": false,
            });
            me.api(reqwest::Method::PUT, &format!("/rest/config/devices/{}", peer.device_id), Some(device)).await.unwrap();
            me.add_folder(RAW_FOLDER, dir, &[peer], watcher).await;
            // add_folder PUTs the whole folder (versioning none): set it again before resuming.
            set_versioning(me, versioning).await;
            me.api(reqwest::Method::PATCH, &format!("/rest/config/devices/{}", peer.device_id), Some(serde_json::json!({"paused": false}))).await.unwrap();
        }
        tokio::join!(introduce(&a, &b, &dir_a, watcher, versioning.as_ref()), introduce(&b, &a, &dir_b, watcher, versioning.as_ref()));
        poll_until(Duration::from_secs(3600), Duration::from_millis(100), "raw B has every file", || async {
            b.get(&format!("/rest/db/status?folder={RAW_FOLDER}"))
                .await
                .is_ok_and(|s| s["needFiles"] == 0 && local_files(&s) == want)
        })
        .await;
        figures.total_ms = ms(t0.elapsed());
        figures.syncthing_ticks = ticks(&pids) - ticks0;
        figures.b_disk = disk_files(&dir_b);
        println!("[raw] join -> all {} files on B: {:.0} ms (disk: {} files, {} bytes)", spec.files, figures.total_ms, figures.b_disk.0, figures.b_disk.1);
        RawSetup { a, b, dir_a, dir_b }
    }

    async fn is_idle(&self) -> bool {
        self.a.folder_idle(RAW_FOLDER, Some(&self.b)).await && self.b.folder_idle(RAW_FOLDER, Some(&self.a)).await
    }

    async fn wait_idle(&self) {
        poll_until(Duration::from_secs(600), Duration::from_millis(100), "raw idle", || self.is_idle()).await;
    }
}


struct BotsyncSetup {
    a: Engine,
    b: Engine,
    guard: StopRootsOnDrop,
    _relay: RunningRelay,
}

const SHARED: &str = "botsync-shared";

impl BotsyncSetup {
    async fn start(work: &Path, master: &Path, spec: &TreeSpec, figures: &mut JoinFigures) -> BotsyncSetup {
        let pair = DirectPair::init(work).await;
        let a = Engine::load(&pair.guard.0[0]).unwrap();
        let shared_a = a.root().folder_dir(SharedFolder::Shared);
        // The tree goes in with one rename per top-level directory.
        let stage = work.join("stage-A");
        link_copy(master, &stage);
        let t = Instant::now();
        for entry in std::fs::read_dir(&stage).unwrap().flatten() {
            std::fs::rename(entry.path(), shared_a.join(entry.file_name())).unwrap();
        }
        let want = spec.files as u64;
        let rest_a = a.rest();
        poll_until(Duration::from_secs(1800), Duration::from_millis(200), "botsync A scanned", || async {
            rest_a.db_status(SHARED).await.is_ok_and(|s| s.state == "idle" && s.other.get("localFiles").and_then(Value::as_u64) == Some(want))
        })
        .await;
        figures.a_scan_ms = ms(t.elapsed());
        println!("[botsync] A scanned {} files in {:.0} ms", spec.files, figures.a_scan_ms);
        let a_pids: Vec<u32> = {
            let (m, w) = a.pids();
            [m, w].into_iter().flatten().collect()
        };
        let a_daemon: Vec<u32> = botsync::daemon::process::running_pid(&pair.guard.0[0]).into_iter().collect();
        let (st0, d0) = (ticks(&a_pids), ticks(&a_daemon));
        // The join clock: `botsync join` on a fresh root B, until every file is on B.
        let t0 = Instant::now();
        let join = pair.join_b(120).await;
        figures.join_returned_ms = Some(ms(t0.elapsed()));
        figures.join_connected_ms = Some(join.connected_ms.0 as f64);
        let b = Engine::load(&pair.guard.0[1]).unwrap();
        // B's processes started inside the clock: count them from zero (their whole life so far).
        let b_pids: Vec<u32> = {
            let (m, w) = b.pids();
            [m, w].into_iter().flatten().collect()
        };
        let b_daemon: Vec<u32> = botsync::daemon::process::running_pid(&pair.guard.0[1]).into_iter().collect();
        let rest_b = b.rest();
        // BENCH_X=stop-daemon-b (experiment, not a figure): B's daemon is stopped as join returns.
        if experiment("stop-daemon-b") {
            for pid in &b_daemon {
                // SAFETY: kill(2) on B's daemon, started by this benchmark's join.
                unsafe {
                    libc::kill(*pid as i32, libc::SIGTERM);
                }
            }
            println!("[botsync] EXPERIMENT: B's daemon stopped");
        }
        // BENCH_PERF=<dir>: profile both daemons (and B's Syncthing worker) while B syncs.
        let perf = std::env::var_os("BENCH_PERF").map(|dir| {
            let pids: Vec<String> = a_daemon.iter().chain(&b_daemon).chain(b.pids().1.iter()).map(|p| p.to_string()).collect();
            std::process::Command::new("perf")
                .args(["record", "-F", "499", "-g", "-p", &pids.join(","), "-o"])
                .arg(PathBuf::from(dir).join("perf-join.data"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("perf record")
        });
        poll_until(Duration::from_secs(3600), Duration::from_millis(100), "botsync B has every file", || async {
            rest_b.db_status(SHARED).await.is_ok_and(|s| s.need_files == 0 && s.other.get("localFiles").and_then(Value::as_u64) == Some(want))
        })
        .await;
        figures.total_ms = ms(t0.elapsed());
        if let Some(mut perf) = perf {
            // SAFETY: kill(2) on the perf process this function started.
            unsafe {
                libc::kill(perf.id() as i32, libc::SIGINT);
            }
            let _ = perf.wait();
        }
        figures.syncthing_ticks = ticks(&a_pids) - st0 + ticks(&b_pids);
        figures.daemon_ticks_ab = (ticks(&a_daemon) - d0, ticks(&b_daemon));
        figures.daemon_ticks = figures.daemon_ticks_ab.0 + figures.daemon_ticks_ab.1;
        figures.b_disk = disk_files(&b.root().folder_dir(SharedFolder::Shared));
        println!(
            "[botsync] join -> all {} files on B: {:.0} ms (join returned at {:.0} ms, connected {} ms; disk: {} files, {} bytes)",
            spec.files,
            figures.total_ms,
            figures.join_returned_ms.unwrap(),
            join.connected_ms,
            figures.b_disk.0,
            figures.b_disk.1
        );
        BotsyncSetup { a, b, guard: pair.guard, _relay: pair.relay }
    }

    fn daemon_pids(&self) -> Vec<u32> {
        self.guard.daemon_pids()
    }

    async fn is_idle(&self) -> bool {
        let (a_id, b_id) = (self.a.device_id(), self.b.device_id());
        shared_folder_settled(&self.a, &b_id).await && shared_folder_settled(&self.b, &a_id).await
    }

    async fn wait_idle(&self) {
        poll_until(Duration::from_secs(600), Duration::from_millis(100), "botsync idle", || self.is_idle()).await;
    }

    async fn shutdown(self) {
        self.guard.stop_all().await;
    }
}

// ------------------------------------------------------------------------------------------
// One change
// ------------------------------------------------------------------------------------------


fn has_content(path: &Path, content: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|c| c == content)
}

// ------------------------------------------------------------------------------------------
// Report
// ------------------------------------------------------------------------------------------

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn syncthing_version() -> String {
    let Some(bin) = support::syncthing_binary() else { return "?".into() };
    let out = std::process::Command::new(&bin).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    out.split_whitespace().nth(1).unwrap_or("?").to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match reexec_in_private_netns(&arg_refs) {
        NetnsRun::Ran(ok) => std::process::exit(if ok { 0 } else { 1 }),
        NetnsRun::Inside => {}
    }
    let spec = TreeSpec::from_env();
    let idle_s = env_num("BENCH_IDLE_S", 60);
    let samples = env_num("BENCH_SAMPLES", 20) as usize;
    let delay_s = env_num("BENCH_RAW_DELAY_S", 10) as u32;
    let only = std::env::var("BENCH_ONLY").unwrap_or_else(|_| "raw,botsync".into());
    let (want_raw, want_ours) = (only.split(',').any(|s| s.trim() == "raw"), only.split(',').any(|s| s.trim() == "botsync"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let version = syncthing_version();
        let work = tempfile::Builder::new().prefix("folder-bench-").tempdir().unwrap();
        let master = work.path().join("tree");
        let dirs = spec.dirs().len();
        let t = Instant::now();
        let (files, bytes) = spec.generate(&master);
        println!(
            "tree: {files} files, {dirs} directories ({} levels, fanout {}), {:.1} MiB, sizes log-uniform {}-{} KiB, seed {}; written in {:.0} ms",
            spec.depth,
            spec.fanout,
            bytes as f64 / 1048576.0,
            spec.min_bytes / 1024,
            spec.max_bytes / 1024,
            spec.seed,
            ms(t.elapsed())
        );
        let mut raw_join = JoinFigures::default();
        let mut ours_join = JoinFigures::default();
        let botsync_first = std::env::var("BENCH_FIRST").is_ok_and(|v| v.trim() == "botsync");
        let mut ours = None;
        if want_ours && botsync_first {
            ours = Some(BotsyncSetup::start(&work.path().join("botsync"), &master, &spec, &mut ours_join).await);
        }
        let raw = if want_raw { Some(RawSetup::start(&work.path().join("raw"), &master, &spec, delay_s, &mut raw_join).await) } else { None };
        if want_ours && !botsync_first {
            ours = Some(BotsyncSetup::start(&work.path().join("botsync"), &master, &spec, &mut ours_join).await);
        }
        // The generated tree is not needed any more (A's copies are hard links).
        std::fs::remove_dir_all(&master).unwrap();

        // Every directory watched, then memory.
        let mut watches = Vec::new();
        let mut memory = Vec::new();
        if let Some(ours) = &ours {
            ours.wait_idle().await;
            let t = Instant::now();
            let daemons = ours.daemon_pids();
            let enough = dirs + 1;
            while daemons.iter().any(|p| inotify_watches(*p) < enough) && t.elapsed() < Duration::from_secs(300) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for (side, pid) in ["A", "B"].iter().zip(&daemons) {
                watches.push((side.to_string(), inotify_watches(*pid)));
                memory.push((side.to_string(), status_kib(*pid, "VmRSS:").unwrap_or(0), status_kib(*pid, "VmHWM:").unwrap_or(0)));
            }
        }

        // Idle CPU: both setups over the same window.
        if let Some(raw) = &raw {
            raw.wait_idle().await;
        }
        if let Some(ours) = &ours {
            ours.wait_idle().await;
        }
        // Syncthing's own watchers rescan what was pulled 5-15 s after the last change (the
        // whole folder once more than 512 paths changed, lib/watchaggregator), and a rescan of
        // this tree runs for tens of seconds: the window opens only once both setups have stayed
        // idle for the whole settle time, so it never starts inside the later setup's rescan.
        // BENCH_X=stop-daemons-idle (experiment, not a figure): both daemons stop before the
        // settle, so the idle window shows botsync's Syncthings on their own.
        if experiment("stop-daemons-idle") {
            for pid in ours.iter().flat_map(BotsyncSetup::daemon_pids) {
                // SAFETY: kill(2) on a daemon this benchmark's init or join started.
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
            println!("EXPERIMENT: both daemons stopped before the idle window");
        }
        let settle_s = env_num("BENCH_SETTLE_S", 30);
        println!("settling until both setups have been idle for {settle_s} s");
        let settle_started = Instant::now();
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_secs(settle_s) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let raw_idle = match &raw {
                Some(raw) => raw.is_idle().await,
                None => true,
            };
            let ours_idle = match &ours {
                Some(ours) => ours.is_idle().await,
                None => true,
            };
            if !(raw_idle && ours_idle) {
                quiet_since = Instant::now();
            }
            assert!(settle_started.elapsed() < Duration::from_secs(900), "the setups never stayed idle for {settle_s} s");
        }
        println!("settled after {:.0} s", settle_started.elapsed().as_secs_f64());
        // Every process of both setups, by name and by the share of the figure it counts for.
        #[derive(Clone, Copy, PartialEq)]
        enum Share {
            Raw,
            OursSyncthing,
            OursDaemon,
        }
        let mut processes: Vec<(Share, String, u32)> = Vec::new();
        if let Some(raw) = &raw {
            processes.extend(raw.a.pid().map(|p| (Share::Raw, "raw A".to_string(), p)));
            processes.extend(raw.b.pid().map(|p| (Share::Raw, "raw B".to_string(), p)));
        }
        if let Some(ours) = &ours {
            for (side, node) in [("A", &ours.a), ("B", &ours.b)] {
                let (monitor, worker) = node.pids();
                processes.extend(monitor.map(|p| (Share::OursSyncthing, format!("botsync {side} Syncthing monitor"), p)));
                processes.extend(worker.map(|p| (Share::OursSyncthing, format!("botsync {side} Syncthing"), p)));
            }
            processes.extend(["A", "B"].iter().zip(ours.daemon_pids()).map(|(side, p)| (Share::OursDaemon, format!("botsync {side} daemon"), p)));
        }
        let me = std::process::id();
        // Syncthing's own view of its memory: `alloc` is Go's MemStats.Alloc, the heap's objects
        // garbage included (the live heap is what GODEBUG=gctrace=1 prints after each GC), and
        // `sys` what it holds from the OS.
        let heap = |side: &str, status: &serde_json::Map<String, Value>| {
            let mib = |key: &str| status.get(key).and_then(Value::as_f64).unwrap_or(0.0) / 1048576.0;
            format!("{side} {:.0}/{:.0} MiB", mib("alloc"), mib("sys"))
        };
        let mut heaps = Vec::new();
        if let Some(raw) = &raw {
            for (side, node) in [("raw A", &raw.a), ("raw B", &raw.b)] {
                if let Ok(Value::Object(status)) = node.get("/rest/system/status").await {
                    heaps.push(heap(side, &status));
                }
            }
        }
        if let Some(ours) = &ours {
            for (side, engine) in [("botsync A", &ours.a), ("botsync B", &ours.b)] {
                if let Ok(status) = engine.rest().system_status().await {
                    heaps.push(heap(side, &status.other));
                }
            }
        }
        println!("Syncthing heap allocated (garbage included) / from the OS: {}", heaps.join(", "));
        let mut profiles = Vec::new();
        if experiment("cpuprof-idle") {
            let mut targets: Vec<(String, String, String)> = Vec::new();
            if let Some(raw) = &raw {
                targets.extend([("raw-A", &raw.a), ("raw-B", &raw.b)].map(|(name, n)| (name.to_string(), n.base_url(), n.api_key.clone())));
            }
            if let Some(ours) = &ours {
                targets.extend([("botsync-A", &ours.a), ("botsync-B", &ours.b)].map(|(name, e)| (name.to_string(), e.rest().base_url().to_string(), e.state().api_key.expose().to_string())));
            }
            for (name, url, key) in targets {
                profiles.push((name, tokio::spawn(support::syncthing_cpu_profile(url, key, idle_s))));
            }
            println!("EXPERIMENT: a CPU profile of each Syncthing over the idle window");
        }
        println!("idle CPU over {idle_s} s (both setups at once)");
        let before: Vec<u64> = processes.iter().map(|(_, _, p)| proc_cpu_ticks(*p)).collect();
        let me_before = proc_cpu_ticks(me);
        // Minute by minute as well when the window is longer: Go's forced GC every 2 minutes
        // lands in one minute or the next, so one minute alone swings by a few ticks.
        let mut minute_start = before.clone();
        for minute in 1..=idle_s / 60 {
            tokio::time::sleep(Duration::from_secs(60)).await;
            if idle_s > 60 {
                let now: Vec<u64> = processes.iter().map(|(_, _, p)| proc_cpu_ticks(*p)).collect();
                let each: Vec<String> = processes.iter().zip(now.iter().zip(&minute_start)).map(|((_, name, _), (n, b))| format!("{name} {}", n - b)).collect();
                println!("  minute {minute}: {}", each.join(", "));
                minute_start = now;
            }
        }
        tokio::time::sleep(Duration::from_secs(idle_s % 60)).await;
        let used: Vec<u64> = processes.iter().zip(&before).map(|((_, _, p), b)| proc_cpu_ticks(*p) - b).collect();
        let share = |which: Share| processes.iter().zip(&used).filter(|((s, _, _), _)| *s == which).map(|(_, u)| u).sum::<u64>();
        let idle = (share(Share::Raw), share(Share::OursSyncthing), share(Share::OursDaemon), proc_cpu_ticks(me) - me_before);
        let each_idle: Vec<String> = processes.iter().zip(&used).map(|((_, name, _), u)| format!("{name} {u}")).collect();
        if !profiles.is_empty() {
            let dir = PathBuf::from(std::env::var("BENCH_PROF_DIR").unwrap_or_else(|_| "/tmp/folder-bench-prof".into()));
            std::fs::create_dir_all(&dir).unwrap();
            for (name, profile) in profiles {
                match profile.await.unwrap() {
                    Ok(bytes) => {
                        let path = dir.join(format!("{name}.pprof"));
                        std::fs::write(&path, bytes).unwrap();
                        println!("  profile {}", path.display());
                    }
                    Err(e) => println!("  profile of {name}: {e}"),
                }
            }
        }

        // One change: 1 KiB files into the deepest directory, alternating subjects.
        let deep = spec.deep_dir();
        let mut raw_lat = Vec::new();
        let mut ours_lat = Vec::new();
        let mut timeouts = (0, 0);
        let mut raw_arrivals = raw.as_ref().map(|r| Arrivals::new(&r.dir_b.join(&deep), notify::RecursiveMode::NonRecursive));
        let mut ours_arrivals = ours.as_ref().map(|o| Arrivals::new(&o.b.root().folder_dir(SharedFolder::Shared).join(&deep), notify::RecursiveMode::NonRecursive));
        println!("one change x{samples}: 1 KiB into {deep}");
        for i in 0..samples {
            for k in 0..2 {
                let raw_turn = (i + k) % 2 == 0;
                tokio::time::sleep(Duration::from_millis(rand::random_range(300..800))).await;
                let mut content = vec![0u8; 1024];
                rand::rng().fill_bytes(&mut content);
                let name = format!("change-{i:03}.bin");
                let rel = format!("{deep}/{name}");
                if raw_turn {
                    let (Some(raw), Some(arrivals)) = (&raw, &mut raw_arrivals) else { continue };
                    let t0 = Instant::now();
                    std::fs::write(raw.dir_a.join(&rel), &content).unwrap();
                    raw.a.scan(RAW_FOLDER, &rel).await;
                    let target = raw.dir_b.join(&rel);
                    match arrivals.wait(Duration::from_secs(30), Duration::ZERO, || has_content(&target, &content)).await {
                        Some(t) => raw_lat.push(ms(t - t0)),
                        None => timeouts.0 += 1,
                    }
                } else {
                    let (Some(ours), Some(arrivals)) = (&ours, &mut ours_arrivals) else { continue };
                    let t0 = Instant::now();
                    std::fs::write(ours.a.root().folder_dir(SharedFolder::Shared).join(&rel), &content).unwrap();
                    let target = ours.b.root().folder_dir(SharedFolder::Shared).join(&rel);
                    match arrivals.wait(Duration::from_secs(30), Duration::ZERO, || has_content(&target, &content)).await {
                        Some(t) => ours_lat.push(ms(t - t0)),
                        None => timeouts.1 += 1,
                    }
                }
            }
        }
        drop(raw_arrivals);
        drop(ours_arrivals);
        // Memory once more, after the changes.
        let memory_after: Vec<(u64, u64)> = ours.as_ref().map(|o| o.daemon_pids()).unwrap_or_default().iter().map(|p| (status_kib(*p, "VmRSS:").unwrap_or(0), status_kib(*p, "VmHWM:").unwrap_or(0))).collect();

        if let Some(ours) = ours {
            ours.shutdown().await;
        }
        drop(raw);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        // What Syncthing said on B about the sync: pull failures make it wait (1 min) and retry.
        let w = work.path();
        let stalls = |log: PathBuf| -> String {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let retries = text.lines().filter(|l| l.contains("isn't making sync progress")).count();
            let failed = text.lines().filter(|l| l.contains("Puller (folder")).count();
            format!("{retries} 'not making sync progress' retries, {failed} puller failures")
        };
        let raw_stalls = stalls(w.join("raw/syncthing-B.log"));
        let ours_stalls = stalls(w.join("botsync/root-B/.botsync/syncthing.log"));
        // BENCH_KEEP_LOGS=<dir>: keep Syncthing's and the daemons' logs of both subjects.
        if let Some(keep) = std::env::var_os("BENCH_KEEP_LOGS").map(PathBuf::from) {
            std::fs::create_dir_all(&keep).unwrap();
            let w = work.path();
            for (from, to) in [
                (w.join("raw/syncthing-A.log"), "raw-syncthing-A.log"),
                (w.join("raw/syncthing-B.log"), "raw-syncthing-B.log"),
                (w.join("botsync/root-A/.botsync/syncthing.log"), "botsync-syncthing-A.log"),
                (w.join("botsync/root-B/.botsync/syncthing.log"), "botsync-syncthing-B.log"),
                (w.join("botsync/root-A/.botsync/daemon.log"), "botsync-daemon-A.log"),
                (w.join("botsync/root-B/.botsync/daemon.log"), "botsync-daemon-B.log"),
            ] {
                let _ = std::fs::copy(from, keep.join(to));
            }
        }
        drop(work);

        // ---- report ----
        let tm = tick_ms();
        println!();
        println!("==== large-folder benchmark, Syncthing {version}: {files} files, {dirs} directories, {:.1} MiB ====", bytes as f64 / 1048576.0);
        println!("load at the end: {}", load.trim());
        let disk_ok = |d: (usize, u64)| if d == (files, bytes) { "all files and bytes on B's disk".to_string() } else { format!("B's DISK DIFFERS: {} files, {} bytes", d.0, d.1) };
        if want_raw {
            println!("-- raw: A's scan {:.0} ms; join (devices + folder shared on both at once) -> all on B: {:.0} ms; {}; Syncthing CPU during join {} ticks", raw_join.a_scan_ms, raw_join.total_ms, disk_ok(raw_join.b_disk), raw_join.syncthing_ticks);
        }
        if want_ours {
            println!(
                "-- botsync: A's scan {:.0} ms; `join` start -> all on B: {:.0} ms (join returned {:.0} ms, its connected {:.0} ms; sync after join returned {:.0} ms); {}; CPU during join: Syncthings {} ticks, daemons {} ticks (A {}, B {})",
                ours_join.a_scan_ms,
                ours_join.total_ms,
                ours_join.join_returned_ms.unwrap_or(0.0),
                ours_join.join_connected_ms.unwrap_or(0.0),
                ours_join.total_ms - ours_join.join_returned_ms.unwrap_or(0.0),
                disk_ok(ours_join.b_disk),
                ours_join.syncthing_ticks,
                ours_join.daemon_ticks,
                ours_join.daemon_ticks_ab.0,
                ours_join.daemon_ticks_ab.1
            );
        }
        println!("B's Syncthing log (all folders): raw: {raw_stalls}; botsync: {ours_stalls}");
        println!("| figure | raw Syncthing (same run) | botsync | ratio / difference | target |");
        println!("|---|---|---|---|---|");
        if want_raw && want_ours {
            let r = ours_join.total_ms / raw_join.total_ms;
            println!("| join -> all {files} files on B | {:.0} ms | {:.0} ms | {r:.3} | <= 1.1 x: {} |", raw_join.total_ms, ours_join.total_ms, verdict(r <= 1.1));
            let sync_only = ours_join.total_ms - ours_join.join_returned_ms.unwrap_or(0.0);
            println!("| (sync part: join returned -> all on B) | {:.0} ms | {:.0} ms | {:.3} | |", raw_join.total_ms, sync_only, sync_only / raw_join.total_ms);
        }
        for ((side, rss, hwm), (_, w)) in memory.iter().zip(&watches) {
            println!(
                "| daemon {side} VmRSS, every directory watched ({w} inotify watches, {} directories in the tree) | | {:.1} MiB (VmHWM {:.1} MiB) | | <= 64 MiB: {} |",
                dirs + 1,
                *rss as f64 / 1024.0,
                *hwm as f64 / 1024.0,
                verdict(*rss <= 64 * 1024 && *w > dirs)
            );
        }
        for ((side, _, _), (rss, hwm)) in memory.iter().zip(&memory_after) {
            println!("| daemon {side} VmRSS after the changes | | {:.1} MiB (VmHWM {:.1} MiB) | | |", *rss as f64 / 1024.0, *hwm as f64 / 1024.0);
        }
        if want_raw && want_ours {
            let ours_total = idle.1 + idle.2;
            let diff = ours_total as i64 - idle.0 as i64;
            // Indistinguishable: the daemons take at most 2 ticks (20 ms) a minute of the window,
            // and the whole setup is within 5 ticks a minute or 10 % of raw Syncthing's,
            // whichever is more.
            let minutes = idle_s.div_ceil(60) as i64;
            let ok = idle.2 as i64 <= 2 * minutes && diff <= (5 * minutes).max(idle.0 as i64 / 10);
            println!(
                "| idle CPU over {idle_s} s, same window | Syncthing A+B {} ticks ({:.0} ms) | Syncthings {} + daemons {} = {} ticks ({:.0} ms) | {diff:+} ticks ({:+.0} ms) | indistinguishable (daemons <= 2 ticks a minute, total <= raw + max(5 ticks a minute, 10 %)): {} |",
                idle.0,
                idle.0 as f64 * tm,
                idle.1,
                idle.2,
                ours_total,
                ours_total as f64 * tm,
                diff as f64 * tm,
                verdict(ok)
            );
            println!("| (bench process itself over the window: {} ticks; each process: {}; {} joined first) | | | | |", idle.3, each_idle.join(", "), if botsync_first { "botsync" } else { "raw" });
        }
        let (rm, om) = (median(&raw_lat), median(&ours_lat));
        println!(
            "| one change: 1 KiB into {deep} | raw-scan (explicit scan, the floor) {} timeouts={} | {} timeouts={} | {} | median <= 60 ms: {} |",
            stats(&raw_lat),
            timeouts.0,
            stats(&ours_lat),
            timeouts.1,
            match (om, rm) {
                (Some(o), Some(r)) if r > 0.0 => format!("{:.2}", o / r),
                _ => "-".into(),
            },
            om.map_or("-", |m| verdict(m <= 60.0 && timeouts.1 == 0))
        );
    });
}
