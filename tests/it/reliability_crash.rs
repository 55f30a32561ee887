//! Crashes: kill -9 of Syncthing's worker, of its monitor, of `botsync-daemon` and of a `join`
//! half-way, and a full stop/start. After each, `status` tells the truth, the system recovers by
//! itself or with `botsync start`, and pairings and files are intact. Each test runs two real
//! Syncthings (direct profile) in its own network namespace, paired through an in-process relay.

use std::path::Path;
use std::time::{Duration, Instant};

use botsync::commands::{self, invite::InviteOptions};
use botsync::engine::Engine;
use crate::support::{block_on, isolated, root_at};
use crate::support::reliability::*;

const SYNC_LIMIT: Duration = Duration::from_secs(30);

fn engine(root: &Path) -> Engine {
    Engine::load(&root_at(root.to_owned())).unwrap()
}

/// `status` agrees with /proc: "running" only with a live Syncthing of this root, the daemon PID
/// only while that daemon lives.
fn assert_status_truthful(root: &Path) -> commands::status::StatusReport {
    let report = status(root);
    let (monitor, worker) = engine(root).pids();
    let syncthing_alive = !botsync::engine::process::our_processes(&botsync::engine::home_dir(&root_at(root.to_owned())), None).is_empty();
    match report.state.as_str() {
        "running" => assert!(syncthing_alive, "status says running but no Syncthing of {} lives", root.display()),
        "restarting" => assert!(monitor.is_some(), "status says restarting without a monitor"),
        "stopped" => assert!(!syncthing_alive || worker.is_none(), "status says stopped while Syncthing runs: {monitor:?} {worker:?}"),
        other => panic!("unexpected state {other}"),
    }
    match report.daemon.pid {
        Some(pid) => assert!(matches!(botsync::engine::process::proc_state(pid), Some(s) if s != 'Z'), "daemon {pid} reported but dead"),
        None => assert!(
            botsync::daemon::process::running_pid(&root_at(root.to_owned())).is_none(),
            "a daemon runs but status does not show it"
        ),
    }
    report
}

fn shared(root: &Path) -> std::path::PathBuf {
    root.join("shared")
}

/// Files both ways, and the other side listed as a connected peer.
fn assert_pair_works(a: &Path, b: &Path, tag: &str) {
    wait_until(SYNC_LIMIT, "peers connected both ways", || peer_connected(a) && peer_connected(b));
    write_and_see_synced(&shared(a), &shared(b), &format!("{tag}-from-a.txt"), format!("{tag} a").as_bytes(), SYNC_LIMIT);
    write_and_see_synced(&shared(b), &shared(a), &format!("{tag}-from-b.txt"), format!("{tag} b").as_bytes(), SYNC_LIMIT);
}

fn assert_same_files(a: &Path, b: &Path) {
    wait_until(SYNC_LIMIT, "both sides hold the same files", || tree_hashes(&shared(a)) == tree_hashes(&shared(b)));
}

#[test]
fn killed_worker_monitor_and_daemon_recover_with_pairing_and_files_intact() {
    isolated(test_path!("killed_worker_monitor_and_daemon_recover_with_pairing_and_files_intact"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (RootGuard::new(&a), RootGuard::new(&b));
        pair(&a, &b, &relay.url);
        assert_pair_works(&a, &b, "baseline");

        // 1. The worker: the monitor restarts it; status says restarting, then running.
        let (monitor, worker) = engine(&a).pids();
        let (monitor, worker) = (monitor.expect("monitor"), worker.expect("worker"));
        kill9(worker);
        let mut states = Vec::new();
        wait_until(Duration::from_secs(60), "worker restarted", || {
            let report = assert_status_truthful(&a);
            if states.last() != Some(&report.state) {
                states.push(report.state.clone());
            }
            report.state == "running" && engine(&a).pids().1.is_some_and(|w| w != worker)
        });
        assert_eq!(engine(&a).pids().0, Some(monitor), "the same monitor restarted it");
        assert_pair_works(&a, &b, "after-worker");

        // 2. The monitor: the worker may live on, unguarded; `start` brings back a guarded engine.
        let (monitor, _) = engine(&a).pids();
        kill9(monitor.unwrap());
        wait_dead(monitor.unwrap());
        let report = assert_status_truthful(&a);
        assert!(report.initialized && !report.peers.is_empty(), "the pairing is still listed: {report:?}");
        let start = block_on(commands::start::run(&root_options(&a))).expect("start after the monitor died");
        assert_eq!(start.state, "running");
        let (monitor, worker) = engine(&a).pids();
        assert!(monitor.is_some() && worker.is_some(), "start restored a monitored engine: {monitor:?} {worker:?}");
        assert_eq!(assert_status_truthful(&a).state, "running");
        // And that monitor does its job again.
        kill9(worker.unwrap());
        wait_until(Duration::from_secs(60), "worker restarted by the new monitor", || {
            assert_status_truthful(&a).state == "running" && engine(&a).pids().1.is_some_and(|w| Some(w) != worker)
        });
        assert_pair_works(&a, &b, "after-monitor");

        // 3. The daemon, with an invitation pending: status shows it gone, `start` brings it back
        //    and the pending code still works.
        let invite = block_on(commands::invite::run(&InviteOptions {
            root: Some(a.display().to_string()),
            relay: Some(relay.url.clone()),
            ..Default::default()
        }))
        .expect("invite");
        let daemon = status(&a).daemon.pid.expect("daemon runs");
        // Let the daemon open the exchange on the relay, so the kill lands mid-pairing.
        std::thread::sleep(Duration::from_millis(600));
        kill9(daemon);
        wait_dead(daemon);
        let report = assert_status_truthful(&a);
        assert!(!report.daemon.running, "status still shows the killed daemon: {:?}", report.daemon);
        assert_eq!(report.state, "running", "Syncthing does not depend on the daemon");
        let start = block_on(commands::start::run(&root_options(&a))).expect("start after the daemon died");
        assert_ne!(start.daemon_pid, daemon);
        assert_eq!(assert_status_truthful(&a).daemon.pid, Some(start.daemon_pid));
        let joined = block_on(commands::join::run(&join_options(&b, &relay.url, &invite.code)));
        assert!(joined.is_ok(), "the code handed out before the daemon was killed still pairs: {joined:?}");
        assert_pair_works(&a, &b, "after-daemon");
        assert_same_files(&a, &b);
        let files = tree_hashes(&shared(a.as_path()));
        assert_eq!(files.len(), 8, "every file written survived: {files:?}");
    });
}

