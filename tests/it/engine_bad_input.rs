//! Bad input: each case is one clear one-line error, a non-zero exit, nothing changed on disk and
//! no process left behind. Each test runs in its own process and namespaces (it changes env vars).

use std::path::Path;

use botsync::commands::{self, init::InitOptions, RootOptions};
use botsync::ErrorCode;
use crate::support::{assert_clean_error, block_on, fake_syncthing, isolated, processes_mentioning, root_at, snapshot, StopOnDrop};

fn init_options(root: &Path) -> InitOptions {
    InitOptions { root: Some(root.display().to_string()), network: Some("direct".into()), ..Default::default() }
}

fn root_options(root: &Path) -> RootOptions {
    RootOptions { root: Some(root.display().to_string()) }
}

fn cli(args: &[&str]) -> i32 {
    let argv = std::iter::once("botsync").chain(args.iter().copied()).map(String::from).collect();
    block_on(botsync::cli::run(argv))
}

#[test]
fn root_that_is_a_file_or_unwritable_is_refused() {
    isolated(test_path!("root_that_is_a_file_or_unwritable_is_refused"), |scratch| {
        let file = scratch.join("a-file");
        std::fs::write(&file, "precious").unwrap();
        let error = block_on(commands::init::run(&init_options(&file))).unwrap_err();
        assert_clean_error(&error, ErrorCode::InvalidRoot, &["not a directory"]);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        assert_eq!(cli(&["--root", file.to_str().unwrap(), "init", "--network", "direct"]), 1);
        let nested = file.join("root");
        let error = block_on(commands::init::run(&init_options(&nested))).unwrap_err();
        assert_clean_error(&error, ErrorCode::InvalidRoot, &[]);

        // Read-only even for root: a read-only tmpfs in this test's private mount namespace.
        let readonly = scratch.join("readonly");
        std::fs::create_dir(&readonly).unwrap();
        let mounted = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "ro", "tmpfs"]).arg(&readonly).status().unwrap();
        assert!(mounted.success());
        let before = snapshot(&readonly);
        for root in [readonly.clone(), readonly.join("sub/root")] {
            let error = block_on(commands::init::run(&init_options(&root))).unwrap_err();
            assert_clean_error(&error, ErrorCode::InvalidRoot, &["cannot write"]);
        }
        assert_eq!(snapshot(&readonly), before);
        let _ = std::process::Command::new("umount").arg(&readonly).status();
        assert!(processes_mentioning(&scratch.display().to_string()).is_empty());
    });
}

#[test]
fn empty_or_corrupted_config_is_refused_by_every_command() {
    isolated(test_path!("empty_or_corrupted_config_is_refused_by_every_command"), |scratch| {
        let root = scratch.join("root");
        std::fs::create_dir_all(root.join(".botsync")).unwrap();
        for content in ["", "  \n", "{\"network\": \"direct\", \"guiPort\": "] {
            std::fs::write(root.join(".botsync/config.json"), content).unwrap();
            let before = snapshot(&root);
            let errors = block_on(async {
                vec![
                    commands::init::run(&init_options(&root)).await.map(drop).unwrap_err(),
                    commands::start::run(&root_options(&root)).await.map(drop).unwrap_err(),
                    commands::stop::run(&root_options(&root)).await.map(drop).unwrap_err(),
                    commands::status::run(&root_options(&root)).await.map(drop).unwrap_err(),
                ]
            });
            for error in &errors {
                assert_clean_error(error, ErrorCode::StateCorrupted, &["config.json"]);
            }
            assert_eq!(snapshot(&root), before, "nothing changed for content {content:?}");
            let doctor = block_on(commands::doctor::run(&root_options(&root))).unwrap();
            assert!(!doctor.ok);
        }
        assert_eq!(cli(&["--root", root.to_str().unwrap(), "start"]), 1);
        assert!(processes_mentioning(&scratch.display().to_string()).is_empty());
    });
}

