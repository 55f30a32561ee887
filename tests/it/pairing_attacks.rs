//! The attack suite: a lying relay (tests/pairing_attack_support, in front of the real relay)
//! that 404s v2, swaps, replays and reorders slots, answers the host with a mailbox of its own,
//! burns codes and floods. For each: no secret word reaches it (every request line, header and
//! body is recorded and searched), nobody it controls is accepted by either side, and both people
//! get a clear error with a stable code. Then a host killed at each step of its exchange: no
//! second guess, no reply sealed twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use botsync::error::Error;
use botsync::pairing::exchange::host::Session;
use botsync::pairing::pake::GuestPake;
use botsync::pairing::{guest, host, HostProgress, Invite, Mailbox, MailboxId, PairingCode, PairingError, PeerInfo, RelayClient};
use crate::support::lying_relay::{LyingRelay, Seen, Verdict};
use crate::support::pairing::*;
use serde_json::json;

fn soon(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

fn secret_words(code: &PairingCode) -> Vec<&'static str> {
    code.words()[2..].to_vec()
}

fn code_of(error: &PairingError) -> &'static str {
    Error::from(error.clone()).code().as_str()
}

/// The last body the relay received for `PUT …/<slot>`.
fn last_put(history: &[Seen], slot: &str) -> Option<Vec<u8>> {
    history.iter().rev().find(|s| s.is("PUT", slot)).map(|s| s.body.clone())
}

/// Runs host and guest through `relay` with a real code; returns (host, guest) outcomes.
async fn exchange_through(relay: &LyingRelay, invite: &Invite) -> (Result<PeerInfo, PairingError>, Result<PeerInfo, PairingError>) {
    let client = RelayClient::new(&relay.url).unwrap();
    let host_task = {
        let (client, invite) = (client.clone(), invite.clone());
        tokio::spawn(async move { host::complete(&client, &invite, &host_info(), soon(4)).await })
    };
    let guest = guest::join_until(&client, &invite.code, &info(2, "laptop"), soon(4)).await;
    (host_task.await.unwrap(), guest)
}

/// A real exchange through a lying relay with `policy`: checks that neither side accepted anyone
/// but the other and that no secret word reached the relay; returns (host, guest) outcomes.
async fn attacked(
    policy: impl Fn(&Seen, &[Seen]) -> Verdict + Send + Sync + 'static,
) -> (Result<PeerInfo, PairingError>, Result<PeerInfo, PairingError>) {
    let relay = LyingRelay::start(policy).await;
    let invite = host::open_invite(&RelayClient::new(&relay.url).unwrap()).await.unwrap();
    let (host, guest) = exchange_through(&relay, &invite).await;
    nobody_else_accepted(&host, &guest);
    relay.assert_never_saw(&secret_words(&invite.code));
    (host, guest)
}

