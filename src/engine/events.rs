//! Syncthing's event API: the typed events botsync reads, and `EventStream`, a long-poll client
//! over `GET /rest/events` that keeps its position across errors and notices Syncthing restarts.
//!
//! Event IDs count per subscription and start again at 1 when Syncthing restarts, so a stale
//! `since` would silently skip the new process's first events (or wait for ever). The stream
//! therefore pins each batch to one Syncthing process: it reads `startTime` from
//! `/rest/system/status` after every poll and, when it changed, throws the batch away and starts
//! again from 0 on the new process. The HTTP side is `RestClient::events`; this module adds the
//! position keeping and the typed event data.
//!
//! That check has a price: Syncthing answers `/rest/system/status` after `runtime.ReadMemStats`,
//! which stops its whole process for a moment, and a stream of per-file events is polled hundreds
//! of times a second while Syncthing pulls a large folder. A consumer that can take an event of a
//! new process as its own (the watcher's echo marks: an event is a real pull either way) asks for
//! `with_process_check_every`: the check then runs after a poll only once that interval has passed
//! since the last one, after an empty poll, and before the first poll after an error. A restart
//! takes Syncthing's API away for longer than such a stream ever waits between two polls, so the
//! poll open during it, or the next one, fails, and the call after a failure checks first.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::rest::{RestClient, RestError, SystemStatus};

/// The event types botsync asks for. `RemoteChangeDetected` and `LocalChangeDetected` are not in
/// Syncthing's default mask: they only arrive when named explicitly.
///
/// Never `FolderSummary` or `FolderCompletion` (`SUMMARY_TYPES`). On 1.19 an event request whose
/// mask holds either wakes Syncthing's folder summary service for a minute
/// (`lib/api/api.go` getEvents -> `OnEventRequest`; `lib/model/folder_summary.go`). Then, every
/// 2 s while anything changes, it counts each changed folder and computes its completion for every
/// connected device, a walk over the folder's need list. That is up to a third of its time by its
/// own limit, in a 100,000-file folder all through an initial sync. On 1.29 and 2.x the service
/// runs whether anyone listens or not.
pub const BOTSYNC_EVENT_TYPES: &[&str] = &[
    "ItemStarted",
    "ItemFinished",
    "DeviceConnected",
    "DeviceDisconnected",
    "LocalIndexUpdated",
    "RemoteIndexUpdated",
    "RemoteChangeDetected",
    "LocalChangeDetected",
    "PendingDevicesChanged",
];

/// Event types whose request turns on Syncthing 1.19's folder summaries (see `BOTSYNC_EVENT_TYPES`).
pub const SUMMARY_TYPES: &[&str] = &["FolderSummary", "FolderCompletion"];

/// Whether an events request for `types` (comma-separated) turns those summaries on: it names one,
/// or names nothing, which asks for Syncthing's default mask (summaries included).
pub fn wakes_folder_summaries(types: &str) -> bool {
    types.trim().is_empty() || types.split(',').any(|t| SUMMARY_TYPES.contains(&t.trim()))
}

/// Which Syncthing process a position belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    start_time: String,
    uptime: u64,
}

impl Instance {
    fn of(status: &SystemStatus) -> Self {
        Instance { start_time: status.start_time.clone(), uptime: status.uptime }
    }

    /// `later` was read after `self`: same process unless the start time moved or uptime went back.
    fn same_process(&self, later: &SystemStatus) -> bool {
        self.start_time == later.start_time && later.uptime >= self.uptime
    }
}

/// One event as Syncthing sends it, before its `data` is typed.
#[derive(Debug, Clone, Deserialize)]
pub struct RawEvent {
    pub id: u64,
    #[serde(rename = "globalID", default)]
    pub global_id: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub data: Value,
}

/// A Syncthing event with typed data. Types botsync does not use, and known types whose data does
/// not have the expected shape (a future Syncthing), become `Other` rather than an error.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncthingEvent {
    pub id: u64,
    pub global_id: u64,
    /// RFC 3339 with nanoseconds, as Syncthing wrote it.
    pub time: String,
    pub data: EventData,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    ItemStarted(ItemEvent),
    ItemFinished(ItemEvent),
    DeviceConnected(DeviceConnected),
    DeviceDisconnected(DeviceDisconnected),
    LocalIndexUpdated(IndexUpdated),
    RemoteIndexUpdated(IndexUpdated),
    RemoteChangeDetected(ChangeDetected),
    LocalChangeDetected(ChangeDetected),
    PendingDevicesChanged(PendingDevicesChanged),
    Other { kind: String },
}

