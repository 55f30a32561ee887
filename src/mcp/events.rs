//! The `events` tool's log: the root's events (`EventFeed`) from the server's start, numbered,
//! the newest `CAPACITY` kept, read by cursor. The same task tells subscribed clients when a
//! folder's listing changed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::{Peer, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify};

use crate::daemon::notify::{BotsyncEvent, EventFeed};
use crate::error::Error;
use crate::root::{SharedFolder, SyncRoot};

const CAPACITY: usize = 1000;
const MAX_LIMIT: u32 = 1000;
const MAX_WAIT_MS: u32 = 30_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsInput {
    /// The `cursor` a previous call returned; 0 or absent: from the oldest event kept.
    pub cursor: Option<u64>,
    /// At most this many events (default 100, at most 1000).
    pub limit: Option<u32>,
    /// When nothing is newer than `cursor`, wait up to this many milliseconds for an event
    /// (default 0, at most 30000).
    pub wait_ms: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsOutput {
    /// Oldest first. Each has a `type`: `file` (arrived from a peer), `delivered` (a peer now
    /// holds a change made here), `deviceConnected`, `deviceDisconnected`, `conflict`, `paired`.
    pub events: Vec<serde_json::Value>,
    /// Pass this as `cursor` next time.
    pub cursor: u64,
    /// Events between the given cursor and the oldest kept were dropped (the log keeps 1000).
    pub missed: bool,
    /// Why the log is not receiving events right now (Syncthing not running), if so.
    pub engine_error: Option<String>,
}

#[derive(Default)]
struct State {
    /// (sequence number from 1, event)
    events: VecDeque<(u64, BotsyncEvent)>,
    last: u64,
    engine_error: Option<String>,
}

pub struct EventLog {
    state: Mutex<State>,
    arrived: Notify,
    subscribers: Mutex<HashMap<&'static str, Peer<RoleServer>>>,
}

impl EventLog {
    /// Starts following the root's events in the background (retrying while Syncthing is down).
    pub fn start(root: SyncRoot) -> Arc<EventLog> {
        let log = Arc::new(EventLog { state: Mutex::default(), arrived: Notify::new(), subscribers: Mutex::default() });
        let weak = Arc::downgrade(&log);
        tokio::spawn(async move {
            loop {
                let opened = EventFeed::open(&root).await;
                let Some(log) = weak.upgrade() else { return };
                match opened {
                    Ok(mut feed) => {
                        log.state.lock().await.engine_error = None;
                        drop(log);
                        loop {
                            let event = feed.next().await;
                            let Some(log) = weak.upgrade() else { return };
                            log.push(event).await;
                        }
                    }
                    Err(error) => {
                        log.state.lock().await.engine_error = Some(Error::from(error).to_string());
                        drop(log);
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
        log
    }

    async fn push(&self, event: BotsyncEvent) {
        let folder = match &event {
            BotsyncEvent::File { folder, .. } | BotsyncEvent::Delivered { folder, .. } | BotsyncEvent::Conflict { folder, .. } => {
                SharedFolder::ALL.into_iter().find(|f| f.dir_name() == folder)
            }
            _ => None,
        };
        {
            let mut state = self.state.lock().await;
            state.last += 1;
            let seq = state.last;
            state.events.push_back((seq, event));
            if state.events.len() > CAPACITY {
                state.events.pop_front();
            }
        }
        self.arrived.notify_waiters();
        if let Some(folder) = folder {
            let peer = self.subscribers.lock().await.get(folder.dir_name()).cloned();
            if let Some(peer) = peer {
                let uri = super::folder_uri(folder);
                if peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri)).await.is_err() {
                    self.subscribers.lock().await.remove(folder.dir_name());
                }
            }
        }
    }

    pub async fn subscribe(&self, folder: SharedFolder, peer: Peer<RoleServer>) {
        self.subscribers.lock().await.insert(folder.dir_name(), peer);
    }

    pub async fn unsubscribe(&self, folder: SharedFolder) {
        self.subscribers.lock().await.remove(folder.dir_name());
    }

    pub async fn read(&self, input: &EventsInput) -> Result<EventsOutput, Error> {
        let cursor = input.cursor.unwrap_or(0);
        let limit = input.limit.unwrap_or(100).clamp(1, MAX_LIMIT) as usize;
        let wait = Duration::from_millis(input.wait_ms.unwrap_or(0).min(MAX_WAIT_MS).into());
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so an event pushed in between still wakes us.
            let arrived = self.arrived.notified();
            {
                let state = self.state.lock().await;
                if cursor > state.last {
                    return Err(Error::Usage(format!("cursor {cursor} is ahead of the log (last event {}); start again from 0", state.last)));
                }
                let newer: Vec<&(u64, BotsyncEvent)> = state.events.iter().filter(|(seq, _)| *seq > cursor).take(limit).collect();
                if !newer.is_empty() || tokio::time::Instant::now() >= deadline {
                    let missed = state.events.front().is_some_and(|(oldest, _)| *oldest > cursor + 1);
                    let next = newer.last().map_or(cursor, |(seq, _)| *seq);
                    return Ok(EventsOutput {
                        events: newer.iter().map(|(_, e)| serde_json::to_value(e).expect("events serialize")).collect(),
                        cursor: next,
                        missed,
                        engine_error: state.engine_error.clone(),
                    });
                }
            }
            tokio::select! {
                _ = arrived => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}
