//! The relay's store as the exchange sees it: write-once slots in a short-lived mailbox. The
//! `Mailbox` trait is implemented over HTTP by `RelayClient` and in memory by `MemoryMailbox`
//! (tests, and any process that wants to pair two local roots without a network).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{MailboxId, PairingError};

/// How long a mailbox lives on the relay.
pub const MAILBOX_TTL: Duration = Duration::from_secs(10 * 60);
/// The relay's cap on a slot's size.
pub const MAX_SLOT_BYTES: usize = 16 * 1024;
/// The relay's cap on one long-poll.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    HostPake,
    GuestPake,
    GuestData,
    HostData,
}

impl Slot {
    pub const ALL: [Slot; 4] = [Slot::HostPake, Slot::GuestPake, Slot::GuestData, Slot::HostData];

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::HostPake => "host-pake",
            Slot::GuestPake => "guest-pake",
            Slot::GuestData => "guest-data",
            Slot::HostData => "host-data",
        }
    }

    pub fn parse(text: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Position in `ALL`, for stores that keep a mailbox's slots in an array.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The guest's last step: once it has read this slot the exchange is over, so reading it
    /// deletes the whole mailbox (pairing data is dropped on first read).
    pub fn consumes_mailbox(self) -> bool {
        self == Slot::HostData
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The relay's answer to `POST /v2/mailboxes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub mailbox: MailboxId,
    /// Unix milliseconds.
    pub expires_at: u64,
}

impl Allocation {
    pub fn expires_at_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.expires_at)
    }
}

/// The v2 relay API. Errors follow the protocol: a written slot -> `CodeAlreadyUsed`, an unknown or
/// expired mailbox -> `CodeExpired`. `get` returns `None` if the slot is still empty after `wait`.
/// The futures are `Send` so a driver can run on any tokio task.
pub trait Mailbox: Send + Sync {
    fn allocate(&self) -> impl Future<Output = Result<Allocation, PairingError>> + Send;
    fn put(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        data: &[u8],
    ) -> impl Future<Output = Result<(), PairingError>> + Send;
    fn get(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PairingError>> + Send;
    fn delete(&self, mailbox: MailboxId) -> impl Future<Output = Result<(), PairingError>> + Send;
}

impl<M: Mailbox> Mailbox for Arc<M> {
    fn allocate(&self) -> impl Future<Output = Result<Allocation, PairingError>> + Send {
        (**self).allocate()
    }
    fn put(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        data: &[u8],
    ) -> impl Future<Output = Result<(), PairingError>> + Send {
        (**self).put(mailbox, slot, data)
    }
    fn get(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PairingError>> + Send {
        (**self).get(mailbox, slot, wait)
    }
    fn delete(&self, mailbox: MailboxId) -> impl Future<Output = Result<(), PairingError>> + Send {
        (**self).delete(mailbox)
    }
}

/// The protocol's semantics in one process: write-once slots, long-poll, TTL, and the mailbox
/// dropped on the first read of `host-data`.
pub struct MemoryMailbox {
    ttl: Duration,
    mailboxes: Mutex<HashMap<MailboxId, Entry>>,
}

struct Entry {
    slots: HashMap<Slot, Vec<u8>>,
    expires: Instant,
    // Bumped on every write; long-polls subscribe to it. Dropping the entry wakes them too.
    written: watch::Sender<()>,
}

impl Default for MemoryMailbox {
    fn default() -> Self {
        MemoryMailbox::with_ttl(MAILBOX_TTL)
    }
}

impl MemoryMailbox {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_ttl(ttl: Duration) -> Self {
        MemoryMailbox { ttl, mailboxes: Mutex::new(HashMap::new()) }
    }

    /// How many mailboxes are alive (expired ones are purged first).
    pub fn live_count(&self) -> usize {
        let mut map = self.mailboxes.lock().expect("mailbox lock");
        let now = Instant::now();
        map.retain(|_, e| e.expires > now);
        map.len()
    }

    fn live<'m>(
        map: &'m mut HashMap<MailboxId, Entry>,
        id: &MailboxId,
    ) -> Result<&'m mut Entry, PairingError> {
        if map.get(id).is_some_and(|e| e.expires <= Instant::now()) {
            map.remove(id);
        }
        map.get_mut(id).ok_or(PairingError::CodeExpired)
    }
}

