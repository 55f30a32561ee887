//! The watcher against two real Syncthings on loopback, inside a private network namespace
//! (`support::isolated`). A's own watcher is off, so a file reaches B only if our watcher's scan
//! asked for it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botsync::daemon::scanner::{RestScanner, ScanError, Scanner};
use botsync::daemon::watcher::{FastScanWatcher, FolderWatch, SuppressionHandle, WatcherConfig};
use crate::support::watcher::{feed_item_events, syncthing_binary, FsWatcher, Pair};
use crate::support::{block_on, isolated};

/// The real REST scanner, with every call recorded.
struct RecordingRest {
    inner: RestScanner,
    calls: Mutex<Vec<Vec<String>>>,
}

impl Scanner for RecordingRest {
    async fn scan(&self, folder_id: &str, subs: &[String]) -> Result<(), ScanError> {
        self.calls.lock().unwrap().push(subs.to_vec());
        self.inner.scan(folder_id, subs).await
    }
}

#[test]
fn watcher_drives_real_syncthing_without_feedback() {
    if syncthing_binary().is_none() {
        eprintln!("skipped: no syncthing binary (set SYNCTHING or put it on PATH)");
        return;
    }
    // block_on runs the body on this thread, which spawns (and outlives) the Syncthings.
    isolated(test_path!("watcher_drives_real_syncthing_without_feedback"), |_scratch| block_on(body()));
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn has(path: &std::path::Path, content: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|c| c == content)
}

async fn body() {
    let work = tempfile::tempdir().unwrap();
    let pair = Pair::start(work.path(), "wt", FsWatcher::Off, FsWatcher::DelayS(1)).await;
    let (a, b) = (&pair.dir_a, &pair.dir_b);

    // Syncthing 1.19 honours repeated `sub` parameters, and names survive URL encoding.
    let rest = RestScanner::new(&pair.a.rest());
    let odd = "odd name & ü #1?.txt";
    std::fs::write(a.join("x.txt"), b"x").unwrap();
    std::fs::write(a.join("y.txt"), b"y").unwrap();
    std::fs::write(a.join(odd), b"odd").unwrap();
    rest.scan("wt", &["x.txt".to_string(), "y.txt".to_string(), odd.to_string()]).await.unwrap();
    wait_for("x.txt, y.txt and the odd name on B", Duration::from_secs(20), || {
        has(&b.join("x.txt"), b"x") && has(&b.join("y.txt"), b"y") && has(&b.join(odd), b"odd")
    })
    .await;
    pair.wait_idle(Duration::from_secs(30)).await;

    let scanner = Arc::new(RecordingRest { inner: rest.clone(), calls: Mutex::new(Vec::new()) });
    let marks = SuppressionHandle::new();
    let feed = tokio::spawn(feed_item_events(pair.a.rest(), marks.clone()));
    let folders = vec![FolderWatch::new("wt", a)];
    let m = marks.clone();
    let watcher = tokio::task::spawn_blocking(move || FastScanWatcher::start(&folders, m, WatcherConfig::default())).await.unwrap().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher_task = tokio::spawn(watcher.run(Arc::clone(&scanner), async move {
        let _ = stopped.await;
    }));

    // A 1 KiB file written on A reaches B through the watcher's scan alone.
    let kib = vec![b'k'; 1024];
    let written = Instant::now();
    std::fs::write(a.join("hello.txt"), &kib).unwrap();
    wait_for("hello.txt on B", Duration::from_secs(20), || has(&b.join("hello.txt"), &kib)).await;
    eprintln!("1 KiB A->B through the watcher: {:?}", written.elapsed());
    assert!(scanner.calls.lock().unwrap().iter().any(|subs| subs == &["hello.txt".to_string()]), "{:?}", scanner.calls.lock().unwrap());
    pair.wait_idle(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Remote changes arriving on A: new file, new directory, edit, delete, rename.
    scanner.calls.lock().unwrap().clear();
    std::fs::write(b.join("remote.txt"), b"from B").unwrap();
    std::fs::create_dir(b.join("remote-dir")).unwrap();
    std::fs::write(b.join("remote-dir/inner.txt"), b"inner").unwrap();
    std::fs::write(b.join("hello.txt"), b"edited on B").unwrap();
    std::fs::remove_file(b.join("x.txt")).unwrap();
    std::fs::rename(b.join("y.txt"), b.join("y2.txt")).unwrap();
    pair.b.scan("wt", "").await;
    wait_for("B's changes on A", Duration::from_secs(30), || {
        has(&a.join("remote.txt"), b"from B")
            && has(&a.join("remote-dir/inner.txt"), b"inner")
            && has(&a.join("hello.txt"), b"edited on B")
            && !a.join("x.txt").exists()
            && !a.join("y.txt").exists()
            && has(&a.join("y2.txt"), b"y")
    })
    .await;
    pair.wait_idle(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let echoes = scanner.calls.lock().unwrap().clone();
    assert!(echoes.is_empty(), "Syncthing's own writes on A were scanned again (feedback): {echoes:?}");

    // Still watching: an agent answering on A right away is synced.
    std::fs::write(a.join("remote.txt"), b"answer from A").unwrap();
    wait_for("A's answer on B", Duration::from_secs(20), || has(&b.join("remote.txt"), b"answer from A")).await;
    assert_eq!(scanner.calls.lock().unwrap().clone(), vec![vec!["remote.txt".to_string()]]);

    let _ = stop.send(());
    watcher_task.await.unwrap();
    feed.abort();
    drop(pair);
}
