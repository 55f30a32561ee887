//! `EventFeed`: botsync events from a running Syncthing, one at a time. Combines the
//! `EventStream` (long poll, restart-proof) with the `EventDeriver`, retries while Syncthing is
//! away, and wakes up on its own to report joins that timed out. Used by the daemon (to feed the
//! notifier), `botsync watch` and `events()` in Node.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::engine::events::{EventBatch, EventData, EventStream};
use crate::engine::{Engine, EngineError, RestClient, RestError};
use crate::root::{SharedFolder, SyncRoot};

use super::delivery::DeliveryTracker;
use super::derive::EventDeriver;
use super::model::BotsyncEvent;
use super::NotifyError;

const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// The pause between polls while events keep coming (see `EventStream::with_busy_pause`).
const FEED_BUSY_PAUSE: Duration = Duration::from_millis(100);

pub struct EventFeed {
    stream: EventStream,
    deriver: EventDeriver,
    ready: VecDeque<BotsyncEvent>,
    retry: Duration,
    /// The error Syncthing gave last, while it keeps failing.
    last_error: Option<String>,
    deliveries: DeliveryTracker,
    /// Folder ID -> the peers it is shared with (full device IDs), for receipts.
    folder_peers: std::collections::HashMap<String, Vec<String>>,
}

enum Woke {
    Batch(Result<EventBatch, RestError>),
    Deadline,
}

impl EventFeed {
    /// A feed of the root's Syncthing (the engine's record in config.json says where), starting now.
    pub async fn open(root: &SyncRoot) -> Result<Self, NotifyError> {
        let engine = match Engine::open(root) {
            Ok(Some(engine)) => engine,
            Ok(None) => return Err(NotifyError::NotInitialized(root.display())),
            Err(EngineError::State(e)) => return Err(NotifyError::State(e)),
            Err(e) => return Err(NotifyError::Internal(e.to_string())),
        };
        Self::start(root.clone(), engine.rest()).await
    }

    /// A feed from `rest`, starting now: what Syncthing buffered before is skipped. Fails when
    /// Syncthing does not answer; once started, the feed waits for it instead.
    pub async fn start(root: SyncRoot, rest: RestClient) -> Result<Self, NotifyError> {
        // Events of a bulk sync (three per file) come in batches instead of ~100 polls a second.
        Self::start_with(EventStream::botsync(rest).with_busy_pause(FEED_BUSY_PAUSE), EventDeriver::new(root)).await
    }

    pub async fn start_with(mut stream: EventStream, deriver: EventDeriver) -> Result<Self, NotifyError> {
        stream.skip_to_now().await?;
        let mut feed = EventFeed {
            stream,
            deriver,
            ready: VecDeque::new(),
            retry: RETRY_MIN,
            last_error: None,
            deliveries: DeliveryTracker::new(),
            folder_peers: Default::default(),
        };
        feed.learn_engine().await;
        Ok(feed)
    }

    /// The Syncthing error the feed is currently riding out, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn stream(&self) -> &EventStream {
        &self.stream
    }

    /// The next botsync event. Waits as long as it takes; Syncthing going away and coming back
    /// (even as a new process) is handled inside.
    pub async fn next(&mut self) -> BotsyncEvent {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return event;
            }
            let deadline = self.deriver.next_deadline();
            let woke = {
                let poll = self.stream.next_batch();
                match deadline {
                    Some(at) => tokio::select! {
                        batch = poll => Woke::Batch(batch),
                        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => Woke::Deadline,
                    },
                    None => Woke::Batch(poll.await),
                }
            };
            match woke {
                Woke::Deadline => {}
                Woke::Batch(Ok(batch)) => {
                    self.retry = RETRY_MIN;
                    self.last_error = None;
                    if batch.restarted {
                        self.learn_engine().await;
                    }
                    let now = Instant::now();
                    let mut updated_folders: Vec<String> = Vec::new();
                    for event in &batch.events {
                        self.ready.extend(self.deriver.feed(event, now));
                        match &event.data {
                            EventData::LocalChangeDetected(change) => {
                                let peers = self.folder_peers.get(change.folder_id()).map(Vec::as_slice).unwrap_or(&[]);
                                self.deliveries.local_change(change.folder_id(), &change.path, &change.item_type, peers, now);
                            }
                            EventData::RemoteIndexUpdated(update) if !updated_folders.contains(&update.folder) => {
                                updated_folders.push(update.folder.clone());
                            }
                            // A peer paired after the feed started shares the folders from now on.
                            EventData::DeviceConnected(_) => self.learn_folders().await,
                            _ => {}
                        }
                    }
                    for folder in updated_folders {
                        self.check_deliveries(&folder).await;
                    }
                    self.deliveries.expire(now);
                }
                Woke::Batch(Err(error)) => {
                    self.last_error = Some(error.to_string());
                    tokio::time::sleep(self.retry).await;
                    self.retry = (self.retry * 2).min(RETRY_MAX);
                }
            }
            self.ready.extend(self.deriver.flush_expired(Instant::now()));
        }
    }

    /// Looks up the paths waiting for receipts in `folder_id` and queues a `delivered` event
    /// for each peer that now holds one.
    async fn check_deliveries(&mut self, folder_id: &str) {
        let Some(me) = self.stream.local_device().map(|id| id.get(..7).unwrap_or(id).to_string()) else { return };
        let Some(folder) = SharedFolder::from_folder_id(folder_id) else { return };
        for path in self.deliveries.pending_in(folder_id) {
            let file = match self.stream.rest().db_file(folder_id, &path).await {
                Ok(file) => file,
                // Syncthing busy or away: the next index update looks again.
                Err(_) => continue,
            };
            for receipt in self.deliveries.observe(folder_id, &path, file.as_ref(), &me) {
                let mut local_path = self.stream_root().folder_dir(folder);
                local_path.extend(receipt.path.split('/'));
                self.ready.push_back(BotsyncEvent::Delivered {
                    folder: folder.dir_name().to_string(),
                    path: receipt.path,
                    local_path: local_path.display().to_string(),
                    peer: self.deriver.peer(&receipt.peer),
                    version: receipt.version,
                    deleted: receipt.deleted,
                    at: crate::clock::rfc3339(crate::clock::now_ms()),
                });
            }
        }
    }

    fn stream_root(&self) -> &SyncRoot {
        self.deriver.root()
    }

    /// Who we are, who the peers are and which files exist: at start and after a Syncthing restart.
    async fn learn_engine(&mut self) {
        if let Some(id) = self.stream.local_device().map(str::to_owned) {
            self.deriver.set_local_device(&id);
        }
        let devices = self.stream.rest().devices().await;
        let local = self.stream.local_device().map(str::to_owned);
        for device in devices.unwrap_or_default() {
            let id = device.device_id.to_string();
            if Some(&id) != local.as_ref() {
                self.deriver.learn_peer(&id, &device.name);
            }
        }
        self.learn_folders().await;
        self.deriver.seed_from_disk();
    }

    /// Which peers each folder is shared with (receipts are owed by those).
    async fn learn_folders(&mut self) {
        let local = self.stream.local_device().map(str::to_owned);
        if let Ok(folders) = self.stream.rest().folders().await {
            self.folder_peers = folders
                .into_iter()
                .map(|f| (f.id, f.devices.into_iter().map(|d| d.device_id.to_string()).filter(|id| Some(id) != local.as_ref()).collect()))
                .collect();
        }
    }
}
