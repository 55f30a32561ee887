//! The notifications waiting for the gateway, kept on disk so that neither a gateway outage nor
//! a restart of botsync loses them. Bounded: when full, the oldest message goes and `dropped`
//! counts it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::root::SyncRoot;
use crate::state_file::{self, StateFileError};

pub const DEFAULT_QUEUE_CAPACITY: usize = 500;

pub fn queue_file(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("notify-queue.json")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedMessage {
    pub message: String,
    /// Unix seconds when the message was queued.
    pub queued_at: u64,
    /// Failed delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
}

impl QueuedMessage {
    pub fn new(message: String) -> Self {
        let queued_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        QueuedMessage { message, queued_at, attempts: 0 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    messages: VecDeque<QueuedMessage>,
    /// Messages lost because the queue was full or the gateway refused them for good.
    dropped: u64,
    #[serde(skip)]
    capacity: usize,
    #[serde(skip)]
    dirty: bool,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox { capacity: capacity.max(1), ..Default::default() }
    }

    /// The queue saved at `path`, or an empty one. Loading never shrinks a saved queue below
    /// what it holds except to respect `capacity`.
    pub fn load(path: &Path, capacity: usize) -> Result<Self, StateFileError> {
        let mut outbox: Outbox = state_file::read_json(path)?.unwrap_or_default();
        outbox.capacity = capacity.max(1);
        while outbox.messages.len() > outbox.capacity {
            outbox.messages.pop_front();
            outbox.dropped += 1;
            outbox.dirty = true;
        }
        Ok(outbox)
    }

    pub fn save(&mut self, path: &Path) -> Result<(), StateFileError> {
        state_file::write_json(path, self)?;
        self.dirty = false;
        Ok(())
    }

    pub fn push(&mut self, message: QueuedMessage) {
        if self.messages.len() >= self.capacity {
            self.messages.pop_front();
            self.dropped += 1;
        }
        self.messages.push_back(message);
        self.dirty = true;
    }

    pub fn front(&self) -> Option<&QueuedMessage> {
        self.messages.front()
    }

    pub fn front_mut(&mut self) -> Option<&mut QueuedMessage> {
        self.dirty = true;
        self.messages.front_mut()
    }

    pub fn pop_front(&mut self) -> Option<QueuedMessage> {
        self.dirty = true;
        self.messages.pop_front()
    }

    /// Drops the front message for good (the gateway will never accept it).
    pub fn discard_front(&mut self) {
        if self.messages.pop_front().is_some() {
            self.dropped += 1;
            self.dirty = true;
        }
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn messages(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.messages.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let mut outbox = Outbox::new(2);
        for i in 0..5 {
            outbox.push(QueuedMessage::new(format!("m{i}")));
        }
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.dropped(), 3);
        assert_eq!(outbox.front().unwrap().message, "m3");
    }

    #[test]
    fn the_queue_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.json");
        let mut outbox = Outbox::new(10);
        outbox.push(QueuedMessage::new("hello".into()));
        outbox.discard_front();
        outbox.push(QueuedMessage::new("again".into()));
        outbox.save(&path).unwrap();
        let back = Outbox::load(&path, 10).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back.dropped(), 1);
        assert_eq!(back.front().unwrap().message, "again");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
