//! Membership that is data and revocation that sticks, on three real machines (roots) paired
//! through a relay: C joins through B, not through the first machine, and still reaches A;
//! removed on A, C is gone from every member, cannot sync anything new, is not re-added when
//! another member configures it again, is refused when it comes back with a fresh code, and
//! pairs again only once a member allows it. Bad input to `remove` and `join -` changes nothing.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use botsync::engine::Engine;
use crate::support::{block_on, isolated, root_at, snapshot};
use crate::support::reliability::*;

fn engine(root: &Path) -> Engine {
    Engine::load(&root_at(root.to_owned())).unwrap()
}

/// The device IDs in a root's Syncthing configuration (its peers).
fn configured(root: &Path) -> Vec<String> {
    engine(root).configured_peers().unwrap().into_iter().map(|(id, _, _)| id).collect()
}

fn ignored(root: &Path) -> Vec<String> {
    block_on(engine(root).rest().ignored_devices()).unwrap()
}

fn arg(root: &Path) -> String {
    root.display().to_string()
}

fn invite(root: &Path, relay: &str) -> String {
    let run = cli(None, &["--json", "--root", &arg(root), "invite", "--relay", relay]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.json["kind"], "relay", "{run:?}");
    run.json["code"].as_str().unwrap().to_string()
}

fn join(root: &Path, relay: &str, code: &str) -> CliRun {
    cli(None, &["--json", "--root", &arg(root), "join", code, "--network", "direct", "--relay", relay, "--timeout", "60"])
}

