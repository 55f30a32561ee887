//! The inotify watch limit: with `fs.inotify.max_user_watches` too small for the folder, the
//! watcher says so once (with the fix), leaves the folder to Syncthing's own watcher plus a timed
//! whole-folder scan, misses nothing, and never spins.
//!
//! The limit is a global sysctl shared with everything else on the machine (other tests run
//! here too), so it is lowered only for the instant the watcher starts, and restored at once,
//! also if the test panics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botsync::daemon::scanner::{ScanError, Scanner};
use botsync::daemon::watcher::{FastScanWatcher, FolderWatch, SuppressionHandle, WatcherConfig};

const SYSCTL: &str = "/proc/sys/fs/inotify/max_user_watches";

struct Recording {
    calls: Mutex<Vec<(Vec<String>, Instant)>>,
}

impl Scanner for Recording {
    async fn scan(&self, _folder_id: &str, subs: &[String]) -> Result<(), ScanError> {
        self.calls.lock().unwrap().push((subs.to_vec(), Instant::now()));
        Ok(())
    }
}

/// Puts the saved limit back when dropped.
struct RestoreLimit(String);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        std::fs::write(SYSCTL, &self.0).expect("restore fs.inotify.max_user_watches");
    }
}

/// inotify watches in use by every process on the machine (`inotify wd:` lines of their fdinfo):
/// what the per-user limit is counted against (every process here runs as root).
fn watches_in_use() -> u64 {
    let mut n = 0;
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(proc.path().join("fdinfo")) else { continue };
        for fd in fds.flatten() {
            if let Ok(info) = std::fs::read_to_string(fd.path()) {
                n += info.lines().filter(|l| l.starts_with("inotify wd:")).count() as u64;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_limit_is_told_once_and_falls_back_to_timed_scans_without_spinning() {
    let Ok(saved) = std::fs::read_to_string(SYSCTL) else {
        eprintln!("skipped: no {SYSCTL} on this platform");
        return;
    };
    if std::fs::OpenOptions::new().write(true).open(SYSCTL).is_err() {
        eprintln!("skipped: {SYSCTL} is not writable (needs root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("folder");
    for d in 0..300 {
        std::fs::create_dir_all(root.join(format!("d{:02}/e{d:03}", d % 30))).unwrap();
    }
    let root = root.canonicalize().unwrap();
    let config = WatcherConfig { fallback_scan: Duration::from_millis(500), ..WatcherConfig::default() };
    let folders = vec![FolderWatch::new("fid", &root)];

    // Room for far fewer watches than the tree's 331 directories, for as short a time as we can.
    let watcher = {
        let _restore = RestoreLimit(saved.clone());
        std::fs::write(SYSCTL, (watches_in_use() + 40).to_string()).unwrap();
        FastScanWatcher::start(&folders, SuppressionHandle::new(), config)
    }
    .expect("a folder the limit keeps from being watched is still served");
    assert_eq!(std::fs::read_to_string(SYSCTL).unwrap(), saved, "the limit was restored");

    let limit = watcher.watch_limit().expect("the watcher knows it hit the limit");
    assert_eq!(limit.folders, vec!["fid".to_string()]);
    assert!(limit.directories >= 331, "{limit:?}");
    assert!(limit.fix().contains("fs.inotify.max_user_watches="), "{}", limit.fix());
    let told = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&told);
    let watcher = watcher.on_watch_limit(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });

    let scanner = Arc::new(Recording { calls: Mutex::new(Vec::new()) });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(watcher.run(Arc::clone(&scanner), async move {
        let _ = stopped.await;
    }));

    // Nothing is missed: a file written deep in the unwatched tree is covered by a scan after it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(root.join("d07/e007/new.txt"), b"written while unwatched").unwrap();
    let written = Instant::now();
    let deadline = written + Duration::from_secs(10);
    while !scanner.calls.lock().unwrap().iter().any(|(subs, at)| *at >= written && subs.is_empty()) {
        assert!(Instant::now() < deadline, "the unwatched folder was never scanned after the write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // It never spins: over 3 s, one whole-folder scan per 500 ms, no more.
    let before = scanner.calls.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = scanner.calls.lock().unwrap().len() - before;
    assert!((4..=8).contains(&during), "{during} scans in 3 s with a 500 ms fallback interval");
    assert!(scanner.calls.lock().unwrap().iter().all(|(subs, _)| subs.is_empty()), "only whole-folder scans");
    assert_eq!(told.load(Ordering::SeqCst), 1, "the limit is told once, not per scan or event");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("watcher stops").unwrap();
}