/// `ItemStarted` / `ItemFinished`: the puller working on one item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ItemEvent {
    pub item: String,
    pub folder: String,
    /// `null` on success; only present on `ItemFinished`.
    #[serde(default)]
    pub error: Option<String>,
    /// `file`, `dir` or `symlink`.
    #[serde(rename = "type", default)]
    pub item_type: String,
    /// `update`, `delete` or `metadata`.
    #[serde(default)]
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceConnected {
    pub id: String,
    #[serde(default)]
    pub addr: String,
    /// The name the peer gives itself.
    #[serde(default)]
    pub device_name: String,
    #[serde(default)]
    pub client_name: String,
    #[serde(default)]
    pub client_version: String,
    #[serde(rename = "type", default)]
    pub connection_type: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeviceDisconnected {
    pub id: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// `LocalIndexUpdated` (with `filenames`) and `RemoteIndexUpdated` (with `device`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IndexUpdated {
    pub folder: String,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub items: u64,
    #[serde(default)]
    pub filenames: Vec<String>,
}

/// `RemoteChangeDetected` / `LocalChangeDetected`: a change committed to the local index.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeDetected {
    /// Empty on older Syncthing versions, which only send `folderID`; see `folder_id()`.
    #[serde(default)]
    pub folder: String,
    /// Deprecated duplicate of `folder` that 1.19 still sends.
    #[serde(rename = "folderID", default)]
    pub legacy_folder_id: String,
    pub path: String,
    /// The 7-character short ID of the device that made the change.
    #[serde(default)]
    pub modified_by: String,
    /// `added`, `modified` or `deleted` (1.19 sends `modified` for new files too).
    #[serde(default)]
    pub action: String,
    #[serde(rename = "type", default)]
    pub item_type: String,
}

