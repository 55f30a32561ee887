//! The fast-scan watcher: botsync watches the synced folders itself and asks Syncthing to scan
//! exactly the paths that changed, a few milliseconds after the change, instead of waiting for
//! Syncthing's own watcher (at least 1 s). Syncthing's watcher stays on as the safety net, so
//! anything this one misses (an inotify watch limit, an event lost in a race) still syncs, slower.
//!
//! Pipeline: `notify` events -> folder-relative `Change`s -> the `Batcher` (debounce, wait for
//! writers to finish, coalesce, batch bursts, drop echoes of Syncthing's own writes) -> one
//! [`Scanner`] call per folder at a time.
//!
//! Echo suppression (no feedback loop): when Syncthing pulls a remote change it writes into the
//! folder too, and scanning those paths again is wasted work. Two signals identify such writes:
//! - a rename from or to a Syncthing temp name (`.syncthing.NAME.tmp`) is Syncthing's own:
//!   temp -> NAME lands every pulled file, NAME -> temp moves a file aside for a remote rename.
//!   It is recognised from the fs events alone, in any order;
//! - for the rest (deletes, directories, symlinks, metadata, Syncthing's own renames) the daemon
//!   forwards Syncthing's `ItemStarted` / `ItemFinished` events to a [`SuppressionHandle`]. A mark
//!   covers `[started - lookback, finished + tail]`: fs events inside it are dropped on arrival,
//!   and events that arrived *before* the mark (Syncthing's event stream lags the file system by
//!   a few milliseconds) are purged from the pending set when the mark arrives. Changes that
//!   could be such echoes wait `echo_hold` (30 ms) for that.
//!
//! Marks never hide content writes (modify, close-write, a rename from a non-Syncthing file):
//! Syncthing never produces those on the real path, so an agent answering a remote change
//! within milliseconds still gets its fast scan. A late mark costs at most one redundant scan,
//! which Syncthing treats as a no-op (size and mtime match its database): never a sync loop.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;

use super::scanner::{parent, ScanError, Scanner};
use super::watch_limit::{self, WatchLimit};

/// One Syncthing folder to watch: its ID and its absolute directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderWatch {
    pub folder_id: String,
    pub path: PathBuf,
}

impl FolderWatch {
    pub fn new(folder_id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        FolderWatch { folder_id: folder_id.into(), path: path.into() }
    }
}

/// Tunables. The defaults aim at ~25 ms end-to-end for a small file on loopback.
#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Quiet time after a path's last event before it is scanned; absorbs the create/write/close
    /// burst of one save and lets late echo marks catch up.
    pub debounce: Duration,
    /// A path that keeps changing is scanned anyway once its first unscanned event is this old
    /// (not applied to files still open for writing).
    pub max_coalesce: Duration,
    /// Once more than `burst_threshold` paths are pending in a folder, it is in a burst (a
    /// checkout, an unpack, a generator): batches then wait until the folder has been quiet for
    /// `burst_quiet` (still capped by `max_coalesce`), and the burst ends with that quiet.
    pub burst_threshold: usize,
    pub burst_quiet: Duration,
    /// A file written but not closed (no close-write yet) is considered idle after this long
    /// without events, and then scanned once its size and mtime are stable.
    pub write_idle: Duration,
    /// Two stats this far apart must agree before an unclosed file is scanned. On platforms with
    /// no close-write events (macOS) this is the wait after every write.
    pub stable_interval: Duration,
    /// An echo mark also covers fs events up to this long before Syncthing reported the item.
    pub suppress_lookback: Duration,
    /// Extra wait for changes that could be echoes of a pull (delete, new directory, chmod, a
    /// rename target notify did not pair) but lack a mark so far (a file moved in from outside
    /// every folder cannot be one, `Change::MovedIn`): Syncthing reports `ItemStarted`
    /// just before it acts, and the event stream can lag the file system by a few ms. Content
    /// writes and paired renames never wait for this. A mark later than this costs one
    /// redundant scan (a no-op for Syncthing).
    pub echo_hold: Duration,
    /// An echo mark lasts this long after Syncthing finished the item.
    pub suppress_tail: Duration,
    /// A started item whose finish never arrives stops suppressing after this long.
    pub busy_ttl: Duration,
    /// A failed scan is retried after this long, up to `max_scan_attempts` times in all.
    pub retry_backoff: Duration,
    pub max_scan_attempts: u32,
    /// A batch is sent as exact paths, except where it names most of a directory (see
    /// [`lift_crowded_dirs`]), split into requests of at most this many bytes of paths (see
    /// [`scan_requests`]).
    pub max_request_bytes: usize,
    /// A folder that the inotify watch limit kept from being watched (whole or in part) is
    /// scanned whole this often instead, besides Syncthing's own watcher (see `watch_limit`).
    pub fallback_scan: Duration,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            debounce: Duration::from_millis(5),
            max_coalesce: Duration::from_millis(250),
            burst_threshold: 16,
            burst_quiet: Duration::from_millis(100),
            write_idle: Duration::from_secs(1),
            stable_interval: Duration::from_millis(10),
            suppress_lookback: Duration::from_millis(200),
            echo_hold: Duration::from_millis(30),
            suppress_tail: Duration::from_millis(300),
            busy_ttl: Duration::from_secs(600),
            retry_backoff: Duration::from_millis(500),
            max_scan_attempts: 3,
            max_request_bytes: 32 * 1024,
            fallback_scan: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the file system watcher: {0}")]
    Backend(#[source] notify::Error),
    #[error("no folder could be watched")]
    NothingWatched,
    #[error("the watcher setup task failed: {0}")]
    Setup(String),
}

// ---------------------------------------------------------------------------------------------
// Echo suppression handle
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkKind {
    Started,
    Finished,
}

#[derive(Debug, Clone)]
struct MarkMsg {
    folder_id: String,
    path: String,
    kind: MarkKind,
    at: Instant,
}

/// How often expired echo marks are dropped from memory at most.
const MARK_PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// Marks queued while no watcher consumes them are capped: a daemon that forwards events
/// before (or without) a running watcher must not grow without bound.
const MAX_QUEUED_MARKS: usize = 100_000;

#[derive(Default)]
struct SuppressionShared {
    queue: Mutex<VecDeque<MarkMsg>>,
    wake: Notify,
}

/// Tells the watcher which paths Syncthing itself is writing, so that their fs events do not
/// become scans. Cheap to clone; feed it from Syncthing's `ItemStarted` / `ItemFinished` events
/// (`data.folder`, `data.item`). Survives watcher restarts.
#[derive(Clone, Default)]
pub struct SuppressionHandle {
    shared: Arc<SuppressionShared>,
}

impl SuppressionHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Syncthing started pulling `path` (folder-relative, as in the event's `item`).
    pub fn item_started(&self, folder_id: &str, path: &str) {
        self.push(folder_id, path, MarkKind::Started);
    }

    /// Syncthing finished pulling `path` (successfully or not).
    pub fn item_finished(&self, folder_id: &str, path: &str) {
        self.push(folder_id, path, MarkKind::Finished);
    }

    fn push(&self, folder_id: &str, path: &str, kind: MarkKind) {
        let msg = MarkMsg {
            folder_id: folder_id.to_string(),
            path: normalize_item(path),
            kind,
            at: Instant::now(),
        };
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.len() >= MAX_QUEUED_MARKS {
                queue.pop_front();
            }
            queue.push_back(msg);
        }
        self.shared.wake.notify_one();
    }

    fn drain(&self) -> Vec<MarkMsg> {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.drain(..).collect()
    }
}

/// Syncthing reports items with native separators; the watcher works with `/`.
fn normalize_item(path: &str) -> String {
    let p = if std::path::MAIN_SEPARATOR == '/' { path.to_string() } else { path.replace(std::path::MAIN_SEPARATOR, "/") };
    p.trim_matches('/').to_string()
}

// ---------------------------------------------------------------------------------------------
// Classification of fs events
// ---------------------------------------------------------------------------------------------

/// What happened to one folder-relative path, reduced to what the batcher needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// A file (or symlink, device...) appeared; a writer may still have it open.
    Created,
    /// File content changed; the writer may still have it open.
    Written,
    /// A writer closed the file: its content is complete.
    Closed,
    DirCreated,
    Metadata,
    Removed,
    RenamedFrom,
    RenamedTo,
    /// The target of a rename whose source is outside every watched folder (inotify gave its
    /// cookie to no `MOVED_FROM` here): a file moved in, complete, from elsewhere. Syncthing
    /// renames only within a folder, so this is never an echo of a pull.
    MovedIn,
}

impl Change {
    /// Whether Syncthing's pulls can produce this change on a real (non-temp) path, so that an
    /// echo mark may hide it. Content writes and closes only ever hit Syncthing's temp files.
    fn echo_possible(self) -> bool {
        !matches!(self, Change::Written | Change::Closed | Change::MovedIn)
    }

    /// Whether a writer may still be producing the file after this change.
    fn may_be_open(self) -> bool {
        matches!(self, Change::Created | Change::Written)
    }
}

/// Syncthing's names that never become scans: its temp files, its folder marker and its
/// version archive.
pub fn is_ignored(rel: &str) -> bool {
    let first = rel.split('/').next().unwrap_or("");
    if first == ".stfolder" || first == ".stversions" {
        return true;
    }
    rel.split('/').any(is_syncthing_temp_name)
}

/// `.syncthing.NAME.tmp` (Unix) and `~syncthing~NAME.tmp` (Windows; also used for long names).
pub fn is_syncthing_temp_name(name: &str) -> bool {
    (name.starts_with(".syncthing.") || name.starts_with("~syncthing~")) && name.ends_with(".tmp")
}

/// Size, mtime and type of a file at one moment: equal stamps some time apart mean nobody is
/// writing it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub regular: bool,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(FileStamp { len: meta.len(), modified: meta.modified().ok(), regular: meta.file_type().is_file() })
    }
}

