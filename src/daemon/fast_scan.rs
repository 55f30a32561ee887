//! Fast scans, assembled: the watcher over the three folders asks Syncthing to scan exactly what
//! changed, and the puller's own writes (Syncthing's ItemStarted/ItemFinished events) are marked
//! so that what arrives from peers never triggers a scan of its own.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::scanner::RestScanner;
use super::watch_limit::{self, WatchLimit};
use super::watcher::{run_watcher, FolderWatch, SuppressionHandle, WatcherConfig};
use crate::engine::events::{EventData, EventStream};
use crate::engine::RestClient;
use crate::engine::Engine;
use crate::root::SharedFolder;

const RETRY: Duration = Duration::from_millis(250);
const PROCESS_CHECK: Duration = Duration::from_secs(1);
/// How long a poll waits when nothing is pulled. Each empty poll ends in a process check
/// (`/rest/system/status`, a stop-the-world pause in Syncthing): on a quiet root, one every five
/// minutes instead of every minute. A restart fails the open poll whatever its timeout.
const IDLE_POLL: Duration = Duration::from_secs(300);
/// After a batch, the next poll waits this long: a bulk pull's item events then come ~10 ms'
/// worth to a request instead of one or two (hundreds of requests a second, each one work for
/// Syncthing while it pulls). A third of the batcher's `echo_hold` (30 ms), so marks still come
/// in time for the echoes they hide.
const BUSY_PACE: Duration = Duration::from_millis(10);

pub async fn run(engine: &Engine, shutdown: watch::Receiver<bool>) {
    let rest = engine.rest();
    let marks = SuppressionHandle::new();
    let folders = SharedFolder::ALL
        .into_iter()
        .map(|folder| FolderWatch::new(folder.folder_id(), engine.root().folder_dir(folder)))
        .collect();
    // The watcher sizes its requests itself (`WatcherConfig::max_request_bytes`) and names a
    // directory only where a batch holds most of it (`watcher::lift_crowded_dirs`): lifting every
    // request to common parents would make Syncthing walk again what it scanned a moment ago, the
    // more often the bigger the burst.
    let scanner = Arc::new(RestScanner::new(&rest).with_max_subs(usize::MAX));
    // A daemon starting afresh says anew whether the watch limit bites.
    let root = engine.root().clone();
    watch_limit::clear(&root);
    let record = move |limit: &WatchLimit| {
        if let Err(e) = watch_limit::record(&root, limit) {
            eprintln!("cannot record the watch limit for `status`: {e}");
        }
    };
    tokio::join!(
        async {
            if let Err(e) = run_watcher(folders, scanner, marks.clone(), WatcherConfig::default(), record, super::changed(shutdown.clone())).await {
                eprintln!("fast scans are off ({e}); Syncthing's own watcher still syncs changes");
            }
        },
        mark_pulled_items(rest, marks.clone(), shutdown.clone()),
    );
}

/// Feeds the puller's item events to the watcher's suppression marks until shutdown.
pub async fn mark_pulled_items(rest: RestClient, marks: SuppressionHandle, mut shutdown: watch::Receiver<bool>) {
    // Paced by no more than `BUSY_PACE`: a mark later than the batcher's `echo_hold` (30 ms) no
    // longer hides the echo of a pulled delete or directory (a 40 ms pause while busy let such
    // echoes through in `watcher_syncthing`). An item event of a restarted Syncthing is a real
    // pull all the same, so the restart check runs once a second, not after every poll.
    let mut stream = EventStream::new(rest, &["ItemStarted", "ItemFinished"]).with_process_check_every(PROCESS_CHECK).with_poll_timeout(IDLE_POLL);
    loop {
        let batch = tokio::select! {
            batch = stream.next_batch() => batch,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match batch {
            Ok(batch) => {
                let busy = !batch.events.is_empty();
                for event in batch.events {
                    match event.data {
                        EventData::ItemStarted(item) => marks.item_started(&item.folder, &item.item),
                        EventData::ItemFinished(item) => marks.item_finished(&item.folder, &item.item),
                        _ => {}
                    }
                }
                if busy {
                    tokio::time::sleep(BUSY_PACE).await;
                }
            }
            // Syncthing restarting or briefly busy: the watcher's temp-name rules still cover pulls.
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}
