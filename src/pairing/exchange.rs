//! The two sides of a v2 pairing, as plain async functions over any `Mailbox`, so a CLI can wait
//! in-process or hand the code to a background process.
//!
//! The host does nothing secret before `host::complete`: `open_invite` only allocates a mailbox
//! and draws the secret words, and `complete` starts SPAKE2 from the code. So a daemon can finish
//! the exchange from the code alone, after the CLI that printed it has exited.

use std::time::{Duration, Instant, SystemTime};

use super::mailbox::{Mailbox, Slot, MAILBOX_TTL};
use super::pake::{GuestPake, HostPake, HostSeed, SessionKeys, MISMATCH_MARKER};
use super::original::{self, OriginalCode, OriginalPayload};
use super::{MailboxId, PairingCode, PairingError, PeerInfo, RelayClient};

/// One long-poll; below the relay's 30 s cap so proxies with 30 s idle timeouts don't cut it.
const POLL: Duration = Duration::from_secs(25);
/// A relay that answers "empty" at once (ignoring `wait`) must not turn the wait into a busy loop.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A code and when its mailbox expires on the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invite {
    pub code: PairingCode,
    /// Unix milliseconds, as the relay reported it.
    pub expires_at: u64,
}

impl Invite {
    pub fn expires_at_time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.expires_at)
    }
}

/// Pause after a failed poll before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// Waits for `slot` until `deadline`. `Ok(None)` means the deadline passed.
///
/// Once the relay has answered in this exchange (`reached`), a network blip or a rate limit during
/// a wait of minutes is retried rather than fatal: a daemon holding an invite open should survive
/// a Wi-Fi hiccup. Before that, failing fast gives the person a clear "relay unreachable".
async fn wait_for(
    mailbox: &impl Mailbox,
    id: MailboxId,
    slot: Slot,
    deadline: SystemTime,
    mut reached: bool,
) -> Result<Option<Vec<u8>>, PairingError> {
    loop {
        let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return Ok(None);
        }
        let started = Instant::now();
        let pause = match mailbox.get(id, slot, left.min(POLL)).await {
            Ok(Some(data)) => return Ok(Some(data)),
            Ok(None) => {
                reached = true;
                MIN_POLL_INTERVAL.saturating_sub(started.elapsed())
            }
            Err(PairingError::RelayUnreachable { .. }) if reached => RETRY_AFTER_FAILURE,
            Err(PairingError::RateLimited { retry_after_secs, .. }) if reached => {
                Duration::from_secs(retry_after_secs).max(RETRY_AFTER_FAILURE)
            }
            Err(e) => return Err(e),
        };
        let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        tokio::time::sleep(pause.min(left)).await;
    }
}

/// Decrypts and parses the other side's info. Authenticated but unparsable data is the peer's
/// bug, not a mismatch; a peer that hit such a bug sends `{"error": "..."}` to say so.
fn read_peer_info(plaintext: &[u8]) -> Result<PeerInfo, PairingError> {
    serde_json::from_slice::<PeerInfo>(plaintext).map_err(|e| {
        #[derive(serde::Deserialize)]
        struct Failure {
            error: String,
        }
        match serde_json::from_slice::<Failure>(plaintext) {
            Ok(failure) => PairingError::PeerProtocol(failure.error),
            Err(_) => PairingError::PeerProtocol(format!("unreadable peer info ({e})")),
        }
    })
}

fn to_json(info: &PeerInfo) -> Vec<u8> {
    serde_json::to_vec(info).expect("PeerInfo serializes")
}

pub mod host {
    use super::*;

    /// Step 1: a mailbox on the relay and a fresh code in it. Nothing is written yet.
    pub async fn open_invite(mailbox: &impl Mailbox) -> Result<Invite, PairingError> {
        let allocation = mailbox.allocate().await?;
        Ok(Invite { code: PairingCode::generate(&allocation.mailbox), expires_at: allocation.expires_at })
    }

    /// Steps 2 and 6: publish our SPAKE2 message, wait (until `deadline`) for a guest, check it
    /// used the same code, and answer with `me`. Returns the guest's info.
    pub async fn complete(
        mailbox: &impl Mailbox,
        code: &PairingCode,
        me: &PeerInfo,
        deadline: SystemTime,
    ) -> Result<PeerInfo, PairingError> {
        complete_accepting(mailbox, code, deadline, |_guest| async { Ok(me.clone()) }).await
    }

