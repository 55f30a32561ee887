//! Per-client request budgets. Counting lives in the store (fixed one-minute windows), so relay
//! instances sharing Redis share the budget too.

use std::net::IpAddr;
use std::time::Duration;

use super::store::{RateClass, Store, StoreError};

/// The window every budget is counted over; `Retry-After` tells clients its length.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Requests allowed per client IP per minute; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /pair`.
    pub pair_create: Option<u32>,
    /// `GET /pair/:code`: low, because it is the brute-force surface of the original protocol.
    pub pair_lookup: Option<u32>,
    /// `POST /v2/mailboxes`.
    pub mailbox_create: Option<u32>,
    /// `GET`/`PUT` of mailbox slots.
    pub slot_access: Option<u32>,
    /// Requests naming an unknown mailbox (404s): past this, every mailbox request of the
    /// client is refused until the window ends. Small: an honest client sees one or two.
    pub unknown_mailbox: Option<u32>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            pair_create: Some(10),
            pair_lookup: Some(20),
            mailbox_create: Some(10),
            slot_access: Some(600),
            unknown_mailbox: Some(10),
        }
    }
}

impl RateLimits {
    /// No limits at all: for load tests and relays behind their own rate limiting.
    pub fn unlimited() -> Self {
        RateLimits { pair_create: None, pair_lookup: None, mailbox_create: None, slot_access: None, unknown_mailbox: None }
    }

    pub fn limit(&self, class: RateClass) -> Option<u32> {
        match class {
            RateClass::PairCreate => self.pair_create,
            RateClass::PairLookup => self.pair_lookup,
            RateClass::MailboxCreate => self.mailbox_create,
            RateClass::SlotAccess => self.slot_access,
            RateClass::UnknownMailbox => self.unknown_mailbox,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited,
}

/// Counts the request and says whether it is within budget.
pub async fn check<S: Store>(
    store: &S,
    limits: &RateLimits,
    class: RateClass,
    client: IpAddr,
) -> Result<Verdict, StoreError> {
    let Some(limit) = limits.limit(class) else {
        return Ok(Verdict::Allowed);
    };
    let count = store.count_hit(class, client, WINDOW).await?;
    Ok(if count > u64::from(limit) { Verdict::Limited } else { Verdict::Allowed })
}
