//! Races, with real CLI processes: twenty machines joining with one code, two `botsync start` at
//! once, and `stop` while `init` is still setting a root up.

use std::path::Path;
use std::time::Duration;

use botsync::commands;
use botsync::engine::{home_dir, process};
use crate::support::{block_on, isolated, root_at};
use crate::support::reliability::*;

/// Live botsync-daemon processes serving `root`, found through /proc (not the PID file).
fn daemons_of(root: &Path) -> Vec<u32> {
    let marker = botsync::daemon::process::root_arg(&root_at(root.to_owned()));
    processes_of(root).into_iter().filter(|&pid| process::alive_with_arg(pid, &marker)).collect()
}

fn syncthings_of(root: &Path) -> Vec<u32> {
    process::our_processes(&home_dir(&root_at(root.to_owned())), None)
}

#[test]
fn twenty_joiners_race_for_one_code_and_exactly_one_pairs() {
    isolated(test_path!("twenty_joiners_race_for_one_code_and_exactly_one_pairs"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let host = scratch.join("host");
        let _guard = RootGuard::new(&host);
        let init = block_on(commands::init::run(&init_options(&host, &relay.url))).expect("init host");
        let joiners: Vec<_> = (0..20).map(|i| scratch.join(format!("joiner-{i:02}"))).collect();
        let _guards: Vec<_> = joiners.iter().map(|j| RootGuard::new(j)).collect();
        let children: Vec<_> = joiners
            .iter()
            .map(|j| {
                let root = j.display().to_string();
                cli_spawn(None, &["--json", "--root", &root, "join", &init.invite.code, "--network", "direct", "--relay", &relay.url])
            })
            .collect();
        let runs: Vec<CliRun> = children.into_iter().map(|c| CliRun::from_output(c.wait_with_output().unwrap())).collect();

        let winners: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].status == 0).collect();
        assert_eq!(winners.len(), 1, "exactly one joiner pairs: {:?}", runs.iter().map(|r| (r.status, r.error_code())).collect::<Vec<_>>());
        let winner = winners[0];
        assert_eq!(runs[winner].json["peer"]["deviceId"], init.device_id);
        for (i, run) in runs.iter().enumerate().filter(|(i, _)| *i != winner) {
            assert_eq!(run.status, 1, "loser {i}: {run:?}");
            assert_eq!(run.error_code(), Some("BOTSYNC_CODE_USED"), "loser {i}: {run:?}");
            assert!(run.json["error"]["message"].as_str().unwrap().contains("already used"), "{run:?}");
            // A loser learns it before setting anything up.
            assert!(!joiners[i].exists(), "loser {i} created its root");
            assert!(processes_of(&joiners[i]).is_empty(), "loser {i} left processes running");
        }
        let winner_id = runs[winner].json["deviceId"].as_str().unwrap().to_string();
        wait_until(Duration::from_secs(10), "the host records the winner", || {
            let peers = status(&host).peers;
            peers.len() == 1 && peers[0].device_id == winner_id && peers[0].connected
        });
        write_and_see_synced(&host.join("shared"), &joiners[winner].join("shared"), "won.txt", b"one code, one pairing", Duration::from_secs(30));
    });
}

