//! Syncthing versions botsync has no conformance rows for, and 2.x's migration page.
//!
//! - A "3.0": a wrapper that reports v3.0.0 and 2.x-style help (listing the variables botsync
//!   sets) and otherwise runs the harness's Syncthing (`BOTSYNC_TEST_SYNCTHING`, default 1.19.2). botsync warns
//!   and runs it end to end. One whose help lacks `--home` is refused with one clear line.
//! - 2.x answers every request on its GUI address with a plain-text page while it migrates its
//!   database, without checking the API key: readiness must not mistake it for Syncthing's API.


use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

use botsync::engine::{ApiKey, RestClient, RestError};
use crate::support::{block_on, isolated};
use crate::support::reliability::*;

fn real_syncthing() -> String {
    std::env::var("BOTSYNC_SYNCTHING").expect("the harness names a Syncthing")
}

/// A script that says it is Syncthing `version` and passes everything else to `real`.
fn wrapper(path: &Path, real: &str, version: &str, help_words: &str) {
    let script = format!(
        "#!/bin/sh\n\
         case \"$1 $2\" in\n\
           '--version '*) echo 'syncthing v{version} \"Future Fox\" (go1.30 linux-amd64) test@botsync 2027-01-01 00:00:00 UTC'; exit 0;;\n\
           'serve --help'|'generate --help') echo 'Usage: syncthing {help_words}'; exit 0;;\n\
         esac\n\
         exec '{real}' \"$@\"\n"
    );
    std::fs::write(path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_newer_major_whose_command_line_matches_runs_with_a_warning() {
    isolated(test_path!("a_newer_major_whose_command_line_matches_runs_with_a_warning"), |scratch| {
        use_daemon_bin();
        let fake = scratch.join("syncthing-3");
        wrapper(&fake, &real_syncthing(), "3.0.0", "--home=PATH ($STHOMEDIR) --gui-apikey ($STGUIAPIKEY) --gui-address ($STGUIADDRESS) --no-upgrade ($STNOUPGRADE)");
        let root = scratch.join("root");
        let _guard = RootGuard::new(&root);
        let arg = root.display().to_string();
        let output = cli_command(None, &["--json", "--root", &arg, "init", "--network", "direct", "--offline"]).env("BOTSYNC_SYNCTHING", &fake).output().unwrap();
        let run = CliRun::from_output(output);
        assert_eq!(run.status, 0, "{run:?}");
        let warning = run.stderr.lines().find(|l| l.contains("\"notice\"")).unwrap_or_else(|| panic!("a warning line: {}", run.stderr));
        let notice: serde_json::Value = serde_json::from_str(&warning[warning.find('{').unwrap()..]).unwrap();
        let message = notice["notice"]["message"].as_str().unwrap();
        assert!(message.contains("v3.0.0") && message.contains("newer than botsync knows"), "{message}");
        let report = status(&root);
        assert_eq!(report.state, "running", "it runs: {report:?}");
        block_on(botsync::commands::stop::run(&root_options(&root))).unwrap();
    });
}

#[test]
fn a_newer_major_without_the_command_line_botsync_uses_is_refused() {
    isolated(test_path!("a_newer_major_without_the_command_line_botsync_uses_is_refused"), |scratch| {
        use_daemon_bin();
        let fake = scratch.join("syncthing-3");
        wrapper(&fake, &real_syncthing(), "3.0.0", "--config-dir=PATH --api-token ($STAPITOKEN)");
        let root = scratch.join("root");
        let arg = root.display().to_string();
        let output = cli_command(None, &["--json", "--root", &arg, "init", "--network", "direct", "--offline"]).env("BOTSYNC_SYNCTHING", &fake).output().unwrap();
        let run = CliRun::from_output(output);
        assert_eq!((run.status, run.error_code()), (1, Some("BOTSYNC_SYNCTHING_UNAVAILABLE")), "{run:?}");
        let message = run.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("v3.0.0") && message.contains("--home") && message.contains("STGUIAPIKEY") && !message.contains('\n'), "{message}");
        assert!(!root.exists(), "nothing was set up");
    });
}

/// A root whose Syncthing home has a 2.x database is not handed to a 1.x Syncthing, which
/// cannot read it (nor 2.x's config): one clear line, nothing started.
#[test]
fn a_root_last_run_by_2x_refuses_a_1x_syncthing() {
    isolated(test_path!("a_root_last_run_by_2x_refuses_a_1x_syncthing"), |scratch| {
        use_daemon_bin();
        let real = real_syncthing();
        let two = scratch.join("syncthing-2");
        wrapper(&two, &real, "2.1.3", "--home=PATH ($STHOMEDIR) ($STGUIAPIKEY) ($STGUIADDRESS) ($STNOUPGRADE)");
        let root = scratch.join("root");
        let _guard = RootGuard::new(&root);
        let arg = root.display().to_string();
        let init = CliRun::from_output(cli_command(None, &["--json", "--root", &arg, "init", "--network", "direct", "--offline"]).env("BOTSYNC_SYNCTHING", &two).output().unwrap());
        assert_eq!(init.status, 0, "{init:?}");
        block_on(botsync::commands::stop::run(&root_options(&root))).unwrap();
        // What 2.x leaves in its home (`lib/locations`): its SQLite database.
        std::fs::create_dir_all(root.join(".botsync/syncthing").join(botsync::engine::binary::V2_DATABASE)).unwrap();
        let start = CliRun::from_output(cli_command(None, &["--json", "--root", &arg, "start"]).env("BOTSYNC_SYNCTHING", &real).output().unwrap());
        assert_eq!((start.status, start.error_code()), (1, Some("BOTSYNC_SYNCTHING_UNAVAILABLE")), "{start:?}");
        let message = start.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("v2.1.3") && message.contains("2.x") && !message.contains('\n'), "{message}");
        assert!(processes_of(&root).is_empty(), "nothing was started");
    });
}

/// Answers every request with `body` (HTTP 200), like 2.x's `migratingAPI`.
fn serve_page(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
        }
    });
    port
}

#[test]
fn the_migration_page_is_told_from_syncthings_api() {
    let migrating = serve_page("*** Database migration in progress ***\n\n2026-12-01 INF Migrating old-style database to SQLite; this may take a while...\n");
    let error = block_on(RestClient::new(migrating, ApiKey::generate()).ping()).unwrap_err();
    assert!(matches!(error, RestError::Migrating), "{error}");
    assert!(error.to_string().contains("do not stop it"), "{error}");

    let something_else = serve_page("hello from another program");
    let error = block_on(RestClient::new(something_else, ApiKey::generate()).ping()).unwrap_err();
    assert!(matches!(error, RestError::Decode { .. }), "a 200 that is not Syncthing's answer is not ready: {error}");

    let syncthing = serve_page("{\"ping\":\"pong\"}");
    block_on(RestClient::new(syncthing, ApiKey::generate()).ping()).expect("Syncthing's answer");
}
