//! The fast-scan watcher on a real directory (inotify), with a recording fake Scanner: which
//! paths get scanned, when, and how often.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botsync::daemon::scanner::{ScanError, Scanner};
use botsync::daemon::watcher::{FastScanWatcher, FolderWatch, SuppressionHandle, WatcherConfig};

#[derive(Debug, Clone)]
struct ScanCall {
    folder: String,
    subs: Vec<String>,
    started: Instant,
}

/// Records every scan; each takes `latency` (Syncthing's scan is not instant, and that is what
/// makes batches pile up behind an in-flight scan).
struct RecordingScanner {
    calls: Mutex<Vec<ScanCall>>,
    latency: Duration,
}

impl Scanner for RecordingScanner {
    async fn scan(&self, folder_id: &str, subs: &[String]) -> Result<(), ScanError> {
        self.calls.lock().unwrap().push(ScanCall { folder: folder_id.to_string(), subs: subs.to_vec(), started: Instant::now() });
        tokio::time::sleep(self.latency).await;
        Ok(())
    }
}

struct Harness {
    dir: tempfile::TempDir,
    root: PathBuf,
    scanner: Arc<RecordingScanner>,
    suppression: SuppressionHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Harness {
    async fn start(config: WatcherConfig, scan_latency: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("folder");
        std::fs::create_dir(&root).unwrap();
        let root = root.canonicalize().unwrap();
        let scanner = Arc::new(RecordingScanner { calls: Mutex::new(Vec::new()), latency: scan_latency });
        let suppression = SuppressionHandle::new();
        let folders = vec![FolderWatch::new("fid", &root)];
        let supp = suppression.clone();
        let watcher = tokio::task::spawn_blocking(move || FastScanWatcher::start(&folders, supp, config))
            .await
            .unwrap()
            .expect("watcher starts");
        assert_eq!(watcher.watched_folders().len(), 1);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = Arc::clone(&scanner);
        let task = tokio::spawn(watcher.run(s, async move {
            let _ = stopped.await;
        }));
        Harness { dir, root, scanner, suppression, stop: Some(stop), task: Some(task) }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn calls(&self) -> Vec<ScanCall> {
        self.scanner.calls.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.scanner.calls.lock().unwrap().clear();
    }

    /// Waits until some scan happened and then nothing new for `quiet`; returns all calls.
    async fn settle(&self, quiet: Duration, timeout: Duration) -> Vec<ScanCall> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        let mut last_change = Instant::now();
        loop {
            let n = self.calls().len();
            if n != seen {
                seen = n;
                last_change = Instant::now();
            }
            if n > 0 && last_change.elapsed() >= quiet {
                return self.calls();
            }
            if Instant::now() > deadline {
                return self.calls();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(5), task).await.expect("watcher stops").unwrap();
        }
        drop(self.dir);
    }
}

fn covered(calls: &[ScanCall], path: &str, after: Instant) -> bool {
    calls.iter().any(|c| {
        c.started >= after
            && (c.subs.is_empty()
                || c.subs.iter().any(|s| s == path || (path.starts_with(s.as_str()) && path.as_bytes().get(s.len()) == Some(&b'/'))))
    })
}

fn all_subs(calls: &[ScanCall]) -> Vec<String> {
    let mut v: Vec<String> = calls.iter().flat_map(|c| c.subs.clone()).collect();
    v.sort();
    v.dedup();
    v
}

/// The scans named every expected path, and nothing outside them (a scan of something under an
/// expected path is harmless: events of one `rm -rf` can straddle two batches on a busy machine).
fn assert_scanned(calls: &[ScanCall], expected: &[&str]) {
    let subs = all_subs(calls);
    for want in expected {
        assert!(subs.iter().any(|s| s == want), "{want} was not scanned: {subs:?}");
    }
    for sub in &subs {
        let inside = expected.iter().any(|e| sub == e || (sub.starts_with(e) && sub.as_bytes().get(e.len()) == Some(&b'/')));
        assert!(inside, "unexpected scan of {sub}: expected only {expected:?}");
    }
}

const QUIET: Duration = Duration::from_millis(400);
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_write_is_scanned_exactly_once_after_close() {
    let h = Harness::start(WatcherConfig::default(), Duration::from_millis(5)).await;
    std::fs::write(h.path("hello.txt"), vec![b'x'; 1024]).unwrap();
    let closed = Instant::now();
    let calls = h.settle(QUIET, TIMEOUT).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].folder, "fid");
    assert_eq!(calls[0].subs, vec!["hello.txt".to_string()]);
    // Not a timing target, just "soon, not Syncthing's 1 s watcher".
    assert!(calls[0].started.duration_since(closed) < Duration::from_millis(500), "{:?}", calls[0].started.duration_since(closed));
    h.stop().await;
}

