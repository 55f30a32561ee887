//! The v2 exchange end to end over the real relay on loopback: success, wrong codes, a tampering
//! relay, racing joiners, expiry, and a host resumed from nothing but the code.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botsync::pairing::{guest, host, Invite, Mailbox, PairingCode, PairingError, Slot};
use botsync::relay::RelayConfig;
use crate::support::pairing::*;

fn soon(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_guest_exchange_peer_info() {
    let relay = Relay::start().await;
    let store = Arc::new(relay.client());
    let invite = host::open_invite(&store).await.unwrap();
    assert!(invite.expires_at_time() > SystemTime::now() + Duration::from_secs(590));
    let code = invite.code;
    let host_task = {
        let store = store.clone();
        tokio::spawn({ let invite = invite.clone(); async move { host::complete(&store, &invite, &host_info(), soon(30)).await } })
    };
    let got_host = guest::join(&store, &code, &info(2, "laptop")).await.unwrap();
    let got_guest = host_task.await.unwrap().unwrap();
    assert_eq!(got_host, host_info());
    assert_eq!(got_guest, info(2, "laptop"));
    // The relay drops the mailbox once host-data was read.
    assert_eq!(relay.live_mailboxes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_resumes_from_the_code_text_alone() {
    // The CLI prints the code and exits; a background process picks it up from its text.
    let relay = Relay::start().await;
    let store = Arc::new(relay.client());
    let opened = host::open_invite(&store).await.unwrap();
    let printed = opened.code.to_string();
    let guest_task = {
        let store = store.clone();
        let typed = printed.to_uppercase().replace('-', " ");
        tokio::spawn(async move {
            let code = PairingCode::parse(&typed).unwrap();
            guest::join(&store, &code, &info(2, "laptop")).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // What the daemon gets: the code's text and the host token recorded next to it.
    let invite = Invite { code: printed.parse().unwrap(), ..opened };
    let got_guest = host::complete(&store, &invite, &host_info(), soon(30)).await.unwrap();
    assert_eq!(got_guest.name, "laptop");
    assert_eq!(guest_task.await.unwrap().unwrap().device_id, device(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_code_is_a_mismatch_on_both_sides() {
    let relay = Relay::start().await;
    let store = Arc::new(relay.client());
    let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
    let mut words = code.words().map(str::to_string);
    words[4] = if words[4] == "zoo" { "zebra".into() } else { "zoo".into() };
    let wrong = PairingCode::parse(&words.join("-")).unwrap();
    assert_eq!(wrong.mailbox(), code.mailbox());
    let host_task = {
        let store = store.clone();
        tokio::spawn({ let invite = invite.clone(); async move { host::complete(&store, &invite, &host_info(), soon(30)).await } })
    };
    assert_eq!(guest::join(&store, &wrong, &info(2, "laptop")).await, Err(PairingError::CodeMismatch));
    assert_eq!(host_task.await.unwrap(), Err(PairingError::CodeMismatch));
}

async fn run_with_tampering(slot: Slot) -> (Result<botsync::pairing::PeerInfo, PairingError>, Result<botsync::pairing::PeerInfo, PairingError>) {
    let relay = Relay::start().await;
    let store = Arc::new(Tamper { inner: relay.client(), slot });
    let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
    let host_task = {
        let store = store.clone();
        tokio::spawn({ let invite = invite.clone(); async move { host::complete(&store, &invite, &host_info(), soon(30)).await } })
    };
    let guest = guest::join_until(&store, &code, &info(2, "laptop"), soon(30)).await;
    (host_task.await.unwrap(), guest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_flipping_a_bit_causes_a_mismatch() {
    for slot in [Slot::HostPake, Slot::GuestPake, Slot::GuestData] {
        let (host, guest) = run_with_tampering(slot).await;
        assert_eq!(host, Err(PairingError::CodeMismatch), "host, tampered {slot}");
        assert_eq!(guest, Err(PairingError::CodeMismatch), "guest, tampered {slot}");
    }
    // The last message cannot be confirmed back: the host has finished when the guest finds the
    // tampering. The guest adds nobody, so no connection forms.
    let (host, guest) = run_with_tampering(Slot::HostData).await;
    assert!(host.is_ok());
    assert_eq!(guest, Err(PairingError::CodeMismatch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_twenty_racing_guests_exactly_one_pairs() {
    const GUESTS: usize = 20;
    let relay = Relay::start().await;
    let store = Arc::new(RaceGuests::new(relay.client(), GUESTS));
    let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
    let guests: Vec<_> = (0..GUESTS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { guest::join_until(&store, &code, &info(10 + i as u8, "racer"), soon(30)).await })
        })
        .collect();
    let joined = host::complete(&store, &invite, &host_info(), soon(30)).await.unwrap();
    let mut wins = 0;
    for g in guests {
        match g.await.unwrap() {
            Ok(host) => {
                wins += 1;
                assert_eq!(host, host_info());
            }
            Err(e) => assert_eq!(e, PairingError::CodeAlreadyUsed),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(joined.name, "racer");
    assert_eq!(
        PairingError::CodeAlreadyUsed.to_string(),
        "this pairing code was already used by another machine (a code works once); get a new one with `botsync invite`"
    );
}

#[tokio::test]
async fn unknown_and_expired_codes_say_so() {
    let relay = Relay::with_config(RelayConfig { mailbox_ttl: Duration::from_millis(200), ..unlimited() }).await;
    let store = relay.client();
    let never: PairingCode = "abandon-ability-able-about-above".parse().unwrap();
    assert_eq!(guest::join(&store, &never, &info(2, "g")).await, Err(PairingError::CodeExpired));
    let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(guest::join(&store, &code, &info(2, "g")).await, Err(PairingError::CodeExpired));
    assert_eq!(host::complete(&store, &invite, &host_info(), soon(5)).await, Err(PairingError::CodeExpired));
}

#[tokio::test]
async fn a_host_nobody_joins_times_out_and_closes_the_mailbox() {
    let relay = Relay::start().await;
    let store = relay.client();
    let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
    let result = host::complete(&store, &invite, &host_info(), SystemTime::now() + Duration::from_millis(300)).await;
    assert!(matches!(result, Err(PairingError::Timeout(_))), "{result:?}");
    // A late joiner hears "expired" rather than waiting for a host that has given up.
    assert_eq!(guest::join(&store, &code, &info(2, "late")).await, Err(PairingError::CodeExpired));
}

#[tokio::test]
async fn a_second_host_process_on_the_same_code_is_refused() {
    let relay = Relay::start().await;
    let store = Arc::new(relay.client());
    let invite = host::open_invite(&store).await.unwrap();
    let first = {
        let store = store.clone();
        tokio::spawn({ let invite = invite.clone(); async move { host::complete(&store, &invite, &host_info(), soon(2)).await } })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(host::complete(&store, &invite, &host_info(), soon(2)).await, Err(PairingError::CodeAlreadyUsed));
    first.abort();
}

#[tokio::test]
async fn a_guest_waiting_for_an_absent_host_times_out() {
    let relay = Relay::start().await;
    let store = relay.client();
    let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
    let result = guest::join_until(&store, &code, &info(2, "g"), SystemTime::now() + Duration::from_millis(300)).await;
    assert!(matches!(result, Err(PairingError::Timeout(_))), "{result:?}");
    assert!(result.unwrap_err().to_string().contains("inviting machine"));
}

#[tokio::test]
async fn slots_take_the_wire_limit_and_no_more() {
    let relay = Relay::start().await;
    let store = relay.client();
    let a = store.allocate().await.unwrap();
    let max = botsync::pairing::wire::MAX_SLOT_BYTES;
    store.put(a.mailbox, Slot::HostPake, &a.host_token, &vec![0u8; max]).await.unwrap();
    assert!(store.put(a.mailbox, Slot::HostData, &a.host_token, &vec![0u8; max + 1]).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_blip_during_a_wait_is_survived() {
    // Host-side (waiting for guest-pake) and guest-side (waiting for host-data) blips.
    for slot in [Slot::GuestPake, Slot::HostData] {
        let relay = Relay::start().await;
        let store = Arc::new(Flaky { inner: relay.client(), slot, failures: 2.into() });
        let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
        let host_task = {
            let store = store.clone();
            tokio::spawn({ let invite = invite.clone(); async move { host::complete(&store, &invite, &host_info(), soon(30)).await } })
        };
        let guest = guest::join_until(&store, &code, &info(2, "laptop"), soon(30)).await;
        assert_eq!(guest.unwrap(), host_info(), "blip on {slot}");
        assert_eq!(host_task.await.unwrap().unwrap().name, "laptop");
        assert_eq!(store.failures.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn a_relay_that_fails_at_once_is_not_retried() {
    let relay = Relay::start().await;
    let store = Flaky { inner: relay.client(), slot: Slot::HostPake, failures: 1.into() };
    let invite = host::open_invite(&store).await.unwrap();
    let code = invite.code;
    let started = std::time::Instant::now();
    let result = guest::join(&store, &code, &info(2, "g")).await;
    assert!(matches!(result, Err(PairingError::RelayUnreachable { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}
