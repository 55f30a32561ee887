//! The two sides of a v2 pairing, as plain async functions over any `Mailbox`, so a CLI can wait
//! in-process or hand the code to a background process.
//!
//! The host does nothing secret before `host::complete`: `open_invite` only allocates a mailbox
//! and draws the secret words, and `complete` starts SPAKE2 from the code. So a daemon can finish
//! the exchange from the code alone, after the CLI that printed it has exited.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::mailbox::Mailbox;
use super::pake::{GuestPake, HostPake, HostSeed, SessionKeys, MISMATCH_MARKER};
use super::wire::{AccessToken, MailboxId, Slot, MAILBOX_TTL};
use super::{PairingCode, PairingError, PeerInfo};

/// One long-poll; below the relay's 30 s cap so proxies with 30 s idle timeouts don't cut it.
const POLL: Duration = Duration::from_secs(25);
/// A relay that answers "empty" at once (ignoring `wait`) must not turn the wait into a busy loop.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// A code, when its mailbox expires on the relay, and the host's token for that mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub code: PairingCode,
    /// Unix milliseconds, as the relay reported it.
    pub expires_at: u64,
    pub host_token: AccessToken,
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
    token: Option<&AccessToken>,
    deadline: SystemTime,
    mut reached: bool,
) -> Result<Option<Vec<u8>>, PairingError> {
    loop {
        let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return Ok(None);
        }
        let started = Instant::now();
        let pause = match mailbox.get(id, slot, token, left.min(POLL)).await {
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

/// What a host has seen and sent so far in one exchange, kept by its caller (the daemon keeps it
/// in the invite's record) so that a host restarted mid-exchange neither answers a second guest
/// message (a second guess at the code) nor seals a second reply under the same key and nonce: it
/// resends the exact bytes it sent before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostProgress {
    /// SHA-256 (hex) of the `guest-pake` this host finished SPAKE2 with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_pake_sha256: Option<String>,
    /// SHA-256 (hex) of the `guest-data` it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_data_sha256: Option<String>,
    /// The exact `host-data` bytes (hex), recorded before they are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_hex: Option<String>,
    /// The guest that reply accepted; `None` when it was a refusal or a mismatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<PeerInfo>,
    /// Why the reply refused the guest, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// Where a host's progress is kept. Saving must be durable before the call returns: the host acts
/// on what it saved (answers a guest message, sends a reply) only after it is saved.
pub trait HostJournal {
    fn save(&mut self, progress: &HostProgress) -> Result<(), String>;
}

/// A host that will never be resumed: nothing to keep.
pub struct NoJournal;

impl HostJournal for NoJournal {
    fn save(&mut self, _: &HostProgress) -> Result<(), String> {
        Ok(())
    }
}

impl<F: FnMut(&HostProgress) -> Result<(), String>> HostJournal for F {
    fn save(&mut self, progress: &HostProgress) -> Result<(), String> {
        self(progress)
    }
}

pub mod host {
    use super::*;

    /// Step 1: a mailbox on the relay and a fresh code in it. Nothing is written yet.
    pub async fn open_invite(mailbox: &impl Mailbox) -> Result<Invite, PairingError> {
        let allocation = mailbox.allocate().await?;
        Ok(Invite {
            code: PairingCode::generate(&allocation.mailbox),
            expires_at: allocation.expires_at,
            host_token: allocation.host_token,
        })
    }

    /// Steps 2 and 6: publish our SPAKE2 message, wait (until `deadline`) for a guest, check it
    /// used the same code, and answer with `me`. Returns the guest's info.
    pub async fn complete(
        mailbox: &impl Mailbox,
        invite: &Invite,
        me: &PeerInfo,
        deadline: SystemTime,
    ) -> Result<PeerInfo, PairingError> {
        let session = Session { code: &invite.code, token: &invite.host_token, seed: None, deadline };
        complete_journaled(mailbox, session, HostProgress::default(), &mut NoJournal, |_guest| async { Ok(me.clone()) })
            .await
    }

    /// One host side of one code.
    pub struct Session<'a> {
        pub code: &'a PairingCode,
        pub token: &'a AccessToken,
        /// With a seed the host publishes the same SPAKE2 message every run, so a host restarted
        /// mid-pairing recognizes its own `host-pake` and a guest that already answered it is not
        /// stranded. Without one, a second run on the same code is refused.
        pub seed: Option<&'a HostSeed>,
        pub deadline: SystemTime,
    }

    /// The host side, resumable: `progress` is what `journal` saved in an earlier run (default for
    /// a first run). `accept` gets the verified guest and returns the info to send back (or why
    /// the guest cannot be accepted, which the guest is told), so when the guest reads our answer
    /// we are already configured for it.
    pub async fn complete_journaled<F, Fut>(
        mailbox: &impl Mailbox,
        session: Session<'_>,
        mut progress: HostProgress,
        journal: &mut impl HostJournal,
        accept: F,
    ) -> Result<PeerInfo, PairingError>
    where
        F: FnOnce(PeerInfo) -> Fut,
        Fut: std::future::Future<Output = Result<PeerInfo, String>>,
    {
        let Session { code, token, seed, deadline } = session;
        let id = code.mailbox();
        let (pake, message) = match seed {
            Some(seed) => HostPake::start_seeded(code, seed),
            None => HostPake::start(code),
        };
        match mailbox.put(id, Slot::HostPake, token, &message).await {
            Ok(()) => {}
            // Our own message from before a restart: carry on where that run stopped.
            Err(PairingError::CodeAlreadyUsed)
                if seed.is_some() && mailbox.get(id, Slot::HostPake, None, Duration::ZERO).await?.as_deref() == Some(&message[..]) => {}
            // A reply already sent and consumed: the mailbox is gone, the exchange is over.
            Err(PairingError::CodeExpired) if progress.reply_hex.is_some() => return finished(&progress),
            // Otherwise another host process started on this code: its secret scalar is not
            // ours, so we cannot finish in its place.
            Err(e) => return Err(e),
        }

        let Some(guest_message) = wait_for(mailbox, id, Slot::GuestPake, Some(token), deadline, true).await? else {
            // Close the mailbox so a late joiner is told the code expired instead of hanging.
            let _ = mailbox.delete(id, token).await;
            return Err(PairingError::Timeout("a machine to join with this code"));
        };
        // One guest message per code, across restarts: answering another would give whoever
        // supplied it a second guess against the same (seeded) secret.
        if record(&mut progress.guest_pake_sha256, &guest_message)? {
            journal.save(&progress).map_err(journal_failed)?;
        }
        let keys = pake.finish(&guest_message);
        let Some(guest_data) = wait_for(mailbox, id, Slot::GuestData, Some(token), deadline, true).await? else {
            let _ = mailbox.delete(id, token).await;
            return Err(PairingError::Timeout("the joining machine to send its details"));
        };
        if record(&mut progress.guest_data_sha256, &guest_data)? {
            journal.save(&progress).map_err(journal_failed)?;
        }
        if progress.reply_hex.is_some() {
            return resend(mailbox, id, token, &progress).await;
        }
        let opened = keys.and_then(|k| k.open_from_guest(&guest_data).map(|plain| (k, plain)));
        let (keys, plaintext): (SessionKeys, Vec<u8>) = match opened {
            Ok(ok) => ok,
            Err(_) => {
                progress.refusal = Some(PairingError::CodeMismatch.to_string());
                return reply(mailbox, id, token, progress, MISMATCH_MARKER.to_vec(), journal).await;
            }
        };
        let refusal = |reason: String| {
            let failure = serde_json::json!({ "error": reason });
            keys.seal_for_guest(failure.to_string().as_bytes())
        };
        let guest = match read_peer_info(&plaintext) {
            Ok(guest) => guest,
            Err(e) => {
                let sealed = refusal(format!("the host could not use your details: {e}"));
                progress.refusal = Some(e.to_string());
                return reply(mailbox, id, token, progress, sealed, journal).await;
            }
        };
        match accept(guest.clone()).await {
            Ok(me) => {
                progress.guest = Some(guest);
                let sealed = keys.seal_for_guest(&to_json(&me));
                reply(mailbox, id, token, progress, sealed, journal).await
            }
            Err(reason) => {
                let sealed = refusal(format!("the host could not add this machine: {reason}"));
                progress.refusal = Some(format!("accept: {reason}"));
                reply(mailbox, id, token, progress, sealed, journal).await
            }
        }
    }

    /// Records the hash of `bytes` in `field` (true: newly recorded, to be saved) or, if a
    /// different one was recorded in an earlier run, refuses.
    fn record(field: &mut Option<String>, bytes: &[u8]) -> Result<bool, PairingError> {
        let hash = sha256_hex(bytes);
        match field {
            Some(known) if *known == hash => Ok(false),
            Some(_) => Err(PairingError::GuestReplaced),
            None => {
                *field = Some(hash);
                Ok(true)
            }
        }
    }

    /// Saves the reply, then sends it: once saved, every later run sends these bytes and no others.
    async fn reply(
        mailbox: &impl Mailbox,
        id: MailboxId,
        token: &AccessToken,
        mut progress: HostProgress,
        bytes: Vec<u8>,
        journal: &mut impl HostJournal,
    ) -> Result<PeerInfo, PairingError> {
        progress.reply_hex = Some(data_encoding::HEXLOWER.encode(&bytes));
        journal.save(&progress).map_err(journal_failed)?;
        resend(mailbox, id, token, &progress).await
    }

    async fn resend(mailbox: &impl Mailbox, id: MailboxId, token: &AccessToken, progress: &HostProgress) -> Result<PeerInfo, PairingError> {
        let bytes = progress
            .reply_hex
            .as_deref()
            .and_then(|hex| data_encoding::HEXLOWER.decode(hex.as_bytes()).ok())
            .ok_or_else(|| journal_failed("the recorded reply is unreadable".into()))?;
        match mailbox.put(id, Slot::HostData, token, &bytes).await {
            // Written before the restart (write-once), or written and already read by the guest.
            Ok(()) | Err(PairingError::CodeAlreadyUsed | PairingError::CodeExpired) => finished(progress),
            Err(e) => Err(e),
        }
    }

    fn finished(progress: &HostProgress) -> Result<PeerInfo, PairingError> {
        match (&progress.guest, &progress.refusal) {
            (Some(guest), _) => Ok(guest.clone()),
            (None, Some(reason)) if *reason == PairingError::CodeMismatch.to_string() => Err(PairingError::CodeMismatch),
            (None, Some(reason)) => match reason.strip_prefix("accept: ") {
                Some(reason) => Err(PairingError::AcceptFailed(reason.to_string())),
                None => Err(PairingError::PeerProtocol(reason.clone())),
            },
            (None, None) => Err(journal_failed("the recorded reply has no outcome".into())),
        }
    }

    fn journal_failed(reason: String) -> PairingError {
        PairingError::AcceptFailed(format!("cannot record the pairing's progress: {reason}"))
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

    /// A code this guest holds: the relay took its SPAKE2 message (write-once) and bound this
    /// guest's token to the mailbox, so no other machine can use the code any more, and both
    /// sides agree on keys if the codes matched. Claiming first lets a joiner learn "already
    /// used" before it sets anything up.
    pub struct Claim {
        mailbox: MailboxId,
        keys: SessionKeys,
        token: AccessToken,
        deadline: SystemTime,
    }

    /// Steps 3 and 5: waits (until `deadline`) for the host's message and answers it. Only the
    /// mailbox words reach the relay, in the path; the secret words never leave this machine.
    pub async fn claim(mailbox: &impl Mailbox, code: &PairingCode, deadline: SystemTime) -> Result<Claim, PairingError> {
        let id = code.mailbox();
        let host_message = wait_for(mailbox, id, Slot::HostPake, None, deadline, false)
            .await?
            .ok_or(PairingError::Timeout("the inviting machine (is its botsync running?)"))?;
        let (pake, message) = GuestPake::start(code);
        let token = AccessToken::random();
        // Write-once: if another joiner got here first this is 409, "code already used".
        mailbox.put(id, Slot::GuestPake, &token, &message).await?;
        match pake.finish(&host_message) {
            Ok(keys) => Ok(Claim { mailbox: id, keys, token, deadline }),
            Err(e) => {
                // Unblock the host: it fails to decrypt this and reports the mismatch too.
                let _ = mailbox.put(id, Slot::GuestData, &token, MISMATCH_MARKER).await;
                Err(e)
            }
        }
    }

    impl Claim {
        /// Step 7: sends `me` and returns the host's info.
        pub async fn finish(self, mailbox: &impl Mailbox, me: &PeerInfo) -> Result<PeerInfo, PairingError> {
            let id = self.mailbox;
            mailbox.put(id, Slot::GuestData, &self.token, &self.keys.seal_for_host(&to_json(me))).await?;
            let reply = wait_for(mailbox, id, Slot::HostData, Some(&self.token), self.deadline, true)
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
            let sealed = self.keys.seal_for_host(failure.to_string().as_bytes());
            let _ = mailbox.put(self.mailbox, Slot::GuestData, &self.token, &sealed).await;
        }
    }
}
