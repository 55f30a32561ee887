//! Fast-scan latency benchmark: two paired Syncthings on loopback inside a private network
//! namespace (the binary re-executes itself under `unshare -n`), measured as raw Syncthing (its
//! own watcher only), as raw Syncthing driven by one explicit scan when the writer is done (the
//! floor), and as botsync.
//!
//! Run through `bench/latency.sh`. Options (env): BENCH_SAMPLES (1 KiB samples, default 20),
//! BENCH_OP_SAMPLES (rename/delete/pair samples, 5), BENCH_BIG_MIB (256), BENCH_SMALL_N (2000),
//! BENCH_MANY_N (20000) and BENCH_MANY_DIRS (200), BENCH_IDLE_S (idle CPU window, 20),
//! BENCH_RAW_DELAY_S (Syncthing's fsWatcherDelayS in the raw, raw-scan and "ours" setups; default
//! 10, Syncthing's own default, which is what a user of raw Syncthing gets; 1 is the fastest raw
//! Syncthing allows), BENCH_ONLY=comma list of raw,raw-scan,ours,ours-solo,botsync (default
//! raw,raw-scan,botsync), BENCH_CASES=comma list of kib,pair,b2b,rename,delete,big,small,many,idle
//! (default all), BENCH_OURS_DEBOUNCE_MS (the "ours" watcher's debounce; default the daemon's),
//! BENCH_CPUPROF_S (experiment, 0: off): a Go CPU profile of each Syncthing over the first that
//! many seconds of each bulk case, into BENCH_PROF_DIR (/tmp/latency-bench-prof).
//! The Syncthing binary is $SYNCTHING, else $BOTSYNC_SYNCTHING (which botsync's roots use too).
//!
//! The setups are `Subject` implementations:
//! - `raw`: two Syncthings paired through REST, their own watchers only.
//! - `raw-scan`: the same, but the sender's watcher is off and the benchmark itself posts one
//!   `POST /rest/db/scan` naming the written paths as soon as the writer is done: the floor.
//! - `ours`: the raw pair plus botsync's watcher running in this process on the sender;
//!   `ours-solo`: the same with the sender's own Syncthing watcher off.
//! - `botsync`: two real botsync roots, `init` + `join` through an in-process relay (memory
//!   backend, loopback), `direct` profile, each with its own `botsync-daemon` (fast scans) found
//!   through BOTSYNC_DAEMON_BIN. Files go from A's shared/ to B's shared/.

#[path = "../tests/it/support/watcher.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use botsync::daemon::scanner::RestScanner;
use botsync::daemon::watcher::{FastScanWatcher, FolderWatch, SuppressionHandle, WatcherConfig};
use botsync::device_id::DeviceId;
use botsync::engine::Engine;
use botsync::relay::RunningRelay;
use botsync::root::SharedFolder;
use rand::RngCore;
use support::{feed_item_events, poll_until, proc_cpu_ticks, reexec_in_private_netns, shared_folder_settled, stats, Arrivals, DirectPair, FsWatcher, NetnsRun, Pair, StopRootsOnDrop};

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
    /// Each Syncthing's REST API: a name for it (`A` sends, `B` receives), its base URL and key.
    fn syncthing_apis(&self) -> Vec<(String, String, String)>;
    async fn wait_idle(&self);
    /// The writer of a case is done; `subs` are the folder-relative paths it wrote (a directory
    /// stands for everything in it). Only the floor subject acts on it.
    async fn writer_done(&self, _subs: &[String]) {}
    async fn shutdown(self);
}

/// Raw Syncthing: both sides with their own watcher only, or (`explicit_scans`) the sender's
/// watcher off and one explicit scan per finished write.
struct RawPair {
    pair: Pair,
    explicit_scans: bool,
}

impl RawPair {
    /// `n`: which of the pairs running at once (ports).
    async fn start(work: &Path, delay_s: u32, n: u16) -> RawPair {
        let watcher = FsWatcher::DelayS(delay_s);
        RawPair { pair: Pair::start_nth(work, "bench", watcher, watcher, n).await, explicit_scans: false }
    }

    async fn start_scanned(work: &Path, delay_s: u32, n: u16) -> RawPair {
        RawPair { pair: Pair::start_nth(work, "bench", FsWatcher::Off, FsWatcher::DelayS(delay_s), n).await, explicit_scans: true }
    }
}