/// Neither side accepted anyone but the real other side.
fn nobody_else_accepted(host: &Result<PeerInfo, PairingError>, guest: &Result<PeerInfo, PairingError>) {
    if let Ok(peer) = host {
        assert_eq!(peer.device_id, device(2), "the host accepted a device the relay controls");
    }
    if let Ok(peer) = guest {
        assert_eq!(peer.device_id, device(1), "the guest accepted a device the relay controls");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_404s_v2_learns_no_secret_word_and_gets_no_original_lookup() {
    for plain in [false, true] {
        let relay = LyingRelay::start(move |seen, _| {
            if seen.target.starts_with("/v2") {
                if plain {
                    Verdict::Answer(404, "text/plain", b"Not Found".to_vec())
                } else {
                    Verdict::json(404, json!({ "error": "unknown or expired code" }))
                }
            } else {
                Verdict::Forward
            }
        })
        .await;
        let client = RelayClient::new(&relay.url).unwrap();
        // The host: no v2 here, and it does not quietly take an original code instead.
        let host = host::open_invite(&client).await.unwrap_err();
        assert!(matches!(host, PairingError::OriginalOnlyRelay { .. }), "{host:?}");
        // The joiner, with a real code: a clear error, never the original protocol.
        let code = PairingCode::generate(&MailboxId::random());
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("joiner");
        let options = botsync::commands::join::JoinOptions {
            code: code.to_string(),
            root: Some(root.display().to_string()),
            relay: Some(relay.url.clone()),
            timeout_seconds: Some(5),
            ..Default::default()
        };
        let error = botsync::commands::join::run(&options).await.unwrap_err();
        let expected = if plain { "BOTSYNC_RELAY_PROTOCOL" } else { "BOTSYNC_CODE_EXPIRED" };
        assert_eq!(error.code().as_str(), expected, "{error}");
        assert!(!error.to_string().contains('\n'));
        assert!(!root.exists(), "a refused join created {}", root.display());
        relay.assert_never_saw(&secret_words(&code));
        assert!(!relay.requests().iter().any(|s| s.target.starts_with("/pair")), "the joiner fell back to the original protocol");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_is_refused_with_a_v2_relay_before_anything_changes() {
    let relay = Relay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    let init = botsync::commands::init::InitOptions {
        root: Some(root.display().to_string()),
        relay: Some(relay.url.clone()),
        original: Some(true),
        ..Default::default()
    };
    let error = botsync::commands::init::run(&init).await.unwrap_err();
    assert_eq!(error.code().as_str(), "BOTSYNC_USAGE", "{error}");
    assert!(error.to_string().contains("drop --original") && !error.to_string().contains('\n'), "{error}");
    assert!(!root.exists());
    let join = botsync::commands::join::JoinOptions {
        code: PairingCode::generate(&MailboxId::random()).to_string(),
        root: Some(root.display().to_string()),
        relay: Some(relay.url.clone()),
        original: Some(true),
        ..Default::default()
    };
    let error = botsync::commands::join::run(&join).await.unwrap_err();
    assert_eq!(error.code().as_str(), "BOTSYNC_USAGE", "{error}");
    assert!(!root.exists());
    let both = botsync::commands::invite::check_route(Some(&relay.url), Some(true), Some(true), None).await.unwrap_err();
    assert_eq!(both.code().as_str(), "BOTSYNC_USAGE");
    // The original protocol with discovery off, and a v2-free relay: also refused up front.
    let v2_free = LyingRelay::start(|seen, _| {
        if seen.target.starts_with("/v2") { Verdict::Answer(404, "text/plain", vec![]) } else { Verdict::Forward }
    })
    .await;
    let init = botsync::commands::init::InitOptions { network: Some("direct".into()), relay: Some(v2_free.url.clone()), ..init };
    let error = botsync::commands::init::run(&init).await.unwrap_err();
    assert_eq!(error.code().as_str(), "BOTSYNC_USAGE", "{error}");
    assert!(error.to_string().contains("direct"), "{error}");
    assert!(!root.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_replayed_and_reordered_slots_are_mismatches_on_both_sides() {
    // An exchange recorded earlier, for the replay.
    let earlier = LyingRelay::start(|_, _| Verdict::Forward).await;
    let old = host::open_invite(&RelayClient::new(&earlier.url).unwrap()).await.unwrap();
    let (h, g) = exchange_through(&earlier, &old).await;
    assert!(h.is_ok() && g.is_ok());
    let recorded = earlier.requests();
    let old_guest_pake = last_put(&recorded, "/guest-pake").unwrap();
    let old_guest_data = last_put(&recorded, "/guest-data").unwrap();

    type Attack = Box<dyn Fn(&Seen, &[Seen]) -> Verdict + Send + Sync>;
    let reflect = |from: &'static str| -> Attack {
        Box::new(move |_: &Seen, history: &[Seen]| match last_put(history, from) {
            Some(bytes) => Verdict::Answer(200, "application/octet-stream", bytes),
            None => Verdict::Answer(204, "application/octet-stream", vec![]),
        })
    };
    let attacks: Vec<(&str, &'static str, Attack)> = vec![
        // The host is shown its own message as the guest's.
        ("swap host-pake into guest-pake", "/guest-pake", reflect("/host-pake")),
        // The guest is shown its own sealed data as the host's answer.
        ("reorder guest-data into host-data", "/host-data", reflect("/guest-data")),
        ("replay an old guest-pake", "/guest-pake", {
            let old = old_guest_pake.clone();
            Box::new(move |_: &Seen, _: &[Seen]| Verdict::Answer(200, "application/octet-stream", old.clone()))
        }),
        ("replay an old guest-data", "/guest-data", {
            let old = old_guest_data.clone();
            Box::new(move |_: &Seen, _: &[Seen]| Verdict::Answer(200, "application/octet-stream", old.clone()))
        }),
    ];
    for (name, slot, attack) in attacks {
        let (host, guest) =
            attacked(move |seen, history| if seen.is("GET", slot) { attack(seen, history) } else { Verdict::Forward }).await;
        let guest = guest.expect_err(name);
        assert_eq!(code_of(&guest), "BOTSYNC_CODE_MISMATCH", "{name}: guest {guest}");
        if slot != "/host-data" {
            // The guest cannot confirm the last message back, so only then may the host succeed.
            let host = host.expect_err(name);
            assert!(matches!(code_of(&host), "BOTSYNC_CODE_MISMATCH" | "BOTSYNC_PAIRING_TIMEOUT"), "{name}: host {host}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_playing_guest_or_host_with_its_own_code_gets_nobody_in() {
    // Playing guest: the relay writes its own guess in place of the joiner's message.
    let (host, guest) = attacked(|seen, _| {
        if seen.is("PUT", "/guest-pake") {
            let mailbox: MailboxId = seen.target.split('/').nth(3).unwrap().parse().unwrap();
            Verdict::ForwardBody(GuestPake::start(&PairingCode::generate(&mailbox)).1)
        } else {
            Verdict::Forward
        }
    })
    .await;
    assert_eq!(host.map(|_| ()), Err(PairingError::CodeMismatch));
    assert_eq!(guest.map(|_| ()), Err(PairingError::CodeMismatch));

    // Playing host: the relay hands the host a mailbox where its own host message (its own code)
    // is already in. The host refuses the occupied mailbox; a joiner reaching the relay's
    // message with the host's code gets a mismatch.
    let upstream = LyingRelay::start(|_, _| Verdict::Forward).await;
    let own = upstream.upstream.client().allocate().await.unwrap();
    let relays_code = PairingCode::generate(&own.mailbox);
    let (_, message) = botsync::pairing::pake::HostPake::start(&relays_code);
    upstream.upstream.client().put(own.mailbox, botsync::pairing::Slot::HostPake, &own.host_token, &message).await.unwrap();
    let allocation = serde_json::to_value(&own).unwrap();
    let relay = LyingRelay::start(move |seen, _| {
        if seen.is("POST", "/v2/mailboxes") { Verdict::json(201, allocation.clone()) } else { Verdict::Forward }
    })
    .await;
    // The lying relay forwards to its own upstream, so point it at the one holding the mailbox.
    let client = RelayClient::new(&relay.url).unwrap();
    let invite = host::open_invite(&client).await.unwrap();
    assert_eq!(invite.code.mailbox(), own.mailbox);
    let direct = RelayClient::new(&upstream.upstream.url).unwrap();
    let host = host::complete(&direct, &invite, &host_info(), soon(3)).await;
    assert_eq!(host.as_ref().map(|_| ()), Err(&PairingError::CodeAlreadyUsed));
    // Nobody holding the relay's code answers as the host: a timeout, or a mismatch if it tries.
    let guest = guest::join_until(&direct, &invite.code, &info(2, "laptop"), soon(3)).await.unwrap_err();
    assert!(matches!(code_of(&guest), "BOTSYNC_CODE_MISMATCH" | "BOTSYNC_PAIRING_TIMEOUT"), "{guest}");
    relay.assert_never_saw(&secret_words(&invite.code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burned_codes_and_floods_end_in_clear_errors() {
    // Burning: the relay tells the joiner the code is gone, and the host too.
    let (host, guest) = attacked(|seen, _| {
        if seen.target.contains("/v2/mailboxes/") {
            Verdict::json(404, json!({ "error": "unknown or expired code" }))
        } else {
            Verdict::Forward
        }
    })
    .await;
    assert_eq!(code_of(&host.unwrap_err()), "BOTSYNC_CODE_EXPIRED");
    assert_eq!(code_of(&guest.unwrap_err()), "BOTSYNC_CODE_EXPIRED");

    // Flooding: answers far larger than any relay's, to every slot read.
    let (host, guest) = attacked(|seen, _| {
        if seen.method == "GET" && seen.target.contains("/v2/mailboxes/") {
            Verdict::Answer(200, "application/octet-stream", vec![b'x'; 1 << 20])
        } else {
            Verdict::Forward
        }
    })
    .await;
    assert_eq!(code_of(&guest.unwrap_err()), "BOTSYNC_RELAY_PROTOCOL");
    assert_eq!(code_of(&host.unwrap_err()), "BOTSYNC_RELAY_PROTOCOL");

    // A third party who knows the two public words cannot burn the code on the real relay.
    let relay = Relay::start().await;
    let invite = host::open_invite(&relay.client()).await.unwrap();
    let stranger = reqwest::Client::new();
    let url = format!("{}/v2/mailboxes/{}", relay.url, invite.code.mailbox());
    assert_eq!(stranger.delete(&url).send().await.unwrap().status(), 403);
    let forged = botsync::pairing::AccessToken::random();
    let answer = stranger.delete(&url).header("authorization", forged.header_value()).send().await.unwrap();
    assert_eq!(answer.status(), 403);
    assert_eq!(answer.json::<serde_json::Value>().await.unwrap()["code"], "forbidden");
    assert_eq!(relay.live_mailboxes(), 1, "the code survived");
}

/// A journal the test can crash: it keeps what was saved and fails the `crash_at`-th save,
/// before (`persist_first = false`) or after (`true`) writing it, as a daemon killed there would.
#[derive(Clone)]
struct CrashingJournal {
    saved: Arc<Mutex<HostProgress>>,
    saves: Arc<Mutex<usize>>,
    crash_at: Option<usize>,
    persist_first: bool,
}

impl CrashingJournal {
    fn new(crash_at: Option<usize>, persist_first: bool) -> Self {
        CrashingJournal { saved: Arc::default(), saves: Arc::default(), crash_at, persist_first }
    }

    fn save(&self, progress: &HostProgress) -> Result<(), String> {
        let mut saves = self.saves.lock().unwrap();
        *saves += 1;
        let crash = self.crash_at == Some(*saves);
        if !crash || self.persist_first {
            *self.saved.lock().unwrap() = progress.clone();
        }
        if crash { Err("killed".into()) } else { Ok(()) }
    }
}

/// One run of a journaled host that answers as `name`: runs that sealed their own reply would
/// send different bytes, so identical replies prove the reply was sealed once.
async fn run_host(
    client: &RelayClient,
    invite: &Invite,
    seed: &botsync::pairing::pake::HostSeed,
    journal: &CrashingJournal,
    name: &str,
) -> Result<PeerInfo, PairingError> {
    let session = Session { code: &invite.code, token: &invite.host_token, seed: Some(seed), deadline: soon(5) };
    let progress = journal.saved.lock().unwrap().clone();
    let mut save = |p: &HostProgress| journal.save(p);
    let me = PeerInfo { name: name.to_string(), ..host_info() };
    host::complete_journaled(client, session, progress, &mut save, |_| async { Ok(me) }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_at_each_step_resends_its_exact_reply_and_takes_no_second_guess() {
    // Saves: 1 guest-pake seen, 2 guest-data seen, 3 reply (before it is sent).
    for crash_at in 1..=3 {
        for persist_first in [false, true] {
            let relay = LyingRelay::start(|_, _| Verdict::Forward).await;
            let client = RelayClient::new(&relay.url).unwrap();
            let invite = host::open_invite(&client).await.unwrap();
            let seed = botsync::pairing::pake::HostSeed::derive(b"machine secret", &invite.code);
            let guest = {
                let (client, code) = (client.clone(), invite.code);
                tokio::spawn(async move { guest::join_until(&client, &code, &info(2, "laptop"), soon(8)).await })
            };
            let journal = CrashingJournal::new(Some(crash_at), persist_first);
            let first = run_host(&client, &invite, &seed, &journal, "first run").await;
            assert!(first.is_err(), "crash {crash_at}: the first run must stop");
            // The restarted host, with what the first run left on disk.
            let restarted = CrashingJournal { crash_at: None, ..journal.clone() };
            let second = run_host(&client, &invite, &seed, &restarted, "second run").await;
            assert_eq!(second.map(|g| g.device_id), Ok(device(2)), "crash {crash_at}/{persist_first}");
            let host = guest.await.unwrap().unwrap();
            assert_eq!(host.device_id, device(1));
            // A reply recorded before the kill is the one the guest gets, though the second run
            // would have answered otherwise.
            let recorded = crash_at == 3 && persist_first;
            assert_eq!(host.name, if recorded { "first run" } else { "second run" }, "crash {crash_at}/{persist_first}");
            let replies: Vec<Vec<u8>> = relay.requests().iter().filter(|s| s.is("PUT", "/host-data")).map(|s| s.body.clone()).collect();
            assert!(!replies.is_empty());
            assert!(replies.windows(2).all(|w| w[0] == w[1]), "crash {crash_at}: a reply was sealed twice");
            let guesses = relay.requests().iter().filter(|s| s.is("PUT", "/guest-pake")).count();
            assert_eq!(guesses, 1);
            relay.assert_never_saw(&secret_words(&invite.code));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_host_refuses_another_guest_message() {
    let swapped = Arc::new(Mutex::new(None::<Vec<u8>>));
    let relay = LyingRelay::start({
        let swapped = swapped.clone();
        move |seen, _| match (&*swapped.lock().unwrap(), seen.is("GET", "/guest-pake")) {
            (Some(bytes), true) => Verdict::Answer(200, "application/octet-stream", bytes.clone()),
            _ => Verdict::Forward,
        }
    })
    .await;
    let client = RelayClient::new(&relay.url).unwrap();
    let invite = host::open_invite(&client).await.unwrap();
    let seed = botsync::pairing::pake::HostSeed::derive(b"machine secret", &invite.code);
    let guest = {
        let (client, code) = (client.clone(), invite.code);
        tokio::spawn(async move { guest::join_until(&client, &code, &info(2, "laptop"), soon(3)).await })
    };
    // Killed right after it recorded the guest message it is about to answer.
    let journal = CrashingJournal::new(Some(1), true);
    assert!(run_host(&client, &invite, &seed, &journal, "first run").await.is_err());
    // The relay now presents a guess of its own: a second try against the same seeded secret.
    *swapped.lock().unwrap() = Some(GuestPake::start(&PairingCode::generate(&invite.code.mailbox())).1);
    let restarted = CrashingJournal { crash_at: None, ..journal.clone() };
    let before = relay.requests().len();
    let second = run_host(&client, &invite, &seed, &restarted, "second run").await.unwrap_err();
    assert_eq!(second, PairingError::GuestReplaced);
    assert_eq!(code_of(&second), "BOTSYNC_CODE_MISMATCH");
    assert!(!relay.requests()[before..].iter().any(|s| s.is("PUT", "/host-data")), "answered the swapped message");
    guest.abort();
}
