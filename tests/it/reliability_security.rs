//! Security checks on a real pair of machines: private state files, no secret in any command line
//! or log, one code = one attempt (a wrong guess burns the code), and what the relay ever holds
//! during an exchange. PAKE tampering of every slot is covered in tests/pairing_exchange.rs; the
//! original protocol's network secret leaving the relay in tests/relay_api.rs.

use std::path::Path;
use std::time::{Duration, SystemTime};

use botsync::commands::{self, invite::InviteOptions};
use botsync::engine::Engine;
use botsync::pairing::{guest, host, MemberInfo, PairingCode, PeerInfo, RelayClient};
use crate::support::{block_on, isolated, mode, root_at};
use crate::support::reliability::*;

const OPENCLAW_TOKEN: &str = "openclaw-token-Zq81Xv0wLm";

/// Every file and directory under `dir`.
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        out.push(path.clone());
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, out);
        }
    }
}

/// Every live process's command line, as one string each.
fn all_command_lines() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            out.push((pid, String::from_utf8_lossy(&raw).replace('\0', " ")));
        }
    }
    out
}

fn secret_part(code: &str) -> String {
    code.split('-').skip(2).collect::<Vec<_>>().join("-")
}

#[test]
fn state_is_private_and_no_secret_reaches_argv_or_logs() {
    isolated(test_path!("state_is_private_and_no_secret_reaches_argv_or_logs"), |scratch| {
        use_daemon_bin();
        // Notifications on, so notifications.json and the notifier's log lines exist; nothing
        // listens at the hooks URL, so the notifier also logs its delivery failures.
        std::env::set_var("OPENCLAW_HOOKS_TOKEN", OPENCLAW_TOKEN);
        std::env::set_var("OPENCLAW_HOOKS_URL", "http://127.0.0.1:9/hooks/agent");
        let relay = RelayThread::unlimited();
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (RootGuard::new(&a), RootGuard::new(&b));
        let init = block_on(commands::init::run(&init_options(&a, &relay.url))).expect("init");
        let first_code = init.invite.code.clone();
        block_on(commands::join::run(&join_options(&b, &relay.url, &first_code))).expect("join");
        wait_until(Duration::from_secs(30), "connected", || peer_connected(&a) && peer_connected(&b));
        write_and_see_synced(&a.join("shared"), &b.join("shared"), "hello.txt", b"hello", Duration::from_secs(30));
        // A pending code too, so an open invitation is on disk and in the daemon's hands.
        let pending = block_on(commands::invite::run(&InviteOptions { root: Some(a.display().to_string()), relay: Some(relay.url.clone()), ..Default::default() }))
            .expect("invite");
        std::thread::sleep(Duration::from_millis(500));

        let mut secrets: Vec<(String, String)> = vec![("OpenClaw token".into(), OPENCLAW_TOKEN.into())];
        for (name, root) in [("a", &a), ("b", &b)] {
            let engine = Engine::load(&root_at(root.clone())).unwrap();
            secrets.push((format!("{name}'s API key"), engine.state().api_key.expose().to_string()));
        }
        for code in [&first_code, &pending.code] {
            secrets.push((format!("code {}", &code[..code.find('-').unwrap()]), code.to_string()));
            secrets.push(("a code's secret words".into(), secret_part(code)));
        }

        for root in [&a, &b] {
            let state = root.join(".botsync");
            assert_eq!(mode(&state), 0o700, "{}", state.display());
            let mut paths = Vec::new();
            walk(&state, &mut paths);
            let mut seen = Vec::new();
            let mut loose = Vec::new();
            for path in &paths {
                let relative = path.strip_prefix(&state).unwrap().display().to_string();
                let meta = std::fs::symlink_metadata(path).unwrap();
                // Syncthing's own database under syncthing/ is Syncthing's business; everything
                // botsync writes, and Syncthing's keys and configuration, are private.
                // The certificates are public (their hash is the device ID every peer sees).
                if relative.starts_with("syncthing/index-") || relative.ends_with("cert.pem") {
                    continue;
                }
                let expected = if meta.is_dir() { 0o700 } else { 0o600 };
                if mode(path) != expected {
                    loose.push(format!("{} is {:o}", path.display(), mode(path)));
                }
                seen.push(relative);
            }
            assert!(loose.is_empty(), "not private: {loose:#?}");
            for must in ["config.json", "daemon.pid", "syncthing.pid", "daemon.log", "syncthing.log", "notifications.json", "syncthing/key.pem", "syncthing/config.xml"] {
                assert!(seen.iter().any(|s| s == must), "{must} exists in {}: {seen:?}", root.display());
            }
            if root == &a {
                assert!(seen.iter().any(|s| s.starts_with("invites/") && s.ends_with(".json")), "{seen:?}");
            }
            // Logs: no secret.
            for log in paths.iter().filter(|p| p.to_string_lossy().contains(".log")) {
                let text = String::from_utf8_lossy(&std::fs::read(log).unwrap()).into_owned();
                for (what, secret) in &secrets {
                    assert!(!text.contains(secret.as_str()), "{what} appears in {}", log.display());
                }
            }
        }
        let notifications = std::fs::read_to_string(a.join(".botsync/notifications.json")).unwrap();
        assert!(notifications.contains(OPENCLAW_TOKEN), "the token is recorded (0600) for the daemon");

        // Command lines of every process on the machine (Syncthing, its monitor, both daemons).
        let lines = all_command_lines();
        assert!(lines.iter().any(|(_, l)| l.contains("botsync-daemon")), "the daemons are among them");
        assert!(lines.iter().filter(|(_, l)| l.contains("serve") && l.contains("--home=")).count() >= 4, "monitors and workers too");
        for (pid, line) in &lines {
            for (what, secret) in &secrets {
                assert!(!line.contains(secret.as_str()), "{what} in the command line of {pid}: {line}");
            }
        }
    });
}

