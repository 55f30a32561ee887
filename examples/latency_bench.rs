//! Fast-scan latency benchmark: two paired Syncthings on loopback inside a private network
//! namespace (the binary re-executes itself under `unshare -n`), measured once as raw Syncthing
//! (its own watcher only) and once with botsync's watcher + REST scanner attached to the sender.
//!
//! Run through `bench/latency.sh`. Options (env): BENCH_SAMPLES (1 KiB samples, default 20),
//! BENCH_OP_SAMPLES (rename/delete samples, 5), BENCH_BIG_MIB (256), BENCH_SMALL_N (2000),
//! BENCH_IDLE_S (idle CPU window, 20), BENCH_RAW_DELAY_S (Syncthing's fsWatcherDelayS on both
//! sides of the raw and "ours" setups; default 10, Syncthing's own default, which is what a user
//! of raw Syncthing gets; 1 is the fastest raw Syncthing allows), BENCH_ONLY=comma list of
//! raw,ours,botsync (default raw,botsync).
//!
//! The setups are `Subject` implementations:
//! - `raw`: two Syncthings paired through REST, their own watchers only.
//! - `ours`: the same raw pair plus botsync's watcher running in this process on the sender.
//! - `botsync`: two real botsync roots, `init` + `join` through an in-process relay (memory
//!   backend, loopback), `direct` profile, each with its own `botsync-daemon` (fast scans) found
//!   through BOTSYNC_DAEMON_BIN. Files go from A's shared/ to B's shared/.

#[path = "../tests/it/support/watcher.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use botsync::commands::{self, init::InitOptions, join::JoinOptions, RootOptions};
use botsync::daemon::scanner::RestScanner;
use botsync::daemon::watcher::{FastScanWatcher, FolderWatch, SuppressionHandle, WatcherConfig};
use botsync::device_id::DeviceId;
use botsync::engine::Engine;
use botsync::relay::{Backend, RelayConfig, RunningRelay};
use botsync::root::{SharedFolder, SyncRoot};
use notify::Watcher as _;
use rand::RngCore;
use support::{feed_item_events, proc_cpu_ticks, reexec_in_private_netns, FsWatcher, NetnsRun, Pair};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

// ------------------------------------------------------------------------------------------
// Subjects: what is being measured
// ------------------------------------------------------------------------------------------

/// A running setup: a sender directory, a receiver directory, and the processes whose CPU counts.
trait Subject {
    fn label(&self) -> String;
    fn sender_dir(&self) -> PathBuf;
    fn receiver_dir(&self) -> PathBuf;
    /// Syncthing processes charged for idle CPU (this process is always measured separately).
    fn cpu_pids(&self) -> Vec<u32>;
    /// botsync's own background processes, charged separately.
    fn daemon_pids(&self) -> Vec<u32> {
        Vec::new()
    }
    async fn wait_idle(&self);
    async fn shutdown(self);
}

/// Raw Syncthing: both sides with their own watcher only.
struct RawPair {
    pair: Pair,
}

impl RawPair {
    async fn start(work: &Path, delay_s: u32) -> RawPair {
        RawPair { pair: Pair::start(work, "bench", FsWatcher::DelayS(delay_s), FsWatcher::DelayS(delay_s)).await }
    }
}

impl Subject for RawPair {
    fn label(&self) -> String {
        "raw".into()
    }
    fn sender_dir(&self) -> PathBuf {
        self.pair.dir_a.clone()
    }
    fn receiver_dir(&self) -> PathBuf {
        self.pair.dir_b.clone()
    }
    fn cpu_pids(&self) -> Vec<u32> {
        self.pair.a.pid().into_iter().chain(self.pair.b.pid()).collect()
    }
    async fn wait_idle(&self) {
        self.pair.wait_idle(Duration::from_secs(600)).await;
    }
    async fn shutdown(self) {
        drop(self.pair);
    }
}

/// The same raw pair (Syncthing's watchers stay on as the safety net) plus botsync's watcher on
/// the sender, fed with the sender's ItemStarted/ItemFinished events like the daemon does.
struct PairWithWatcher {
    raw: RawPair,
    stop: tokio::sync::oneshot::Sender<()>,
    watcher: tokio::task::JoinHandle<()>,
    feed: tokio::task::JoinHandle<()>,
}

