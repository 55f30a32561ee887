//! Property tests: every parser and every message handler in pairing takes arbitrary input
//! without panicking, and the well-formed inputs round-trip.

use std::time::{Duration, SystemTime};

use botsync::device_id::DeviceId;
use botsync::pairing::{AccessToken, Mailbox, Slot};
use crate::support::pairing::Relay;
use botsync::pairing::original::{self, OriginalCode};
use botsync::pairing::pake::{GuestPake, HostPake, MISMATCH_MARKER};
use botsync::pairing::relay_client::{response, RawAnswer};
use botsync::pairing::{guest, host, JoinCode, OfflineCode, PairingCode, PairingError, PeerInfo};
use proptest::prelude::*;

fn code_strategy() -> impl Strategy<Value = PairingCode> {
    prop::array::uniform5(0u16..2048).prop_map(PairingCode::from_indices)
}

fn offline_strategy() -> impl Strategy<Value = OfflineCode> {
    (
        prop::array::uniform32(any::<u8>()),
        // Scope ids and flow labels are local to a machine and not carried.
        prop::collection::vec(any::<std::net::SocketAddr>().prop_map(|a| std::net::SocketAddr::new(a.ip(), a.port())), 0..=8),
        prop::array::uniform16(any::<u8>()),
    )
        .prop_map(|(id, addresses, secret)| OfflineCode { device_id: DeviceId::from_bytes(id), addresses, secret })
}

