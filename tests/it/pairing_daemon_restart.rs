//! The real daemon killed (SIGKILL) in the middle of the host exchange, held there by a lying
//! relay that never answers one request: restarted, it sends the very bytes it sent before, and
//! it refuses a guest message other than the one it answered (no second guess).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use botsync::commands;
use botsync::daemon::invites::{self, InviteStatus};
use botsync::pairing::pake::GuestPake;
use botsync::pairing::{guest, PairingCode, RelayClient};
use crate::support::lying_relay::{LyingRelay, Seen, Verdict};
use crate::support::pairing::info;
use crate::support::reliability::*;
use crate::support::{isolated, root_at};

/// What the relay does to the requests of the mailbox under test.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Honest,
    /// Hold the host's `PUT host-data`: the daemon has recorded its reply and is sending it.
    HangReply,
    /// Hold the host's `GET guest-data`: the daemon has recorded the guest message it answers.
    HangGuestData,
    /// Show the host another guest message (a guess of the relay's own).
    SwapGuestPake,
}

fn kill_daemon(root: &std::path::Path) {
    let daemon = status(root).daemon.pid.expect("daemon runs");
    kill9(daemon);
    wait_dead(daemon);
}

fn invite_status(root: &std::path::Path, id: &str) -> InviteStatus {
    invites::load(&root_at(root.to_owned()), id).unwrap().expect("invite record").status
}

#[test]
fn a_daemon_killed_mid_exchange_resends_its_reply_and_takes_no_second_guess() {
    isolated(test_path!("a_daemon_killed_mid_exchange_resends_its_reply_and_takes_no_second_guess"), |scratch| {
        use_daemon_bin();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let phase = Arc::new(Mutex::new(Phase::Honest));
        let guess = Arc::new(Mutex::new(Vec::new()));
        let relay = runtime.block_on(LyingRelay::start({
            let (phase, guess) = (phase.clone(), guess.clone());
            move |seen: &Seen, _: &[Seen]| match *phase.lock().unwrap() {
                Phase::HangReply if seen.is("PUT", "/host-data") => Verdict::Hang,
                Phase::HangGuestData if seen.is("GET", "/guest-data") => Verdict::Hang,
                Phase::SwapGuestPake if seen.is("GET", "/guest-pake") => {
                    Verdict::Answer(200, "application/octet-stream", guess.lock().unwrap().clone())
                }
                _ => Verdict::Forward,
            }
        }));
        let a = scratch.join("a");
        let _guard = RootGuard::new(&a);
        let client = RelayClient::new(&relay.url).unwrap();

        // 1. Killed while sending its reply: the restarted daemon resends the same bytes.
        *phase.lock().unwrap() = Phase::HangReply;
        let init = runtime.block_on(commands::init::run(&init_options(&a, &relay.url))).expect("init");
        let code: PairingCode = init.invite.code.parse().unwrap();
        let joiner = runtime.spawn({
            let client = client.clone();
            async move { guest::join_until(&client, &code, &info(2, "laptop"), SystemTime::now() + Duration::from_secs(90)).await }
        });
        let replies = |relay: &LyingRelay| -> Vec<Vec<u8>> {
            relay.requests().iter().filter(|s| s.is("PUT", "/host-data")).map(|s| s.body.clone()).collect()
        };
        wait_until(Duration::from_secs(60), "the daemon to send its reply", || !replies(&relay).is_empty());
        kill_daemon(&a);
        *phase.lock().unwrap() = Phase::Honest;
        runtime.block_on(commands::start::run(&root_options(&a))).expect("start");
        let host = runtime.block_on(joiner).unwrap().expect("the joiner pairs after the restart");
        assert_eq!(host.device_id.to_string(), init.device_id);
        wait_until(Duration::from_secs(30), "the invite to be paired", || {
            matches!(invite_status(&a, &init.invite.id), InviteStatus::Paired { .. })
        });
        let sent = replies(&relay);
        assert!(sent.len() >= 2, "the restarted daemon resent its reply: {}", sent.len());
        assert!(sent.windows(2).all(|w| w[0] == w[1]), "a reply was sealed twice");
        assert_eq!(relay.requests().iter().filter(|s| s.is("PUT", "/guest-pake")).count(), 1);

        // 2. Killed after it recorded the guest message it answers; the relay then shows the
        //    restarted daemon a guess of its own: refused, and no reply at all.
        let before = relay.requests().len();
        *phase.lock().unwrap() = Phase::HangGuestData;
        let invite = runtime
            .block_on(commands::invite::run(&commands::invite::InviteOptions {
                root: Some(a.display().to_string()),
                relay: Some(relay.url.clone()),
                ..Default::default()
            }))
            .expect("invite");
        let code: PairingCode = invite.code.parse().unwrap();
        *guess.lock().unwrap() = GuestPake::start(&PairingCode::generate(&code.mailbox())).1;
        let joiner = runtime.spawn({
            let client = client.clone();
            async move { guest::join_until(&client, &code, &info(3, "desk"), SystemTime::now() + Duration::from_secs(30)).await }
        });
        let mailbox = code.mailbox().to_string();
        wait_until(Duration::from_secs(60), "the daemon to wait for guest-data", || {
            relay.requests()[before..].iter().any(|s| s.is("GET", "/guest-data") && s.target.contains(&mailbox))
        });
        kill_daemon(&a);
        *phase.lock().unwrap() = Phase::SwapGuestPake;
        runtime.block_on(commands::start::run(&root_options(&a))).expect("start");
        wait_until(Duration::from_secs(30), "the invite to fail", || matches!(invite_status(&a, &invite.id), InviteStatus::Failed { .. }));
        let InviteStatus::Failed { code: failure, error } = invite_status(&a, &invite.id) else { unreachable!() };
        assert_eq!(failure, "BOTSYNC_CODE_MISMATCH", "{error}");
        assert!(error.contains("another joining machine"), "{error}");
        let answered = relay.requests()[before..].iter().any(|s| s.is("PUT", "/host-data") && s.target.contains(&mailbox));
        assert!(!answered, "the restarted daemon answered the relay's guess");
        runtime.block_on(async { joiner.abort() });
    });
}