#[test]
fn stop_everything_then_start_reconnects_within_seconds() {
    isolated(test_path!("stop_everything_then_start_reconnects_within_seconds"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (RootGuard::new(&a), RootGuard::new(&b));
        pair(&a, &b, &relay.url);
        assert_pair_works(&a, &b, "before");
        drop(relay);
        let mut reconnects = Vec::new();
        for (round, order) in [[&a, &b], [&b, &a], [&a, &b]].into_iter().enumerate() {
            for root in [&a, &b] {
                let stop = block_on(commands::stop::run(&root_options(root))).unwrap();
                assert!(stop.stopped);
                assert!(processes_of(root).is_empty(), "stop leaves nothing running");
                let report = assert_status_truthful(root);
                assert_eq!((report.state.as_str(), report.daemon.running), ("stopped", false));
                assert_eq!(report.peers.len(), 1, "the pairing survives a stop");
            }
            // Edit while everything is down: it must travel after the restart.
            std::fs::write(shared(order[0]).join(format!("offline-{round}.txt")), format!("written while stopped {round}")).unwrap();
            let started = Instant::now();
            for root in order {
                block_on(commands::start::run(&root_options(root))).expect("start");
            }
            wait_until(Duration::from_secs(20), "peers reconnect after a restart", || peer_connected(&a) && peer_connected(&b));
            reconnects.push(started.elapsed());
            let other = if order[0] == &a { &b } else { &a };
            wait_until(SYNC_LIMIT, "the offline edit arrives", || shared(other).join(format!("offline-{round}.txt")).is_file());
        }
        eprintln!("reconnect after stop/start of both (incl. start): {reconnects:?}");
        assert_pair_works(&a, &b, "after");
        assert_same_files(&a, &b);
    });
}

#[test]
fn join_killed_half_way_leaves_a_truthful_root_that_pairs_again() {
    isolated(test_path!("join_killed_half_way_leaves_a_truthful_root_that_pairs_again"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (RootGuard::new(&a), RootGuard::new(&b));
        let init = block_on(commands::init::run(&init_options(&a, &relay.url))).expect("init a");
        let b_arg = b.display().to_string();

        // Kill point 1: while join sets up this machine (its state exists, Syncthing may be starting).
        let mut child = cli_spawn(None, &["--json", "--root", &b_arg, "join", &init.invite.code, "--network", "direct", "--relay", &relay.url]);
        wait_until(Duration::from_secs(30), "join creates the root's state", || b.join(".botsync/config.json").is_file());
        child.kill().unwrap();
        let _ = child.wait();
        let report = assert_status_truthful(&b);
        assert!(report.initialized);
        // Kill point 2: right after the code exchange, before join saw the connection.
        let invite = |root: &Path| {
            block_on(commands::invite::run(&InviteOptions { root: Some(root.display().to_string()), relay: Some(relay.url.clone()), ..Default::default() }))
                .expect("invite")
        };
        // The killed join had not used the code up yet (or had): either it pairs now, or it says why.
        match block_on(commands::join::run(&join_options(&b, &relay.url, &init.invite.code))) {
            Ok(joined) => assert_eq!(joined.peer.device_id, init.device_id),
            Err(e) => assert_eq!(e.code(), botsync::ErrorCode::CodeUsed, "{e}"),
        }
        let code = invite(&a).code;
        let mut child = cli_spawn(None, &["--json", "--root", &b_arg, "join", &code, "--network", "direct", "--relay", &relay.url]);
        let invite_id = code.split('-').take(2).collect::<Vec<_>>().join("-");
        wait_until(Duration::from_secs(30), "the host records the pairing", || {
            botsync::daemon::invites::load(&root_at(a.clone()), &invite_id)
                .ok()
                .flatten()
                .is_some_and(|r| !r.is_pending())
        });
        child.kill().unwrap();
        let _ = child.wait();
        assert_status_truthful(&a);
        assert_status_truthful(&b);

        // Recovery: `start` on the joiner, a fresh code, join again.
        block_on(commands::start::run(&root_options(&b))).expect("start b");
        assert_eq!(assert_status_truthful(&b).state, "running");
        let code = invite(&a).code;
        let joined = block_on(commands::join::run(&join_options(&b, &relay.url, &code))).expect("join again");
        assert_eq!(joined.peer.device_id, init.device_id);
        assert_pair_works(&a, &b, "after-killed-join");
        let peers = status(&a).peers;
        assert_eq!(peers.len(), 1, "one pairing, not duplicates: {peers:?}");
        assert_same_files(&a, &b);
    });
}