// ---------------------------------------------------------------------------------------------
// The batcher: pure state machine, clock passed in
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Pending {
    first_event: Instant,
    last_event: Instant,
    /// Content was written and no close-write followed yet.
    awaiting_close: bool,
    /// Saw a change that cannot be an echo of Syncthing's pull; never purged by marks.
    local: bool,
    /// For the stable-size check: the last stamp and when it was taken.
    stamp: Option<(Option<FileStamp>, Instant)>,
    /// Whether the "is it still a regular file" check ran since the last event.
    kind_checked: bool,
    /// Scan attempts that already failed for this path.
    failed_attempts: u32,
    /// Earliest moment this entry may be looked at again.
    due: Instant,
}

impl Pending {
    fn new(now: Instant, due: Instant) -> Self {
        Pending {
            first_event: now,
            last_event: now,
            awaiting_close: false,
            local: false,
            stamp: None,
            kind_checked: false,
            failed_attempts: 0,
            due,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    from: Instant,
    until: Instant,
}

struct FolderState {
    id: String,
    pending: BTreeMap<String, Pending>,
    in_flight: bool,
    /// The folder's latest counted event: a burst is batched until the folder goes quiet.
    last_event: Option<Instant>,
    bursting: bool,
}

/// When the folder counts as quiet: `debounce` after its last event, or `burst_quiet` in a
/// burst (more files are probably coming).
fn quiet_at(folder: &FolderState, cfg: &WatcherConfig) -> Option<Instant> {
    let gap = if folder.bursting { cfg.burst_quiet.max(cfg.debounce) } else { cfg.debounce };
    folder.last_event.map(|t| t + gap)
}

/// The entry's own due time. Changes that Syncthing's pulls could also have made (a delete, a
/// new directory, a chmod) wait `echo_hold` longer, for a lagging echo mark to catch up.
fn own_due(entry: &Pending, cfg: &WatcherConfig) -> Instant {
    if entry.local {
        entry.due
    } else {
        entry.due.max(entry.first_event + cfg.echo_hold)
    }
}

/// When `entry` may be looked at: its own due time, but not while its folder is in the middle of
/// a burst, unless it has waited `max_coalesce` already.
fn ready_at(folder_quiet_at: Option<Instant>, entry: &Pending, cfg: &WatcherConfig) -> Instant {
    let due = own_due(entry, cfg);
    due.max(folder_quiet_at.unwrap_or(due).min(entry.first_event + cfg.max_coalesce))
}

/// One scan to run: folder index, folder ID and folder-relative paths (empty = whole folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub folder: usize,
    pub folder_id: String,
    pub subs: Vec<String>,
    /// Scans of these paths that already failed (the worst among them).
    pub failed_attempts: u32,
}

pub(crate) struct Batcher {
    cfg: WatcherConfig,
    /// The backend reports close-write (inotify). Without it every write waits for a stable stamp.
    close_events: bool,
    folders: Vec<FolderState>,
    folder_index: HashMap<String, usize>,
    marks: HashMap<(usize, String), Mark>,
    next_prune: Option<Instant>,
    /// The earliest `due` given to any entry since the last `next_deadline`: a lower bound of
    /// every new deadline (`ready_at` is never before an entry's `due`), so the event loop can
    /// skip the full look at a 20,000-path burst after every event.
    changed_due: Option<Instant>,
}

impl Batcher {
    pub fn new(folder_ids: &[String], cfg: WatcherConfig, close_events: bool) -> Self {
        let folders = folder_ids
            .iter()
            .map(|id| FolderState { id: id.clone(), pending: BTreeMap::new(), in_flight: false, last_event: None, bursting: false })
            .collect();
        let folder_index = folder_ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        Batcher { cfg, close_events, folders, folder_index, marks: HashMap::new(), next_prune: None, changed_due: None }
    }

    fn marked(&self, folder: usize, path: &str, at: Instant) -> bool {
        !self.marks.is_empty()
            && self.marks.get(&(folder, path.to_string())).is_some_and(|m| m.from <= at && at <= m.until)
    }

    /// One fs change on a folder-relative path (never the folder root: see `rescan_all`).
    pub fn on_change(&mut self, folder: usize, path: &str, change: Change, now: Instant) {
        if path.is_empty() || is_ignored(path) {
            return;
        }
        if change.echo_possible() && self.marked(folder, path, now) {
            return;
        }
        let due = now + self.cfg.debounce;
        let state = &mut self.folders[folder];
        state.last_event = Some(now);
        let entry = state.pending.entry(path.to_string()).or_insert_with(|| Pending::new(now, due));
        entry.last_event = now;
        entry.stamp = None;
        if change.may_be_open() {
            entry.awaiting_close = true;
        } else if change != Change::Metadata && entry.awaiting_close {
            // The write just ended: coalescing starts now, not when the writer started.
            entry.awaiting_close = false;
            entry.first_event = now;
        }
        if matches!(change, Change::Created | Change::RenamedTo | Change::MovedIn | Change::Removed) {
            // The path may now name a different kind of file.
            entry.kind_checked = false;
        }
        if !change.echo_possible() {
            entry.local = true;
        }
        // A path that keeps changing is still scanned now and then, unless a writer holds it.
        entry.due = if entry.awaiting_close { due } else { due.min(entry.first_event + self.cfg.max_coalesce) };
        let entry_due = entry.due;
        if state.pending.len() > self.cfg.burst_threshold {
            state.bursting = true;
        }
        self.note_due(entry_due);
    }

    fn note_due(&mut self, due: Instant) {
        self.changed_due = Some(self.changed_due.map_or(due, |t| t.min(due)));
    }

    /// A lower bound of the next deadline after the changes since the last [`Self::next_deadline`]
    /// (`None`: nothing new became pending). Cheap, unlike `next_deadline`.
    pub fn earliest_new_due(&self) -> Option<Instant> {
        self.changed_due
    }

    /// A rename with both ends known (inotify pairs MOVED_FROM/MOVED_TO by cookie). Either end
    /// may lie outside the watched folders; `from_name` / `to_name` are the two file names.
    pub fn on_rename(&mut self, from: Option<(usize, &str)>, to: Option<(usize, &str)>, from_name: &str, to_name: &str, now: Instant) {
        // Only Syncthing renames from or to its temp names: landing a pulled file (temp -> name)
        // or moving a file aside to reuse it for a remote rename (name -> temp). An echo either
        // way, whatever order its events come in.
        let echo_of = match (is_syncthing_temp_name(from_name), is_syncthing_temp_name(to_name)) {
            (true, true) => return,
            (true, false) => Some(to),
            (false, true) => Some(from),
            (false, false) => None,
        };
        if let Some(end) = echo_of {
            if let Some((folder, path)) = end {
                self.add_mark(folder, path, now.checked_sub(self.cfg.suppress_lookback).unwrap_or(now), now + self.cfg.suppress_tail);
            }
            return;
        }
        let both_marked = match (from, to) {
            (Some((ff, fp)), Some((tf, tp))) => self.marked(ff, fp, now) && self.marked(tf, tp, now),
            _ => false,
        };
        if both_marked {
            // Syncthing's own rename of a remotely renamed file (it reported both items).
            return;
        }
        for (folder, path) in [from, to].into_iter().flatten() {
            if path.is_empty() || is_ignored(path) {
                continue;
            }
            let due = now + self.cfg.debounce;
            let state = &mut self.folders[folder];
            state.last_event = Some(now);
            let entry = state.pending.entry(path.to_string()).or_insert_with(|| Pending::new(now, due));
            entry.last_event = now;
            entry.due = due.min(entry.first_event + self.cfg.max_coalesce);
            entry.awaiting_close = false;
            entry.stamp = None;
            entry.local = true;
            let entry_due = entry.due;
            if state.pending.len() > self.cfg.burst_threshold {
                state.bursting = true;
            }
            self.note_due(entry_due);
        }
    }

    /// The event queue overflowed: anything may have changed, in any folder.
    pub fn rescan_all(&mut self, now: Instant) {
        for folder in 0..self.folders.len() {
            self.rescan_folder(folder, now);
        }
    }

    /// Anything may have changed in `folder`: one scan of all of it replaces what is pending.
    pub fn rescan_folder(&mut self, folder: usize, now: Instant) {
        let due = now + self.cfg.debounce;
        let mut entry = Pending::new(now, due);
        entry.local = true;
        let pending = &mut self.folders[folder].pending;
        pending.clear();
        pending.insert(String::new(), entry);
        self.note_due(due);
    }

    /// An `ItemStarted` / `ItemFinished` report from Syncthing.
    fn on_mark(&mut self, msg: &MarkMsg) {
        let Some(&folder) = self.folder_index.get(&msg.folder_id) else { return };
        let key = (folder, msg.path.clone());
        let earliest = msg.at.checked_sub(self.cfg.suppress_lookback).unwrap_or(msg.at);
        let previous = self.marks.get(&key).copied();
        let (from, until) = match msg.kind {
            // Only a mark still live widens the window backwards (expired ones linger until pruned).
            MarkKind::Started => (previous.filter(|m| m.until >= msg.at).map_or(earliest, |m| m.from.min(earliest)), msg.at + self.cfg.busy_ttl),
            MarkKind::Finished => {
                // A Started mark that is still live keeps its start; a stale one (a finish for
                // a later pull of the same path) does not widen the window backwards.
                let from = previous.filter(|m| m.until >= msg.at).map_or(earliest, |m| m.from.min(earliest));
                (from, msg.at + self.cfg.suppress_tail)
            }
        };
        self.add_mark(folder, &msg.path, from, until);
    }