    /// `complete`, with the guest accepted before the answer goes out: `accept` gets the verified
    /// guest and returns the info to send back (or why the guest cannot be accepted, which the
    /// guest is told). So when the guest reads our answer, we are already configured for it.
    pub async fn complete_accepting<F, Fut>(
        mailbox: &impl Mailbox,
        code: &PairingCode,
        deadline: SystemTime,
        accept: F,
    ) -> Result<PeerInfo, PairingError>
    where
        F: FnOnce(PeerInfo) -> Fut,
        Fut: std::future::Future<Output = Result<PeerInfo, String>>,
    {
        complete_resumable(mailbox, code, None, deadline, accept).await
    }

    /// `complete_accepting` that a host restarted mid-pairing can pick up again: with the same
    /// `seed` it publishes the same SPAKE2 message, so a `host-pake` slot it wrote before the
    /// restart is recognized as its own and a guest that already answered it is not stranded.
    pub async fn complete_resumable<F, Fut>(
        mailbox: &impl Mailbox,
        code: &PairingCode,
        seed: Option<&HostSeed>,
        deadline: SystemTime,
        accept: F,
    ) -> Result<PeerInfo, PairingError>
    where
        F: FnOnce(PeerInfo) -> Fut,
        Fut: std::future::Future<Output = Result<PeerInfo, String>>,
    {
        let id = code.mailbox();
        let (pake, message) = match seed {
            Some(seed) => HostPake::start_seeded(code, seed),
            None => HostPake::start(code),
        };
        match mailbox.put(id, Slot::HostPake, &message).await {
            Ok(()) => {}
            // Our own message from before a restart: carry on where that run stopped.
            Err(PairingError::CodeAlreadyUsed)
                if seed.is_some() && mailbox.get(id, Slot::HostPake, Duration::ZERO).await?.as_deref() == Some(&message[..]) => {}
            // Otherwise another host process started on this code: its secret scalar is not
            // ours, so we cannot finish in its place.
            Err(e) => return Err(e),
        }

        let Some(guest_message) = wait_for(mailbox, id, Slot::GuestPake, deadline, true).await? else {
            // Close the mailbox so a late joiner is told the code expired instead of hanging.
            let _ = mailbox.delete(id).await;
            return Err(PairingError::Timeout("a machine to join with this code"));
        };
        let keys = pake.finish(&guest_message);
        let Some(guest_data) = wait_for(mailbox, id, Slot::GuestData, deadline, true).await? else {
            let _ = mailbox.delete(id).await;
            return Err(PairingError::Timeout("the joining machine to send its details"));
        };
        let opened = keys.and_then(|k| k.open_from_guest(&guest_data).map(|plain| (k, plain)));
        let (keys, plaintext): (SessionKeys, Vec<u8>) = match opened {
            Ok(ok) => ok,
            Err(_) => {
                let _ = mailbox.put(id, Slot::HostData, MISMATCH_MARKER).await;
                return Err(PairingError::CodeMismatch);
            }
        };
        let refuse = |reason: String| {
            let failure = serde_json::json!({ "error": reason });
            keys.seal_for_guest(failure.to_string().as_bytes())
        };
        let guest = match read_peer_info(&plaintext) {
            Ok(guest) => guest,
            Err(e) => {
                let _ = mailbox.put(id, Slot::HostData, &refuse(format!("the host could not use your details: {e}"))).await;
                return Err(e);
            }
        };
        match accept(guest.clone()).await {
            Ok(me) => {
                mailbox.put(id, Slot::HostData, &keys.seal_for_guest(&to_json(&me))).await?;
                Ok(guest)
            }
            Err(reason) => {
                let _ = mailbox.put(id, Slot::HostData, &refuse(format!("the host could not add this machine: {reason}"))).await;
                Err(PairingError::AcceptFailed(reason))
            }
        }
    }
}

pub mod guest {
    use super::*;

    /// Joins with `code`, waiting for the host as long as a mailbox can live.
    pub async fn join(mailbox: &impl Mailbox, code: &PairingCode, me: &PeerInfo) -> Result<PeerInfo, PairingError> {
        join_until(mailbox, code, me, SystemTime::now() + MAILBOX_TTL).await
    }

