//! The bad-input matrix beyond tests/engine_bad_input.rs (which covers empty/garbled config.json,
//! a root that is a file or read-only, missing/unrunnable/old Syncthing and a taken API port):
//! damaged PID, invite and notification files on a running root, damaged config.json and
//! config.xml on a stopped one, invalid environment values, a taken sync port and a root the
//! user cannot read. Each refusal: one clear line, a non-zero exit, nothing changed on disk and
//! no process left; each tolerated damage: commands keep telling the truth.

use std::path::Path;
use std::process::Command;

use botsync::commands::{self, invite::InviteOptions};
use botsync::engine::{home_dir, process, Engine};
use botsync::ErrorCode;
use crate::support::{assert_clean_error, block_on, isolated, root_at, snapshot};
use crate::support::reliability::*;

fn syncthings_of(root: &Path) -> Vec<u32> {
    let mut pids = process::our_processes(&home_dir(&root_at(root.to_owned())), None);
    pids.sort();
    pids
}

/// Damaged contents every state file is tried with.
const DAMAGE: [&[u8]; 5] = [b"", b"   \n", b"{\"pid\": ", b"\x00\xff\xfe garbage", b"[1, 2, 3]"];

#[test]
fn damaged_pid_invite_and_notification_files_on_a_running_root() {
    isolated(test_path!("damaged_pid_invite_and_notification_files_on_a_running_root"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let root = scratch.join("root");
        let _guard = RootGuard::new(&root);
        let init = block_on(commands::init::run(&init_options(&root, &relay.url))).expect("init");
        let state = root.join(".botsync");
        let invite_file = state.join(format!("invites/{}.json", init.invite.id));
        assert!(invite_file.is_file());
        let daemon = init.daemon_pid;
        let engine_pids = syncthings_of(&root);

        for (file, tolerated) in [
            (state.join("daemon.pid"), true),
            (state.join("syncthing.pid"), true),
            (invite_file.clone(), true),
            (state.join("invites/another.json"), true),
            (state.join("notifications.json"), false),
        ] {
            let original = std::fs::read(&file).ok();
            for content in DAMAGE {
                std::fs::write(&file, content).unwrap();
                let what = format!("{} = {:?}", file.display(), String::from_utf8_lossy(content));
                // status never fails and never lies about what runs.
                let report = status(&root);
                assert_eq!((report.state.as_str(), report.daemon.pid), ("running", Some(daemon)), "{what}");
                let before = snapshot(&root);
                match block_on(commands::start::run(&root_options(&root))) {
                    Ok(start) => {
                        assert!(tolerated, "{what}: start should refuse");
                        assert!(!start.started, "{what}: start restarted a healthy engine");
                        assert_eq!(start.daemon_pid, daemon, "{what}: start made a second daemon");
                    }
                    Err(error) => {
                        assert!(!tolerated, "{what}: {error}");
                        assert_clean_error(&error, ErrorCode::StateCorrupted, &["notifications.json"]);
                        assert_eq!(snapshot(&root), before, "{what}: nothing changed");
                    }
                }
                assert_eq!(syncthings_of(&root), engine_pids, "{what}: the engine is untouched");
                assert_eq!(botsync::daemon::process::running_pid(&root_at(root.clone())), Some(daemon), "{what}");
            }
            match original {
                Some(bytes) => std::fs::write(&file, bytes).unwrap(),
                None => std::fs::remove_file(&file).unwrap(),
            }
        }
        // The daemon survived all of it, and stop finds everything even with both PID files damaged.
        assert!(process::alive_with_arg(daemon, &botsync::daemon::process::root_arg(&root_at(root.clone()))));
        std::fs::write(state.join("daemon.pid"), "garbage").unwrap();
        std::fs::write(state.join("syncthing.pid"), "garbage").unwrap();
        let stop = block_on(commands::stop::run(&root_options(&root))).expect("stop");
        assert!(stop.pids.contains(&daemon), "{stop:?}");
        assert!(processes_of(&root).is_empty(), "stop left processes with damaged PID files");
        assert_eq!(status(&root).state, "stopped");
        // And start works over stale PID files.
        std::fs::write(state.join("daemon.pid"), "{\"pid\": 1}").unwrap();
        std::fs::write(state.join("syncthing.pid"), "{\"monitor\": 1}").unwrap();
        let start = block_on(commands::start::run(&root_options(&root))).expect("start over stale PID files");
        assert!(start.started);
        assert_eq!(status(&root).daemon.pid, Some(start.daemon_pid));
    });
}

