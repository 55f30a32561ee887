//! The default store: one process, state in a mutex-guarded map. Expired entries are invisible at
//! once and physically dropped by `purge_expired` (the server calls it every second).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use super::codes::{MailboxId, PairCode, Slot};
use super::store::{MailboxKeys, PairingRecord, RateClass, SlotRead, SlotWrite, Store, StoreError, Usage};
use crate::pairing::wire::TokenHash;

#[derive(Debug)]
struct Expiring<T> {
    value: T,
    expires_at: Instant,
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Duration) -> Self {
        Expiring { value, expires_at: Instant::now() + ttl }
    }

    fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

#[derive(Debug)]
struct Mailbox {
    keys: MailboxKeys,
    slots: [Option<Bytes>; 4],
}

impl Mailbox {
    fn bytes(&self) -> u64 {
        self.slots.iter().flatten().map(|b| b.len() as u64).sum()
    }
}

#[derive(Debug, Default)]
struct State {
    pairings: HashMap<MailboxKey, Expiring<PairingRecord>>,
    mailboxes: HashMap<MailboxId, Expiring<Mailbox>>,
    /// Bytes in the slots of `mailboxes`, kept as they change (the cap checks it per write).
    stored_bytes: u64,
    hits: HashMap<(RateClass, IpAddr), Expiring<u64>>,
}

type MailboxKey = String;

impl State {
    fn remove_mailbox(&mut self, id: &MailboxId) {
        if let Some(entry) = self.mailboxes.remove(id) {
            self.stored_bytes -= entry.value.bytes();
        }
    }
}

/// In-process store; clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a map half-updated in a way that matters
        // more than refusing all further requests would.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Everything physically held right now, expired or not, as (key, value) text: lets tests
    /// prove what the relay retains (for example, that no plaintext network secret survives).
    pub fn dump(&self) -> Vec<(String, String)> {
        let state = self.lock();
        let mut out = Vec::new();
        for (code, entry) in &state.pairings {
            out.push((format!("pair:{code}"), serde_json::to_string(&entry.value).unwrap_or_default()));
        }
        for (id, entry) in &state.mailboxes {
            for slot in Slot::ALL {
                if let Some(bytes) = &entry.value.slots[slot.index()] {
                    out.push((format!("mb:{id}:{slot}"), String::from_utf8_lossy(bytes).into_owned()));
                }
            }
            let guest = entry.value.keys.guest.map(|g| g.to_hex()).unwrap_or_default();
            out.push((format!("mb:{id}"), format!("h={},g={guest}", entry.value.keys.host.to_hex())));
        }
        for ((class, ip), entry) in &state.hits {
            out.push((format!("rl:{}:{ip}", class.as_str()), entry.value.to_string()));
        }
        out
    }
}