impl PairWithWatcher {
    async fn start(work: &Path, delay_s: u32) -> PairWithWatcher {
        let raw = RawPair::start(work, delay_s).await;
        let a = &raw.pair.a;
        let scanner = Arc::new(RestScanner::new(&a.rest()));
        let marks = SuppressionHandle::new();
        let feed = tokio::spawn(feed_item_events(a.rest(), marks.clone()));
        let folders = vec![FolderWatch::new(raw.pair.folder_id.clone(), &raw.pair.dir_a)];
        let watcher = tokio::task::spawn_blocking(move || FastScanWatcher::start(&folders, marks, WatcherConfig::default()))
            .await
            .unwrap()
            .expect("watcher starts");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let watcher = tokio::spawn(watcher.run(scanner, async move {
            let _ = stopped.await;
        }));
        PairWithWatcher { raw, stop, watcher, feed }
    }
}

impl Subject for PairWithWatcher {
    fn label(&self) -> String {
        "ours".into()
    }
    fn sender_dir(&self) -> PathBuf {
        self.raw.sender_dir()
    }
    fn receiver_dir(&self) -> PathBuf {
        self.raw.receiver_dir()
    }
    fn cpu_pids(&self) -> Vec<u32> {
        self.raw.cpu_pids()
    }
    async fn wait_idle(&self) {
        self.raw.wait_idle().await;
    }
    async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.watcher.await;
        self.feed.abort();
        self.raw.shutdown().await;
    }
}

/// Two real botsync roots on this machine: A ran `init`, B ran `join` with A's code through an
/// in-process relay. Syncthing and the daemons are detached processes (as for a user), so a
/// guard stops them by PID even if the benchmark panics.
struct BotsyncPair {
    a: Engine,
    b: Engine,
    a_id: DeviceId,
    b_id: DeviceId,
    guard: StopRootsOnDrop,
    _relay: RunningRelay,
    join_connected_ms: botsync::clock::Millis,
}

/// Stops every process of the given roots by PID on drop: the daemons, then Syncthing's monitor
/// and worker (read from the roots' pid records and verified against /proc by `Engine::pids`).
struct StopRootsOnDrop(Vec<SyncRoot>);

