//! What the relay keeps, behind one trait so that one process (memory) or a fleet sharing Redis
//! serve the same API. Every operation the protocol needs to be atomic (one-time take, write-once
//! slot, consuming read) is a single store call, so a store can make it atomic its own way.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codes::{MailboxId, PairCode, Slot};

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

/// Hex SHA-256 of a network secret: all the relay keeps of a secret once the pairing is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        SecretHash(data_encoding::HEXLOWER.encode(&Sha256::digest(secret.as_bytes())))
    }

    pub fn from_hex(hex: String) -> Self {
        SecretHash(hex)
    }

    pub fn as_hex(&self) -> &str {
        &self.0
    }
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
}

impl RateClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::PairCreate => "pair-create",
            RateClass::PairLookup => "pair-lookup",
            RateClass::MailboxCreate => "mailbox-create",
            RateClass::SlotAccess => "slot",
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

    /// Remembers a network's secret hash (first registration wins), for `retention`.
    fn remember_network(
        &self,
        network_id: &str,
        hash: &SecretHash,
        retention: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn network_hash(&self, network_id: &str) -> impl Future<Output = Result<Option<SecretHash>, StoreError>> + Send;

    /// Creates an empty mailbox unless the id is live already; false means "pick another".
    fn create_mailbox(&self, id: &MailboxId, ttl: Duration) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes a slot once; the mailbox keeps the expiry it was created with.
    fn write_slot(
        &self,
        id: &MailboxId,
        slot: Slot,
        bytes: Bytes,
    ) -> impl Future<Output = Result<SlotWrite, StoreError>> + Send;

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

    /// Drops whatever has expired. Stores whose backend expires keys itself do nothing.
    fn purge_expired(&self) {}

    /// Whether slot writes can happen where this process cannot see them (another relay
    /// instance on the same Redis), so long-polls must also poll.
    fn shared_with_other_instances(&self) -> bool;
}