impl Store for MemoryStore {
    async fn insert_pairing(&self, code: &PairCode, record: &PairingRecord, ttl: Duration) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        match state.pairings.get(code.as_str()) {
            Some(existing) if existing.is_live(now) => Ok(false),
            _ => {
                state.pairings.insert(code.as_str().to_string(), Expiring::new(record.clone(), ttl));
                Ok(true)
            }
        }
    }

    async fn take_pairing(&self, code: &PairCode) -> Result<Option<PairingRecord>, StoreError> {
        let entry = self.lock().pairings.remove(code.as_str());
        Ok(entry.filter(|e| e.is_live(Instant::now())).map(|e| e.value))
    }

    async fn create_mailbox(&self, id: &MailboxId, ttl: Duration, host: &TokenHash) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        match state.mailboxes.get(id) {
            Some(existing) if existing.is_live(now) => Ok(false),
            _ => {
                state.remove_mailbox(id);
                let mailbox = Mailbox { keys: MailboxKeys { host: *host, guest: None }, slots: Default::default() };
                state.mailboxes.insert(*id, Expiring::new(mailbox, ttl));
                Ok(true)
            }
        }
    }

    async fn mailbox_keys(&self, id: &MailboxId) -> Result<Option<MailboxKeys>, StoreError> {
        let state = self.lock();
        Ok(state.mailboxes.get(id).filter(|m| m.is_live(Instant::now())).map(|m| m.value.keys))
    }

    async fn write_slot(&self, id: &MailboxId, slot: Slot, bytes: Bytes, bind_guest: Option<&TokenHash>) -> Result<SlotWrite, StoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        let length = bytes.len() as u64;
        let written = match state.mailboxes.get_mut(id) {
            Some(mailbox) if mailbox.is_live(now) => {
                let cell = &mut mailbox.value.slots[slot.index()];
                if cell.is_some() {
                    SlotWrite::AlreadyWritten
                } else {
                    *cell = Some(bytes);
                    if let Some(guest) = bind_guest {
                        mailbox.value.keys.guest = Some(*guest);
                    }
                    SlotWrite::Stored
                }
            }
            _ => SlotWrite::UnknownMailbox,
        };
        if written == SlotWrite::Stored {
            state.stored_bytes += length;
        }
        Ok(written)
    }

    async fn read_slot(&self, id: &MailboxId, slot: Slot) -> Result<SlotRead, StoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        let read = match state.mailboxes.get(id) {
            Some(mailbox) if mailbox.is_live(now) => match &mailbox.value.slots[slot.index()] {
                Some(bytes) => SlotRead::Ready(bytes.clone()),
                None => SlotRead::Empty,
            },
            _ => SlotRead::UnknownMailbox,
        };
        if matches!(read, SlotRead::Ready(_)) && slot.consumes_mailbox() {
            state.remove_mailbox(id);
        }
        Ok(read)
    }

    async fn delete_mailbox(&self, id: &MailboxId) -> Result<(), StoreError> {
        self.lock().remove_mailbox(id);
        Ok(())
    }

    async fn usage(&self) -> Result<Usage, StoreError> {
        let state = self.lock();
        Ok(Usage { mailboxes: state.mailboxes.len() as u64, stored_bytes: state.stored_bytes })
    }

    async fn hits(&self, class: RateClass, client: IpAddr) -> Result<u64, StoreError> {
        let state = self.lock();
        Ok(state.hits.get(&(class, client)).filter(|e| e.is_live(Instant::now())).map_or(0, |e| e.value))
    }

    async fn count_hit(&self, class: RateClass, client: IpAddr, window: Duration) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let now = Instant::now();
        let entry = state.hits.entry((class, client)).or_insert_with(|| Expiring::new(0, window));
        if !entry.is_live(now) {
            *entry = Expiring::new(0, window);
        }
        entry.value += 1;
        Ok(entry.value)
    }

    fn purge_expired(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        state.pairings.retain(|_, e| e.is_live(now));
        let expired: Vec<MailboxId> = state.mailboxes.iter().filter(|(_, e)| !e.is_live(now)).map(|(id, _)| *id).collect();
        for id in expired {
            state.remove_mailbox(&id);
        }
        state.hits.retain(|_, e| e.is_live(now));
    }

    fn shared_with_other_instances(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
    }

    #[test]
    fn expired_entries_are_invisible_then_purged() {
        block_on(async {
            let store = MemoryStore::new();
            let code = PairCode::random(&mut rand::rng());
            let record = PairingRecord { device_id: "X".repeat(56), network_id: None, network_secret: Some("s3cret".into()) };
            assert!(store.insert_pairing(&code, &record, Duration::from_millis(30)).await.unwrap());
            assert!(!store.insert_pairing(&code, &record, Duration::from_millis(30)).await.unwrap());
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(store.dump().iter().any(|(_, v)| v.contains("s3cret")), "not purged yet");
            store.purge_expired();
            assert!(store.dump().is_empty());
            assert_eq!(store.take_pairing(&code).await.unwrap(), None);
        });
    }

    #[test]
    fn host_data_read_consumes_the_mailbox() {
        block_on(async {
            let store = MemoryStore::new();
            let id = MailboxId::random();
            let host = crate::pairing::AccessToken::random().hash();
            assert!(store.create_mailbox(&id, Duration::from_secs(60), &host).await.unwrap());
            assert_eq!(store.read_slot(&id, Slot::HostData).await.unwrap(), SlotRead::Empty);
            assert_eq!(store.write_slot(&id, Slot::HostData, Bytes::from_static(b"x"), None).await.unwrap(), SlotWrite::Stored);
            assert_eq!(
                store.write_slot(&id, Slot::HostData, Bytes::from_static(b"y"), None).await.unwrap(),
                SlotWrite::AlreadyWritten
            );
            assert_eq!(store.usage().await.unwrap(), Usage { mailboxes: 1, stored_bytes: 1 });
            assert_eq!(store.read_slot(&id, Slot::HostData).await.unwrap(), SlotRead::Ready(Bytes::from_static(b"x")));
            assert_eq!(store.read_slot(&id, Slot::HostData).await.unwrap(), SlotRead::UnknownMailbox);
            assert_eq!(store.usage().await.unwrap(), Usage::default());
        });
    }
}
