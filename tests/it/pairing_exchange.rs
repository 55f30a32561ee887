//! The v2 exchange end to end over the in-memory mailbox: success, wrong codes, a tampering
//! relay, racing joiners, expiry, and a host resumed from nothing but the code.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botsync::pairing::mailbox::{Mailbox, Slot};
use botsync::pairing::{guest, host, MemoryMailbox, PairingCode, PairingError};
use crate::support::pairing::*;

fn soon(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_guest_exchange_peer_info() {
    let store = Arc::new(MemoryMailbox::new());
    let invite = host::open_invite(&store).await.unwrap();
    assert!(invite.expires_at_time() > SystemTime::now() + Duration::from_secs(590));
    let code = invite.code;
    let host_task = {
        let store = store.clone();
        tokio::spawn(async move { host::complete(&store, &code, &host_info(), soon(30)).await })
    };
    let got_host = guest::join(&store, &code, &info(2, "laptop")).await.unwrap();
    let got_guest = host_task.await.unwrap().unwrap();
    assert_eq!(got_host, host_info());
    assert_eq!(got_guest, info(2, "laptop"));
    // The relay drops the mailbox once host-data was read.
    assert_eq!(store.live_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_resumes_from_the_code_text_alone() {
    // The CLI prints the code and exits; a background process picks it up from its text.
    let store = Arc::new(MemoryMailbox::new());
    let printed = host::open_invite(&store).await.unwrap().code.to_string();
    let guest_task = {
        let store = store.clone();
        let typed = printed.to_uppercase().replace('-', " ");
        tokio::spawn(async move {
            let code = PairingCode::parse(&typed).unwrap();
            guest::join(&store, &code, &info(2, "laptop")).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let code: PairingCode = printed.parse().unwrap();
    let got_guest = host::complete(&store, &code, &host_info(), soon(30)).await.unwrap();
    assert_eq!(got_guest.name, "laptop");
    assert_eq!(guest_task.await.unwrap().unwrap().device_id, device(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_code_is_a_mismatch_on_both_sides() {
    let store = Arc::new(MemoryMailbox::new());
    let code = host::open_invite(&store).await.unwrap().code;
    let mut words = code.words().map(str::to_string);
    words[4] = if words[4] == "zoo" { "zebra".into() } else { "zoo".into() };
    let wrong = PairingCode::parse(&words.join("-")).unwrap();
    assert_eq!(wrong.mailbox(), code.mailbox());
    let host_task = {
        let store = store.clone();
        tokio::spawn(async move { host::complete(&store, &code, &host_info(), soon(30)).await })
    };
    assert_eq!(guest::join(&store, &wrong, &info(2, "laptop")).await, Err(PairingError::CodeMismatch));
    assert_eq!(host_task.await.unwrap(), Err(PairingError::CodeMismatch));
}

async fn run_with_tampering(slot: Slot) -> (Result<botsync::pairing::PeerInfo, PairingError>, Result<botsync::pairing::PeerInfo, PairingError>) {
    let store = Arc::new(Tamper { inner: MemoryMailbox::new(), slot });
    let code = host::open_invite(&store).await.unwrap().code;
    let host_task = {
        let store = store.clone();
        tokio::spawn(async move { host::complete(&store, &code, &host_info(), soon(30)).await })
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
    let store = Arc::new(RaceGuests::new(MemoryMailbox::new(), GUESTS));
    let code = host::open_invite(&store).await.unwrap().code;
    let guests: Vec<_> = (0..GUESTS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { guest::join_until(&store, &code, &info(10 + i as u8, "racer"), soon(30)).await })
        })
        .collect();
    let joined = host::complete(&store, &code, &host_info(), soon(30)).await.unwrap();
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
    let store = MemoryMailbox::with_ttl(Duration::from_millis(200));
    let never: PairingCode = "abandon-ability-able-about-above".parse().unwrap();
    assert_eq!(guest::join(&store, &never, &info(2, "g")).await, Err(PairingError::CodeExpired));
    let code = host::open_invite(&store).await.unwrap().code;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(guest::join(&store, &code, &info(2, "g")).await, Err(PairingError::CodeExpired));
    assert_eq!(host::complete(&store, &code, &host_info(), soon(5)).await, Err(PairingError::CodeExpired));
}

#[tokio::test]
async fn a_host_nobody_joins_times_out_and_closes_the_mailbox() {
    let store = MemoryMailbox::new();
    let code = host::open_invite(&store).await.unwrap().code;
    let result = host::complete(&store, &code, &host_info(), SystemTime::now() + Duration::from_millis(300)).await;
    assert!(matches!(result, Err(PairingError::Timeout(_))), "{result:?}");
    // A late joiner hears "expired" rather than waiting for a host that has given up.
    assert_eq!(guest::join(&store, &code, &info(2, "late")).await, Err(PairingError::CodeExpired));
}

#[tokio::test]
async fn a_second_host_process_on_the_same_code_is_refused() {
    let store = Arc::new(MemoryMailbox::new());
    let code = host::open_invite(&store).await.unwrap().code;
    let first = {
        let store = store.clone();
        tokio::spawn(async move { host::complete(&store, &code, &host_info(), soon(2)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(host::complete(&store, &code, &host_info(), soon(2)).await, Err(PairingError::CodeAlreadyUsed));
    first.abort();
}

#[tokio::test]
async fn a_guest_waiting_for_an_absent_host_times_out() {
    let store = MemoryMailbox::new();
    let code = host::open_invite(&store).await.unwrap().code;
    let result = guest::join_until(&store, &code, &info(2, "g"), SystemTime::now() + Duration::from_millis(300)).await;
    assert!(matches!(result, Err(PairingError::Timeout(_))), "{result:?}");
    assert!(result.unwrap_err().to_string().contains("inviting machine"));
}

#[tokio::test]
async fn store_round_trips_raw_slots() {
    // Guards the test double itself: the relay semantics the exchange tests rely on.
    let store = MemoryMailbox::new();
    let a = store.allocate().await.unwrap();
    store.put(a.mailbox, Slot::GuestData, &[0u8; 16 * 1024]).await.unwrap();
    assert!(store.put(a.mailbox, Slot::HostPake, &vec![0u8; 16 * 1024 + 1]).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_blip_during_a_wait_is_survived() {
    // Host-side (waiting for guest-pake) and guest-side (waiting for host-data) blips.
    for slot in [Slot::GuestPake, Slot::HostData] {
        let store = Arc::new(Flaky { inner: MemoryMailbox::new(), slot, failures: 2.into() });
        let code = host::open_invite(&store).await.unwrap().code;
        let host_task = {
            let store = store.clone();
            tokio::spawn(async move { host::complete(&store, &code, &host_info(), soon(30)).await })
        };
        let guest = guest::join_until(&store, &code, &info(2, "laptop"), soon(30)).await;
        assert_eq!(guest.unwrap(), host_info(), "blip on {slot}");
        assert_eq!(host_task.await.unwrap().unwrap().name, "laptop");
        assert_eq!(store.failures.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn a_relay_that_fails_at_once_is_not_retried() {
    let store = Flaky { inner: MemoryMailbox::new(), slot: Slot::HostPake, failures: 1.into() };
    let code = host::open_invite(&store).await.unwrap().code;
    let started = std::time::Instant::now();
    let result = guest::join(&store, &code, &info(2, "g")).await;
    assert!(matches!(result, Err(PairingError::RelayUnreachable { .. })), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}