impl Mailbox for MemoryMailbox {
    async fn allocate(&self) -> Result<Allocation, PairingError> {
        let mut map = self.mailboxes.lock().expect("mailbox lock");
        let now = Instant::now();
        map.retain(|_, e| e.expires > now);
        let id = loop {
            let candidate = MailboxId::random();
            if !map.contains_key(&candidate) {
                break candidate;
            }
        };
        let (written, _) = watch::channel(());
        map.insert(id, Entry { slots: HashMap::new(), expires: now + self.ttl, written });
        let expires_at = (SystemTime::now() + self.ttl)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ok(Allocation { mailbox: id, expires_at })
    }

    async fn put(&self, mailbox: MailboxId, slot: Slot, data: &[u8]) -> Result<(), PairingError> {
        if data.len() > MAX_SLOT_BYTES {
            return Err(PairingError::RelayProtocol {
                url: "memory".into(),
                detail: format!("rejected a {} byte slot (the limit is {MAX_SLOT_BYTES})", data.len()),
            });
        }
        let mut map = self.mailboxes.lock().expect("mailbox lock");
        let entry = Self::live(&mut map, &mailbox)?;
        if entry.slots.contains_key(&slot) {
            return Err(PairingError::CodeAlreadyUsed);
        }
        entry.slots.insert(slot, data.to_vec());
        entry.written.send_replace(());
        Ok(())
    }

    async fn get(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        wait: Duration,
    ) -> Result<Option<Vec<u8>>, PairingError> {
        let deadline = Instant::now() + wait.min(MAX_WAIT);
        loop {
            let (mut written, expires) = {
                let mut map = self.mailboxes.lock().expect("mailbox lock");
                let entry = Self::live(&mut map, &mailbox)?;
                if let Some(data) = entry.slots.get(&slot).cloned() {
                    if slot == Slot::HostData {
                        map.remove(&mailbox);
                    }
                    return Ok(Some(data));
                }
                (entry.written.subscribe(), entry.expires)
            };
            tokio::select! {
                // A write, or the entry dropped (deleted): either way look again.
                _ = written.changed() => {}
                _ = tokio::time::sleep_until(deadline.min(expires)) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn delete(&self, mailbox: MailboxId) -> Result<(), PairingError> {
        self.mailboxes.lock().expect("mailbox lock").remove(&mailbox);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_write_once_and_host_data_is_read_once() {
        let store = MemoryMailbox::new();
        let a = store.allocate().await.unwrap();
        store.put(a.mailbox, Slot::HostPake, b"x").await.unwrap();
        assert_eq!(store.put(a.mailbox, Slot::HostPake, b"y").await, Err(PairingError::CodeAlreadyUsed));
        assert_eq!(store.get(a.mailbox, Slot::HostPake, Duration::ZERO).await, Ok(Some(b"x".to_vec())));
        assert_eq!(store.get(a.mailbox, Slot::GuestPake, Duration::ZERO).await, Ok(None));
        store.put(a.mailbox, Slot::HostData, b"d").await.unwrap();
        assert_eq!(store.get(a.mailbox, Slot::HostData, Duration::ZERO).await, Ok(Some(b"d".to_vec())));
        assert_eq!(store.get(a.mailbox, Slot::HostPake, Duration::ZERO).await, Err(PairingError::CodeExpired));
    }

    #[tokio::test]
    async fn long_poll_wakes_on_write_and_on_delete() {
        let store = Arc::new(MemoryMailbox::new());
        let a = store.allocate().await.unwrap();
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.get(a.mailbox, Slot::GuestPake, Duration::from_secs(20)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.put(a.mailbox, Slot::GuestPake, b"g").await.unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(Some(b"g".to_vec())));

        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.get(a.mailbox, Slot::GuestData, Duration::from_secs(20)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.delete(a.mailbox).await.unwrap();
        assert_eq!(waiter.await.unwrap(), Err(PairingError::CodeExpired));
    }

    #[tokio::test]
    async fn mailboxes_expire() {
        let store = MemoryMailbox::with_ttl(Duration::from_millis(100));
        let a = store.allocate().await.unwrap();
        assert_eq!(store.get(a.mailbox, Slot::HostPake, Duration::from_millis(20)).await, Ok(None));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(store.put(a.mailbox, Slot::HostPake, b"x").await, Err(PairingError::CodeExpired));
        assert_eq!(store.live_count(), 0);
    }
}