/// A file moved in complete from outside the folder cannot be Syncthing's (it renames only within
/// a folder), so it skips the wait for a late echo mark; a delete, which a pull can make, waits.
/// The hold is set to 5 s here so that the difference cannot come from a slow machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_moved_in_from_outside_is_not_held_as_a_possible_echo() {
    let hold = Duration::from_secs(5);
    let h = Harness::start(WatcherConfig { echo_hold: hold, ..WatcherConfig::default() }, Duration::from_millis(5)).await;
    let outside = h.dir.path().join("outside.bin");
    std::fs::write(&outside, vec![b'x'; 64 * 1024]).unwrap();
    std::fs::rename(&outside, h.path("moved-in.bin")).unwrap();
    let moved = Instant::now();
    let calls = h.settle(QUIET, TIMEOUT).await;
    assert_scanned(&calls, &["moved-in.bin"]);
    assert!(calls[0].started.duration_since(moved) < hold, "held {:?} like a possible echo", calls[0].started.duration_since(moved));

    h.clear();
    std::fs::remove_file(h.path("moved-in.bin")).unwrap();
    let removed = Instant::now();
    let calls = h.settle(QUIET, TIMEOUT).await;
    assert_scanned(&calls, &["moved-in.bin"]);
    assert!(calls[0].started.duration_since(removed) >= hold, "a delete waits for a late echo mark");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_slowly_is_scanned_once_when_complete() {
    let h = Harness::start(WatcherConfig::default(), Duration::from_millis(5)).await;
    let mut file = std::fs::File::create(h.path("slow.bin")).unwrap();
    for _ in 0..6 {
        file.write_all(&[7u8; 64 * 1024]).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(h.calls().is_empty(), "scanned while still being written: {:?}", h.calls());
    drop(file);
    let closed = Instant::now();
    let calls = h.settle(QUIET, TIMEOUT).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].subs, vec!["slow.bin".to_string()]);
    assert!(calls[0].started >= closed);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_files_become_a_handful_of_batched_scans() {
    // A realistic scan time: batches pile up behind the one in flight.
    let h = Harness::start(WatcherConfig::default(), Duration::from_millis(30)).await;
    let mut written = Vec::new();
    let began = Instant::now();
    for dir in ["burst", "burst/sub"] {
        std::fs::create_dir(h.path(dir)).unwrap();
    }
    for i in 0..2000 {
        let rel = if i % 2 == 0 { format!("burst/f{i:05}") } else { format!("burst/sub/f{i:05}") };
        std::fs::write(h.path(&rel), [i as u8; 4096]).unwrap();
        written.push((rel, Instant::now()));
    }
    // Top-level files too: those cannot be lifted into a directory scan by the watcher.
    for i in 0..200 {
        let rel = format!("top{i:03}.txt");
        std::fs::write(h.path(&rel), [1u8; 4096]).unwrap();
        written.push((rel, Instant::now()));
    }
    let writing = began.elapsed();
    let calls = h.settle(Duration::from_millis(600), Duration::from_secs(30)).await;
    // While files keep coming, a folder gets at most one scan per `max_coalesce` (250 ms); how
    // long this loop takes depends on the machine, so the bound does too.
    let bound = (writing.as_millis() / 250) as usize + 3;
    eprintln!("writing took {writing:?}; scans of {:?} paths (bound {bound})", calls.iter().map(|c| c.subs.len()).collect::<Vec<_>>());
    assert!(calls.len() <= bound, "{} scans for {writing:?} of writes: a scan storm", calls.len());
    for (rel, closed) in &written {
        assert!(covered(&calls, rel, *closed), "{rel} was never scanned after it was written");
    }
    for pair in calls.windows(2) {
        assert!(pair[1].started >= pair[0].started + Duration::from_millis(30), "two scans of one folder overlapped");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_deletes_and_directory_moves_scan_the_right_paths() {
    let h = Harness::start(WatcherConfig::default(), Duration::from_millis(5)).await;
    std::fs::write(h.path("a.txt"), b"a").unwrap();
    std::fs::create_dir_all(h.path("d/inner")).unwrap();
    std::fs::write(h.path("d/x"), b"x").unwrap();
    std::fs::write(h.path("d/inner/y"), b"y").unwrap();
    h.settle(QUIET, TIMEOUT).await;

    h.clear();
    std::fs::rename(h.path("a.txt"), h.path("b.txt")).unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["a.txt", "b.txt"]);

    h.clear();
    std::fs::remove_file(h.path("b.txt")).unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["b.txt"]);

    h.clear();
    std::fs::rename(h.path("d"), h.path("e")).unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["d", "e"]);

    // The moved directory is still watched under its new name.
    h.clear();
    std::fs::write(h.path("e/inner/z"), b"z").unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["e/inner/z"]);

    // Moved in from outside the folder, and out again.
    let outside = h.dir.path().join("staging");
    std::fs::create_dir_all(outside.join("deep")).unwrap();
    std::fs::write(outside.join("deep/file"), b"f").unwrap();
    h.clear();
    std::fs::rename(&outside, h.path("moved-in")).unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["moved-in"]);
    h.clear();
    std::fs::rename(h.path("e"), h.dir.path().join("gone")).unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["e"]);

    h.clear();
    std::fs::remove_dir_all(h.path("moved-in")).unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["moved-in"]);
    h.stop().await;
}

