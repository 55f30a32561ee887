//! The engine against a real Syncthing (Debian's 1.19 at /usr/bin/syncthing), each test in its own
//! network namespace with the `direct` profile.

use std::time::{Duration, Instant};

use botsync::commands::{self, init::InitOptions, RootOptions};
use botsync::engine::{Engine, RunState};
use botsync::ErrorCode;
use crate::support::{block_on, isolated, mode, processes_mentioning, root_at, StopOnDrop};

fn init_options(root: &std::path::Path) -> InitOptions {
    InitOptions { root: Some(root.display().to_string()), network: Some("direct".into()), ..Default::default() }
}

fn root_options(root: &std::path::Path) -> RootOptions {
    RootOptions { root: Some(root.display().to_string()) }
}

#[test]
fn lifecycle_init_status_stop_start() {
    isolated(test_path!("lifecycle_init_status_stop_start"), |scratch| {
        let path = scratch.join("root");
        let _guard = StopOnDrop(root_at(path.clone()));
        block_on(async {
            let init = commands::init::run(&init_options(&path)).await.expect("init");
            assert!(init.created && init.started);
            assert_eq!(init.network, "direct");
            assert_eq!(init.state, "running");
            for dir in ["shared", "deliverables", "inbox"] {
                assert!(path.join(dir).join(".stfolder").is_dir(), "{dir} with marker");
            }
            assert!(std::fs::read_to_string(path.join("BOTSYNC.md")).unwrap().contains("deliverables/"));

            let status = commands::status::run(&root_options(&path)).await.unwrap();
            assert_eq!((status.state.as_str(), status.running, status.initialized), ("running", true, true));
            assert_eq!(status.device_id.as_deref(), Some(init.device_id.as_str()));
            assert!(status.syncthing_version.as_deref().unwrap().starts_with("v1.19"));
            let ids: Vec<&str> = status.folders.iter().map(|f| f.id.as_str()).collect();
            assert_eq!(ids, ["botsync-shared", "botsync-deliverables", "botsync-inbox"]);
            assert!(status.folders.iter().all(|f| f.state != "unknown" && f.state != "error"), "{:?}", status.folders);
            assert!(status.peers.is_empty());

            // The profile reached Syncthing: no discovery, relays or NAT, TCP only.
            let engine = Engine::load(&root_at(path.clone())).unwrap();
            let options = engine.rest().options().await.unwrap();
            for flag in ["globalAnnounceEnabled", "localAnnounceEnabled", "relaysEnabled", "natEnabled"] {
                assert_eq!(options[flag], false, "{flag}");
            }
            assert_eq!(options["listenAddresses"], serde_json::json!([format!("tcp://0.0.0.0:{}", engine.listen_port())]));
            assert_eq!(options["urAccepted"], -1);
            assert_eq!(options["autoUpgradeIntervalH"], 0);
            assert_eq!(options["reconnectionIntervalS"], 5);
            let folder = engine.rest().folder("botsync-shared").await.unwrap().unwrap();
            assert_eq!(folder.other["maxConflicts"], -1);
            assert_eq!(folder.other["fsWatcherEnabled"], true);
            // Syncthing's case-conflict checks are off: this filesystem tells names apart by case
            // (probed at init; the members folder when it is created).
            engine.ensure_members_folder().await.unwrap();
            for id in ["botsync-shared", "botsync-deliverables", "botsync-inbox", "botsync-members"] {
                assert_eq!(engine.rest().folder(id).await.unwrap().unwrap().other["caseSensitiveFS"], true, "{id}");
            }
            // A root made before the probe has them on: `start` turns them off.
            engine.rest().set_folder_case_sensitive("botsync-shared", false).await.unwrap();

            let stop = commands::stop::run(&root_options(&path)).await.unwrap();
            assert!(stop.stopped && stop.pids.len() >= 2, "monitor and worker: {:?}", stop.pids);
            assert!(processes_mentioning(&path.display().to_string()).is_empty(), "nothing of ours survives stop");
            let status = commands::status::run(&root_options(&path)).await.unwrap();
            assert_eq!((status.state.as_str(), status.running, status.initialized), ("stopped", false, true));
            assert_eq!(status.device_id.as_deref(), Some(init.device_id.as_str()));
            assert!(status.folders.iter().all(|f| f.state == "unknown"));
            let again = commands::stop::run(&root_options(&path)).await.unwrap();
            assert!(!again.stopped, "stop is idempotent");

            let start = commands::start::run(&root_options(&path)).await.unwrap();
            assert!(start.started);
            assert_eq!(engine.rest().folder("botsync-shared").await.unwrap().unwrap().other["caseSensitiveFS"], true, "set again by start");
            assert_eq!(commands::status::run(&root_options(&path)).await.unwrap().state, "running");
            let again = commands::start::run(&root_options(&path)).await.unwrap();
            assert!(!again.started, "start is idempotent");

            // init on an initialized root keeps the identity and just ensures it runs.
            commands::stop::run(&root_options(&path)).await.unwrap();
            let reinit = commands::init::run(&init_options(&path)).await.unwrap();
            assert!(!reinit.created && reinit.started);
            assert_eq!(reinit.device_id, init.device_id);
            assert_eq!(reinit.listen_port, init.listen_port);
            let reinit = commands::init::run(&init_options(&path)).await.unwrap();
            assert!(!reinit.created && !reinit.started);

            // A different --network on an initialized root is applied through REST and recorded.
            let lan = InitOptions { network: Some("lan".into()), ..init_options(&path) };
            let reinit = commands::init::run(&lan).await.unwrap();
            assert_eq!((reinit.network.as_str(), reinit.device_id.as_str()), ("lan", init.device_id.as_str()));
            let options = engine.rest().options().await.unwrap();
            assert_eq!((options["localAnnounceEnabled"].clone(), options["globalAnnounceEnabled"].clone()), (true.into(), false.into()));
            assert_eq!(Engine::load(&root_at(path.clone())).unwrap().network().as_str(), "lan");
            commands::init::run(&init_options(&path)).await.unwrap();
            assert_eq!(engine.rest().options().await.unwrap()["localAnnounceEnabled"], false);

            let doctor = commands::doctor::run(&root_options(&path)).await.unwrap();
            assert!(doctor.ok, "{:#?}", doctor.checks);
            commands::stop::run(&root_options(&path)).await.unwrap();
            let doctor = commands::doctor::run(&root_options(&path)).await.unwrap();
            assert!(!doctor.ok);
            let engine_check = doctor.checks.iter().find(|c| c.name == "engine").unwrap();
            assert!(!engine_check.ok && engine_check.hint.as_deref().unwrap().contains("botsync start"));
        });
    });
}