    /// Records a mark and drops the pending echoes it explains (events that came first).
    fn add_mark(&mut self, folder: usize, path: &str, from: Instant, until: Instant) {
        self.marks.insert((folder, path.to_string()), Mark { from, until });
        let pending = &mut self.folders[folder].pending;
        if pending.get(path).is_some_and(|e| !e.local && e.first_event >= from && e.last_event <= until) {
            pending.remove(path);
        }
        self.next_prune.get_or_insert(until);
    }

    /// Expired marks match nothing (`marked` checks the window), so pruning is only about memory:
    /// at most every `MARK_PRUNE_INTERVAL`, not once per expiring mark of a 20,000-file pull.
    fn prune_marks(&mut self, now: Instant) {
        if self.next_prune.is_some_and(|t| t <= now) {
            self.marks.retain(|_, m| m.until >= now);
            self.next_prune = self.marks.values().map(|m| m.until).min().map(|t| t.max(now + MARK_PRUNE_INTERVAL));
        }
    }

    /// The next moment `take_ready` may produce a batch, if any entry is pending; starts a new
    /// [`Self::earliest_new_due`] window.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.changed_due = None;
        self.deadline()
    }

    fn deadline(&self) -> Option<Instant> {
        self.folders
            .iter()
            .filter(|f| !f.in_flight)
            .flat_map(|f| f.pending.values().map(|e| ready_at(quiet_at(f, &self.cfg), e, &self.cfg)))
            .min()
    }

    /// Takes every entry that is ready to scan, one batch per folder with no scan in flight.
    /// `stat(folder, path)` reads the file's current stamp (injected for tests).
    /// `entries(folder, dir)` counts the entries directly in a directory (`None`: not a readable
    /// directory), for [`lift_crowded_dirs`].
    pub fn take_ready(&mut self, now: Instant, stat: &dyn Fn(usize, &str) -> Option<FileStamp>, entries: &dyn Fn(usize, &str) -> Option<usize>) -> Vec<Batch> {
        self.prune_marks(now);
        let cfg = self.cfg.clone();
        let close_events = self.close_events;
        let mut batches = Vec::new();
        for (index, folder) in self.folders.iter_mut().enumerate() {
            if folder.in_flight || folder.pending.is_empty() {
                continue;
            }
            let mut ready = Vec::new();
            let mut failed_attempts = 0;
            // The folder's burst is over, or one entry has waited long enough: either way every
            // entry whose own debounce is over goes into this batch.
            let folder_quiet_at = quiet_at(folder, &cfg);
            if !folder.pending.values().any(|e| ready_at(folder_quiet_at, e, &cfg) <= now) {
                continue;
            }
            for (path, entry) in folder.pending.iter_mut() {
                if own_due(entry, &cfg) > now {
                    continue;
                }
                if readiness(entry, &cfg, close_events, now, &|| stat(index, path)) {
                    failed_attempts = failed_attempts.max(entry.failed_attempts);
                    ready.push(path.clone());
                }
            }
            if ready.is_empty() {
                continue;
            }
            for path in &ready {
                folder.pending.remove(path);
            }
            let subs = lift_crowded_dirs(uncovered(ready), &folder.pending, &|dir| entries(index, dir));
            if folder_quiet_at.is_some_and(|t| t <= now) {
                folder.bursting = false;
            }
            folder.in_flight = true;
            batches.push(Batch { folder: index, folder_id: folder.id.clone(), subs, failed_attempts });
        }
        batches
    }

    /// The scan of a batch ended. A failed scan is retried (with backoff) a few times, then left
    /// to Syncthing's own watcher.
    pub fn scan_done(&mut self, batch: &Batch, succeeded: bool, now: Instant) {
        let state = &mut self.folders[batch.folder];
        state.in_flight = false;
        if succeeded {
            return;
        }
        let attempts = batch.failed_attempts + 1;
        let subs = &batch.subs;
        if attempts >= self.cfg.max_scan_attempts {
            return;
        }
        let due = now + self.cfg.retry_backoff;
        let paths: Vec<String> = if subs.is_empty() { vec![String::new()] } else { subs.to_vec() };
        for path in paths {
            let entry = state.pending.entry(path).or_insert_with(|| {
                let mut e = Pending::new(now, due);
                e.local = true;
                e
            });
            entry.failed_attempts = entry.failed_attempts.max(attempts);
            entry.due = entry.due.max(due);
        }
        self.note_due(due);
    }
}

/// Drops the paths an ancestor in the list already covers; an empty path (the folder root) means
/// the whole folder, i.e. no subs at all. Each path looks up its own ancestors, so a burst of
/// 20,000 paths costs 20,000 short walks up, not 20,000 x 20,000 comparisons.
fn uncovered(paths: Vec<String>) -> Vec<String> {
    if paths.iter().any(|p| p.is_empty()) {
        return Vec::new();
    }
    let all: HashSet<&str> = paths.iter().map(String::as_str).collect();
    let has_ancestor = |path: &str| {
        let mut p = path;
        while let Some(up) = parent(p) {
            if all.contains(up) {
                return true;
            }
            p = up;
        }
        false
    };
    let keep: Vec<bool> = paths.iter().map(|p| !has_ancestor(p)).collect();
    paths.into_iter().zip(keep).filter_map(|(p, k)| k.then_some(p)).collect()
}

/// A directory is scanned whole instead of by name when a batch names at least this many of its
/// entries, and at least half of them.
///
/// Syncthing handles every `sub=` path of a scan on its own (its parents checked in the database,
/// a walk started, a database iterator for deletions), and a walk passes an unchanged file
/// cheaply (a stat and a lookup). Measured on 1.19.2 here, a burst of 20,000 x 1 KiB files in 200
/// directories: named, 1,213 new files took 300-600 ms a request (~0.35 ms each, 17 requests one
/// after another); a walk of a new directory took 82 ms for 888 files (~0.09 ms each). Naming
/// the files costs more once they are a quarter of the directory; at half, the walk wins even if
/// every other entry is old.
pub(crate) const LIFT_MIN_ENTRIES: usize = 32;

/// Replaces the paths of `subs` that make up most of a directory by that directory (see
/// [`LIFT_MIN_ENTRIES`]). One level only, from entries to their own directory: lifting further
/// could walk big subtrees nobody touched. Never the folder root (a whole-folder scan), and never
/// a directory that is, or holds, a path still `pending`: a file still being written there is not
/// scanned half-written by the walk. `entries(dir)` counts a directory's entries now. Keeps `subs` sorted.
fn lift_crowded_dirs(subs: Vec<String>, pending: &BTreeMap<String, Pending>, entries: &dyn Fn(&str) -> Option<usize>) -> Vec<String> {
    let mut named: HashMap<&str, usize> = HashMap::new();
    for dir in subs.iter().filter_map(|p| parent(p)) {
        *named.entry(dir).or_default() += 1;
    }
    // `dir` itself, or a path under it: in the sorted map those follow `dir/` directly.
    let held = |dir: &str| {
        let under = format!("{dir}/");
        pending.contains_key(dir) || pending.range(under.clone()..).next().is_some_and(|(p, _)| p.starts_with(&under))
    };
    let lifted: HashSet<&str> = named
        .into_iter()
        .filter(|&(dir, n)| n >= LIFT_MIN_ENTRIES && !held(dir) && entries(dir).is_some_and(|total| 2 * n >= total))
        .map(|(dir, _)| dir)
        .collect();
    if lifted.is_empty() {
        return subs;
    }
    let mut out: Vec<String> = subs.iter().filter(|p| !parent(p).is_some_and(|d| lifted.contains(d))).cloned().collect();
    out.extend(lifted.iter().map(|d| d.to_string()));
    out.sort();
    out.dedup();
    // A lifted directory may itself have been in the batch (created in it) or cover another.
    uncovered(out)
}