fn me() -> PeerInfo {
    PeerInfo { device_id: DeviceId::from_bytes([5; 32]), name: "fuzz".into(), addresses: vec![], members: vec![] }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn code_parser_never_panics(input in ".{0,80}") {
        if let Ok(code) = PairingCode::parse(&input) {
            prop_assert_eq!(PairingCode::parse(&code.to_string()).unwrap(), code);
        }
        let _ = JoinCode::parse(&input, false);
        let _ = JoinCode::parse(&input, true);
        let _ = OriginalCode::parse(&input);
    }

    #[test]
    fn codes_round_trip_through_any_separators_and_case(
        code in code_strategy(),
        separators in prop::collection::vec(prop::sample::select(vec!["-", " ", "_", ".", ",", "  ", "\t", " - "]), 4),
        upper in any::<bool>(),
        prefix_only in any::<bool>(),
    ) {
        let words = code.words();
        let mut text = String::new();
        for (i, word) in words.iter().enumerate() {
            let word = if prefix_only && word.len() > 4 { &word[..4] } else { word };
            text.push_str(word);
            if i < 4 { text.push_str(separators[i]); }
        }
        if upper { text = text.to_uppercase(); }
        prop_assert_eq!(PairingCode::parse(&text).unwrap(), code);
    }

    #[test]
    fn one_typo_is_caught_and_explained(code in code_strategy(), position in 0usize..5, letter in "[a-z]") {
        let mut words: Vec<String> = code.words().iter().map(|w| w.to_string()).collect();
        let original = words[position].clone();
        words[position].push_str(&letter);
        let typed = words.join("-");
        match PairingCode::parse(&typed) {
            // The longer token may still be a word or a word's prefix ("fan" + "c" -> "fancy").
            Ok(parsed) => {
                prop_assert_ne!(parsed.words()[position], original.as_str());
                prop_assert!(parsed.words()[position].starts_with(words[position].as_str()));
            }
            Err(PairingError::CodeInvalid(message)) => {
                prop_assert!(message.contains(&format!("\"{}\" is not a code word", words[position])), "{}", message);
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn offline_decoder_never_panics(input in ".{0,200}", data in "[a-z2-7]{0,160}") {
        let _ = input.parse::<OfflineCode>();
        let _ = format!("bso1{data}").parse::<OfflineCode>();
    }

    #[test]
    fn offline_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(code) = OfflineCode::from_bytes(&bytes) {
            prop_assert_eq!(code.to_bytes(), bytes);
        }
    }

    #[test]
    fn offline_codes_round_trip_and_detect_damage(code in offline_strategy(), cut in 1usize..400, flip in 0usize..400, bit in 0u8..5) {
        let text = code.to_string();
        prop_assert_eq!(text.parse::<OfflineCode>().unwrap(), code.clone());
        let cut = cut % (text.len() - 4);
        prop_assert_eq!(text[..4 + cut].parse::<OfflineCode>(), Err(PairingError::OfflineCodeTruncated));
        // Change one base32 character: the 32-bit checksum catches it (or, rarely, the structure).
        let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut bytes = text.into_bytes();
        let at = 4 + flip % (bytes.len() - 4);
        let value = alphabet.iter().position(|&c| c == bytes[at]).unwrap();
        bytes[at] = alphabet[value ^ (1 << bit)];
        let damaged = String::from_utf8(bytes).unwrap().parse::<OfflineCode>();
        prop_assert!(damaged.is_err() || damaged.as_ref().unwrap() == &code, "{:?}", damaged);
    }

    #[test]
    fn relay_answers_never_panic(
        status in 100u16..600,
        content_type in prop::option::of(".{0,30}"),
        retry_after in prop::option::of(".{0,12}"),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let answer = RawAnswer { status, content_type, retry_after, body };
        let url = "http://relay.test";
        let _ = response::allocation(url, &answer);
        let _ = response::put(url, &answer);
        let got = response::get(url, &answer);
        if status == 204 { prop_assert_eq!(got, Ok(None)); }
        let _ = response::delete(url, &answer);
        let _ = original::interpret_create(url, &answer);
        let _ = original::interpret_lookup(url, &answer);
        let _ = response::is_relay_banner(&answer);
    }

    #[test]
    fn relay_json_answers_never_panic(json in any_json()) {
        let body = serde_json::to_vec(&json).unwrap();
        for status in [200u16, 201, 404] {
            let answer = RawAnswer { status, content_type: Some("application/json".into()), retry_after: None, body: body.clone() };
            let _ = response::allocation("u", &answer);
            let _ = original::interpret_create("u", &answer);
            let _ = original::interpret_lookup("u", &answer);
        }
    }
}

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z-]{0,30}".prop_map(serde_json::Value::from),
        prop::sample::select(vec!["mailbox", "expiresAt", "code", "deviceId", "error", "service"]).prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec!["mailbox", "expiresAt", "code", "deviceId", "error", "service", "x"]).prop_map(String::from),
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// SPAKE2 is slow in debug builds, hence fewer cases here.
    #[test]
    fn pake_finish_takes_garbage(code in code_strategy(), message in prop::collection::vec(any::<u8>(), 0..80), side in prop::sample::select(vec![b'A', b'B', b'S', 0])) {
        let (host, _) = HostPake::start(&code);
        let _ = host.finish(&message);
        let (guest, _) = GuestPake::start(&code);
        let _ = guest.finish(&message);
        // Right length and side byte, random point: must not panic either.
        let mut shaped = vec![side];
        shaped.extend(message.iter().cycle().take(32));
        if shaped.len() == 33 {
            let (host, _) = HostPake::start(&code);
            let (guest, _) = GuestPake::start(&code);
            let _ = host.finish(&shaped);
            let _ = guest.finish(&shaped);
        }
    }

    #[test]
    fn sealed_data_rejects_garbage(code in code_strategy(), garbage in prop::collection::vec(any::<u8>(), 0..200)) {
        let (host, host_msg) = HostPake::start(&code);
        let (guest, guest_msg) = GuestPake::start(&code);
        let host_keys = host.finish(&guest_msg).unwrap();
        let guest_keys = guest.finish(&host_msg).unwrap();
        prop_assert_eq!(host_keys.open_from_guest(&garbage), Err(PairingError::CodeMismatch));
        prop_assert_eq!(guest_keys.open_from_host(&garbage), Err(PairingError::CodeMismatch));
    }

    /// The drivers fed garbage in every slot the other side would write: an error, never a panic
    /// and never a success.
    #[test]
    fn guest_driver_survives_garbage_host_messages(
        code in code_strategy(),
        host_pake in prop::collection::vec(any::<u8>(), 1..100),
        host_data in prop::collection::vec(any::<u8>(), 1..200),
    ) {
        runtime().block_on(async {
            let relay = Relay::start().await;
            let store = relay.client();
            let a = store.allocate().await.unwrap();
            let secret = code.words()[2..].join("-");
            let code = PairingCode::parse(&format!("{}-{secret}", a.mailbox)).unwrap();
            store.put(a.mailbox, Slot::HostPake, &a.host_token, &host_pake).await.unwrap();
            store.put(a.mailbox, Slot::HostData, &a.host_token, &host_data).await.unwrap();
            let result = guest::join_until(&store, &code, &me(), SystemTime::now() + Duration::from_secs(5)).await;
            prop_assert!(matches!(result, Err(PairingError::CodeMismatch)), "{:?}", result);
            Ok(())
        })?;
    }

    #[test]
    fn host_driver_survives_garbage_guest_messages(
        guest_pake in prop::collection::vec(any::<u8>(), 1..100),
        guest_data in prop::collection::vec(any::<u8>(), 1..300),
    ) {
        runtime().block_on(async {
            let relay = Relay::start().await;
            let store = relay.client();
            let invite = host::open_invite(&store).await.unwrap();
            let id = invite.code.mailbox();
            let guest = AccessToken::random();
            store.put(id, Slot::GuestPake, &guest, &guest_pake).await.unwrap();
            store.put(id, Slot::GuestData, &guest, &guest_data).await.unwrap();
            let result = host::complete(&store, &invite, &me(), SystemTime::now() + Duration::from_secs(5)).await;
            prop_assert_eq!(result, Err(PairingError::CodeMismatch));
            let reply = store.get(id, Slot::HostData, Some(&guest), Duration::ZERO).await.unwrap();
            prop_assert_eq!(reply.as_deref(), Some(MISMATCH_MARKER));
            Ok(())
        })?;
    }

    /// A guest with the right code but a host-data reply that is garbage or the mismatch marker.
    #[test]
    fn guest_rejects_a_forged_reply_after_a_real_pake(forged in prop::collection::vec(any::<u8>(), 1..200)) {
        runtime().block_on(async {
            let relay = Relay::start().await;
            let store = std::sync::Arc::new(relay.client());
            let invite = host::open_invite(&store).await.unwrap();
            let code = invite.code;
            let id = code.mailbox();
            let (_host, host_msg) = HostPake::start(&code);
            store.put(id, Slot::HostPake, &invite.host_token, &host_msg).await.unwrap();
            let guest_store = store.clone();
            let guest = tokio::spawn(async move {
                guest::join_until(&guest_store, &code, &me(), SystemTime::now() + Duration::from_secs(5)).await
            });
            store.get(id, Slot::GuestData, Some(&invite.host_token), Duration::from_secs(5)).await.unwrap().unwrap();
            store.put(id, Slot::HostData, &invite.host_token, &forged).await.unwrap();
            let result = guest.await.unwrap();
            prop_assert_eq!(result, Err(PairingError::CodeMismatch));
            Ok(())
        })?;
    }
}
