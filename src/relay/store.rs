//! What the relay keeps, behind one trait so that one process (memory) or a fleet sharing Redis
//! serve the same API. Every operation the protocol needs to be atomic (one-time take, write-once
//! slot, consuming read) is a single store call, so a store can make it atomic its own way.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};

use super::codes::{MailboxId, PairCode, Slot};
use crate::pairing::wire::TokenHash;

/// What `POST /pair` stored and `GET /pair/:code` hands out once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingRecord {
    pub device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// Plaintext, because the joiner needs it; it lives only inside this one-time record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_secret: Option<String>,
}

/// Who may act on a mailbox: hashes of the host's token (from the allocation) and of the
/// guest's (bound when it wrote `guest-pake`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxKeys {
    pub host: TokenHash,
    pub guest: Option<TokenHash>,
}

/// What the relay holds right now, for its global caps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub mailboxes: u64,
    pub stored_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotWrite {
    Stored,
    /// The slot was written before: write-once is what makes a code single-attempt.
    AlreadyWritten,
    UnknownMailbox,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotRead {
    Ready(Bytes),
    Empty,
    UnknownMailbox,
}

/// Request classes with their own per-client budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    PairCreate,
    PairLookup,
    MailboxCreate,
    SlotAccess,
    /// Requests that named an unknown mailbox: the budget against sweeping the 2^22 ids.
    UnknownMailbox,
}

impl RateClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::PairCreate => "pair-create",
            RateClass::PairLookup => "pair-lookup",
            RateClass::MailboxCreate => "mailbox-create",
            RateClass::SlotAccess => "slot",
            RateClass::UnknownMailbox => "unknown",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
}

/// The relay's state. Clones share the same state (a handle, not a copy).
pub trait Store: Clone + Send + Sync + 'static {
    /// Stores `record` under `code` unless the code is live already; false means "pick another".
    fn insert_pairing(
        &self,
        code: &PairCode,
        record: &PairingRecord,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Returns the record and deletes it in one step: of concurrent takers exactly one gets it.
    fn take_pairing(&self, code: &PairCode) -> impl Future<Output = Result<Option<PairingRecord>, StoreError>> + Send;

    /// Creates an empty mailbox owned by `host` unless the id is live already; false means
    /// "pick another".
    fn create_mailbox(
        &self,
        id: &MailboxId,
        ttl: Duration,
        host: &TokenHash,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The token hashes of a live mailbox, `None` if it is unknown or expired.
    fn mailbox_keys(&self, id: &MailboxId) -> impl Future<Output = Result<Option<MailboxKeys>, StoreError>> + Send;

    /// Writes a slot once; the mailbox keeps the expiry it was created with. `bind_guest` (with
    /// `guest-pake`) records the guest's token hash in the same atomic step as the write.
    fn write_slot(
        &self,
        id: &MailboxId,
        slot: Slot,
        bytes: Bytes,
        bind_guest: Option<&TokenHash>,
    ) -> impl Future<Output = Result<SlotWrite, StoreError>> + Send;

    /// Live mailboxes and stored slot bytes, across every instance sharing the store.
    fn usage(&self) -> impl Future<Output = Result<Usage, StoreError>> + Send;

    /// Reads a slot without waiting. Reading a slot that `consumes_mailbox()` deletes the whole
    /// mailbox in the same step, so that data is handed out exactly once.
    fn read_slot(&self, id: &MailboxId, slot: Slot) -> impl Future<Output = Result<SlotRead, StoreError>> + Send;

    /// Deletes a mailbox; deleting an unknown one is not an error.
    fn delete_mailbox(&self, id: &MailboxId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one request of `class` from `client` in the current fixed window and returns the
    /// count so far (the first request of a window returns 1).
    fn count_hit(
        &self,
        class: RateClass,
        client: IpAddr,
        window: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The count so far of `class` for `client` in the current window, without counting.
    fn hits(&self, class: RateClass, client: IpAddr) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Drops whatever has expired. Stores whose backend expires keys itself do nothing.
    fn purge_expired(&self) {}

    /// Whether slot writes can happen where this process cannot see them (another relay
    /// instance on the same Redis), so long-polls must also poll.
    fn shared_with_other_instances(&self) -> bool;
}