#[test]
fn damaged_config_of_a_stopped_root_is_refused_by_every_command() {
    isolated(test_path!("damaged_config_of_a_stopped_root_is_refused_by_every_command"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let root = scratch.join("root");
        let _guard = RootGuard::new(&root);
        block_on(commands::init::run(&init_options(&root, &relay.url))).expect("init");
        block_on(commands::stop::run(&root_options(&root))).unwrap();
        let config = root.join(".botsync/config.json");
        let good = std::fs::read_to_string(&config).unwrap();
        let mut damaged: Vec<String> = [1, good.len() / 3, good.len() / 2, good.len() - 3].iter().map(|&n| good[..n].to_string()).collect();
        damaged.push("{}".into());
        damaged.push("[]".into());
        damaged.push(good.replace("\"direct\"", "\"bogus\""));
        damaged.push(good.replace("\"guiPort\": ", "\"guiPort\": -"));
        for content in &damaged {
            std::fs::write(&config, content).unwrap();
            let before = snapshot(&root);
            let errors = block_on(async {
                vec![
                    commands::start::run(&root_options(&root)).await.map(drop).unwrap_err(),
                    commands::stop::run(&root_options(&root)).await.map(drop).unwrap_err(),
                    commands::status::run(&root_options(&root)).await.map(drop).unwrap_err(),
                    commands::invite::run(&InviteOptions { root: Some(root.display().to_string()), relay: Some(relay.url.clone()), ..Default::default() })
                        .await
                        .map(drop)
                        .unwrap_err(),
                    commands::init::run(&init_options(&root, &relay.url)).await.map(drop).unwrap_err(),
                ]
            });
            for error in &errors {
                assert_clean_error(error, ErrorCode::StateCorrupted, &["config.json"]);
            }
            assert_eq!(snapshot(&root), before, "nothing changed for {content:?}");
            assert!(processes_of(&root).is_empty());
            let run = cli(None, &["--json", "--root", &root.display().to_string(), "start"]);
            assert_eq!((run.status, run.error_code()), (1, Some("BOTSYNC_STATE_CORRUPTED")), "{run:?}");
        }
        std::fs::write(&config, &good).unwrap();

        // Syncthing's own configuration: missing, then truncated.
        let xml = root.join(".botsync/syncthing/config.xml");
        let good_xml = std::fs::read(&xml).unwrap();
        std::fs::remove_file(&xml).unwrap();
        let before = snapshot(&root);
        let error = block_on(commands::start::run(&root_options(&root))).unwrap_err();
        assert_clean_error(&error, ErrorCode::StateCorrupted, &["config"]);
        assert_eq!(snapshot(&root), before);
        assert!(processes_of(&root).is_empty());
        std::fs::write(&xml, &good_xml[..good_xml.len() / 2]).unwrap();
        let error = block_on(commands::start::run(&root_options(&root))).unwrap_err();
        assert_clean_error(&error, ErrorCode::EngineFailed, &[]);
        assert!(processes_of(&root).is_empty(), "a Syncthing that cannot read its config is not left running");
        assert_eq!(status(&root).state, "stopped");
        std::fs::write(&xml, &good_xml).unwrap();
        assert!(block_on(commands::start::run(&root_options(&root))).expect("start with the config restored").started);
    });
}