/// Files a refused command must leave alone: the member list, Syncthing's configuration.
fn membership_state(root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let state = root.join(".botsync");
    let mut files = vec![state.join("membership.json"), state.join("syncthing/config.xml")];
    for entry in std::fs::read_dir(state.join("members")).unwrap().flatten() {
        files.push(entry.path());
    }
    files.into_iter().filter(|p| p.is_file()).map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn a_removed_member_is_gone_everywhere_stays_out_and_returns_only_when_allowed() {
    isolated(test_path!("a_removed_member_is_gone_everywhere_stays_out_and_returns_only_when_allowed"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let (a, b, c) = (scratch.join("a"), scratch.join("b"), scratch.join("c"));
        let _guards = (RootGuard::new(&a), RootGuard::new(&b), RootGuard::new(&c));
        let (a_id, b_id) = pair(&a, &b, &relay.url);
        // C joins through B, not through the machine that started the mesh.
        let joined = join(&c, &relay.url, &invite(&b, &relay.url));
        assert_eq!(joined.status, 0, "{joined:?}");
        let c_id = joined.json["deviceId"].as_str().unwrap().to_string();
        assert_eq!(joined.json["peer"]["deviceId"], b_id.as_str());

        // A member added through any member reaches every member, without introducers.
        let reached = wait_until(Duration::from_secs(60), "A configures C from the member list", || configured(&a).contains(&c_id));
        eprintln!("C joined through B; A configured C {reached:?} after the join returned");
        wait_until(Duration::from_secs(60), "everyone is connected to everyone", || {
            [&a, &b, &c].iter().all(|root| {
                let report = status(root);
                report.peers.len() == 2 && report.peers.iter().all(|p| p.connected)
            })
        });
        write_and_see_synced(&c.join("shared"), &a.join("shared"), "from-c.txt", b"C to A", Duration::from_secs(30));
        let config = std::fs::read_to_string(a.join(".botsync/syncthing/config.xml")).unwrap();
        assert!(!config.contains("introducer=\"true\""), "no device is an introducer: {config}");

        // `peers` lists both, with who added them.
        let peers = cli(None, &["--json", "--root", &arg(&a), "peers"]);
        assert_eq!(peers.status, 0, "{peers:?}");
        let listed = peers.json["peers"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{peers:?}");
        let c_entry = listed.iter().find(|p| p["deviceId"] == c_id.as_str()).expect("C is listed");
        assert_eq!(c_entry["addedBy"]["deviceId"], b_id.as_str(), "C was added by B: {c_entry}");
        assert_eq!(c_entry["connected"], true);
        assert!(c_entry["address"].as_str().is_some_and(|a| !a.is_empty()), "the live address (127.0.0.1 or ::1): {c_entry}");
        let b_entry = listed.iter().find(|p| p["deviceId"] == b_id.as_str()).expect("B is listed");
        assert_eq!(b_entry["addedBy"]["deviceId"], a_id.as_str());

        // Bad input changes nothing: an unknown peer, this machine itself, an ambiguous name
        // (all three machines carry this host's name).
        let before = membership_state(&a);
        let unknown = cli(None, &["--json", "--root", &arg(&a), "remove", "no-such-machine"]);
        assert_eq!((unknown.status, unknown.error_code()), (1, Some("BOTSYNC_PEER_UNKNOWN")), "{unknown:?}");
        let own = cli(None, &["--json", "--root", &arg(&a), "remove", &a_id]);
        assert_eq!((own.status, own.error_code()), (2, Some("BOTSYNC_USAGE")), "{own:?}");
        let name = engine(&a).device_name().to_string();
        let ambiguous = cli(None, &["--json", "--root", &arg(&a), "remove", &name]);
        assert_eq!((ambiguous.status, ambiguous.error_code()), (2, Some("BOTSYNC_USAGE")), "{ambiguous:?}");
        let not_removed = cli(None, &["--json", "--root", &arg(&a), "allow", &c_id]);
        assert_eq!((not_removed.status, not_removed.error_code()), (1, Some("BOTSYNC_PEER_UNKNOWN")), "{not_removed:?}");
        let human = cli(None, &["--root", &arg(&a), "remove", "no-such-machine"]);
        assert_eq!(human.stderr.lines().filter(|l| l.starts_with("botsync: ")).count(), 1, "one clear line: {human:?}");
        assert_eq!(membership_state(&a), before, "a refused remove changes nothing");

        // Remove C on A: gone from A at once, from B as soon as the member list reaches it.
        let removed = cli(None, &["--json", "--root", &arg(&a), "remove", &c_id[..7]]);
        assert_eq!(removed.status, 0, "{removed:?}");
        assert_eq!(removed.json["deviceId"], c_id.as_str());
        assert!(!configured(&a).contains(&c_id), "dropped on A by the command itself");
        let dropped = wait_until(Duration::from_secs(60), "B drops C", || !configured(&b).contains(&c_id));
        eprintln!("removed on A; B dropped C {dropped:?} after `remove` returned");
        for root in [&a, &b] {
            wait_until(Duration::from_secs(20), "C is on the ignore list", || ignored(root).contains(&c_id));
        }
        let peers = cli(None, &["--json", "--root", &arg(&b), "peers"]);
        assert!(peers.json["peers"].as_array().unwrap().iter().all(|p| p["deviceId"] != c_id.as_str()), "{peers:?}");
        assert_eq!(peers.json["removed"][0]["deviceId"], c_id.as_str(), "{peers:?}");
        assert_eq!(peers.json["removed"][0]["removedBy"]["deviceId"], a_id.as_str(), "{peers:?}");

        // It can sync nothing new: a file written on A reaches B, never C.
        write_and_see_synced(&a.join("shared"), &b.join("shared"), "after-removal.txt", b"members only", Duration::from_secs(30));
        write_and_see_synced(&b.join("shared"), &a.join("shared"), "after-removal-b.txt", b"members only", Duration::from_secs(30));
        std::thread::sleep(Duration::from_secs(3));
        assert!(!c.join("shared/after-removal.txt").exists() && !c.join("shared/after-removal-b.txt").exists(), "the removed machine got a new file");
        assert!(c.join("shared/from-c.txt").exists(), "it keeps the files it already had");
        wait_until(Duration::from_secs(30), "C is disconnected from both", || status(&c).peers.iter().all(|p| !p.connected));

        // Re-introduction: B configures C again (as a pairing path or an old introducer would);
        // B's own reconciliation takes it out again.
        block_on(engine(&b).rest().add_device(&c_id.parse().unwrap(), "C again", &["tcp://127.0.0.1:1".into()])).unwrap();
        let undone = wait_until(Duration::from_secs(60), "B drops the re-added C", || !configured(&b).contains(&c_id) && ignored(&b).contains(&c_id));
        eprintln!("re-added on B; dropped again after {undone:?}");
        assert!(!configured(&a).contains(&c_id));

        // A fresh code from B: refused, C is not added anywhere.
        let code = invite(&b, &relay.url);
        let refused = join(&c, &relay.url, &code);
        assert_ne!(refused.status, 0, "{refused:?}");
        assert!(refused.json["error"]["message"].as_str().unwrap().contains("removed"), "says why: {refused:?}");
        std::thread::sleep(Duration::from_secs(2));
        assert!(!configured(&b).contains(&c_id) && !configured(&a).contains(&c_id));

        // The other way round: C offers a code and A takes it. A refuses C as the host.
        let offered = invite(&c, &relay.url);
        let refused = join(&a, &relay.url, &offered);
        assert_eq!((refused.status, refused.error_code()), (1, Some("BOTSYNC_PEER_REMOVED")), "{refused:?}");
        assert!(!configured(&a).contains(&c_id));

        // Allowed on B on purpose, C pairs again with a fresh code, and reaches A as well.
        let allowed = cli(None, &["--json", "--root", &arg(&b), "allow", &c_id]);
        assert_eq!(allowed.status, 0, "{allowed:?}");
        let rejoined = join(&c, &relay.url, &invite(&b, &relay.url));
        assert_eq!(rejoined.status, 0, "{rejoined:?}");
        wait_until(Duration::from_secs(60), "A takes C back from the member list", || configured(&a).contains(&c_id) && !ignored(&a).contains(&c_id));
        write_and_see_synced(&a.join("shared"), &c.join("shared"), "welcome-back.txt", b"again", Duration::from_secs(60));
    });
}

#[test]
fn join_with_an_empty_stdin_is_refused_and_sets_nothing_up() {
    isolated(test_path!("join_with_an_empty_stdin_is_refused_and_sets_nothing_up"), |scratch| {
        use_daemon_bin();
        let root = scratch.join("never");
        let before = snapshot(scratch);
        for input in [&b""[..], b"\n", b"   \n"] {
            let mut child = cli_command(None, &["--json", "--root", &arg(&root), "join", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            let run = CliRun::from_output(child.wait_with_output().unwrap());
            assert_eq!((run.status, run.error_code()), (2, Some("BOTSYNC_USAGE")), "{input:?}: {run:?}");
            assert!(run.json["error"]["message"].as_str().unwrap().contains("stdin"), "{run:?}");
        }
        let no_code = cli(None, &["--json", "--root", &arg(&root), "join"]);
        assert_eq!((no_code.status, no_code.error_code()), (2, Some("BOTSYNC_USAGE")), "{no_code:?}");
        assert!(no_code.json["error"]["message"].as_str().unwrap().contains("BOTSYNC_CODE"), "{no_code:?}");
        assert!(!root.exists());
        assert_eq!(snapshot(scratch), before, "nothing was created");
    });
}