/// Splits a batch's paths into scan requests of at most `max_bytes` of encoded query each:
/// Syncthing reads the paths from the request's URL (`sub=` parameters), and the HTTP client
/// refuses a URI over 64 KiB (Syncthing's server allows 1 MiB with the headers). Every path goes
/// into exactly one request, in order; an empty batch (the whole folder) is one request with no
/// paths.
pub(crate) fn scan_requests(subs: &[String], max_bytes: usize) -> Vec<&[String]> {
    if subs.is_empty() {
        return vec![subs];
    }
    let mut requests = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, sub) in subs.iter().enumerate() {
        let cost = query_cost(sub);
        if i > start && bytes + cost > max_bytes {
            requests.push(&subs[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
    }
    requests.push(&subs[start..]);
    requests
}

/// The bytes `&sub=PATH` takes in a form-encoded query: `/`, spaces and every non-ASCII byte
/// are percent-encoded (three bytes each).
fn query_cost(path: &str) -> usize {
    5 + path.bytes().map(|b| if b.is_ascii_alphanumeric() || b"*-._".contains(&b) { 1 } else { 3 }).sum::<usize>()
}

/// Decides whether a pending entry whose `due` time has come can be scanned now; if not, moves
/// its `due` to the next moment worth checking.
fn readiness(entry: &mut Pending, cfg: &WatcherConfig, close_events: bool, now: Instant, stat: &dyn Fn() -> Option<FileStamp>) -> bool {
    if !entry.awaiting_close {
        return true;
    }
    if close_events {
        let not_coming = !entry.kind_checked && {
            entry.kind_checked = true;
            // A symlink, a directory or a vanished file will never see a close-write.
            !stat().is_some_and(|s| s.regular)
        };
        if not_coming {
            return true;
        }
        let idle_at = entry.last_event + cfg.write_idle;
        if now < idle_at {
            entry.due = idle_at;
            return false;
        }
    }
    // No close-write to wait for (macOS), or a writer that keeps the file open but went quiet:
    // scan once two stamps `stable_interval` apart agree.
    let current = stat();
    match entry.stamp {
        Some((previous, taken)) if previous == current && now >= taken + cfg.stable_interval => true,
        Some((previous, taken)) if previous == current => {
            entry.due = taken + cfg.stable_interval;
            false
        }
        _ => {
            entry.stamp = Some((current, now));
            entry.due = now + cfg.stable_interval;
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The running watcher: notify backend + batcher + scans
// ---------------------------------------------------------------------------------------------

/// Maps a notify event kind to a [`Change`]; `None` for events that change nothing (reads).
fn classify(kind: &EventKind) -> Option<Change> {
    Some(match kind {
        EventKind::Create(CreateKind::Folder) => Change::DirCreated,
        EventKind::Create(_) => Change::Created,
        EventKind::Modify(ModifyKind::Data(_)) => Change::Written,
        EventKind::Modify(ModifyKind::Metadata(_)) => Change::Metadata,
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Change::RenamedFrom,
        // `To`, and the unpaired `Any` of backends that cannot pair renames (FSEvents).
        EventKind::Modify(ModifyKind::Name(_)) => Change::RenamedTo,
        EventKind::Modify(_) | EventKind::Any => Change::Written,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Change::Closed,
        EventKind::Access(_) => return None,
        EventKind::Remove(_) => Change::Removed,
        EventKind::Other => return None,
    })
}

/// Whether an event from the OS watcher can matter to the batcher: `classify` maps it to a
/// change, or it is an error or a rescan request. notify's inotify backend also watches
/// `IN_OPEN` (notify 8 cannot leave it out), so every open of a file or directory in a folder
/// reaches the daemon: an agent's `cat` or `grep`, Syncthing opening what it hashes, pulls and
/// walks. In a 20,000-file burst that was 60 % of the events on both machines. They are
/// dropped on notify's own thread, before they cost a channel send and the watcher's time.
fn changes_something(event: &notify::Result<Event>) -> bool {
    match event {
        Ok(event) => event.need_rescan() || classify(&event.kind).is_some(),
        Err(_) => true,
    }
}

/// The cookies of the latest `MOVED_FROM` events: a `MOVED_TO` whose cookie is not among them
/// came from outside every watched folder. inotify queues a rename's `MOVED_FROM` right before
/// its `MOVED_TO`, so a few hundred cover renames that interleave; notify pairs only the latest
/// one (its `Both` event), and a `MOVED_TO` it did not pair may still have a source here.
#[derive(Debug, Default)]
struct RenameSources {
    cookies: VecDeque<usize>,
}

impl RenameSources {
    const KEPT: usize = 256;

    fn saw_from(&mut self, cookie: usize) {
        if self.cookies.len() == Self::KEPT {
            self.cookies.pop_front();
        }
        self.cookies.push_back(cookie);
    }

    fn from_seen(&self, cookie: usize) -> bool {
        self.cookies.contains(&cookie)
    }
}

/// fs events in one `PACE_WINDOW` above which the watcher handles them in batches.
const PACE_THRESHOLD: usize = 256;
const PACE_WINDOW: Duration = Duration::from_millis(100);
/// The pause between batches of events under sustained traffic: well under `burst_quiet`, so no
/// batch of scans goes out later for it.
const PACE_PAUSE: Duration = Duration::from_millis(10);

/// Tells sustained fs traffic from a few changes. Syncthing pulling 10,000 files makes ~8 events
/// a file; waking for each of them cost B's daemon most of a core during an initial sync (the
/// wake-ups, not the work). Past `PACE_THRESHOLD` events in a `PACE_WINDOW`, the watcher lets
/// them pile up for `PACE_PAUSE` between batches; a lone save (4-5 events) is never paced.
pub(crate) struct EventPacer {
    window_start: Instant,
    events: usize,
}

impl EventPacer {
    pub(crate) fn new(now: Instant) -> Self {
        EventPacer { window_start: now, events: 0 }
    }

    /// `n` more events were handled at `now`: the pause to take before the next batch, if any.
    pub(crate) fn note(&mut self, n: usize, now: Instant) -> Option<Duration> {
        if now.saturating_duration_since(self.window_start) > PACE_WINDOW {
            self.window_start = now;
            self.events = 0;
        }
        self.events += n;
        (self.events > PACE_THRESHOLD).then_some(PACE_PAUSE)
    }
}

/// Two events closer than this are one read of the OS queue being handed out; a longer gap
/// means the OS watcher's thread was asleep and woke for the later one.
const DRAIN_GAP: Duration = Duration::from_micros(200);

/// The same pacing on the OS watcher's own thread (notify's inotify loop), which otherwise wakes
/// for every event: the consumer's pause above only batched what that thread had already
/// woken up for. In sustained traffic each wake-up sleeps `PACE_PAUSE` before handing its
/// event on, so the kernel queues what follows and the thread reads it in one go (inotify
/// queues 16,384 events by default, ~5 s of a bulk pull, against 10 ms here).
pub(crate) struct WakePacer {
    pacer: EventPacer,
    last_event: Option<Instant>,
}

impl WakePacer {
    pub(crate) fn new(now: Instant) -> Self {
        WakePacer { pacer: EventPacer::new(now), last_event: None }
    }

    /// An event reached the thread at `now`: how long to sleep before handing it on, if at all.
    pub(crate) fn on_event(&mut self, now: Instant) -> Option<Duration> {
        let woke = self.last_event.is_none_or(|last| now.saturating_duration_since(last) > DRAIN_GAP);
        let pause = self.pacer.note(1, now).filter(|_| woke);
        self.last_event = Some(now + pause.unwrap_or_default());
        pause
    }
}

const OVERFLOW_REPORT_EVERY: Duration = Duration::from_secs(60);

/// Watches folders and turns their changes into scans. Build it with [`FastScanWatcher::start`]
/// (blocking: it installs the recursive watches), then drive it with [`FastScanWatcher::run`].
pub struct FastScanWatcher {
    watched: Vec<FolderWatch>,
    /// Canonical roots with their batcher index, longest first (nested folders map to the inner one).
    roots: Vec<(PathBuf, usize)>,
    batcher: Batcher,
    events: mpsc::UnboundedReceiver<notify::Result<Event>>,
    suppression: SuppressionHandle,
    /// Per watched folder: the watch limit kept (part of) it unwatched, so it is scanned on a timer.
    degraded: Vec<bool>,
    /// How many degraded folders were reported so far (a report per new one, never per event).
    reported: usize,
    /// Kernel event queue overflows so far, and when the last was reported (at most one line a
    /// minute: a big tree moved in can overflow it again and again).
    overflows: u64,
    overflow_reported: Option<Instant>,
    rename_sources: RenameSources,
    on_limit: Option<Box<dyn Fn(&WatchLimit) + Send>>,
    // Dropping the backend stops the OS watches; kept last so it outlives nothing it feeds.
    _backend: RecommendedWatcher,
}

impl FastScanWatcher {
    /// Installs recursive watches on every folder. A folder that cannot be watched (missing,
    /// watch limit reached) is reported on stderr and left to Syncthing's own watcher; it is an
    /// error only when no folder at all could be watched.
    pub fn start(folders: &[FolderWatch], suppression: SuppressionHandle, config: WatcherConfig) -> Result<Self, WatchError> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut pacer = WakePacer::new(Instant::now());
        let mut backend = notify::recommended_watcher(move |event: notify::Result<Event>| {
            // Every event counts for the pacing, reads too: each one woke this thread.
            if let Some(pause) = pacer.on_event(Instant::now()) {
                std::thread::sleep(pause);
            }
            if changes_something(&event) {
                let _ = tx.send(event);
            }
        })
        .map_err(WatchError::Backend)?;
        let mut watched = Vec::new();
        let mut degraded = Vec::new();
        for folder in folders {
            let root = match folder.path.canonicalize() {
                Ok(root) => root,
                Err(e) => {
                    eprintln!("botsync watcher: folder {} ({}): {e}; left to Syncthing's watcher", folder.folder_id, folder.path.display());
                    continue;
                }
            };
            match backend.watch(&root, RecursiveMode::Recursive) {
                Ok(()) => degraded.push(false),
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    // The watches added before the limit would leave a folder half-watched; give
                    // them back, so that Syncthing's own watcher can have them, and scan on a timer.
                    let _ = backend.unwatch(&root);
                    degraded.push(true);
                }
                Err(e) => {
                    eprintln!("botsync watcher: folder {} ({}): {e}; left to Syncthing's watcher", folder.folder_id, root.display());
                    continue;
                }
            }
            watched.push(FolderWatch { folder_id: folder.folder_id.clone(), path: root });
        }
        if watched.is_empty() && !folders.is_empty() {
            return Err(WatchError::NothingWatched);
        }
        let ids: Vec<String> = watched.iter().map(|f| f.folder_id.clone()).collect();
        let mut roots: Vec<(PathBuf, usize)> = watched.iter().enumerate().map(|(i, f)| (f.path.clone(), i)).collect();
        roots.sort_by_key(|(root, _)| std::cmp::Reverse(root.as_os_str().len()));
        let close_events = cfg!(any(target_os = "linux", target_os = "android"));
        Ok(FastScanWatcher {
            watched,
            roots,
            batcher: Batcher::new(&ids, config, close_events),
            events,
            suppression,
            degraded,
            reported: 0,
            overflows: 0,
            overflow_reported: None,
            rename_sources: RenameSources::default(),
            on_limit: None,
            _backend: backend,
        })
    }

    /// Called with the whole picture each time the watch limit keeps another folder from being
    /// watched (the daemon records it for `status` and `doctor`).
    pub fn on_watch_limit(mut self, hook: impl Fn(&WatchLimit) + Send + 'static) -> Self {
        self.on_limit = Some(Box::new(hook));
        self
    }

    /// What the watch limit kept from being watched, if anything.
    pub fn watch_limit(&self) -> Option<WatchLimit> {
        let folders: Vec<String> = self.watched.iter().zip(&self.degraded).filter(|(_, d)| **d).map(|(f, _)| f.folder_id.clone()).collect();
        if folders.is_empty() {
            return None;
        }
        let roots: Vec<PathBuf> = self.watched.iter().map(|f| f.path.clone()).collect();
        Some(WatchLimit {
            folders,
            max_user_watches: watch_limit::max_user_watches(),
            directories: watch_limit::count_directories(&roots),
            fallback_scan_s: self.batcher.cfg.fallback_scan.as_secs().max(1),
        })
    }

    /// Says so once per newly degraded folder: on stderr and to the hook.
    fn report_limit(&mut self) {
        let degraded = self.degraded.iter().filter(|d| **d).count();
        if degraded <= self.reported {
            return;
        }
        self.reported = degraded;
        if let Some(limit) = self.watch_limit() {
            eprintln!("botsync watcher: {}. Fix: {}", limit.summary(), limit.fix());
            if let Some(hook) = &self.on_limit {
                hook(&limit);
            }
        }
    }

    /// The folders actually watched, with canonical paths.
    pub fn watched_folders(&self) -> &[FolderWatch] {
        &self.watched
    }

    /// Runs until `shutdown` completes (or the backend goes away). Scans still in flight at
    /// shutdown are abandoned: Syncthing finishes them on its own.
    pub async fn run<S: Scanner>(mut self, scanner: Arc<S>, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut scans: JoinSet<Result<(), ScanError>> = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, Batch> = HashMap::new();
        let suppression = self.suppression.clone();
        let mut deadline = self.batcher.next_deadline();
        let mut pacer = EventPacer::new(Instant::now());
        self.report_limit();
        let mut fallback = tokio::time::interval_at((Instant::now() + self.batcher.cfg.fallback_scan).into(), self.batcher.cfg.fallback_scan);
        fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timer = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let mut only_events = false;
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(done) = scans.join_next_with_id(), if !scans.is_empty() => {
                    let (id, result) = match done {
                        Ok((id, result)) => (id, result.map_err(|e| e.to_string())),
                        Err(join_error) => (join_error.id(), Err(format!("scan task failed: {join_error}"))),
                    };
                    if let Some(batch) = in_flight.remove(&id) {
                        if let Err(message) = &result {
                            eprintln!("botsync watcher: scan of folder {} failed: {message}", batch.folder_id);
                        }
                        self.batcher.scan_done(&batch, result.is_ok(), Instant::now());
                    }
                }
                event = self.events.recv() => {
                    let Some(event) = event else { break };
                    self.handle(event, Instant::now());
                    let mut handled = 1;
                    while let Ok(event) = self.events.try_recv() {
                        self.handle(event, Instant::now());
                        handled += 1;
                    }
                    // Sustained traffic (a pull landing thousands of files): let the events pile
                    // up for a moment instead of waking for every one of them.
                    if let Some(pause) = pacer.note(handled, Instant::now()) {
                        tokio::time::sleep(pause).await;
                        while let Ok(event) = self.events.try_recv() {
                            self.handle(event, Instant::now());
                        }
                    }
                    only_events = true;
                }
                _ = suppression.shared.wake.notified() => {}
                _ = fallback.tick(), if self.degraded.contains(&true) => {
                    let now = Instant::now();
                    for folder in (0..self.degraded.len()).filter(|&f| self.degraded[f]) {
                        self.batcher.rescan_folder(folder, now);
                    }
                }
                _ = timer => {}
            }
            self.report_limit();
            let marks = suppression.drain();
            for mark in &marks {
                self.batcher.on_mark(mark);
            }
            // Only fs events came in, and nothing can be due yet: skip the full look, which
            // costs a pass over every pending path (a burst of 20,000 paths would otherwise
            // cost 20,000 x its events). Timers, scan results and marks always look again.
            let now = Instant::now();
            if only_events && marks.is_empty() && deadline.is_none_or(|t| t > now) {
                match self.batcher.earliest_new_due() {
                    None => continue,
                    Some(due) if due > now => {
                        deadline = Some(deadline.map_or(due, |t| t.min(due)));
                        continue;
                    }
                    Some(_) => {}
                }
            }
            let roots = &self.watched;
            let stat = |folder: usize, rel: &str| FileStamp::of(&roots[folder].path.join(rel));
            let entries = |folder: usize, rel: &str| std::fs::read_dir(roots[folder].path.join(rel)).ok().map(Iterator::count);
            let max_bytes = self.batcher.cfg.max_request_bytes;
            for batch in self.batcher.take_ready(Instant::now(), &stat, &entries) {
                let scanner = Arc::clone(&scanner);
                let (folder_id, subs) = (batch.folder_id.clone(), batch.subs.clone());
                // One task per batch, its requests one after another: still one scan in flight
                // per folder, and Syncthing never walks what an earlier request of it covered.
                let handle = scans.spawn(async move {
                    for request in scan_requests(&subs, max_bytes) {
                        scanner.scan(&folder_id, request).await?;
                    }
                    Ok(())
                });
                in_flight.insert(handle.id(), batch);
            }
            deadline = self.batcher.next_deadline();
        }
        scans.abort_all();
    }

    fn handle(&mut self, event: notify::Result<Event>, now: Instant) {
        let event = match event {
            Ok(event) => event,
            Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                // A new directory could not be watched: scan it now (its content so far), and
                // its folder on a timer from now on.
                for path in &e.paths {
                    if let Some((folder, rel)) = self.relative(path) {
                        self.degraded[folder] = true;
                        self.batcher.on_change(folder, &rel, Change::DirCreated, now);
                    }
                }
                return;
            }
            Err(e) => {
                eprintln!("botsync watcher: {e}");
                return;
            }
        };
        if event.need_rescan() {
            // notify sets Rescan only on IN_Q_OVERFLOW: the kernel dropped events. Said in the
            // log, since it costs a walk of every folder.
            self.overflows += 1;
            if self.overflow_reported.is_none_or(|at| now.duration_since(at) >= OVERFLOW_REPORT_EVERY) {
                eprintln!(
                    "botsync watcher: the kernel's inotify queue overflowed ({} time(s) so far; fs.inotify.max_queued_events): scanning every folder whole",
                    self.overflows
                );
                self.overflow_reported = Some(now);
            }
            self.batcher.rescan_all(now);
            return;
        }
        if let EventKind::Modify(ModifyKind::Name(RenameMode::Both)) = event.kind {
            let from_path = event.paths.first();
            let from = from_path.and_then(|p| self.relative(p));
            let to = event.paths.get(1).and_then(|p| self.relative(p));
            let name = |p: Option<&PathBuf>| p.and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("").to_string();
            let (from_name, to_name) = (name(from_path), name(event.paths.get(1)));
            self.batcher.on_rename(
                from.as_ref().map(|(f, p)| (*f, p.as_str())),
                to.as_ref().map(|(f, p)| (*f, p.as_str())),
                &from_name,
                &to_name,
                now,
            );
            return;
        }
        let Some(mut change) = classify(&event.kind) else { return };
        match (event.kind, event.attrs.tracker()) {
            (EventKind::Modify(ModifyKind::Name(RenameMode::From)), Some(cookie)) => self.rename_sources.saw_from(cookie),
            (EventKind::Modify(ModifyKind::Name(RenameMode::To)), Some(cookie)) if !self.rename_sources.from_seen(cookie) => change = Change::MovedIn,
            _ => {}
        }
        for path in &event.paths {
            if let Some((folder, rel)) = self.relative(path) {
                self.batcher.on_change(folder, &rel, change, now);
            }
        }
    }

    fn relative(&self, path: &Path) -> Option<(usize, String)> {
        relative_to(&self.roots, path)
    }
}