#[test]
fn two_starts_at_once_leave_one_daemon_and_one_syncthing() {
    isolated(test_path!("two_starts_at_once_leave_one_daemon_and_one_syncthing"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let root = scratch.join("root");
        let _guard = RootGuard::new(&root);
        block_on(commands::init::run(&init_options(&root, &relay.url))).expect("init");
        let arg = root.display().to_string();
        for round in 0..4 {
            if round % 2 == 0 {
                // Everything down.
                block_on(commands::stop::run(&root_options(&root))).unwrap();
            } else {
                // Only the daemon down (killed): the engine runs and start must only add a daemon.
                let daemon = status(&root).daemon.pid.expect("daemon");
                kill9(daemon);
                wait_dead(daemon);
            }
            let children: Vec<_> = (0..2).map(|_| cli_spawn(None, &["--json", "--root", &arg, "start"])).collect();
            let runs: Vec<CliRun> = children.into_iter().map(|c| CliRun::from_output(c.wait_with_output().unwrap())).collect();
            for run in &runs {
                assert_eq!(run.status, 0, "round {round}: {run:?}");
            }
            assert_eq!(runs[0].json["daemonPid"], runs[1].json["daemonPid"], "round {round}: both report the one daemon");
            let started: Vec<bool> = runs.iter().map(|r| r.json["started"].as_bool().unwrap()).collect();
            if round % 2 == 0 {
                assert_eq!(started.iter().filter(|s| **s).count(), 1, "round {round}: one of them started Syncthing: {started:?}");
            }
            assert_eq!(daemons_of(&root).len(), 1, "round {round}: one background process");
            let syncthings = syncthings_of(&root);
            assert_eq!(syncthings.len(), 2, "round {round}: one monitor and one worker: {syncthings:?}");
            let report = status(&root);
            assert_eq!(report.state, "running");
            assert_eq!(report.daemon.pid, runs[0].json["daemonPid"].as_u64().map(|p| p as u32));
        }
    });
}

#[test]
fn stop_during_init_leaves_a_truthful_root_and_nothing_stray() {
    isolated(test_path!("stop_during_init_leaves_a_truthful_root_and_nothing_stray"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        // Stop at successive moments of init: state created, Syncthing spawned, daemon spawned.
        let moments: [(&str, fn(&Path) -> bool); 3] = [
            ("config.json written", |r| r.join(".botsync/config.json").is_file()),
            ("Syncthing spawned", |r| r.join(".botsync/syncthing.pid").is_file()),
            ("daemon spawned", |r| r.join(".botsync/daemon.pid").is_file()),
        ];
        for (i, (moment, reached)) in moments.iter().enumerate() {
            let root = scratch.join(format!("root-{i}"));
            let _guard = RootGuard::new(&root);
            let arg = root.display().to_string();
            let init = cli_spawn(None, &["--json", "--root", &arg, "init", "--network", "direct", "--relay", &relay.url]);
            wait_until(Duration::from_secs(30), moment, || reached(&root));
            let stop = cli(None, &["--json", "--root", &arg, "stop"]);
            let init = CliRun::from_output(init.wait_with_output().unwrap());
            assert!(stop.status == 0 || stop.error_code().is_some(), "{moment}: stop fails only with a clear error: {stop:?}");
            assert!(init.status == 0 || init.error_code().is_some(), "{moment}: init fails only with a clear error: {init:?}");

            // Whatever the interleaving, status tells the truth about what runs.
            let report = status(&root);
            let syncthings = syncthings_of(&root);
            let daemons = daemons_of(&root);
            assert_eq!(report.running, !syncthings.is_empty() && report.state == "running", "{moment}: {report:?} vs {syncthings:?}");
            assert_eq!(report.daemon.running, !daemons.is_empty(), "{moment}: {:?} vs {daemons:?}", report.daemon);
            if !report.initialized {
                assert!(syncthings.is_empty() && daemons.is_empty(), "{moment}: processes for an uninitialized root");
                assert_ne!(init.status, 0, "{moment}: init failed, said so, and rolled back");
                continue;
            }
            // And the root is usable: stop leaves nothing, start brings everything back.
            block_on(commands::stop::run(&root_options(&root))).expect("stop");
            assert!(processes_of(&root).is_empty(), "{moment}: stop leaves nothing running");
            let start = block_on(commands::start::run(&root_options(&root))).expect("start after the interrupted init");
            assert_eq!(status(&root).daemon.pid, Some(start.daemon_pid));
            eprintln!("{moment}: init exit {} ({:?}), stop exit {}", init.status, init.error_code(), stop.status);
            block_on(commands::stop::run(&root_options(&root))).expect("stop");
        }
    });
}