#[test]
fn a_wrong_guess_uses_the_code_up_and_changes_nothing_on_the_guesser() {
    isolated(test_path!("a_wrong_guess_uses_the_code_up_and_changes_nothing_on_the_guesser"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let (host_root, guesser, owner) = (scratch.join("host"), scratch.join("guesser"), scratch.join("owner"));
        let _guards = (RootGuard::new(&host_root), RootGuard::new(&guesser), RootGuard::new(&owner));
        let init = block_on(commands::init::run(&init_options(&host_root, &relay.url))).expect("init");
        let code: PairingCode = init.invite.code.parse().unwrap();
        // Same mailbox, other secret words: what someone who saw only the relay's half would try.
        let mut words = code.words().map(str::to_string);
        words[4] = if words[4] == "zoo" { "zebra".into() } else { "zoo".into() };
        let guess = words.join("-");
        let error = block_on(commands::join::run(&join_options(&guesser, &relay.url, &guess))).unwrap_err();
        assert_eq!(error.code(), botsync::ErrorCode::CodeMismatch, "{error}");
        assert!(!guesser.exists(), "a wrong code sets nothing up");
        assert!(processes_of(&guesser).is_empty());

        // The real code is spent: one code, one attempt. (The relay forgot the finished mailbox,
        // so it says "unknown or expired" rather than "already used" once the guesser is done.)
        let error = block_on(commands::join::run(&join_options(&owner, &relay.url, &init.invite.code))).unwrap_err();
        assert!(matches!(error.code(), botsync::ErrorCode::CodeUsed | botsync::ErrorCode::CodeExpired), "{error}");
        assert!(!owner.exists());
        let record = wait_for_outcome(&host_root, &init.invite.id);
        assert!(matches!(&record.status, botsync::daemon::invites::InviteStatus::Failed { code, .. } if code == "BOTSYNC_CODE_MISMATCH"), "{record:?}");
        assert!(status(&host_root).peers.is_empty(), "nobody was added");
    });
}

fn wait_for_outcome(root: &Path, id: &str) -> botsync::daemon::invites::InviteRecord {
    let mut record = None;
    wait_until(Duration::from_secs(20), "the host records the outcome", || {
        record = botsync::daemon::invites::load(&root_at(root.to_owned()), id).ok().flatten().filter(|r| !r.is_pending());
        record.is_some()
    });
    record.unwrap()
}

fn peer(n: u8, name: &str) -> PeerInfo {
    PeerInfo {
        device_id: botsync::device_id::DeviceId::from_bytes([n; 32]),
        name: name.into(),
        addresses: vec![format!("tcp://192.0.2.{n}:22000")],
        members: vec![MemberInfo {
            device_id: botsync::device_id::DeviceId::from_bytes([n + 100; 32]),
            name: format!("{name}-member"),
            addresses: vec![],
        }],
    }
}

/// What the relay stores while an exchange runs: never a device ID, name, address or the code's
/// secret words, only SPAKE2 messages and ciphertext; and nothing once the guest has its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_never_holds_plaintext_peer_details_or_the_secret() {
    let store = botsync::relay::MemoryStore::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = botsync::relay::serve(listener, store.clone(), botsync::relay::RelayConfig::default()).unwrap();
    let client = RelayClient::new(&running.url()).unwrap();
    let (host_info, guest_info) = (peer(7, "host-machine"), peer(9, "guest-machine"));
    let invite = host::open_invite(&client).await.unwrap();
    let code = invite.code;

    let watcher = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..400 {
                seen.extend(store.dump().into_iter().map(|(k, v)| format!("{k}={v}")));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        })
    };
    let deadline = SystemTime::now() + Duration::from_secs(20);
    let host_side = {
        let (client, host_info, invite) = (client.clone(), host_info.clone(), invite.clone());
        tokio::spawn(async move { host::complete(&client, &invite, &host_info, deadline).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_host = guest::join_until(&client, &code, &guest_info, deadline).await.expect("guest");
    let got_guest = host_side.await.unwrap().expect("host");
    assert_eq!((got_host, got_guest), (host_info.clone(), guest_info.clone()));
    let seen = watcher.await.unwrap();
    assert!(seen.iter().any(|entry| entry.contains(&code.mailbox().to_string())), "the watcher saw the mailbox");
    let mut plaintexts = vec![secret_part(&code.to_string()), code.to_string()];
    for info in [&host_info, &guest_info] {
        plaintexts.push(info.device_id.to_string());
        plaintexts.push(info.name.clone());
        plaintexts.extend(info.addresses.iter().cloned());
        plaintexts.push(info.members[0].device_id.to_string());
    }
    for entry in &seen {
        for plain in &plaintexts {
            assert!(!entry.contains(plain.as_str()), "the relay held `{plain}`: {entry}");
        }
    }
    let left: Vec<_> = store.dump().into_iter().filter(|(k, _)| !k.starts_with("rl:")).collect();
    assert!(left.is_empty(), "the relay forgets the exchange once the guest has its answer: {left:?}");
    running.shutdown().await;
}
