//! The relay's store as the exchange sees it: write-once slots in a short-lived mailbox, each
//! call carrying the token of the side making it (see `wire::Slot::{read_needs, write_needs}`).
//! `RelayClient` implements it over HTTP; tests wrap a `RelayClient` to misbehave on purpose.
//! There is no second in-memory implementation: tests run the real relay on loopback.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::wire::{AccessToken, Allocation, MailboxId, Slot};
use super::PairingError;

/// The v2 relay API. Errors follow the protocol: a written slot -> `CodeAlreadyUsed`, an unknown or
/// expired mailbox -> `CodeExpired`. `get` returns `None` if the slot is still empty after `wait`.
/// The futures are `Send` so a driver can run on any tokio task.
pub trait Mailbox: Send + Sync {
    fn allocate(&self) -> impl Future<Output = Result<Allocation, PairingError>> + Send;
    /// `token`: the host's for host slots, the guest's for guest slots (writing `guest-pake`
    /// binds it to the mailbox).
    fn put(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        token: &AccessToken,
        data: &[u8],
    ) -> impl Future<Output = Result<(), PairingError>> + Send;
    /// `token`: the reading side's, or `None` for `host-pake` (which anyone with the code reads).
    fn get(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        token: Option<&AccessToken>,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PairingError>> + Send;
    /// Only the host (its allocation token) may delete.
    fn delete(&self, mailbox: MailboxId, token: &AccessToken) -> impl Future<Output = Result<(), PairingError>> + Send;
}

impl<M: Mailbox> Mailbox for Arc<M> {
    fn allocate(&self) -> impl Future<Output = Result<Allocation, PairingError>> + Send {
        (**self).allocate()
    }
    fn put(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        token: &AccessToken,
        data: &[u8],
    ) -> impl Future<Output = Result<(), PairingError>> + Send {
        (**self).put(mailbox, slot, token, data)
    }
    fn get(
        &self,
        mailbox: MailboxId,
        slot: Slot,
        token: Option<&AccessToken>,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PairingError>> + Send {
        (**self).get(mailbox, slot, token, wait)
    }
    fn delete(&self, mailbox: MailboxId, token: &AccessToken) -> impl Future<Output = Result<(), PairingError>> + Send {
        (**self).delete(mailbox, token)
    }
}