/// The folder and `/`-separated folder-relative path of an absolute path; `roots` are sorted
/// longest first so that a nested folder wins. A name that is not UTF-8 cannot be named in a
/// scan request, so its nearest UTF-8 ancestor stands in for it.
fn relative_to(roots: &[(PathBuf, usize)], path: &Path) -> Option<(usize, String)> {
    let (root, folder) = roots.iter().find(|(root, _)| path.starts_with(root))?;
    let rest = path.strip_prefix(root).ok()?;
    let mut rel = String::new();
    for component in rest.components() {
        let Component::Normal(name) = component else { continue };
        let Some(name) = name.to_str() else { break };
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(name);
    }
    Some((*folder, rel))
}

/// The daemon's entry point: watch `folders` and scan their changes through `scanner` until
/// `shutdown` completes. Echo marks come in through `suppression`; `on_limit` hears about the
/// inotify watch limit (see [`FastScanWatcher::on_watch_limit`]).
pub async fn run_watcher<S: Scanner>(
    folders: Vec<FolderWatch>,
    scanner: Arc<S>,
    suppression: SuppressionHandle,
    config: WatcherConfig,
    on_limit: impl Fn(&WatchLimit) + Send + 'static,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WatchError> {
    let watcher = tokio::task::spawn_blocking(move || FastScanWatcher::start(&folders, suppression, config))
        .await
        .map_err(|e| WatchError::Setup(e.to_string()))??;
    watcher.on_watch_limit(on_limit).run(scanner, shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn cfg() -> WatcherConfig {
        WatcherConfig {
            debounce: 5 * MS,
            max_coalesce: 250 * MS,
            burst_threshold: 16,
            burst_quiet: 100 * MS,
            write_idle: 1000 * MS,
            stable_interval: 10 * MS,
            suppress_lookback: 200 * MS,
            // Most tests look at one mechanism at a time; `echo_hold` has its own test.
            echo_hold: Duration::ZERO,
            suppress_tail: 300 * MS,
            busy_ttl: 600_000 * MS,
            retry_backoff: 500 * MS,
            max_scan_attempts: 3,
            max_request_bytes: 32 * 1024,
            fallback_scan: 10_000 * MS,
        }
    }

    fn batcher() -> Batcher {
        Batcher::new(&["f".to_string(), "g".to_string()], cfg(), true)
    }

    fn regular(len: u64) -> Option<FileStamp> {
        Some(FileStamp { len, modified: None, regular: true })
    }

    fn take(b: &mut Batcher, now: Instant) -> Vec<(String, Vec<String>)> {
        take_with(b, now, &|_, _| regular(1))
    }

    fn take_with(b: &mut Batcher, now: Instant, stat: &dyn Fn(usize, &str) -> Option<FileStamp>) -> Vec<(String, Vec<String>)> {
        b.take_ready(now, stat, &|_, _| None).into_iter().map(|batch| (batch.folder_id, batch.subs)).collect()
    }

    fn subs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn finish_all(b: &mut Batcher, now: Instant) {
        for folder in 0..b.folders.len() {
            let batch = Batch { folder, folder_id: String::new(), subs: vec![], failed_attempts: 0 };
            b.scan_done(&batch, true, now);
        }
    }

    fn mark(b: &mut Batcher, path: &str, kind: MarkKind, at: Instant) {
        b.on_mark(&MarkMsg { folder_id: "f".into(), path: path.into(), kind, at });
    }

    #[test]
    fn a_saved_file_is_scanned_once_after_the_debounce() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "notes.md", Change::Created, t);
        b.on_change(0, "notes.md", Change::Written, t);
        b.on_change(0, "notes.md", Change::Closed, t + MS);
        assert!(take(&mut b, t + 3 * MS).is_empty());
        assert_eq!(b.next_deadline(), Some(t + 6 * MS));
        assert_eq!(take(&mut b, t + 6 * MS), vec![("f".into(), subs(&["notes.md"]))]);
        finish_all(&mut b, t + 7 * MS);
        assert!(take(&mut b, t + 100 * MS).is_empty());
        assert_eq!(b.next_deadline(), None);
    }

    #[test]
    fn a_file_still_open_for_writing_waits_for_its_close() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "big.bin", Change::Created, t);
        for i in 1..=8 {
            b.on_change(0, "big.bin", Change::Written, t + i * 100 * MS);
            assert!(take(&mut b, t + i * 100 * MS + 50 * MS).is_empty(), "scanned mid-write at chunk {i}");
        }
        b.on_change(0, "big.bin", Change::Closed, t + 900 * MS);
        assert!(take(&mut b, t + 902 * MS).is_empty());
        assert_eq!(take(&mut b, t + 906 * MS), vec![("f".into(), subs(&["big.bin"]))]);
    }

    #[test]
    fn an_unclosed_file_is_scanned_once_idle_and_stable() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "log.txt", Change::Written, t);
        assert!(take(&mut b, t + 10 * MS).is_empty());
        assert_eq!(b.next_deadline(), Some(t + 1000 * MS));
        // First look after going idle records a stamp; a changed stamp restarts the wait.
        assert!(take_with(&mut b, t + 1000 * MS, &|_, _| regular(10)).is_empty());
        assert!(take_with(&mut b, t + 1010 * MS, &|_, _| regular(20)).is_empty());
        assert!(take_with(&mut b, t + 1015 * MS, &|_, _| regular(20)).is_empty());
        assert_eq!(take_with(&mut b, t + 1020 * MS, &|_, _| regular(20)), vec![("f".into(), subs(&["log.txt"]))]);
    }

    #[test]
    fn a_symlink_or_vanished_file_does_not_wait_for_a_close() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "link", Change::Created, t);
        b.on_change(0, "gone", Change::Written, t);
        let stat = |_: usize, path: &str| (path == "link").then_some(FileStamp { len: 4, modified: None, regular: false });
        assert_eq!(take_with(&mut b, t + 5 * MS, &stat), vec![("f".into(), subs(&["gone", "link"]))]);
    }

    #[test]
    fn without_close_events_every_write_waits_for_a_stable_stamp() {
        let mut b = Batcher::new(&["f".to_string()], cfg(), false);
        let t = Instant::now();
        b.on_change(0, "a.txt", Change::Created, t);
        assert!(take(&mut b, t + 5 * MS).is_empty());
        assert_eq!(b.next_deadline(), Some(t + 15 * MS));
        assert_eq!(take(&mut b, t + 15 * MS), vec![("f".into(), subs(&["a.txt"]))]);
    }

    #[test]
    fn a_directory_covers_its_children_but_not_its_siblings() {
        let mut b = batcher();
        let t = Instant::now();
        for p in ["d/x", "d", "d/e/y", "d-other", "e"] {
            b.on_change(0, p, Change::Removed, t);
        }
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), subs(&["d", "d-other", "e"]))]);
    }

    #[test]
    fn a_child_still_being_written_outlives_its_directory_scan() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "d", Change::DirCreated, t);
        b.on_change(0, "d/f", Change::Written, t);
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), subs(&["d"]))]);
        finish_all(&mut b, t + 20 * MS);
        b.on_change(0, "d/f", Change::Closed, t + 30 * MS);
        assert_eq!(take(&mut b, t + 35 * MS), vec![("f".into(), subs(&["d/f"]))]);
    }

    #[test]
    fn one_scan_in_flight_per_folder_and_the_rest_batched_behind_it() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "a", Change::Closed, t);
        b.on_change(1, "z", Change::Closed, t);
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), subs(&["a"])), ("g".into(), subs(&["z"]))]);
        for i in 0..500 {
            b.on_change(0, &format!("many/{i:03}"), Change::Closed, t + 6 * MS);
        }
        assert!(take(&mut b, t + 50 * MS).is_empty(), "a second scan started while one was in flight");
        assert_eq!(b.next_deadline(), None);
        finish_all(&mut b, t + 60 * MS);
        // 500 pending paths: a burst, released once the folder was quiet for `burst_quiet`.
        assert!(take(&mut b, t + 105 * MS).is_empty());
        let batches = take(&mut b, t + 106 * MS);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].1.len(), 500);
    }

    #[test]
    fn a_burst_is_batched_until_the_folder_goes_quiet() {
        let mut b = batcher();
        let t = Instant::now();
        // A file every 2 ms for 100 ms: nothing is scanned mid-burst, not even in a 5 ms gap...
        for i in 0..50u32 {
            let now = t + i * 2 * MS;
            b.on_change(0, &format!("f{i}"), Change::Closed, now);
            assert!(take(&mut b, now).is_empty(), "scanned mid-burst at {i}");
            if i == 30 {
                // A pause longer than the debounce does not end a burst.
                assert!(take(&mut b, now + 20 * MS).is_empty(), "scanned in a pause of the burst");
            }
        }
        // ...then everything at once, when the folder has been quiet for `burst_quiet` (more
        // than `burst_threshold` paths are pending: a plain debounce gap does not end a burst).
        assert!(take(&mut b, t + 197 * MS).is_empty());
        let batches = take(&mut b, t + 198 * MS);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].1.len(), 50);
        // A quiet folder is not held back by another folder's burst.
        b.on_change(1, "other", Change::Closed, t + 200 * MS);
        b.on_change(0, "again", Change::Closed, t + 200 * MS);
        finish_all(&mut b, t + 200 * MS);
        for i in 0..10u32 {
            b.on_change(0, &format!("g{i}"), Change::Closed, t + 201 * MS + i * MS);
        }
        assert_eq!(take(&mut b, t + 205 * MS), vec![("g".into(), subs(&["other"]))]);
    }

    #[test]
    fn a_never_ending_burst_is_still_scanned_every_max_coalesce() {
        let mut b = batcher();
        let t = Instant::now();
        let mut scans = Vec::new();
        for i in 0..600u32 {
            let now = t + i * MS;
            b.on_change(0, &format!("f{i}"), Change::Closed, now);
            for batch in b.take_ready(now, &|_, _| regular(1), &|_, _| None) {
                scans.push(now);
                b.scan_done(&batch, true, now);
            }
        }
        // The second batch starts with the entries still inside their debounce at the first.
        assert_eq!(scans.len(), 2, "{scans:?}");
        assert_eq!(scans[0], t + 250 * MS);
        assert!(scans[1] >= t + 490 * MS && scans[1] <= t + 500 * MS);
    }

    #[test]
    fn a_path_that_keeps_changing_is_scanned_after_max_coalesce() {
        let mut b = batcher();
        let t = Instant::now();
        let mut now = t;
        let mut scanned_at = None;
        while now < t + 400 * MS {
            b.on_change(0, "busy", Change::Metadata, now);
            if !take(&mut b, now).is_empty() {
                scanned_at = Some(now);
                break;
            }
            now += 2 * MS;
        }
        assert_eq!(scanned_at, Some(t + 250 * MS));
    }

    #[test]
    fn renames_scan_both_ends() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "old", Change::RenamedFrom, t);
        b.on_change(0, "new", Change::RenamedTo, t);
        b.on_rename(Some((0, "old")), Some((0, "new")), "old", "new", t);
        // Moved out of a watched folder into another one.
        b.on_rename(Some((0, "dir")), Some((1, "dir")), "dir", "dir", t);
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), subs(&["dir", "new", "old"])), ("g".into(), subs(&["dir"]))]);
    }

    #[test]
    fn syncthing_temp_files_and_markers_are_ignored() {
        let mut b = batcher();
        let t = Instant::now();
        for p in [".syncthing.a.txt.tmp", "d/~syncthing~x.tmp", ".stfolder", ".stversions/a~2024", ""] {
            b.on_change(0, p, Change::Closed, t);
        }
        assert!(take(&mut b, t + 10 * MS).is_empty());
        assert_eq!(b.next_deadline(), None);
    }

    #[test]
    fn a_pulled_file_landing_from_a_temp_file_is_not_scanned() {
        let mut b = batcher();
        let t = Instant::now();
        // inotify order: MOVED_FROM (temp, ignored), MOVED_TO, then the paired rename; then
        // Syncthing sets the mtime on the real name.
        b.on_change(0, "d/pulled.txt", Change::RenamedTo, t);
        b.on_rename(Some((0, "d/.syncthing.pulled.txt.tmp")), Some((0, "d/pulled.txt")), ".syncthing.pulled.txt.tmp", "pulled.txt", t);
        b.on_change(0, "d/pulled.txt", Change::Metadata, t + MS);
        assert!(take(&mut b, t + 10 * MS).is_empty());
        // An agent writing the file right after is a real change.
        b.on_change(0, "d/pulled.txt", Change::Created, t + 20 * MS);
        b.on_change(0, "d/pulled.txt", Change::Closed, t + 20 * MS);
        assert_eq!(take(&mut b, t + 25 * MS), vec![("f".into(), subs(&["d/pulled.txt"]))]);
    }

    #[test]
    fn a_file_moved_aside_to_a_temp_name_is_syncthings_rename() {
        let mut b = batcher();
        let t = Instant::now();
        // Syncthing 1.19 handles a remote rename old -> new as rename(old, temp-of-new), then
        // lands the temp file on new.
        b.on_change(0, "old", Change::RenamedFrom, t);
        b.on_rename(Some((0, "old")), Some((0, ".syncthing.new.tmp")), "old", ".syncthing.new.tmp", t);
        b.on_change(0, "new", Change::RenamedTo, t + MS);
        b.on_rename(Some((0, ".syncthing.new.tmp")), Some((0, "new")), ".syncthing.new.tmp", "new", t + MS);
        assert!(take(&mut b, t + 10 * MS).is_empty());
    }

    #[test]
    fn a_mark_before_the_fs_event_drops_it() {
        let mut b = batcher();
        let t = Instant::now();
        mark(&mut b, "gone.txt", MarkKind::Started, t);
        b.on_change(0, "gone.txt", Change::Removed, t + MS);
        mark(&mut b, "gone.txt", MarkKind::Finished, t + 2 * MS);
        b.on_change(0, "gone.txt", Change::Metadata, t + 100 * MS);
        assert!(take(&mut b, t + 150 * MS).is_empty());
    }

    #[test]
    fn a_mark_after_the_fs_event_purges_it_before_the_scan() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "gone.txt", Change::Removed, t);
        b.on_change(0, "newdir", Change::DirCreated, t);
        mark(&mut b, "gone.txt", MarkKind::Started, t + 2 * MS);
        mark(&mut b, "newdir", MarkKind::Finished, t + 3 * MS);
        assert!(take(&mut b, t + 10 * MS).is_empty());
    }

    #[test]
    fn possible_echoes_wait_for_a_late_mark_but_writes_do_not() {
        let mut b = Batcher::new(&["f".to_string()], WatcherConfig { echo_hold: 30 * MS, ..cfg() }, true);
        let t = Instant::now();
        b.on_change(0, "pulled-delete", Change::Removed, t);
        b.on_change(0, "agent-delete", Change::Removed, t);
        b.on_change(0, "agent-write", Change::Created, t);
        b.on_change(0, "agent-write", Change::Closed, t);
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), subs(&["agent-write"]))]);
        finish_all(&mut b, t + 6 * MS);
        // Syncthing's event stream lags by 20 ms: the mark still arrives in time.
        mark(&mut b, "pulled-delete", MarkKind::Started, t + 20 * MS);
        assert!(take(&mut b, t + 29 * MS).is_empty());
        assert_eq!(b.next_deadline(), Some(t + 30 * MS));
        assert_eq!(take(&mut b, t + 30 * MS), vec![("f".into(), subs(&["agent-delete"]))]);
    }

    #[test]
    fn a_file_moved_in_from_outside_skips_the_echo_hold() {
        let mut b = Batcher::new(&["f".to_string()], WatcherConfig { echo_hold: 30 * MS, ..cfg() }, true);
        let t = Instant::now();
        b.on_change(0, "moved-in", Change::MovedIn, t);
        // A rename target whose source was seen here may be Syncthing landing a pull.
        b.on_change(0, "renamed", Change::RenamedTo, t);
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), subs(&["moved-in"]))]);
        finish_all(&mut b, t + 6 * MS);
        assert_eq!(take(&mut b, t + 30 * MS), vec![("f".into(), subs(&["renamed"]))]);
    }

    #[test]
    fn a_rename_source_is_remembered_among_the_latest() {
        let mut sources = RenameSources::default();
        assert!(!sources.from_seen(7));
        sources.saw_from(7);
        assert!(sources.from_seen(7));
        for cookie in 100..100 + RenameSources::KEPT {
            sources.saw_from(cookie);
        }
        assert!(!sources.from_seen(7), "only the latest are kept");
        assert!(sources.from_seen(100 + RenameSources::KEPT - 1));
    }

    #[test]
    fn marks_never_hide_content_writes() {
        let mut b = batcher();
        let t = Instant::now();
        mark(&mut b, "x", MarkKind::Started, t);
        b.on_change(0, "x", Change::Written, t + MS);
        b.on_change(0, "x", Change::Closed, t + MS);
        mark(&mut b, "x", MarkKind::Finished, t + 2 * MS);
        assert_eq!(take(&mut b, t + 10 * MS), vec![("f".into(), subs(&["x"]))]);
    }

    #[test]
    fn marks_expire_after_the_tail() {
        let mut b = batcher();
        let t = Instant::now();
        mark(&mut b, "x", MarkKind::Finished, t);
        b.on_change(0, "x", Change::Removed, t + 301 * MS);
        assert_eq!(take(&mut b, t + 310 * MS), vec![("f".into(), subs(&["x"]))]);
        // Events older than the lookback are not explained by a new mark.
        finish_all(&mut b, t + 311 * MS);
        b.on_change(0, "y", Change::Removed, t + 400 * MS);
        mark(&mut b, "y", MarkKind::Started, t + 601 * MS);
        assert_eq!(take(&mut b, t + 610 * MS), vec![("f".into(), subs(&["y"]))]);
    }

    #[test]
    fn a_rename_between_two_marked_paths_is_syncthings() {
        let mut b = batcher();
        let t = Instant::now();
        mark(&mut b, "a", MarkKind::Started, t);
        mark(&mut b, "b", MarkKind::Started, t);
        b.on_change(0, "a", Change::RenamedFrom, t + MS);
        b.on_change(0, "b", Change::RenamedTo, t + MS);
        b.on_rename(Some((0, "a")), Some((0, "b")), "a", "b", t + MS);
        assert!(take(&mut b, t + 10 * MS).is_empty());
    }

    #[test]
    fn marks_for_unknown_folders_are_ignored() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_mark(&MarkMsg { folder_id: "nope".into(), path: "x".into(), kind: MarkKind::Started, at: t });
        b.on_change(0, "x", Change::Removed, t);
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), subs(&["x"]))]);
    }

    #[test]
    fn failed_scans_are_retried_then_given_up() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "x", Change::Closed, t);
        let mut now = t + 5 * MS;
        let mut attempts = 0;
        loop {
            let batches = b.take_ready(now, &|_, _| regular(1), &|_, _| None);
            if batches.is_empty() {
                break;
            }
            attempts += 1;
            assert_eq!(batches[0].subs, subs(&["x"]));
            b.scan_done(&batches[0], false, now);
            assert!(b.take_ready(now + 100 * MS, &|_, _| regular(1), &|_, _| None).is_empty(), "retried before the backoff");
            now += 500 * MS;
        }
        assert_eq!(attempts, 3);
        assert_eq!(b.next_deadline(), None);
    }

    #[test]
    fn reads_stop_on_the_os_watchers_thread_and_changes_go_on() {
        use notify::event::{Flag, RemoveKind};
        let event = |kind| Ok(Event::new(kind));
        assert!(!changes_something(&event(EventKind::Access(AccessKind::Open(AccessMode::Any)))));
        assert!(!changes_something(&event(EventKind::Access(AccessKind::Close(AccessMode::Read)))));
        assert!(!changes_something(&event(EventKind::Other)));
        assert!(changes_something(&event(EventKind::Access(AccessKind::Close(AccessMode::Write)))));
        assert!(changes_something(&event(EventKind::Create(CreateKind::File))));
        assert!(changes_something(&event(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))));
        assert!(changes_something(&event(EventKind::Remove(RemoveKind::File))));
        assert!(changes_something(&Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan))));
        assert!(changes_something(&Err(notify::Error::generic("queue overflow"))));
    }

    #[test]
    fn an_overflow_rescans_every_folder_whole() {
        let mut b = batcher();
        let t = Instant::now();
        b.on_change(0, "x", Change::Closed, t);
        b.rescan_all(t);
        assert_eq!(take(&mut b, t + 5 * MS), vec![("f".into(), vec![]), ("g".into(), vec![])]);
    }

    #[test]
    fn paths_map_to_the_innermost_folder() {
        use std::os::unix::ffi::OsStrExt;
        let roots = vec![(PathBuf::from("/r/outer/inner"), 1), (PathBuf::from("/r/outer"), 0)];
        assert_eq!(relative_to(&roots, Path::new("/r/outer/a/b.txt")), Some((0, "a/b.txt".into())));
        assert_eq!(relative_to(&roots, Path::new("/r/outer/inner/c")), Some((1, "c".into())));
        assert_eq!(relative_to(&roots, Path::new("/r/outer")), Some((0, String::new())));
        assert_eq!(relative_to(&roots, Path::new("/r/outer-not/x")), None);
        let odd = Path::new("/r/outer/d").join(std::ffi::OsStr::from_bytes(b"\xff.bin"));
        assert_eq!(relative_to(&roots, &odd), Some((0, "d".into())));
    }

    #[test]
    fn notify_kinds_map_to_changes() {
        use notify::event::{DataChange, MetadataKind, RemoveKind};
        assert_eq!(classify(&EventKind::Create(CreateKind::Folder)), Some(Change::DirCreated));
        assert_eq!(classify(&EventKind::Create(CreateKind::File)), Some(Change::Created));
        assert_eq!(classify(&EventKind::Modify(ModifyKind::Data(DataChange::Any))), Some(Change::Written));
        assert_eq!(classify(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))), Some(Change::Metadata));
        assert_eq!(classify(&EventKind::Access(AccessKind::Close(AccessMode::Write))), Some(Change::Closed));
        assert_eq!(classify(&EventKind::Access(AccessKind::Close(AccessMode::Read))), None);
        assert_eq!(classify(&EventKind::Access(AccessKind::Open(AccessMode::Any))), None);
        assert_eq!(classify(&EventKind::Remove(RemoveKind::File)), Some(Change::Removed));
        assert_eq!(classify(&EventKind::Modify(ModifyKind::Name(RenameMode::From))), Some(Change::RenamedFrom));
        assert_eq!(classify(&EventKind::Modify(ModifyKind::Name(RenameMode::Any))), Some(Change::RenamedTo));
    }

    fn written_and_closed(b: &mut Batcher, paths: impl IntoIterator<Item = String>, at: Instant) {
        for p in paths {
            b.on_change(0, &p, Change::Written, at);
            b.on_change(0, &p, Change::Closed, at);
        }
    }

    /// `take` with directories of the given entry counts.
    fn take_in(b: &mut Batcher, now: Instant, dirs: &[(&str, usize)]) -> Vec<String> {
        let batches = b.take_ready(now, &|_, _| regular(1), &|_, dir| dirs.iter().find(|(d, _)| *d == dir).map(|(_, n)| *n));
        batches.into_iter().flat_map(|batch| batch.subs).collect()
    }

    #[test]
    fn a_batch_naming_most_of_a_directory_scans_the_directory() {
        let mut b = batcher();
        let t = Instant::now();
        written_and_closed(&mut b, (0..60).map(|i| format!("out/d1/f{i:03}")), t);
        written_and_closed(&mut b, (0..40).map(|i| format!("out/d2/f{i:03}")), t);
        written_and_closed(&mut b, ["out/top.txt".to_string()], t);
        // d1: 60 of its 100 entries; d2: 40 of 100, cheaper by name.
        let subs = take_in(&mut b, t + 200 * MS, &[("out/d1", 100), ("out/d2", 100), ("out", 3)]);
        let mut expected = vec!["out/d1".to_string(), "out/top.txt".to_string()];
        expected.extend((0..40).map(|i| format!("out/d2/f{i:03}")));
        expected.sort();
        assert_eq!(subs, expected, "one level only: out itself is not lifted although d1 and top.txt are most of it");
    }

    #[test]
    fn a_directory_is_not_lifted_below_the_threshold_nor_to_the_folder_root() {
        let mut b = batcher();
        let t = Instant::now();
        written_and_closed(&mut b, (0..LIFT_MIN_ENTRIES - 1).map(|i| format!("few/f{i:03}")), t);
        written_and_closed(&mut b, (0..100).map(|i| format!("top{i:03}")), t);
        let subs = take_in(&mut b, t + 200 * MS, &[("few", LIFT_MIN_ENTRIES - 1), ("", 101)]);
        assert_eq!(subs.len(), LIFT_MIN_ENTRIES - 1 + 100, "every path by name: {subs:?}");
        assert!(!subs.iter().any(|s| s.is_empty()) && !subs.contains(&"few".to_string()));
    }

    #[test]
    fn a_directory_with_a_file_still_being_written_is_scanned_by_name() {
        let mut b = batcher();
        let t = Instant::now();
        written_and_closed(&mut b, (0..50).map(|i| format!("d/f{i:03}")), t);
        written_and_closed(&mut b, (0..50).map(|i| format!("e/sub/f{i:03}")), t);
        b.on_change(0, "d/open.bin", Change::Written, t);
        b.on_change(0, "e/sub/deeper/open.bin", Change::Written, t + 150 * MS);
        let subs = take_in(&mut b, t + 300 * MS, &[("d", 51), ("e/sub", 51)]);
        assert_eq!(subs.len(), 100, "no walk over a half-written file: {subs:?}");
        assert!(!subs.contains(&"d".to_string()) && !subs.contains(&"e/sub".to_string()));
        assert!(!subs.contains(&"d/open.bin".to_string()), "still open: it waits for its close");
    }

    #[test]
    fn a_burst_is_scanned_as_exact_paths_without_covered_children() {
        let mut paths: Vec<String> = (0..20_000).map(|i| format!("many/d{:03}/f{i:05}", i % 200)).collect();
        paths.push("gone".into());
        paths.push("gone/child".into());
        paths.push("gone-sibling".into());
        let kept = uncovered(paths.clone());
        assert_eq!(kept.len(), 20_002);
        assert!(!kept.contains(&"gone/child".to_string()));
        assert!(kept.contains(&"gone-sibling".to_string()));
        assert_eq!(uncovered(vec!["a".into(), String::new()]), Vec::<String>::new());
    }

    #[test]
    fn scan_requests_split_by_size_and_keep_every_path_once() {
        let paths: Vec<String> = (0..5000).map(|i| format!("dir/file-{i:05}")).collect();
        let requests = scan_requests(&paths, 16 * 1024);
        assert!(requests.len() > 1);
        for r in &requests {
            assert!(r.iter().map(|p| 5 + p.len()).sum::<usize>() <= 16 * 1024);
        }
        let joined: Vec<String> = requests.concat();
        assert_eq!(joined, paths);
        // The whole folder is one request; a path longer than the budget still goes alone.
        assert_eq!(scan_requests(&[], 10), vec![&[] as &[String]]);
        let long = vec!["x".repeat(100), "y".into()];
        assert_eq!(scan_requests(&long, 10).len(), 2);
        // Non-ASCII names count as percent-encoded.
        let names = vec!["ü".repeat(10); 3];
        assert_eq!(scan_requests(&names, 70).len(), 3);
        // The budget holds for the query the HTTP client really builds (slashes are encoded).
        let deep: Vec<String> = (0..20_000).map(|i| format!("many-0/d{:03}/f{i:05} x", i % 200)).collect();
        let budget = WatcherConfig::default().max_request_bytes;
        for request in scan_requests(&deep, budget) {
            let url = reqwest::Url::parse_with_params("http://127.0.0.1:1/rest/db/scan", request.iter().map(|s| ("sub", s))).unwrap();
            assert!(url.query().unwrap().len() <= budget, "{} > {budget}", url.query().unwrap().len());
        }
    }

    #[test]
    fn the_cheap_deadline_hint_never_comes_after_the_real_deadline() {
        let mut b = batcher();
        let t = Instant::now();
        assert_eq!(b.next_deadline(), None);
        assert_eq!(b.earliest_new_due(), None);
        for i in 0..100u32 {
            let now = t + i * MS;
            b.on_change(0, &format!("f{i}"), Change::Closed, now);
            b.on_change(0, "busy", Change::Metadata, now);
            let hint = b.earliest_new_due().expect("a change was noted");
            let real = b.deadline().unwrap();
            assert!(hint <= real, "hint {hint:?} after the deadline {real:?} at {i}");
        }
        assert!(b.next_deadline().is_some());
        assert_eq!(b.earliest_new_due(), None, "next_deadline resets the hint");
    }

    #[test]
    fn only_sustained_event_traffic_is_paced() {
        let t = Instant::now();
        let mut pacer = EventPacer::new(t);
        // A lone save, then another every 50 ms: never paced.
        for i in 0..20u32 {
            assert_eq!(pacer.note(5, t + i * 50 * MS), None);
        }
        // A pull landing files: paced once past the threshold within one window...
        let t = t + 2000 * MS;
        let mut paced = 0;
        for i in 0..100u32 {
            paced += usize::from(pacer.note(8, t + i * MS / 2).is_some());
        }
        assert!(paced > 50, "{paced}");
        assert_eq!(pacer.note(8, t + 60 * MS), Some(PACE_PAUSE));
        // ...and no more once the traffic is over.
        assert_eq!(pacer.note(4, t + 500 * MS), None);
    }

    #[test]
    fn the_os_watcher_thread_sleeps_once_per_wake_up_and_only_in_sustained_traffic() {
        let t = Instant::now();
        let us = Duration::from_micros(1);
        let mut pacer = WakePacer::new(t);
        // A save now and then: handed on at once.
        for i in 0..20u32 {
            assert_eq!(pacer.on_event(t + i * 50 * MS), None);
        }
        // A pull: an event every 0.3 ms wakes the thread each time until the traffic is sustained...
        let t = t + 2000 * MS;
        let mut at = t;
        let mut first_pause = None;
        for i in 0..400u32 {
            at = t + i * 300 * us;
            if pacer.on_event(at).is_some() {
                first_pause = Some(i);
                break;
            }
        }
        assert!(first_pause.is_some_and(|i| i > 200), "{first_pause:?}");
        // ...then, after the pause, the 33 events queued meanwhile are read in one go, unpaused.
        let after = at + PACE_PAUSE;
        for k in 0..33u32 {
            assert_eq!(pacer.on_event(after + k * 2 * us), None, "event {k} of the queued read");
        }
        // The next wake-up sleeps again.
        assert_eq!(pacer.on_event(after + 300 * us), Some(PACE_PAUSE));
        // Once the traffic is over, nothing is paced.
        assert_eq!(pacer.on_event(after + 500 * MS), None);
    }

    #[test]
    fn item_paths_are_normalized() {
        assert_eq!(normalize_item("/a/b/"), "a/b");
    }
}