#[test]
fn invalid_environment_values_change_nothing() {
    isolated(test_path!("invalid_environment_values_change_nothing"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let fresh = scratch.join("fresh");
        let stopped = scratch.join("stopped");
        let _guards = (RootGuard::new(&fresh), RootGuard::new(&stopped));
        block_on(commands::init::run(&init_options(&stopped, &relay.url))).expect("init");
        block_on(commands::stop::run(&root_options(&stopped))).unwrap();
        let code = "abandon-ability-able-about-above";

        // BOTSYNC_ROOT set but empty, no --root.
        std::env::set_current_dir(scratch).unwrap();
        std::env::set_var("BOTSYNC_ROOT", "");
        let before = snapshot(scratch);
        let errors = block_on(async {
            vec![
                commands::status::run(&Default::default()).await.map(drop).unwrap_err(),
                commands::start::run(&Default::default()).await.map(drop).unwrap_err(),
                commands::init::run(&Default::default()).await.map(drop).unwrap_err(),
            ]
        });
        for error in &errors {
            assert_clean_error(error, ErrorCode::InvalidRoot, &["BOTSYNC_ROOT"]);
        }
        let run = cli(None, &["--json", "status"]);
        assert_eq!((run.status, run.error_code()), (1, Some("BOTSYNC_INVALID_ROOT")), "{run:?}");
        std::env::remove_var("BOTSYNC_ROOT");
        assert_eq!(snapshot(scratch).len(), before.len());

        let refused = |what: &str, code_expected: ErrorCode, mention: &str| {
            let (fresh_before, stopped_before) = (snapshot(&fresh), snapshot(&stopped));
            let join = join_options(&fresh, &relay.url, code);
            let errors = block_on(async {
                vec![
                    commands::init::run(&init_options(&fresh, &relay.url)).await.map(drop).unwrap_err(),
                    commands::join::run(&join).await.map(drop).unwrap_err(),
                    commands::start::run(&root_options(&stopped)).await.map(drop).unwrap_err(),
                    commands::invite::run(&InviteOptions { root: Some(stopped.display().to_string()), ..Default::default() })
                        .await
                        .map(drop)
                        .unwrap_err(),
                ]
            });
            for error in &errors {
                assert_clean_error(error, code_expected, &[mention]);
            }
            assert!(!fresh.exists(), "{what}: nothing created");
            assert_eq!(snapshot(&fresh), fresh_before);
            assert_eq!(snapshot(&stopped), stopped_before, "{what}: nothing changed");
            assert!(processes_of(&fresh).is_empty() && processes_of(&stopped).is_empty(), "{what}: nothing started");
        };

        // A relay URL that is not one (the options' relay wins over the variable, so clear it there).
        for garbage in ["not a url", "ftp://relay.example", "http://", "://"] {
            std::env::set_var("BOTSYNC_RELAY", garbage);
            let join = botsync::commands::join::JoinOptions { relay: None, ..join_options(&fresh, &relay.url, code) };
            let init = botsync::commands::init::InitOptions { relay: None, ..init_options(&fresh, &relay.url) };
            let before = snapshot(scratch);
            for error in block_on(async {
                vec![
                    commands::init::run(&init).await.map(drop).unwrap_err(),
                    commands::join::run(&join).await.map(drop).unwrap_err(),
                    commands::invite::run(&InviteOptions { root: Some(stopped.display().to_string()), ..Default::default() })
                        .await
                        .map(drop)
                        .unwrap_err(),
                ]
            }) {
                assert_clean_error(&error, ErrorCode::RelayProtocol, &[garbage.trim().trim_end_matches('/')]);
            }
            assert!(!fresh.exists() && processes_of(&stopped).is_empty(), "BOTSYNC_RELAY={garbage:?}");
            assert_eq!(snapshot(scratch).len(), before.len());
        }
        std::env::remove_var("BOTSYNC_RELAY");

        // An OpenClaw hooks URL that is not http(s), next to a token.
        std::env::set_var("OPENCLAW_HOOKS_TOKEN", "tok-12345");
        for garbage in ["not a url", "ftp://127.0.0.1/hooks", "127.0.0.1:18789"] {
            std::env::set_var("OPENCLAW_HOOKS_URL", garbage);
            refused(&format!("OPENCLAW_HOOKS_URL={garbage:?}"), ErrorCode::Usage, "OPENCLAW_HOOKS_URL");
        }
        std::env::remove_var("OPENCLAW_HOOKS_URL");
        std::env::remove_var("OPENCLAW_HOOKS_TOKEN");

        // The background process's binary pointing nowhere.
        std::env::set_var("BOTSYNC_DAEMON_BIN", scratch.join("nowhere/botsync-daemon"));
        refused("BOTSYNC_DAEMON_BIN", ErrorCode::DaemonFailed, "BOTSYNC_DAEMON_BIN");
        use_daemon_bin();

        // With every variable sane again, both roots work.
        block_on(commands::start::run(&root_options(&stopped))).expect("start");
    });
}