#[test]
fn killed_worker_is_restarted_and_status_never_lies() {
    isolated(test_path!("killed_worker_is_restarted_and_status_never_lies"), |scratch| {
        let path = scratch.join("root");
        let root = root_at(path.clone());
        let _guard = StopOnDrop(root.clone());
        block_on(async {
            commands::init::run(&init_options(&path)).await.expect("init");
            let engine = Engine::load(&root).unwrap();
            let (monitor, worker) = engine.pids();
            let (monitor, worker) = (monitor.expect("monitor runs"), worker.expect("worker runs"));
            // SAFETY: kill(2) on the worker PID the engine just verified via /proc.
            unsafe { libc::kill(worker as libc::pid_t, libc::SIGKILL) };

            let deadline = Instant::now() + Duration::from_secs(60);
            let mut seen = Vec::new();
            loop {
                let status = commands::status::run(&root_options(&path)).await.unwrap();
                assert!(status.initialized, "a root never becomes uninitialized");
                assert!(status.state == "restarting" || status.state == "running", "unexpected state {}", status.state);
                if seen.last() != Some(&status.state) {
                    seen.push(status.state.clone());
                }
                if status.state == "running" && seen.contains(&"restarting".to_string()) {
                    break;
                }
                assert!(Instant::now() < deadline, "not back within 60 s: {seen:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (monitor_after, worker_after) = engine.pids();
            assert_eq!(monitor_after, Some(monitor), "the same monitor restarted the worker");
            assert!(worker_after.is_some_and(|w| w != worker), "a new worker runs");
            assert_eq!(engine.probe().await, RunState::Running);
            // The daemon init started goes too (commands::stop, not only the engine).
            let stopped = commands::stop::run(&root_options(&path)).await.unwrap();
            assert!(stopped.pids.contains(&monitor));
        });
    });
}

#[test]
fn two_roots_run_at_once_with_private_state_and_no_key_in_argv() {
    isolated(test_path!("two_roots_run_at_once_with_private_state_and_no_key_in_argv"), |scratch| {
        let (a, b) = (scratch.join("a"), scratch.join("b"));
        let _guards = (StopOnDrop(root_at(a.clone())), StopOnDrop(root_at(b.clone())));
        block_on(async {
            let init_a = commands::init::run(&init_options(&a)).await.expect("init a");
            let init_b = commands::init::run(&init_options(&b)).await.expect("init b");
            assert_ne!(init_a.device_id, init_b.device_id);
            let (ea, eb) = (Engine::load(&root_at(a.clone())).unwrap(), Engine::load(&root_at(b.clone())).unwrap());
            let ports_a = [ea.gui_port(), ea.listen_port()];
            assert!(!ports_a.contains(&eb.gui_port()) && !ports_a.contains(&eb.listen_port()));
            assert_eq!(ea.rest().system_status().await.unwrap().my_id, ea.device_id());
            assert_eq!(eb.rest().system_status().await.unwrap().my_id, eb.device_id());
            // Both actually listen for peers.
            for engine in [&ea, &eb] {
                let status = engine.rest().system_status().await.unwrap();
                let listener = status.connection_service_status.values().next().expect("one listener");
                assert!(listener.error.is_none(), "{:?}", listener.error);
            }

            for root in [&a, &b] {
                assert_eq!(mode(&root.join(".botsync")), 0o700);
                for file in [".botsync/config.json", ".botsync/syncthing.pid", ".botsync/syncthing.log", ".botsync/syncthing/config.xml", ".botsync/syncthing/key.pem"] {
                    assert_eq!(mode(&root.join(file)), 0o600, "{file}");
                }
            }
            for key in [ea.state().api_key.expose(), eb.state().api_key.expose()] {
                assert!(processes_mentioning(key).is_empty(), "the API key shows in a command line");
            }
            let config = std::fs::read_to_string(a.join(".botsync/config.json")).unwrap();
            assert!(config.contains(ea.state().api_key.expose()), "the key is recorded for the CLI");

            // Stopping one leaves the other running.
            commands::stop::run(&root_options(&a)).await.unwrap();
            assert_eq!(ea.probe().await, RunState::Stopped);
            assert_eq!(eb.probe().await, RunState::Running);
            commands::stop::run(&root_options(&b)).await.unwrap();
        });
    });
}

#[test]
fn taken_api_port_is_refused_without_leaving_anything_running() {
    isolated(test_path!("taken_api_port_is_refused_without_leaving_anything_running"), |scratch| {
        let path = scratch.join("root");
        let root = root_at(path.clone());
        let _guard = StopOnDrop(root.clone());
        block_on(async {
            commands::init::run(&init_options(&path)).await.expect("init");
            let engine = Engine::load(&root).unwrap();
            commands::stop::run(&root_options(&path)).await.unwrap();
            let config_before = std::fs::read(root.config_file()).unwrap();
            let squatter = std::net::TcpListener::bind(("127.0.0.1", engine.gui_port())).unwrap();

            let error = commands::start::run(&root_options(&path)).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::PortInUse);
            assert!(error.to_string().contains(&engine.gui_port().to_string()));
            assert!(!error.to_string().contains('\n'));
            assert!(processes_mentioning(&path.display().to_string()).is_empty());
            assert_eq!(std::fs::read(root.config_file()).unwrap(), config_before);
            let error = commands::init::run(&init_options(&path)).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::PortInUse, "init on the root reports it too");
            assert_eq!(commands::status::run(&root_options(&path)).await.unwrap().state, "stopped");

            drop(squatter);
            assert!(commands::start::run(&root_options(&path)).await.unwrap().started);
            commands::stop::run(&root_options(&path)).await.unwrap();
        });
    });
}
