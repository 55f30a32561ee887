//! A waiting `invite` (`invite --wait`, `invite({wait: true})`) reports the failure the daemon
//! recorded with its stable code: a wrong guess at the code is BOTSYNC_CODE_MISMATCH on the host
//! too, not BOTSYNC_INTERNAL.

use std::time::Duration;

use botsync::commands::init::InitOptions;
use botsync::commands::join::JoinOptions;
use botsync::commands::{self, invite::wait_for_pairing};
use botsync::pairing::PairingCode;
use botsync::ErrorCode;
use crate::support::{block_on, isolated, root_at, StopOnDrop};
use crate::support::relay::{unlimited, Kind, TestRelay};

#[test]
fn a_waiting_invite_reports_a_code_mismatch_with_its_code() {
    isolated(test_path!("a_waiting_invite_reports_a_code_mismatch_with_its_code"), |scratch| {
        let (host, guesser) = (scratch.join("host"), scratch.join("guesser"));
        let _guards = (StopOnDrop(root_at(host.clone())), StopOnDrop(root_at(guesser.clone())));
        block_on(async {
            let relay = TestRelay::start(Kind::Memory, unlimited()).await;
            let init = InitOptions {
                root: Some(host.display().to_string()),
                network: Some("direct".into()),
                relay: Some(relay.url.clone()),
                ..Default::default()
            };
            let init = commands::init::run(&init).await.expect("init");
            let host_root = root_at(host.clone());
            let id = init.invite.id.clone();
            let waiting = tokio::spawn(async move { wait_for_pairing(&host_root, &id, |_| {}).await });

            // Same mailbox, other secret words.
            let code: PairingCode = init.invite.code.parse().unwrap();
            let mut words = code.words().map(str::to_string);
            words[4] = if words[4] == "zoo" { "zebra".into() } else { "zoo".into() };
            let join = JoinOptions {
                code: words.join("-"),
                root: Some(guesser.display().to_string()),
                network: Some("direct".into()),
                relay: Some(relay.url.clone()),
                timeout_seconds: Some(60),
                ..Default::default()
            };
            let guessed = commands::join::run(&join).await.unwrap_err();
            assert_eq!(guessed.code(), ErrorCode::CodeMismatch, "{guessed}");

            let error = tokio::time::timeout(Duration::from_secs(30), waiting).await.expect("the wait ends").unwrap().unwrap_err();
            assert_eq!(error.code(), ErrorCode::CodeMismatch, "{error}");
            assert_eq!(error.code().as_str(), "BOTSYNC_CODE_MISMATCH");
            assert!(!error.to_string().starts_with("internal error"), "{error}");
        });
    });
}