#[test]
fn missing_unrunnable_or_old_syncthing_is_refused() {
    isolated(test_path!("missing_unrunnable_or_old_syncthing_is_refused"), |scratch| {
        let root = scratch.join("root");
        let not_executable = scratch.join("not-executable");
        std::fs::write(&not_executable, "#!/bin/sh\necho syncthing v1.27.0\n").unwrap();
        let old = scratch.join("old-syncthing");
        fake_syncthing(&old, "syncthing v1.18.6 \"Fermium Flea\" (go1.17 linux-amd64)");
        let garbage = scratch.join("not-syncthing");
        fake_syncthing(&garbage, "hello world");
        let cases = [
            (scratch.join("nowhere/syncthing"), "not found"),
            (not_executable, "not an executable"),
            (old, "v1.18.6"),
            (garbage, "no Syncthing version"),
        ];
        for (binary, mention) in &cases {
            std::env::set_var("BOTSYNC_SYNCTHING", binary);
            let error = block_on(commands::init::run(&init_options(&root))).unwrap_err();
            assert_clean_error(&error, ErrorCode::SyncthingUnavailable, &[mention, "BOTSYNC_SYNCTHING"]);
            assert!(!root.exists(), "nothing created for {}", binary.display());
        }

        // On an initialized, stopped root `start` refuses the same way and changes nothing.
        std::env::set_var("BOTSYNC_SYNCTHING", "/usr/bin/syncthing");
        let _guard = StopOnDrop(root_at(root.clone()));
        block_on(commands::init::run(&init_options(&root))).expect("init with the real Syncthing");
        block_on(commands::stop::run(&root_options(&root))).unwrap();
        let before = std::fs::read(root.join(".botsync/config.json")).unwrap();
        std::env::set_var("BOTSYNC_SYNCTHING", &cases[2].0);
        let error = block_on(commands::start::run(&root_options(&root))).unwrap_err();
        assert_clean_error(&error, ErrorCode::SyncthingUnavailable, &["v1.18.6"]);
        assert_eq!(std::fs::read(root.join(".botsync/config.json")).unwrap(), before);
        assert_eq!(block_on(commands::status::run(&root_options(&root))).unwrap().state, "stopped");
        assert!(processes_mentioning(&root.display().to_string()).is_empty());
    });
}

#[test]
fn unknown_network_profile_is_a_usage_error() {
    isolated(test_path!("unknown_network_profile_is_a_usage_error"), |scratch| {
        let root = scratch.join("root");
        assert_eq!(cli(&["--root", root.to_str().unwrap(), "init", "--network", "wan"]), 2);
        let options = InitOptions { root: Some(root.display().to_string()), network: Some("wan".into()), ..Default::default() };
        let error = block_on(commands::init::run(&options)).unwrap_err();
        assert_clean_error(&error, ErrorCode::Usage, &["wan", "internet, lan or direct"]);
        assert!(!root.exists());
    });
}

#[test]
fn offline_without_syncthing_names_the_alternatives() {
    isolated(test_path!("offline_without_syncthing_names_the_alternatives"), |scratch| {
        let root = scratch.join("root");
        let empty_bin = scratch.join("empty-bin");
        std::fs::create_dir(&empty_bin).unwrap();
        std::env::remove_var("BOTSYNC_SYNCTHING");
        std::env::set_var("PATH", &empty_bin);
        // Nothing listens on port 9 in this namespace: the download fails at once, like offline.
        std::env::set_var("BOTSYNC_SYNCTHING_MIRROR", "http://127.0.0.1:9/releases");
        let error = block_on(commands::init::run(&init_options(&root))).unwrap_err();
        assert_clean_error(&error, ErrorCode::SyncthingUnavailable, &["package manager", "BOTSYNC_SYNCTHING", "127.0.0.1:9"]);
        assert!(!root.exists());
        let cache = scratch.join("xdg-data/botsync/syncthing");
        assert!(!cache.exists() || std::fs::read_dir(&cache).unwrap().next().is_none(), "no partial download left");
        let doctor = block_on(commands::doctor::run(&root_options(&root))).unwrap();
        let check = doctor.checks.iter().find(|c| c.name == "syncthing").unwrap();
        assert!(!check.ok && check.hint.as_deref().unwrap().contains("BOTSYNC_SYNCTHING"));
    });
}