impl ChangeDetected {
    /// The folder ID, whichever field carried it.
    pub fn folder_id(&self) -> &str {
        if self.folder.is_empty() {
            &self.legacy_folder_id
        } else {
            &self.folder
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PendingDevicesChanged {
    #[serde(default)]
    pub added: Vec<PendingDevice>,
    #[serde(default)]
    pub removed: Vec<PendingDevice>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PendingDevice {
    #[serde(rename = "deviceID")]
    pub device_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: String,
}

impl From<RawEvent> for SyncthingEvent {
    fn from(raw: RawEvent) -> Self {
        fn typed<T: serde::de::DeserializeOwned>(data: Value) -> Option<T> {
            serde_json::from_value(data).ok()
        }
        let kind = raw.kind;
        let data = raw.data;
        let parsed = match kind.as_str() {
            "ItemStarted" => typed(data).map(EventData::ItemStarted),
            "ItemFinished" => typed(data).map(EventData::ItemFinished),
            "DeviceConnected" => typed(data).map(EventData::DeviceConnected),
            "DeviceDisconnected" => typed(data).map(EventData::DeviceDisconnected),
            "LocalIndexUpdated" => typed(data).map(EventData::LocalIndexUpdated),
            "RemoteIndexUpdated" => typed(data).map(EventData::RemoteIndexUpdated),
            "RemoteChangeDetected" => typed(data).map(EventData::RemoteChangeDetected),
            "LocalChangeDetected" => typed(data).map(EventData::LocalChangeDetected),
            "PendingDevicesChanged" => typed(data).map(EventData::PendingDevicesChanged),
            _ => None,
        };
        SyncthingEvent {
            id: raw.id,
            global_id: raw.global_id,
            time: raw.time,
            data: parsed.unwrap_or(EventData::Other { kind }),
        }
    }
}

/// Parses a `/rest/events` answer (a JSON array). Malformed entries are skipped, never fatal.
pub fn parse_events(body: &[u8]) -> Result<Vec<SyncthingEvent>, serde_json::Error> {
    Ok(from_values(serde_json::from_slice(body)?))
}

/// The events among `values`, typed; entries that are not events are skipped.
pub fn from_values(values: Vec<Value>) -> Vec<SyncthingEvent> {
    values.into_iter().filter_map(|v| serde_json::from_value::<RawEvent>(v).ok()).map(SyncthingEvent::from).collect()
}

/// What one poll produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventBatch {
    pub events: Vec<SyncthingEvent>,
    /// Syncthing restarted since the previous batch: events it produced before this stream
    /// reconnected cannot be read, so a consumer that needs completeness should rescan.
    pub restarted: bool,
}

/// A long-poll reader of `/rest/events`. Each `next_batch` is one poll; on error nothing moves,
/// so calling again resumes exactly where it stood.
#[derive(Debug)]
pub struct EventStream {
    rest: RestClient,
    types: String,
    since: u64,
    poll_timeout: Duration,
    /// The Syncthing process the position belongs to.
    instance: Option<Instance>,
    local_device: Option<String>,
    restarts: u64,
    /// `None`: every batch is bracketed by the process check. `Some`: see the module docs.
    check_every: Option<Duration>,
    /// When the process was last checked, and whether the last call failed (the next one checks).
    last_check: Option<std::time::Instant>,
    failed: bool,
}

impl EventStream {
    /// A stream of `types` (Syncthing event type names), from the oldest event Syncthing still buffers.
    pub fn new(rest: RestClient, types: &[&str]) -> Self {
        EventStream {
            rest,
            types: types.join(","),
            since: 0,
            poll_timeout: Duration::from_secs(60),
            instance: None,
            local_device: None,
            restarts: 0,
            check_every: None,
            last_check: None,
            failed: false,
        }
    }

    /// Checks for a Syncthing restart at most once per `interval` while batches keep coming
    /// (see the module docs); for consumers to which a new process's events are as good.
    pub fn with_process_check_every(mut self, interval: Duration) -> Self {
        self.check_every = Some(interval);
        self
    }

    /// The stream botsync uses: `BOTSYNC_EVENT_TYPES`.
    pub fn botsync(rest: RestClient) -> Self {
        Self::new(rest, BOTSYNC_EVENT_TYPES)
    }

    /// Seconds Syncthing holds a poll open when nothing happens (Syncthing's `timeout`).
    pub fn with_poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout.max(Duration::from_secs(1));
        self
    }

    /// Resumes after event `since` (a position saved from `position()`), on the Syncthing
    /// process that started at `instance`; a different process means starting over.
    pub fn resume_from(mut self, since: u64, instance: Option<String>) -> Self {
        self.since = since;
        self.instance = instance.map(|start_time| Instance { start_time, uptime: 0 });
        self
    }

    /// Skips what Syncthing has buffered: the stream will yield only events from now on.
    pub async fn skip_to_now(&mut self) -> Result<(), RestError> {
        let status = self.rest.system_status().await?;
        // timeout=0 answers at once (measured on 1.19), even when nothing is buffered.
        let latest = self.rest.events(0, &self.types, Duration::ZERO, Some(1)).await?;
        self.since = latest.last().map_or(0, |e| e.id);
        self.pin(&status);
        Ok(())
    }

    /// The last event ID delivered, and the process it belongs to.
    pub fn position(&self) -> (u64, Option<&str>) {
        (self.since, self.instance.as_ref().map(|i| i.start_time.as_str()))
    }

    /// The local device ID, known after the first successful poll.
    pub fn local_device(&self) -> Option<&str> {
        self.local_device.as_deref()
    }

    /// How many Syncthing restarts this stream has seen.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    pub fn rest(&self) -> &RestClient {
        &self.rest
    }

    fn pin(&mut self, status: &SystemStatus) {
        self.instance = Some(Instance::of(status));
        self.local_device = Some(status.my_id.to_string());
    }

    /// One long poll. Returns an empty batch when Syncthing had nothing to say within the poll
    /// timeout, and an empty batch with `restarted` when the engine turned out to be a new process.
    pub async fn next_batch(&mut self) -> Result<EventBatch, RestError> {
        let result = self.poll().await;
        self.failed = result.is_err();
        result
    }

    async fn poll(&mut self) -> Result<EventBatch, RestError> {
        if self.instance.is_none() {
            let status = self.rest.system_status().await?;
            self.pin(&status);
        } else if self.failed && self.check_every.is_some() {
            if let Some(restarted) = self.check_process().await? {
                return Ok(restarted);
            }
        }
        let polled = self.rest.events(self.since, &self.types, self.poll_timeout, None).await?;
        let checked_lately = match (self.check_every, self.last_check) {
            (Some(every), Some(last)) => last.elapsed() < every,
            _ => false,
        };
        if polled.is_empty() || !checked_lately {
            // Only a batch bracketed by the same process on both sides is trusted; see the module docs.
            if let Some(restarted) = self.check_process().await? {
                return Ok(restarted);
            }
        }
        let since = self.since;
        let events: Vec<SyncthingEvent> = polled.into_iter().filter(|e| e.id > since).collect();
        if let Some(last) = events.last() {
            self.since = last.id;
        }
        Ok(EventBatch { events, restarted: false })
    }

    /// Reads the process behind the API: `Some(empty restarted batch)` when it is not the one
    /// the position belongs to (the position then starts over on the new one).
    async fn check_process(&mut self) -> Result<Option<EventBatch>, RestError> {
        let status = self.rest.system_status().await?;
        self.last_check = Some(std::time::Instant::now());
        if !self.instance.as_ref().is_some_and(|i| i.same_process(&status)) {
            self.pin(&status);
            self.since = 0;
            self.restarts += 1;
            return Ok(Some(EventBatch { events: Vec::new(), restarted: true }));
        }
        self.instance = Some(Instance::of(&status));
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_request_of_botsync_wakes_syncthings_folder_summaries() {
        assert!(!wakes_folder_summaries(&BOTSYNC_EVENT_TYPES.join(",")));
        assert!(!wakes_folder_summaries("ItemStarted,ItemFinished"));
        assert!(wakes_folder_summaries("ItemFinished, FolderCompletion"));
        assert!(wakes_folder_summaries("FolderSummary"));
        assert!(wakes_folder_summaries(""), "no types is Syncthing's default mask, summaries included");
    }

    #[test]
    fn unknown_types_and_odd_data_are_tolerated() {
        let body = br#"[
            {"id":1,"globalID":1,"type":"Starting","time":"t","data":{"home":"/x"}},
            {"id":2,"globalID":2,"type":"ItemFinished","time":"t","data":{"item":"a","folder":"f","error":null,"type":"file","action":"update"}},
            {"id":3,"globalID":3,"type":"ItemFinished","time":"t","data":"not an object"},
            {"nonsense":true}
        ]"#;
        let events = parse_events(body).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].data, EventData::Other { kind: "Starting".into() });
        assert!(matches!(&events[1].data, EventData::ItemFinished(i) if i.item == "a" && i.error.is_none()));
        assert_eq!(events[2].data, EventData::Other { kind: "ItemFinished".into() });
    }

    #[test]
    fn change_detected_accepts_the_old_folder_id_field() {
        let body = br#"[{"id":1,"type":"RemoteChangeDetected","time":"t","data":{"folderID":"f","path":"p","modifiedBy":"ABCDEFG","action":"deleted","type":"file"}}]"#;
        let events = parse_events(body).unwrap();
        assert!(matches!(&events[0].data, EventData::RemoteChangeDetected(c) if c.folder_id() == "f" && c.modified_by == "ABCDEFG"));
        // 1.19 sends both fields.
        let body = br#"[{"id":1,"type":"LocalChangeDetected","time":"t","data":{"folder":"f","folderID":"f","path":"p","action":"modified","type":"file"}}]"#;
        assert!(matches!(&parse_events(body).unwrap()[0].data, EventData::LocalChangeDetected(c) if c.folder_id() == "f"));
    }

    #[test]
    fn api_key_is_hidden_from_debug() {
        let stream = EventStream::botsync(RestClient::new(1, super::super::ApiKey::from_string("sekrit-key".into())));
        assert!(!format!("{stream:?}").contains("sekrit-key"));
        assert_eq!(stream.rest().base_url(), "http://127.0.0.1:1");
    }
}