impl Subject for RawPair {
    fn label(&self) -> String {
        if self.explicit_scans { "raw-scan".into() } else { "raw".into() }
    }
    async fn writer_done(&self, subs: &[String]) {
        if self.explicit_scans {
            self.pair.a.rest().scan(&self.pair.folder_id, subs).await.expect("explicit scan");
        }
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
    fn syncthing_apis(&self) -> Vec<(String, String, String)> {
        [("A", &self.pair.a), ("B", &self.pair.b)].map(|(name, n)| (name.to_string(), n.base_url(), n.api_key.clone())).into()
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
    /// `solo`: the sender's own Syncthing watcher is off, so botsync's watcher alone drives it.
    async fn start(work: &Path, delay_s: u32, n: u16, config: WatcherConfig, solo: bool) -> PairWithWatcher {
        let raw = if solo { RawPair::start_scanned(work, delay_s, n).await } else { RawPair::start(work, delay_s, n).await };
        let a = &raw.pair.a;
        let scanner = Arc::new(RestScanner::new(&a.rest()).with_max_subs(usize::MAX));
        let marks = SuppressionHandle::new();
        let feed = tokio::spawn(feed_item_events(a.rest(), marks.clone()));
        let folders = vec![FolderWatch::new(raw.pair.folder_id.clone(), &raw.pair.dir_a)];
        let watcher = tokio::task::spawn_blocking(move || FastScanWatcher::start(&folders, marks, config))
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
        if self.raw.explicit_scans { "ours-solo".into() } else { "ours".into() }
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
    fn syncthing_apis(&self) -> Vec<(String, String, String)> {
        self.raw.syncthing_apis()
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
    /// A 1 KiB file written into A's shared/ the moment `join` returned, until it was on B.
    first_after_join_ms: Option<f64>,
}


impl BotsyncPair {
    async fn start(work: &Path) -> BotsyncPair {
        let pair = DirectPair::init(work).await;
        let join = pair.join_b(60).await;
        let DirectPair { relay, guard, .. } = pair;
        println!("[botsync] joined: paired {} ms, connected {} ms", join.paired_ms, join.connected_ms);
        let a = Engine::load(&guard.0[0]).unwrap();
        let b = Engine::load(&guard.0[1]).unwrap();
        let (a_id, b_id) = (a.device_id(), b.device_id());
        // What `botsync demo` shows: the first file right after pairing.
        let (send, recv) = (a.root().folder_dir(SharedFolder::Shared), b.root().folder_dir(SharedFolder::Shared));
        let content = random_bytes(1024);
        let t0 = Instant::now();
        std::fs::write(send.join("first-after-join.bin"), &content).unwrap();
        let mut arrivals = Arrivals::new(&recv, notify::RecursiveMode::Recursive);
        let first_after_join_ms = arrivals
            .wait(Duration::from_secs(30), Duration::ZERO, || std::fs::read(recv.join("first-after-join.bin")).is_ok_and(|c| c == content))
            .await
            .map(|t| ms(t - t0));
        println!("[botsync] first file after join: {}", first_after_join_ms.map_or("timeout".into(), |v| format!("{v:.1} ms")));
        let pair = BotsyncPair { a, b, a_id, b_id, guard, _relay: relay, join_connected_ms: join.connected_ms, first_after_join_ms };
        pair.wait_idle().await;
        pair
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
        self.guard.daemon_pids()
    }
    fn syncthing_apis(&self) -> Vec<(String, String, String)> {
        [("A", &self.a), ("B", &self.b)].map(|(name, e)| (name.to_string(), e.rest().base_url().to_string(), e.state().api_key.expose().to_string())).into()
    }
    async fn wait_idle(&self) {
        poll_until(Duration::from_secs(600), Duration::from_millis(20), "botsync roots idle", || async {
            shared_folder_settled(&self.a, &self.b_id).await && shared_folder_settled(&self.b, &self.a_id).await
        })
        .await;
    }
    async fn shutdown(self) {
        self.guard.stop_all().await;
        // The guard drops here too and finds nothing left to stop.
    }
}

// ------------------------------------------------------------------------------------------
// Measurements
// ------------------------------------------------------------------------------------------


#[derive(Default, Clone)]
struct Results {
    kib: Vec<f64>,
    kib_timeouts: usize,
    /// Two 1 KiB files written 10 ms apart: each one's arrival after its own write.
    pair_first: Vec<f64>,
    pair_second: Vec<f64>,
    back_to_back: Vec<f64>,
    rename: Vec<f64>,
    delete: Vec<f64>,
    /// Bulk cases, one value per run of the case (a case may be listed more than once).
    big: Vec<f64>,
    small: Vec<f64>,
    many: Vec<f64>,
    /// Per bulk case run: the case, then the CPU ticks of each Syncthing process and of each
    /// daemon (sender first) from the first write until the subject was idle again.
    bulk_cpu: Vec<(String, Vec<u64>, Vec<u64>)>,
    idle_syncthing_ticks: u64,
    idle_daemon_ticks: u64,
    idle_self_ticks: u64,
    tick_ms: f64,
    /// RSS of the daemons (botsync only) at the end of the idle window, KiB each.
    daemon_rss_kib: Vec<u64>,
    idle_s: f64,
    first_after_join: Option<f64>,
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

/// Files in `dir` that are not Syncthing temp files.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).filter(|e| !e.file_name().to_string_lossy().starts_with(".syncthing.")).count())
        .unwrap_or(0)
}

/// Which cases run (BENCH_CASES, default all).
struct Cases(Vec<String>);

impl Cases {
    const ALL: &'static str = "kib,pair,b2b,rename,delete,big,small,many,idle";

    fn from_env() -> Cases {
        let list = std::env::var("BENCH_CASES").unwrap_or_else(|_| Self::ALL.into());
        let cases: Vec<String> = list.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
        for case in &cases {
            assert!(Self::ALL.split(',').any(|known| known == case), "unknown case {case:?} in BENCH_CASES ({})", Self::ALL);
        }
        Cases(cases)
    }

    fn on(&self, case: &str) -> bool {
        self.0.iter().any(|c| c == case)
    }
}

/// Runs one case on one subject, adding to its results. `arrivals` watches its receiver.
async fn run_case<S: Subject>(subject: &S, work: &Path, case: &str, cases: &Cases, arrivals: &mut Arrivals, r: &mut Results) {
    let samples = env_num("BENCH_SAMPLES", 20) as usize;
    let op_samples = env_num("BENCH_OP_SAMPLES", 5) as usize;
    let big_mib = env_num("BENCH_BIG_MIB", 256);
    let small_n = env_num("BENCH_SMALL_N", 2000) as usize;
    let many_n = env_num("BENCH_MANY_N", 20_000) as usize;
    let many_dirs = env_num("BENCH_MANY_DIRS", 200).max(1) as usize;
    let idle_s = env_num("BENCH_IDLE_S", 20);
    let (send, recv) = (subject.sender_dir(), subject.receiver_dir());
    let label = subject.label();
    let timeout = Duration::from_secs(30);
    // Rename and delete work on the 1 KiB samples' files.
    let kib_files = if cases.on("kib") { samples } else { 0 };

    if case == "kib" {
        println!("[{label}] 1 KiB A->B x{samples}");
        for i in 0..samples {
            tokio::time::sleep(Duration::from_millis(rand::random_range(200..800))).await;
            let content = random_bytes(1024);
            let name = format!("kib-{i:03}.bin");
            let t0 = Instant::now();
            std::fs::write(send.join(&name), &content).unwrap();
            subject.writer_done(&[name.clone()]).await;
            match arrivals.wait(timeout, Duration::ZERO, || std::fs::read(recv.join(&name)).is_ok_and(|c| c == content)).await {
                Some(t) => r.kib.push(ms(t - t0)),
                None => r.kib_timeouts += 1,
            }
        }
        subject.wait_idle().await;
    }

    if case == "pair" {
        // Two files 10 ms apart: Syncthing sleeps 250 ms after each index it sends, so the second
        // one waits for that unless both went out in one index.
        println!("[{label}] two 1 KiB files 10 ms apart x{op_samples}");
        for i in 0..op_samples {
            tokio::time::sleep(Duration::from_millis(rand::random_range(400..900))).await;
            let names = [format!("pair-{i:03}-a.bin"), format!("pair-{i:03}-b.bin")];
            let contents = [random_bytes(1024), random_bytes(1024)];
            let t0 = Instant::now();
            std::fs::write(send.join(&names[0]), &contents[0]).unwrap();
            tokio::time::sleep_until((t0 + Duration::from_millis(10)).into()).await;
            let t1 = Instant::now();
            std::fs::write(send.join(&names[1]), &contents[1]).unwrap();
            subject.writer_done(&names).await;
            let (mut first, mut second) = (None, None);
            let arrived = |k: usize| std::fs::read(recv.join(&names[k])).is_ok_and(|c| c == contents[k]);
            arrivals
                .wait(timeout, Duration::ZERO, || {
                    let now = Instant::now();
                    if first.is_none() && arrived(0) {
                        first = Some(ms(now - t0));
                    }
                    if second.is_none() && arrived(1) {
                        second = Some(ms(now - t1));
                    }
                    first.is_some() && second.is_some()
                })
                .await;
            r.pair_first.extend(first);
            r.pair_second.extend(second);
        }
        subject.wait_idle().await;
    }

    if case == "b2b" {
        // An agent loop: the next file is written as soon as the previous one arrived.
        println!("[{label}] 1 KiB A->B back-to-back x{op_samples}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..op_samples {
            let content = random_bytes(1024);
            let name = format!("b2b-{i:03}.bin");
            let t0 = Instant::now();
            std::fs::write(send.join(&name), &content).unwrap();
            subject.writer_done(&[name.clone()]).await;
            if let Some(t) = arrivals.wait(timeout, Duration::ZERO, || std::fs::read(recv.join(&name)).is_ok_and(|c| c == content)).await {
                r.back_to_back.push(ms(t - t0));
            }
        }
        subject.wait_idle().await;
    }

    if case == "rename" {
        println!("[{label}] rename x{}", op_samples.min(kib_files));
        for i in 0..op_samples.min(kib_files) {
            tokio::time::sleep(Duration::from_millis(rand::random_range(200..800))).await;
            let (from, to) = (format!("kib-{i:03}.bin"), format!("renamed-{i:03}.bin"));
            let t0 = Instant::now();
            std::fs::rename(send.join(&from), send.join(&to)).unwrap();
            subject.writer_done(&[from.clone(), to.clone()]).await;
            if let Some(t) = arrivals.wait(timeout, Duration::ZERO, || has_len(&recv.join(&to), 1024) && !recv.join(&from).exists()).await {
                r.rename.push(ms(t - t0));
            }
        }
        subject.wait_idle().await;
    }

    if case == "delete" {
        println!("[{label}] delete x{}", op_samples.min(kib_files));
        for i in 0..op_samples.min(kib_files) {
            tokio::time::sleep(Duration::from_millis(rand::random_range(200..800))).await;
            let name = if cases.on("rename") { format!("renamed-{i:03}.bin") } else { format!("kib-{i:03}.bin") };
            let t0 = Instant::now();
            std::fs::remove_file(send.join(&name)).unwrap();
            subject.writer_done(&[name.clone()]).await;
            if let Some(t) = arrivals.wait(timeout, Duration::ZERO, || !recv.join(&name).exists()).await {
                r.delete.push(ms(t - t0));
            }
        }
        subject.wait_idle().await;
    }

    let bulk = matches!(case, "big" | "small" | "many");
    if bulk {
        settle_page_cache();
    }
    // CPU of each process over a bulk case, from the first write until the subject is idle again.
    let ticks_of = |pids: &[u32]| -> Vec<u64> { pids.iter().map(|p| proc_cpu_ticks(*p)).collect() };
    let bulk_cpu_before = bulk.then(|| (ticks_of(&subject.cpu_pids()), ticks_of(&subject.daemon_pids())));
    // BENCH_CPUPROF_S (experiment): a Go CPU profile of each Syncthing over the first seconds of
    // each bulk case, into BENCH_PROF_DIR, for `go tool pprof -top`.
    let profile_s = env_num("BENCH_CPUPROF_S", 0);
    let profiles: Vec<_> = if bulk_cpu_before.is_some() && profile_s > 0 {
        subject.syncthing_apis().into_iter().map(|(name, url, key)| (name, tokio::spawn(support::syncthing_cpu_profile(url, key, profile_s)))).collect()
    } else {
        Vec::new()
    };

    if case == "big" {
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
        let big = format!("big-{}.bin", r.big.len());
        let t0 = Instant::now();
        std::fs::rename(stage.join("big.bin"), send.join(&big)).unwrap();
        subject.writer_done(&[big.clone()]).await;
        r.big.extend(arrivals.wait(Duration::from_secs(900), Duration::ZERO, || has_len(&recv.join(&big), big_len)).await.map(|t| ms(t - t0)));
        subject.wait_idle().await;
    }

    if case == "small" {
        println!("[{label}] {small_n} x 4 KiB files written in place");
        let payload = random_bytes(small_n * 4096);
        let small = format!("small-{}", r.small.len());
        let t0 = Instant::now();
        std::fs::create_dir(send.join(&small)).unwrap();
        for (i, chunk) in payload.chunks(4096).enumerate() {
            std::fs::write(send.join(format!("{small}/f{i:05}")), chunk).unwrap();
        }
        println!("[{label}]   written in {:.0} ms", ms(t0.elapsed()));
        subject.writer_done(&[small.clone()]).await;
        r.small.extend(arrivals.wait(Duration::from_secs(900), Duration::from_millis(10), || count_files(&recv.join(&small)) == small_n).await.map(|t| ms(t - t0)));
        subject.wait_idle().await;
    }

    if case == "many" {
        println!("[{label}] {many_n} x 1 KiB files across {many_dirs} directories, written in place");
        let payload = random_bytes(many_n * 1024);
        let many = format!("many-{}", r.many.len());
        let dir_of = |d: usize| format!("{many}/d{d:03}");
        let t0 = Instant::now();
        std::fs::create_dir(send.join(&many)).unwrap();
        for d in 0..many_dirs {
            std::fs::create_dir(send.join(dir_of(d))).unwrap();
        }
        for (i, chunk) in payload.chunks(1024).enumerate() {
            std::fs::write(send.join(format!("{}/f{i:05}", dir_of(i % many_dirs))), chunk).unwrap();
        }
        println!("[{label}]   written in {:.0} ms", ms(t0.elapsed()));
        subject.writer_done(&[many.clone()]).await;
        // Counting 200 directories is not free: look every 100 ms at most, and start with the last
        // directory (the last file written lands in it).
        let last_dir = recv.join(dir_of((many_n - 1) % many_dirs));
        let per_dir = |d: usize| many_n / many_dirs + usize::from(d < many_n % many_dirs);
        let all_there = || {
            count_files(&last_dir) == per_dir((many_n - 1) % many_dirs) && (0..many_dirs).all(|d| count_files(&recv.join(dir_of(d))) == per_dir(d))
        };
        r.many.extend(arrivals.wait(Duration::from_secs(1800), Duration::from_millis(100), all_there).await.map(|t| ms(t - t0)));
        subject.wait_idle().await;
    }

    if let Some((syncthings, daemons)) = bulk_cpu_before {
        let used = |before: &[u64], pids: &[u32]| -> Vec<u64> { ticks_of(pids).iter().zip(before).map(|(now, b)| now.saturating_sub(*b)).collect() };
        r.bulk_cpu.push((case.to_string(), used(&syncthings, &subject.cpu_pids()), used(&daemons, &subject.daemon_pids())));
    }
    let profile_dir = PathBuf::from(std::env::var("BENCH_PROF_DIR").unwrap_or_else(|_| "/tmp/latency-bench-prof".into()));
    for (name, profile) in profiles {
        let path = profile_dir.join(format!("{label}-{case}-{name}.pprof"));
        match profile.await.expect("profile task") {
            Ok(bytes) => {
                std::fs::create_dir_all(&profile_dir).unwrap();
                std::fs::write(&path, bytes).unwrap();
                println!("[{label}]   profile {}", path.display());
            }
            Err(e) => println!("[{label}]   profile of {name}: {e}"),
        }
    }

    if case == "idle" {
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
        r.idle_s = idle_s as f64;
        r.daemon_rss_kib = daemons.iter().filter_map(|p| vm_rss_kib(*p)).collect();
    }
    // SAFETY: sysconf has no preconditions.
    r.tick_ms = 1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
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

fn report(results: &[(&str, Results)], delay_s: u32, version: &str) {
    println!();
    println!("==== sync latency benchmark, Syncthing {version} (raw/raw-scan/ours: fsWatcherDelayS={delay_s}; botsync: its own settings) ====");
    println!("load while measuring: {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    let bulk = |v: &[f64]| match median(v) {
        None => "-".to_string(),
        Some(m) => format!("median {m:.0} ms of {:?}", v.iter().map(|x| x.round() as i64).collect::<Vec<_>>()),
    };
    for (label, r) in results {
        println!("-- {label}");
        if let Some(v) = r.first_after_join {
            println!("  first file after join {v:.1} ms");
        }
        println!("  1 KiB A->B         {} timeouts={}", stats(&r.kib), r.kib_timeouts);
        println!("  pair: 1st file     {}", stats(&r.pair_first));
        println!("  pair: 2nd (+10 ms) {}", stats(&r.pair_second));
        println!("  1 KiB back-to-back {}", stats(&r.back_to_back));
        println!("  rename             {}", stats(&r.rename));
        println!("  delete             {}", stats(&r.delete));
        println!("  big file           {}", bulk(&r.big));
        println!("  small files        {}", bulk(&r.small));
        println!("  many small files   {}", bulk(&r.many));
        for (case, syncthings, daemons) in &r.bulk_cpu {
            let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(" / ");
            let daemons = if daemons.is_empty() { String::new() } else { format!(", daemons {} ticks", list(daemons)) };
            println!("  CPU over {case:<5}     syncthing processes {} ticks{daemons}", list(syncthings));
        }
        if r.idle_s > 0.0 {
            println!(
                "  idle CPU ({:.0} s)    syncthing {} ticks ({:.0} ms), botsync daemons {} ticks ({:.0} ms), bench process {} ticks",
                r.idle_s,
                r.idle_syncthing_ticks,
                r.idle_syncthing_ticks as f64 * r.tick_ms,
                r.idle_daemon_ticks,
                r.idle_daemon_ticks as f64 * r.tick_ms,
                r.idle_self_ticks
            );
        }
        if !r.daemon_rss_kib.is_empty() {
            let shown: Vec<String> = r.daemon_rss_kib.iter().map(|k| format!("{:.1} MiB", *k as f64 / 1024.0)).collect();
            println!("  daemon VmRSS       {}", shown.join(" / "));
        }
    }
    for baseline in ["raw-scan", "raw"] {
        let Some((_, base)) = results.iter().find(|(l, _)| *l == baseline) else { continue };
        for (label, r) in results.iter().filter(|(l, _)| *l != baseline && !(baseline == "raw" && *l == "raw-scan")) {
            println!("-- ratios {label}/{baseline} (lower is faster)");
            println!("  1 KiB median       {}", ratio(median(&r.kib), median(&base.kib)));
            println!("  pair 2nd median    {}", ratio(median(&r.pair_second), median(&base.pair_second)));
            println!("  back-to-back med   {}", ratio(median(&r.back_to_back), median(&base.back_to_back)));
            println!("  rename median      {}", ratio(median(&r.rename), median(&base.rename)));
            println!("  delete median      {}", ratio(median(&r.delete), median(&base.delete)));
            for (what, ours, theirs, limit) in [("big file        ", &r.big, &base.big, 1.05), ("small files     ", &r.small, &base.small, 1.1), ("many small files", &r.many, &base.many, 1.1)] {
                let (o, b) = (median(ours), median(theirs));
                println!("  {what}   {}{}", ratio(o, b), target(baseline, o, b, limit));
            }
            if base.idle_s > 0.0 {
                println!(
                    "  idle CPU ticks     {baseline} syncthing {} vs {label} syncthing {} + daemons {}",
                    base.idle_syncthing_ticks, r.idle_syncthing_ticks, r.idle_daemon_ticks
                );
            }
        }
    }
}

/// Issue 14's bulk targets: at most `limit` x the floor, and never slower than raw Syncthing.
fn target(baseline: &str, ours: Option<f64>, base: Option<f64>, limit: f64) -> String {
    let (Some(o), Some(b)) = (ours, base) else { return String::new() };
    let (limit, what) = if baseline == "raw-scan" { (limit, format!("<= {limit} x floor")) } else { (1.0, "<= raw".to_string()) };
    format!("   target {what}: {}", if o <= b * limit { "met" } else { "MISSED" })
}

/// Flushes and drops the page cache before a bulk case, so every subject writes into memory in
/// the same state. On this VM, page cache beyond the first ~0.5-1 GiB written since the last
/// release of memory is memory the guest touches for the first time, and that costs the writer:
/// `dd` of a 256 MiB file took 0.05 s of system time for the first two files and 0.26 s for the
/// third, and 0.05 s again after `drop_caches`. Without this, whichever subject came second took
/// 1.40-1.64 s for the 256 MiB file against 0.99-1.15 s for the first, raw-scan against itself
/// included, its receiving Syncthing spending 290-540 ms in `pwrite` against 60-80 ms (Go CPU
/// profiles, BENCH_CPUPROF_S). Needs root; without it the case runs as it is, with a warning.
fn settle_page_cache() {
    // SAFETY: sync(2) takes no arguments and only flushes.
    unsafe { libc::sync() };
    if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "1") {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| eprintln!("cannot drop the page cache before bulk cases ({e}): the second subject of a case may be slowed"));
    }
}

/// `syncthing --version`'s version word, for the report.
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
    let delay_s = env_num("BENCH_RAW_DELAY_S", 10) as u32;
    let only = std::env::var("BENCH_ONLY").unwrap_or_else(|_| "raw,raw-scan,botsync".into());
    let wanted: Vec<&str> = only.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let cases = Cases::from_env();
    let mut ours_config = WatcherConfig::default();
    if let Ok(v) = std::env::var("BENCH_OURS_DEBOUNCE_MS") {
        ours_config.debounce = Duration::from_millis(v.parse().expect("BENCH_OURS_DEBOUNCE_MS is a number of ms"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // block_on keeps the Syncthings' parent thread (this one) alive for the whole run.
    runtime.block_on(async {
        let version = syncthing_version();
        // Every subject runs at once and each case goes through all of them before the next case,
        // in a rotating order: on a machine shared with other work, the load drifts, and this way
        // it hits every subject of a case alike.
        let mut subjects = Vec::new();
        for (n, label) in wanted.iter().enumerate() {
            let work = tempfile::tempdir().unwrap();
            println!("starting subject {label}");
            let n = n as u16;
            let subject = match *label {
                "raw" => AnySubject::Raw(RawPair::start(work.path(), delay_s, n).await),
                "raw-scan" => AnySubject::Raw(RawPair::start_scanned(work.path(), delay_s, n).await),
                "ours" | "ours-solo" => AnySubject::Ours(PairWithWatcher::start(work.path(), delay_s, n, ours_config.clone(), *label == "ours-solo").await),
                "botsync" => {
                    let subject = BotsyncPair::start(work.path()).await;
                    println!("[botsync] join -> connected {} ms", subject.join_connected_ms);
                    AnySubject::Botsync(subject)
                }
                other => panic!("unknown subject {other:?} in BENCH_ONLY (raw, raw-scan, ours, botsync)"),
            };
            let arrivals = Arrivals::new(&subject.receiver_dir(), notify::RecursiveMode::Recursive);
            let mut results = Results::default();
            if let AnySubject::Botsync(b) = &subject {
                results.first_after_join = b.first_after_join_ms;
            }
            subjects.push((*label, subject, work, arrivals, results));
        }
        for (k, case) in cases.0.iter().enumerate() {
            for j in 0..subjects.len() {
                let index = (j + k) % subjects.len();
                let (_, subject, work, arrivals, results) = &mut subjects[index];
                subject.run_case(work.path(), case, &cases, arrivals, results).await;
            }
        }
        let mut results = Vec::new();
        for (label, subject, work, _, r) in subjects {
            subject.shutdown().await;
            drop(work);
            results.push((label, r));
        }
        report(&results, delay_s, &version);
    });
}

/// The subjects of one run, side by side (the `Subject` trait's async methods make it unfit
/// for `dyn`).
enum AnySubject {
    Raw(RawPair),
    Ours(PairWithWatcher),
    Botsync(BotsyncPair),
}

impl AnySubject {
    fn receiver_dir(&self) -> PathBuf {
        match self {
            AnySubject::Raw(s) => s.receiver_dir(),
            AnySubject::Ours(s) => s.receiver_dir(),
            AnySubject::Botsync(s) => s.receiver_dir(),
        }
    }

    async fn run_case(&self, work: &Path, case: &str, cases: &Cases, arrivals: &mut Arrivals, r: &mut Results) {
        match self {
            AnySubject::Raw(s) => run_case(s, work, case, cases, arrivals, r).await,
            AnySubject::Ours(s) => run_case(s, work, case, cases, arrivals, r).await,
            AnySubject::Botsync(s) => run_case(s, work, case, cases, arrivals, r).await,
        }
    }

    async fn shutdown(self) {
        match self {
            AnySubject::Raw(s) => s.shutdown().await,
            AnySubject::Ours(s) => s.shutdown().await,
            AnySubject::Botsync(s) => s.shutdown().await,
        }
    }
}