impl StopRootsOnDrop {
    fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for root in &self.0 {
            pids.extend(botsync::daemon::process::running_pid(root));
            if let Ok(engine) = Engine::load(root) {
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

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

impl BotsyncPair {
    async fn start(work: &Path) -> BotsyncPair {
        let relay = botsync::relay::start("127.0.0.1:0", &Backend::Memory, RelayConfig::default()).await.expect("relay starts");
        let (root_a, root_b) = (work.join("root-A"), work.join("root-B"));
        let guard = StopRootsOnDrop(vec![SyncRoot::at(root_a.clone()).unwrap(), SyncRoot::at(root_b.clone()).unwrap()]);
        let init = commands::init::run(&InitOptions {
            root: Some(root_a.display().to_string()),
            network: Some("direct".into()),
            relay: Some(relay.url()),
            offline: Some(false),
            wait: None,
        })
        .await
        .expect("init A");
        let join = commands::join::run(&JoinOptions {
            code: init.invite.code.clone(),
            root: Some(root_b.display().to_string()),
            network: Some("direct".into()),
            relay: Some(relay.url()),
            timeout_seconds: Some(60),
        })
        .await
        .expect("join B");
        println!("[botsync] joined: paired {} ms, connected {} ms", join.paired_ms, join.connected_ms);
        let a = Engine::load(&guard.0[0]).unwrap();
        let b = Engine::load(&guard.0[1]).unwrap();
        let (a_id, b_id) = (a.device_id(), b.device_id());
        let pair = BotsyncPair { a, b, a_id, b_id, guard, _relay: relay, join_connected_ms: join.connected_ms };
        pair.wait_idle().await;
        pair
    }

    async fn folder_idle(engine: &Engine, peer: &DeviceId) -> bool {
        let rest = engine.rest();
        let folder = SharedFolder::Shared.folder_id();
        let Ok(status) = rest.db_status(folder).await else { return false };
        if status.state != "idle" || status.need_files != 0 {
            return false;
        }
        rest.db_completion(folder, Some(peer)).await.is_ok_and(|c| c.completion >= 100.0)
    }
}

impl Subject for BotsyncPair {
    fn label(&self) -> String {
        "botsync".into()
    }
    fn sender_dir(&self) -> PathBuf {
        self.a.root().folder_dir(SharedFolder::Shared)
    }
    fn receiver_dir(&self) -> PathBuf {
        self.b.root().folder_dir(SharedFolder::Shared)
    }
    fn cpu_pids(&self) -> Vec<u32> {
        let (ma, wa) = self.a.pids();
        let (mb, wb) = self.b.pids();
        [ma, wa, mb, wb].into_iter().flatten().collect()
    }
    fn daemon_pids(&self) -> Vec<u32> {
        self.guard.0.iter().filter_map(botsync::daemon::process::running_pid).collect()
    }
    async fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(600);
        while !(Self::folder_idle(&self.a, &self.b_id).await && Self::folder_idle(&self.b, &self.a_id).await) {
            assert!(Instant::now() < deadline, "botsync roots never idle");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    async fn shutdown(self) {
        for root in &self.guard.0 {
            if let Err(e) = commands::stop::run(&RootOptions { root: Some(root.path().display().to_string()) }).await {
                eprintln!("stop {}: {e}", root.display());
            }
        }
        // The guard drops here too and finds nothing left to stop.
    }
}

// ------------------------------------------------------------------------------------------
// Measurements
// ------------------------------------------------------------------------------------------

/// Wakes up on every fs event under the receiver directory (Syncthing lands files by rename),
/// so arrival is seen within a millisecond without busy polling.
struct Arrivals {
    _watcher: notify::RecommendedWatcher,
    events: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Arrivals {
    fn new(dir: &Path) -> Arrivals {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |_| {
            let _ = tx.send(());
        })
        .unwrap();
        watcher.watch(dir, notify::RecursiveMode::Recursive).unwrap();
        Arrivals { _watcher: watcher, events }
    }

    /// Waits until `done()`; checks at most every `min_gap` (for expensive checks).
    async fn wait(&mut self, timeout: Duration, min_gap: Duration, mut done: impl FnMut() -> bool) -> Option<Instant> {
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

#[derive(Default, Clone)]
struct Results {
    kib: Vec<f64>,
    kib_timeouts: usize,
    back_to_back: Vec<f64>,
    rename: Vec<f64>,
    delete: Vec<f64>,
    big: Option<f64>,
    small: Option<f64>,
    idle_syncthing_ticks: u64,
    idle_daemon_ticks: u64,
    idle_self_ticks: u64,
    tick_ms: f64,
    /// RSS of the daemons (botsync only) at the end of the idle window, KiB each.
    daemon_rss_kib: Vec<u64>,
    idle_s: f64,
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    buf
}

fn has_len(path: &Path, len: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == len)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure<S: Subject>(subject: &S, work: &Path) -> Results {
    let samples = env_num("BENCH_SAMPLES", 20) as usize;
    let op_samples = env_num("BENCH_OP_SAMPLES", 5) as usize;
    let big_mib = env_num("BENCH_BIG_MIB", 256);
    let small_n = env_num("BENCH_SMALL_N", 2000) as usize;
    let idle_s = env_num("BENCH_IDLE_S", 20);
    let (send, recv) = (subject.sender_dir(), subject.receiver_dir());
    let label = subject.label();
    let mut arrivals = Arrivals::new(&recv);
    let mut r = Results::default();
    let timeout = Duration::from_secs(30);

    println!("[{label}] 1 KiB A->B x{samples}");
    for i in 0..samples {
        tokio::time::sleep(Duration::from_millis(rand::random_range(200..800))).await;
        let content = random_bytes(1024);
        let name = format!("kib-{i:03}.bin");
        let t0 = Instant::now();
        std::fs::write(send.join(&name), &content).unwrap();
        match arrivals.wait(timeout, Duration::ZERO, || std::fs::read(recv.join(&name)).is_ok_and(|c| c == content)).await {
            Some(t) => r.kib.push(ms(t - t0)),
            None => r.kib_timeouts += 1,
        }
    }
    subject.wait_idle().await;

    // An agent loop: the next file is written as soon as the previous one arrived. Syncthing's
    // index sender sleeps 250 ms after every index it sends, which no scan can shorten.
    println!("[{label}] 1 KiB A->B back-to-back x{op_samples}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..op_samples {
        let content = random_bytes(1024);
        let name = format!("b2b-{i:03}.bin");
        let t0 = Instant::now();
        std::fs::write(send.join(&name), &content).unwrap();
        if let Some(t) = arrivals.wait(timeout, Duration::ZERO, || std::fs::read(recv.join(&name)).is_ok_and(|c| c == content)).await {
            r.back_to_back.push(ms(t - t0));
        }
    }
    subject.wait_idle().await;

    println!("[{label}] rename x{op_samples}");
    for i in 0..op_samples.min(samples) {
        tokio::time::sleep(Duration::from_millis(rand::random_range(200..800))).await;
        let (from, to) = (format!("kib-{i:03}.bin"), format!("renamed-{i:03}.bin"));
        let t0 = Instant::now();
        std::fs::rename(send.join(&from), send.join(&to)).unwrap();
        if let Some(t) = arrivals.wait(timeout, Duration::ZERO, || has_len(&recv.join(&to), 1024) && !recv.join(&from).exists()).await {
            r.rename.push(ms(t - t0));
        }
    }
    subject.wait_idle().await;

    println!("[{label}] delete x{op_samples}");
    for i in 0..op_samples.min(samples) {
        tokio::time::sleep(Duration::from_millis(rand::random_range(200..800))).await;
        let name = format!("renamed-{i:03}.bin");
        let t0 = Instant::now();
        std::fs::remove_file(send.join(&name)).unwrap();
        if let Some(t) = arrivals.wait(timeout, Duration::ZERO, || !recv.join(&name).exists()).await {
            r.delete.push(ms(t - t0));
        }
    }
    subject.wait_idle().await;

    println!("[{label}] {big_mib} MiB file (moved in complete, like raw-syncthing.sh)");
    let stage = work.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let big_len = big_mib * 1024 * 1024;
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(stage.join("big.bin")).unwrap());
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..big_mib {
            rand::rng().fill_bytes(&mut chunk);
            f.write_all(&chunk).unwrap();
        }
        f.into_inner().unwrap().sync_all().unwrap();
    }
    let t0 = Instant::now();
    std::fs::rename(stage.join("big.bin"), send.join("big.bin")).unwrap();
    r.big = arrivals.wait(Duration::from_secs(900), Duration::ZERO, || has_len(&recv.join("big.bin"), big_len)).await.map(|t| ms(t - t0));
    subject.wait_idle().await;

    println!("[{label}] {small_n} x 4 KiB files written in place");
    let payload = random_bytes(small_n * 4096);
    let t0 = Instant::now();
    std::fs::create_dir(send.join("small")).unwrap();
    for (i, chunk) in payload.chunks(4096).enumerate() {
        std::fs::write(send.join(format!("small/f{i:05}")), chunk).unwrap();
    }
    let count = || std::fs::read_dir(recv.join("small")).map(|d| d.filter_map(Result::ok).filter(|e| !e.file_name().to_string_lossy().starts_with(".syncthing.")).count()).unwrap_or(0);
    r.small = arrivals.wait(Duration::from_secs(900), Duration::from_millis(10), || count() == small_n).await.map(|t| ms(t - t0));
    subject.wait_idle().await;

    println!("[{label}] idle CPU over {idle_s} s");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pids = subject.cpu_pids();
    let daemons = subject.daemon_pids();
    let me = std::process::id();
    let ticks = |pids: &[u32]| -> u64 { pids.iter().map(|p| proc_cpu_ticks(*p)).sum() };
    let (st_before, d_before, me_before) = (ticks(&pids), ticks(&daemons), proc_cpu_ticks(me));
    tokio::time::sleep(Duration::from_secs(idle_s)).await;
    r.idle_syncthing_ticks = ticks(&pids) - st_before;
    r.idle_daemon_ticks = ticks(&daemons) - d_before;
    r.idle_self_ticks = proc_cpu_ticks(me) - me_before;
    // SAFETY: sysconf has no preconditions.
    r.tick_ms = 1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    r.idle_s = idle_s as f64;
    r.daemon_rss_kib = daemons.iter().filter_map(|p| vm_rss_kib(*p)).collect();
    r
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn stats(v: &[f64]) -> String {
    if v.is_empty() {
        return "n=0".into();
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    format!("n={} min {:.1} / med {:.1} / p90 {:.1} / max {:.1} ms", s.len(), s[0], pick(0.5), pick(0.9), s[s.len() - 1])
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Some(s[(s.len() - 1) / 2])
}

fn ratio(ours: Option<f64>, raw: Option<f64>) -> String {
    match (ours, raw) {
        (Some(o), Some(r)) if r > 0.0 => format!("{:.3}", o / r),
        _ => "-".into(),
    }
}

fn report(results: &[(&str, Results)], delay_s: u32) {
    println!();
    println!("==== sync latency benchmark (raw/ours: Syncthing fsWatcherDelayS={delay_s}; botsync: its own settings) ====");
    for (label, r) in results {
        println!("-- {label}");
        println!("  1 KiB A->B         {} timeouts={}", stats(&r.kib), r.kib_timeouts);
        println!("  1 KiB back-to-back {}", stats(&r.back_to_back));
        println!("  rename             {}", stats(&r.rename));
        println!("  delete             {}", stats(&r.delete));
        println!("  big file           {}", r.big.map_or("timeout".into(), |v| format!("{v:.0} ms")));
        println!("  small files        {}", r.small.map_or("timeout".into(), |v| format!("{v:.0} ms")));
        println!(
            "  idle CPU ({:.0} s)    syncthing {} ticks ({:.0} ms), botsync daemons {} ticks ({:.0} ms), bench process {} ticks",
            r.idle_s,
            r.idle_syncthing_ticks,
            r.idle_syncthing_ticks as f64 * r.tick_ms,
            r.idle_daemon_ticks,
            r.idle_daemon_ticks as f64 * r.tick_ms,
            r.idle_self_ticks
        );
        if !r.daemon_rss_kib.is_empty() {
            let shown: Vec<String> = r.daemon_rss_kib.iter().map(|k| format!("{:.1} MiB", *k as f64 / 1024.0)).collect();
            println!("  daemon VmRSS       {}", shown.join(" / "));
        }
    }
    let Some((_, raw)) = results.iter().find(|(l, _)| *l == "raw") else { return };
    for (label, r) in results.iter().filter(|(l, _)| *l != "raw") {
        println!("-- ratios {label}/raw (lower is faster)");
        println!("  1 KiB median       {}", ratio(median(&r.kib), median(&raw.kib)));
        println!("  back-to-back med   {}", ratio(median(&r.back_to_back), median(&raw.back_to_back)));
        println!("  rename median      {}", ratio(median(&r.rename), median(&raw.rename)));
        println!("  delete median      {}", ratio(median(&r.delete), median(&raw.delete)));
        println!("  big file           {}", ratio(r.big, raw.big));
        println!("  small files        {}", ratio(r.small, raw.small));
        println!(
            "  idle CPU ticks     raw syncthing {} vs {label} syncthing {} + daemons {}",
            raw.idle_syncthing_ticks, r.idle_syncthing_ticks, r.idle_daemon_ticks
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match reexec_in_private_netns(&arg_refs) {
        NetnsRun::Ran(ok) => std::process::exit(if ok { 0 } else { 1 }),
        NetnsRun::Inside => {}
    }
    let delay_s = env_num("BENCH_RAW_DELAY_S", 10) as u32;
    let only = std::env::var("BENCH_ONLY").unwrap_or_else(|_| "raw,botsync".into());
    let wanted: Vec<&str> = only.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // block_on keeps the Syncthings' parent thread (this one) alive for the whole run.
    runtime.block_on(async {
        let mut results: Vec<(&str, Results)> = Vec::new();
        for label in wanted {
            let work = tempfile::tempdir().unwrap();
            println!("starting subject {label}");
            let r = match label {
                "raw" => {
                    let subject = RawPair::start(work.path(), delay_s).await;
                    let r = measure(&subject, work.path()).await;
                    subject.shutdown().await;
                    r
                }
                "ours" => {
                    let subject = PairWithWatcher::start(work.path(), delay_s).await;
                    let r = measure(&subject, work.path()).await;
                    subject.shutdown().await;
                    r
                }
                "botsync" => {
                    let subject = BotsyncPair::start(work.path()).await;
                    println!("[botsync] join -> connected {} ms", subject.join_connected_ms);
                    let r = measure(&subject, work.path()).await;
                    subject.shutdown().await;
                    r
                }
                other => panic!("unknown subject {other:?} in BENCH_ONLY (raw, ours, botsync)"),
            };
            results.push((label, r));
        }
        report(&results, delay_s);
    });
}