/// Does what Syncthing does when it pulls a file: temp file, then rename onto the real name,
/// then set the mtime on the real name.
fn land_like_syncthing(root: &Path, rel: &str, content: &[u8]) {
    let target = root.join(rel);
    let temp = target.with_file_name(format!(".syncthing.{}.tmp", target.file_name().unwrap().to_str().unwrap()));
    std::fs::write(&temp, content).unwrap();
    std::fs::rename(&temp, &target).unwrap();
    // Like Go's os.Chtimes: atime and mtime together (IN_ATTRIB; mtime alone is IN_MODIFY), and
    // no open for writing (a read-only handle gives no close-write event).
    let epoch = std::time::SystemTime::UNIX_EPOCH;
    let times = std::fs::FileTimes::new().set_accessed(epoch).set_modified(epoch);
    std::fs::File::open(&target).unwrap().set_times(times).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncthings_own_writes_produce_no_scans() {
    // A longer debounce makes "the fs event arrived before Syncthing's event" deterministic here.
    let config = WatcherConfig { debounce: Duration::from_millis(50), ..WatcherConfig::default() };
    let h = Harness::start(config, Duration::from_millis(5)).await;
    std::fs::create_dir(h.path("sub")).unwrap();
    std::fs::write(h.path("old.txt"), b"old").unwrap();
    std::fs::write(h.path("older.txt"), b"older").unwrap();
    h.settle(QUIET, TIMEOUT).await;
    h.clear();

    // Pulled files: recognised from the temp-file rename alone, no marks needed.
    land_like_syncthing(&h.root, "pulled.txt", b"remote");
    land_like_syncthing(&h.root, "sub/pulled2.txt", b"remote");
    // Mark first, then the fs change (the usual order for deletes and directories).
    h.suppression.item_started("fid", "old.txt");
    std::fs::remove_file(h.path("old.txt")).unwrap();
    h.suppression.item_finished("fid", "old.txt");
    h.suppression.item_started("fid", "newdir");
    std::fs::create_dir(h.path("newdir")).unwrap();
    h.suppression.item_finished("fid", "newdir");
    // fs change first, then the mark (Syncthing's event stream lagging).
    std::fs::remove_file(h.path("older.txt")).unwrap();
    h.suppression.item_started("fid", "older.txt");
    h.suppression.item_finished("fid", "older.txt");
    // Ignored names.
    std::fs::write(h.path(".stfolder"), b"").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(h.calls().is_empty(), "echoes were scanned: {:?}", h.calls());

    // Still alive, and an agent's write to a just-pulled file is a real change.
    std::fs::write(h.path("pulled.txt"), b"agent answer").unwrap();
    assert_scanned(&h.settle(QUIET, TIMEOUT).await, &["pulled.txt"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_across_many_directories_is_scanned_once_per_file_in_few_requests() {
    let h = Harness::start(WatcherConfig::default(), Duration::from_millis(30)).await;
    let began = Instant::now();
    let mut written = Vec::new();
    std::fs::create_dir(h.path("many")).unwrap();
    for d in 0..200 {
        std::fs::create_dir(h.path(&format!("many/d{d:03}"))).unwrap();
    }
    // The directories exist before the burst, like in a checkout that fills an existing tree.
    h.settle(QUIET, TIMEOUT).await;
    h.clear();
    for i in 0..20_000 {
        let rel = format!("many/d{:03}/f{i:05}", i % 200);
        std::fs::write(h.path(&rel), [i as u8; 1024]).unwrap();
        written.push((rel, Instant::now()));
    }
    let writing = began.elapsed();
    let calls = h.settle(Duration::from_millis(600), Duration::from_secs(60)).await;
    // Each file named in at most one request (it was written once, completely, before its
    // close-write), or walked with its directory when a batch held most of that directory
    // (`watcher::lift_crowded_dirs`). Each walk takes at least 32 of a directory's files off the
    // pending list (and half of its entries), so its 100 files see at most 3 walks: never a
    // directory walked again and again. Only if the kernel's event queue overflowed (16,384
    // events by default; a starved reader on a loaded machine) may a whole-folder scan stand in
    // for the paths whose events were lost.
    let mut seen = std::collections::HashMap::new();
    for call in &calls {
        for sub in &call.subs {
            *seen.entry(sub.clone()).or_insert(0) += 1;
        }
    }
    let whole: Vec<&ScanCall> = calls.iter().filter(|c| c.subs.is_empty()).collect();
    assert!(whole.len() <= 2, "{} whole-folder scans", whole.len());
    for (rel, closed) in &written {
        let times = seen.get(rel).copied().unwrap_or(0);
        assert!(times <= 1, "{rel} scanned {times} times");
        // Named once, or walked with its directory (the only ancestor that may be scanned, see
        // below) or the whole folder after its close.
        assert!(times == 1 || covered(&calls, rel, *closed), "{rel} was never scanned after it was written");
    }
    for d in 0..200 {
        let dir = format!("many/d{d:03}");
        let walks = seen.get(&dir).copied().unwrap_or(0);
        assert!(walks <= 3, "{dir} walked {walks} times");
    }
    assert!(seen.keys().all(|s| s.starts_with("many/d")), "paths beyond the written files and their directories were scanned");
    // Requests stay within the size cap, and there are few of them: a scan per 250 ms of writing
    // at most, each split into requests of `max_request_bytes`.
    let max_bytes = WatcherConfig::default().max_request_bytes;
    for call in &calls {
        // `/` is percent-encoded in the query: three bytes.
        assert!(call.subs.iter().map(|s| 5 + s.len() + 2 * s.matches('/').count()).sum::<usize>() <= max_bytes);
    }
    let path_bytes: usize = written.iter().map(|(r, _)| 5 + r.len() + 2 * r.matches('/').count()).sum();
    let bound = (writing.as_millis() / 250) as usize + 3 + path_bytes / max_bytes;
    let walks: usize = seen.iter().filter(|(s, _)| !s.contains("/f")).map(|(_, n)| n).sum();
    eprintln!("writing took {writing:?}; {} requests (bound {bound}), {walks} directory walks", calls.len());
    assert!(calls.len() <= bound, "{} requests for {writing:?} of writes", calls.len());
    h.stop().await;
}