#[test]
fn taken_sync_port_is_refused_without_leaving_anything_running() {
    isolated(test_path!("taken_sync_port_is_refused_without_leaving_anything_running"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        let root = scratch.join("root");
        let _guard = RootGuard::new(&root);
        block_on(commands::init::run(&init_options(&root, &relay.url))).expect("init");
        block_on(commands::stop::run(&root_options(&root))).unwrap();
        let port = Engine::load(&root_at(root.clone())).unwrap().listen_port();
        let squatter = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
        let before = snapshot(&root);
        let error = block_on(commands::start::run(&root_options(&root))).unwrap_err();
        assert_clean_error(&error, ErrorCode::PortInUse, &[&port.to_string()]);
        assert!(processes_of(&root).is_empty());
        assert_eq!(snapshot(&root), before);
        assert_eq!(status(&root).state, "stopped");
        drop(squatter);
        assert!(block_on(commands::start::run(&root_options(&root))).unwrap().started);
    });
}

#[test]
fn a_root_the_user_cannot_read_is_refused() {
    isolated(test_path!("a_root_the_user_cannot_read_is_refused"), |scratch| {
        use_daemon_bin();
        let relay = RelayThread::unlimited();
        // Permission bits do not stop root: run the CLI as `nobody` over roots only root may read.
        let shared = scratch.join("open");
        std::fs::create_dir(&shared).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        let private_dir = shared.join("private");
        std::fs::create_dir(&private_dir).unwrap();
        std::fs::set_permissions(&private_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let initialized = shared.join("initialized");
        let _guard = RootGuard::new(&initialized);
        block_on(commands::init::run(&init_options(&initialized, &relay.url))).expect("init as root");
        block_on(commands::stop::run(&root_options(&initialized))).unwrap();

        let as_nobody = |args: &[&str]| -> CliRun {
            let command = cli_command(None, args);
            let program = command.get_program().to_owned();
            let inner_args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
            let envs: Vec<_> = command.get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
            let mut wrapped = Command::new("setpriv");
            wrapped.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(program).args(inner_args);
            for (key, value) in envs {
                if let Some(value) = value {
                    wrapped.env(key, value);
                }
            }
            wrapped.env("HOME", "/nonexistent").current_dir("/");
            CliRun::from_output(wrapped.output().expect("setpriv"))
        };
        let before = (snapshot(&private_dir), snapshot(&initialized));
        let inside = private_dir.join("root").display().to_string();
        let run = as_nobody(&["--json", "--root", &inside, "init", "--network", "direct", "--offline"]);
        assert_eq!((run.status, run.error_code()), (1, Some("BOTSYNC_INVALID_ROOT")), "{run:?}");
        let init_arg = initialized.display().to_string();
        for command in ["status", "start", "stop"] {
            let run = as_nobody(&["--json", "--root", &init_arg, command]);
            assert_eq!(run.status, 1, "{command}: {run:?}");
            let code = run.error_code().unwrap_or_default();
            assert!(code == "BOTSYNC_IO" || code == "BOTSYNC_INVALID_ROOT", "{command}: {run:?}");
            let message = run.json["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("ermission denied") && !message.contains('\n'), "{command}: {message}");
        }
        assert_eq!((snapshot(&private_dir), snapshot(&initialized)), before, "nothing changed");
        assert!(processes_of(&initialized).is_empty() && processes_of(&private_dir).is_empty());
    });
}