    /// Steps 3, 5 and 7. Returns the host's info (with the other mesh members).
    pub async fn join_until(
        mailbox: &impl Mailbox,
        code: &PairingCode,
        me: &PeerInfo,
        deadline: SystemTime,
    ) -> Result<PeerInfo, PairingError> {
        claim(mailbox, code, deadline).await?.finish(mailbox, me).await
    }

    /// A code this guest holds: the relay took its SPAKE2 message (write-once), so no other
    /// machine can use the code any more, and both sides agree on keys if the codes matched.
    /// Claiming first lets a joiner learn "already used" before it sets anything up.
    pub struct Claim {
        mailbox: MailboxId,
        keys: SessionKeys,
        deadline: SystemTime,
    }

    /// Steps 3 and 5: waits (until `deadline`) for the host's message and answers it.
    pub async fn claim(mailbox: &impl Mailbox, code: &PairingCode, deadline: SystemTime) -> Result<Claim, PairingError> {
        let id = code.mailbox();
        let host_message = wait_for(mailbox, id, Slot::HostPake, deadline, false)
            .await?
            .ok_or(PairingError::Timeout("the inviting machine (is its botsync running?)"))?;
        let (pake, message) = GuestPake::start(code);
        // Write-once: if another joiner got here first this is 409, "code already used".
        mailbox.put(id, Slot::GuestPake, &message).await?;
        match pake.finish(&host_message) {
            Ok(keys) => Ok(Claim { mailbox: id, keys, deadline }),
            Err(e) => {
                // Unblock the host: it fails to decrypt this and reports the mismatch too.
                let _ = mailbox.put(id, Slot::GuestData, MISMATCH_MARKER).await;
                Err(e)
            }
        }
    }

    impl Claim {
        /// Step 7: sends `me` and returns the host's info.
        pub async fn finish(self, mailbox: &impl Mailbox, me: &PeerInfo) -> Result<PeerInfo, PairingError> {
            let id = self.mailbox;
            mailbox.put(id, Slot::GuestData, &self.keys.seal_for_host(&to_json(me))).await?;
            let reply = wait_for(mailbox, id, Slot::HostData, self.deadline, true)
                .await?
                .ok_or(PairingError::Timeout("the inviting machine to answer"))?;
            if reply == MISMATCH_MARKER {
                return Err(PairingError::CodeMismatch);
            }
            read_peer_info(&self.keys.open_from_host(&reply)?)
        }

        /// Tells the host (authenticated, like real data) that this machine cannot go on, so it
        /// ends the invite at once with `reason` instead of waiting until the code expires.
        pub async fn abandon(self, mailbox: &impl Mailbox, reason: &str) {
            let failure = serde_json::json!({ "error": format!("the joining machine gave up: {reason}") });
            let _ = mailbox.put(self.mailbox, Slot::GuestData, &self.keys.seal_for_host(failure.to_string().as_bytes())).await;
        }
    }

    /// How a relay join ended: a v2 exchange, or the original protocol's bare host device ID
    /// (the caller must then announce `original::device_name_tag` in its device name).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Joined {
        V2(PeerInfo),
        Original(OriginalPayload),
    }

    /// `join` over a relay, falling back to the original protocol when the relay has no such
    /// mailbox (an original code) or no v2 API at all.
    pub async fn join_via_relay(relay: &RelayClient, code: &PairingCode, me: &PeerInfo) -> Result<Joined, PairingError> {
        match claim_via_relay(relay, code, SystemTime::now() + MAILBOX_TTL).await? {
            Claimed::V2(claim) => claim.finish(relay, me).await.map(Joined::V2),
            Claimed::Original(payload) => Ok(Joined::Original(payload)),
        }
    }

    /// A code claimed over a relay: a v2 exchange to finish, or an original-protocol code, which
    /// the lookup itself used up (and which carries all there is to learn).
    pub enum Claimed {
        V2(Claim),
        Original(OriginalPayload),
    }

    /// `claim` over a relay, with `join_via_relay`'s fallback to the original protocol.
    pub async fn claim_via_relay(relay: &RelayClient, code: &PairingCode, deadline: SystemTime) -> Result<Claimed, PairingError> {
        match claim(relay, code, deadline).await {
            Err(PairingError::CodeExpired | PairingError::OriginalOnlyRelay { .. }) => {
                original::lookup(relay, &OriginalCode::from(code)).await.map(Claimed::Original)
            }
            other => other.map(Claimed::V2),
        }
    }
}
