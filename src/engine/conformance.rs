//! What botsync relies on in Syncthing, per major version, each fact with the source file at the
//! tag it was checked against (github.com/syncthing/syncthing). 1.x is checked at v1.19.2 (Debian
//! stable) and v1.29.5 (Debian sid), 2.x at `binary::PINNED_VERSION`.
//!
//! The tests keep the table and the code together: every `/rest/...` path in `src/`, every event
//! type botsync decodes, and every argument and variable botsync passes to `serve`/`generate`
//! must have a row here. With `BOTSYNC_SYNCTHING_SRC` pointing at a bare clone of Syncthing's
//! repository, `rows_hold_in_syncthing_source_at_each_tag` also checks each row's needle in its
//! file at its tags. The 1.x rows are also checked live against real binaries in
//! `tests/engine_conformance_live.rs`.
//!
//! Differences found between the versions, and how botsync handles each:
//! - `generate --no-default-folder`: 1.x only (2.x creates no default folder and rejects the flag
//!   as unknown): `process::generate_command` passes it to 1.x only.
//! - `--home`: a serve/generate option on 1.x, a global option on 2.x that kong also accepts after
//!   the subcommand: `serve --home=DIR` works on both.
//! - `STHOMEDIR`: read by 1.29+ and 2.x (not 1.19): cleared with the other location variables.
//! - `STLOGFILE` (2.x, default `-` = stdout on Unix) would move the log away from the file botsync
//!   reads its errors from; `STPAUSED` would start every device paused: both cleared.
//! - `fsWatcherDelayS`: an int on 1.19, a float on 1.29 and 2.x: botsync writes whole seconds.
//! - `/rest/db/completion` has `remoteState` from 1.2x on, not on 1.19: botsync does not need it.
//! - `/rest/system/connections` lists this device too on 1.19 (always `connected: false`), only
//!   peers on 1.29 (seen live): botsync looks peers up by ID and never relies on its own entry.
//! - `/rest/system/connections`: 2.x keeps `address`/`type` as mirrors of the primary connection
//!   ("for compatibility with <1.24.0"), so botsync's reading holds.
//! - 2.x makes up to 3 connections per device (`numConnections`, default 3) and logs
//!   `DeviceConnected` for each one: consumers treat it as "is connected", not "a new peer".
//! - 2.x migrates a 1.x LevelDB database to SQLite on first start, serving a temporary plain-text
//!   page ("*** Database migration in progress ***") on the GUI address after 5 s, with no API
//!   key check; killed mid-way it starts over on the next start (the old database is renamed
//!   only at the end, each folder is dropped before it is rewritten). botsync's readiness check
//!   requires the JSON `{"ping":"pong"}`, reports the migration and keeps waiting.
//! - A config written by 2.x has a schema version 1.x refuses (1.x has `--allow-newer-config`
//!   only as an escape hatch): going back from 2.x to 1.x on a root is refused by botsync.

/// The first line of 2.x's temporary page during its database migration (`cmd/syncthing/main.go`).
pub const MIGRATION_BANNER: &str = "*** Database migration in progress ***";

/// Where a fact lives in Syncthing's source: `needle` appears in `file` at each tag of the row.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub file: &'static str,
    pub needle: &'static str,
}

/// One thing botsync relies on, with its source for 1.x (both tags) and 2.x (`None`: absent there,
/// and botsync does not use it with that major).
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub uses: &'static str,
    pub v1: Option<Source>,
    pub v2: Option<Source>,
}

pub const V1_TAGS: [&str; 2] = ["v1.19.2", "v1.29.5"];
pub const V2_TAG: &str = "v2.1.3";

const fn src(file: &'static str, needle: &'static str) -> Option<Source> {
    Some(Source { file, needle })
}

/// A row whose fact reads the same in the same file on both majors.
const fn same(uses: &'static str, file: &'static str, needle: &'static str) -> Row {
    Row { uses, v1: src(file, needle), v2: src(file, needle) }
}

const API: &str = "lib/api/api.go";

/// REST endpoints, as registered in Syncthing's router.
pub const ENDPOINTS: &[Row] = &[
    same("/rest/system/ping", API, "\"/rest/system/ping\""),
    same("/rest/system/status", API, "\"/rest/system/status\""),
    same("/rest/system/version", API, "\"/rest/system/version\""),
    same("/rest/system/connections", API, "\"/rest/system/connections\""),
    same("/rest/system/pause", API, "\"/rest/system/pause\""),
    same("/rest/system/resume", API, "\"/rest/system/resume\""),
    same("/rest/stats/device", API, "\"/rest/stats/device\""),
    same("/rest/config/options", API, "\"/rest/config/options\""),
    same("/rest/config", API, "registerConfig(\"/rest/config\")"),
    same("/rest/config/gui", API, "registerGUI(\"/rest/config/gui\")"),
    same("/rest/config/devices", API, "\"/rest/config/devices/:id\""),
    same("/rest/config/folders", API, "\"/rest/config/folders/:id\""),
    same("/rest/config/restart-required", API, "\"/rest/config/restart-required\""),
    same("/rest/db/status", API, "\"/rest/db/status\""),
    same("/rest/db/completion", API, "\"/rest/db/completion\""),
    same("/rest/db/scan", API, "folder [sub...] [delay]"),
    same("/rest/cluster/pending/devices", API, "\"/rest/cluster/pending/devices\""),
    same("/rest/events", API, "[since] [limit] [timeout] [events]"),
    same("/rest/db/file", API, "\"/rest/db/file\""),
    same("/rest/db/ignores", API, "\"/rest/db/ignores\""),
    same("/rest/folder/versions", API, "\"/rest/folder/versions\""),
];

const MODEL: &str = "lib/model/model.go";
const VERSIONER: &str = "lib/versioner/versioner.go";
const SUMMARY: &str = "lib/model/folder_summary.go";
const OPTIONS_V1: &str = "lib/config/optionsconfiguration.pb.go";
const OPTIONS_V2: &str = "lib/config/optionsconfiguration.go";
const DEVICE_V1: &str = "lib/config/deviceconfiguration.pb.go";
const DEVICE_V2: &str = "lib/config/deviceconfiguration.go";
const FOLDER_V1: &str = "lib/config/folderconfiguration.pb.go";
const FOLDER_V2: &str = "lib/config/folderconfiguration.go";

/// JSON fields botsync reads or writes (`endpoint field`). 1.29.5 generates its config structs
/// from Go files like 2.x, so each v1 row is checked at both 1.x tags by a needle both share.
pub const FIELDS: &[Row] = &[
    same("/rest/system/status myID", API, "res[\"myID\"]"),
    same("/rest/system/status uptime", API, "res[\"uptime\"]"),
    same("/rest/system/status startTime", API, "res[\"startTime\"]"),
    same("/rest/system/status connectionServiceStatus", API, "res[\"connectionServiceStatus\"]"),
    same("/rest/system/version version", API, "\"longVersion\""),
    same("/rest/system/connections connected", MODEL, "json:\"connected\""),
    same("/rest/system/connections paused", MODEL, "json:\"paused\""),
    Row { uses: "/rest/system/connections address", v1: src(MODEL, "json:\"address\""), v2: src(MODEL, "mirror values from Primary") },
    same("/rest/system/connections clientVersion", MODEL, "json:\"clientVersion\""),
    same("/rest/stats/device lastSeen", "lib/stats/device.go", "json:\"lastSeen\""),
    same("/rest/db/completion completion", MODEL, "\"completion\":  comp.CompletionPct"),
    same("/rest/db/completion needBytes", MODEL, "\"needBytes\":   comp.NeedBytes"),
    same("/rest/db/completion needItems", MODEL, "\"needItems\":   comp.NeedItems"),
    same("/rest/db/file availability", API, "\"availability\":"),
    same("/rest/db/file availability id", MODEL, "protocol.DeviceID `json:\"id\"`"),
    same("/rest/db/file global local", API, "\"global\":"),
    same("/rest/db/file modifiedBy", API, "\"modifiedBy\":"),
    same("/rest/db/file deleted", API, "\"deleted\":"),
    same("/rest/db/file version", API, "jsonVersionVector(f.FileVersion())"),
    same("/rest/folder/versions versionTime", VERSIONER, "json:\"versionTime\""),
    same("/rest/folder/versions modTime size", VERSIONER, "json:\"modTime\""),
    Row { uses: "/rest/db/status state", v1: src(SUMMARY, "\"state\""), v2: src(SUMMARY, "json:\"state\"") },
    Row { uses: "/rest/db/status needBytes", v1: src(SUMMARY, "\"needBytes\""), v2: src(SUMMARY, "json:\"needBytes\"") },
    Row { uses: "/rest/db/status globalBytes", v1: src(SUMMARY, "\"globalBytes\""), v2: src(SUMMARY, "json:\"globalBytes\"") },
    same("/rest/cluster/pending/devices name address", "lib/config/observed.go", "json:\"address\""),
    same("/rest/config/restart-required requiresRestart", "lib/api/confighandler.go", "\"requiresRestart\""),
    // `engine::peers` posts new devices with only the fields botsync decides: `ReadJSON` gives
    // each posted device the configuration's `defaults.device` first (config.go, all three tags).
    same("/rest/config defaults", "lib/config/config.go", "json:\"defaults\""),
    Row { uses: "/rest/config remoteIgnoredDevices", v1: src("lib/config/config.go", "remoteIgnoredDevices"), v2: src("lib/config/config.go", "json:\"remoteIgnoredDevices\"") },
    Row { uses: "/rest/config/gui user password", v1: src("lib/config/guiconfiguration.go", "Password"), v2: src("lib/config/guiconfiguration.go", "json:\"password\"") },
    Row { uses: "/rest/config/devices deviceID", v1: src("lib/config/deviceconfiguration.go", "DeviceConfiguration"), v2: src(DEVICE_V2, "json:\"deviceID\"") },
    Row { uses: "/rest/config/devices introducer", v1: src("lib/config/deviceconfiguration.go", "Introducer"), v2: src(DEVICE_V2, "json:\"introducer\"") },
    Row { uses: "/rest/config/devices paused", v1: src("lib/config/deviceconfiguration.go", "Paused"), v2: src(DEVICE_V2, "json:\"paused\"") },
    Row { uses: "/rest/config/devices addresses", v1: src("lib/config/deviceconfiguration.go", "Addresses"), v2: src(DEVICE_V2, "json:\"addresses\"") },
    Row { uses: "/rest/config/folders devices", v1: src("lib/config/folderconfiguration.go", "Devices"), v2: src(FOLDER_V2, "json:\"devices\"") },
    Row { uses: "/rest/config/folders fsWatcherDelayS", v1: src("lib/config/folderconfiguration.go", "FSWatcherDelayS"), v2: src(FOLDER_V2, "json:\"fsWatcherDelayS\"") },
    Row { uses: "/rest/config/options globalAnnounceEnabled", v1: src("lib/config/optionsconfiguration.go", "GlobalAnnEnabled"), v2: src(OPTIONS_V2, "json:\"globalAnnounceEnabled\"") },
    Row { uses: "/rest/config/options localAnnounceEnabled", v1: src("lib/config/optionsconfiguration.go", "LocalAnnEnabled"), v2: src(OPTIONS_V2, "json:\"localAnnounceEnabled\"") },
    Row { uses: "/rest/config/options relaysEnabled", v1: src("lib/config/optionsconfiguration.go", "RelaysEnabled"), v2: src(OPTIONS_V2, "json:\"relaysEnabled\"") },
    Row { uses: "/rest/config/options natEnabled", v1: src("lib/config/optionsconfiguration.go", "NATEnabled"), v2: src(OPTIONS_V2, "json:\"natEnabled\"") },
    Row { uses: "/rest/config/options listenAddresses", v1: src("lib/config/optionsconfiguration.go", "RawListenAddresses"), v2: src(OPTIONS_V2, "json:\"listenAddresses\"") },
];

/// The 1.x config files above, by tag: 1.19.2 keeps the JSON tags in generated `.pb.go` files.
pub fn v1_file(tag: &str, file: &'static str) -> &'static str {
    match (tag, file) {
        ("v1.19.2", "lib/config/optionsconfiguration.go") => OPTIONS_V1,
        ("v1.19.2", "lib/config/deviceconfiguration.go") => DEVICE_V1,
        ("v1.19.2", "lib/config/folderconfiguration.go") => FOLDER_V1,
        ("v1.19.2", "lib/config/observed.go") => "lib/config/observed.pb.go",
        ("v1.19.2", "lib/config/config.go") => "lib/config/config.pb.go",
        _ => file,
    }
}

const EVENTS: &str = "lib/events/events.go";

/// Event types botsync decodes, as named in `EventType.String`.
pub const EVENT_TYPES: &[Row] = &[
    same("ItemStarted", EVENTS, "return \"ItemStarted\""),
    same("ItemFinished", EVENTS, "return \"ItemFinished\""),
    same("DeviceConnected", EVENTS, "return \"DeviceConnected\""),
    same("DeviceDisconnected", EVENTS, "return \"DeviceDisconnected\""),
    same("LocalIndexUpdated", EVENTS, "return \"LocalIndexUpdated\""),
    same("RemoteIndexUpdated", EVENTS, "return \"RemoteIndexUpdated\""),
    same("RemoteChangeDetected", EVENTS, "return \"RemoteChangeDetected\""),
    same("LocalChangeDetected", EVENTS, "return \"LocalChangeDetected\""),
    same("PendingDevicesChanged", EVENTS, "return \"PendingDevicesChanged\""),
    same("Starting", EVENTS, "return \"Starting\""),
];

const MAIN: &str = "cmd/syncthing/main.go";
const COMMON_V1: &str = "cmd/syncthing/cmdutil/options_common.go";

/// Command-line words and environment variables botsync passes (or clears).
pub const COMMAND_LINE: &[Row] = &[
    Row { uses: "serve", v1: src(MAIN, "Serve "), v2: src(MAIN, "Serve serveCmd") },
    Row { uses: "generate", v1: src(MAIN, "Generate "), v2: src(MAIN, "Generate generate.CLI") },
    Row { uses: "--version", v1: src(MAIN, "help:\"Show version\""), v2: src(MAIN, "VersionFlag bool   `name:\"version\"") },
    Row { uses: "--home", v1: src(COMMON_V1, "name:\"home\""), v2: src(MAIN, "name:\"home\"") },
    Row { uses: "--no-default-folder", v1: src(COMMON_V1, "NoDefaultFolder bool"), v2: None },
    Row { uses: "STNODEFAULTFOLDER", v1: src(COMMON_V1, "env:\"STNODEFAULTFOLDER\""), v2: None },
    Row { uses: "STGUIAPIKEY", v1: src("lib/config/guiconfiguration.go", "os.Getenv(\"STGUIAPIKEY\")"), v2: src(MAIN, "env:\"STGUIAPIKEY\"") },
    Row { uses: "STGUIADDRESS", v1: src("lib/config/guiconfiguration.go", "os.Getenv(\"STGUIADDRESS\")"), v2: src(MAIN, "env:\"STGUIADDRESS\"") },
    same("STNOUPGRADE", MAIN, "env:\"STNOUPGRADE\""),
    same("STMONITORED", "cmd/syncthing/monitor.go", "STMONITORED=yes"),
    same("STNORESTART", MAIN, "env:\"STNORESTART\""),
    same("STGUIASSETS", MAIN, "env:\"STGUIASSETS\""),
    Row { uses: "STHOMEDIR", v1: None, v2: src(MAIN, "env:\"STHOMEDIR\"") },
    Row { uses: "STCONFDIR", v1: None, v2: src(MAIN, "env:\"STCONFDIR\"") },
    Row { uses: "STDATADIR", v1: None, v2: src(MAIN, "env:\"STDATADIR\"") },
    Row { uses: "STLOGFILE", v1: None, v2: src(MAIN, "env:\"STLOGFILE\"") },
    Row { uses: "STPAUSED", v1: None, v2: src(MAIN, "env:\"STPAUSED\"") },
    Row { uses: "STALLOWNEWERCONFIG", v1: None, v2: src(MAIN, "env:\"STALLOWNEWERCONFIG\"") },
    Row { uses: "migration page", v1: None, v2: src(MAIN, MIGRATION_BANNER) },
    Row { uses: "index-v2", v1: None, v2: src("lib/locations/locations.go", "databaseName        = \"index-v2\"") },
];

/// The row for `uses` in `table`.
pub fn row<'a>(table: &'a [Row], uses: &str) -> Option<&'a Row> {
    table.iter().find(|r| r.uses == uses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::process::{self, SpawnRequest, CLEARED_ENV};
    use crate::engine::{ApiKey, SyncthingVersion};
    use std::path::{Path, PathBuf};

    fn rust_sources() -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("conformance.rs") {
                    out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        assert!(out.len() > 20, "found botsync's sources");
        out
    }

    /// `"/rest/a/b..."` literals, cut at the first `?`, `{` or `"`.
    fn rest_paths(text: &str) -> Vec<String> {
        text.match_indices("\"/rest/")
            .map(|(at, _)| {
                let rest = &text[at + 1..];
                let end = rest.find(['?', '{', '"']).unwrap_or(rest.len());
                rest[..end].trim_end_matches('/').to_string()
            })
            .collect()
    }

    #[test]
    fn every_rest_path_botsync_calls_has_a_row() {
        let mut seen = 0;
        for (file, text) in rust_sources() {
            for path in rest_paths(&text) {
                seen += 1;
                let known = ENDPOINTS.iter().any(|row| path == row.uses || path.starts_with(&format!("{}/", row.uses)));
                assert!(known, "{} calls {path}, which has no conformance row", file.display());
            }
        }
        assert!(seen >= 15, "found botsync's REST calls ({seen})");
        for row in ENDPOINTS {
            assert!(row.v1.is_some() && row.v2.is_some(), "{}: every endpoint is used with both majors", row.uses);
        }
    }

    #[test]
    fn every_event_type_botsync_decodes_has_a_row() {
        let mut seen = 0;
        for (file, text) in rust_sources() {
            for (at, _) in text.match_indices("\" => typed(") {
                let start = text[..at].rfind('"').unwrap() + 1;
                let name = &text[start..at];
                seen += 1;
                let row = row(EVENT_TYPES, name).unwrap_or_else(|| panic!("{} decodes {name}, which has no row", file.display()));
                assert!(row.v1.is_some() && row.v2.is_some());
            }
        }
        assert!(seen >= 8, "found the event decoder ({seen})");
    }

    fn args_and_env(command: &std::process::Command) -> (Vec<String>, Vec<(String, Option<String>)>) {
        let args = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let env = command
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect();
        (args, env)
    }

    /// Each argument word (`--home=X` -> `--home`) and each variable set must have a row for `major`.
    fn assert_known(what: &str, major: u32, args: &[String], env: &[(String, Option<String>)]) {
        let source = |uses: &str| row(COMMAND_LINE, uses).and_then(|r| if major >= 2 { r.v2 } else { r.v1 });
        for arg in args.iter().filter(|a| !a.starts_with('/')) {
            let word = arg.split('=').next().unwrap();
            assert!(source(word).is_some(), "{what} on {major}.x passes {word}, which that major does not have (no row)");
        }
        for (name, value) in env {
            if value.is_some() {
                assert!(source(name).is_some(), "{what} on {major}.x sets {name}, which that major does not read (no row)");
            } else {
                assert!(row(COMMAND_LINE, name).is_some(), "{what} clears {name}, which has no row");
            }
        }
    }

    #[test]
    fn serve_passes_only_what_each_major_reads() {
        let key = ApiKey::generate();
        let request = SpawnRequest { binary: Path::new("/x/syncthing"), home: Path::new("/r/.botsync/syncthing"), gui_port: 8385, api_key: &key, log: Path::new("/r/log") };
        let (args, env) = args_and_env(&process::serve_command(&request));
        assert_eq!(args, ["serve", "--home=/r/.botsync/syncthing"]);
        assert!(!args.iter().any(|a| a.contains(key.expose())), "the API key never travels in argv");
        assert!(env.contains(&("STGUIAPIKEY".into(), Some(key.expose().into()))));
        assert!(env.contains(&("STGUIADDRESS".into(), Some("127.0.0.1:8385".into()))));
        for name in CLEARED_ENV {
            assert!(env.contains(&(name.into(), None)), "{name} from the caller's environment is cleared");
        }
        for major in [1, 2] {
            assert_known("serve", major, &args, &env);
        }
    }

    #[test]
    fn generate_passes_only_what_each_major_reads() {
        let home = Path::new("/r/.botsync/syncthing");
        for (version, expected) in [
            (SyncthingVersion { major: 1, minor: 19, patch: 2 }, vec!["generate", "--home=/r/.botsync/syncthing", "--no-default-folder"]),
            (SyncthingVersion { major: 2, minor: 1, patch: 3 }, vec!["generate", "--home=/r/.botsync/syncthing"]),
        ] {
            let (args, env) = args_and_env(&process::generate_command(Path::new("/x/syncthing"), version, home));
            assert_eq!(args, expected, "{version}");
            // STNODEFAULTFOLDER is set for 1.x's sake; 2.x ignores an unknown variable (not a flag).
            let env: Vec<_> = env.into_iter().filter(|(name, _)| version.major < 2 || name != "STNODEFAULTFOLDER").collect();
            assert_known("generate", version.major, &args, &env);
        }
    }

    #[test]
    fn the_pinned_release_is_the_checked_tag() {
        assert_eq!(format!("v{}", crate::engine::binary::PINNED_VERSION), V2_TAG);
    }

    /// `git show <tag>:<file>` from the bare clone at `$BOTSYNC_SYNCTHING_SRC`, cached per file.
    fn source_at(git_dir: &Path, tag: &str, file: &str, cache: &mut std::collections::HashMap<String, Option<String>>) -> Option<String> {
        cache
            .entry(format!("{tag}:{file}"))
            .or_insert_with(|| {
                let output = std::process::Command::new("git").arg("--git-dir").arg(git_dir).arg("show").arg(format!("{tag}:{file}")).output().ok()?;
                output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
            })
            .clone()
    }

    #[test]
    fn rows_hold_in_syncthing_source_at_each_tag() {
        let Some(git_dir) = std::env::var_os("BOTSYNC_SYNCTHING_SRC").map(PathBuf::from) else {
            eprintln!("BOTSYNC_SYNCTHING_SRC is not set (a bare clone of syncthing/syncthing): source rows not re-checked");
            return;
        };
        let mut cache = std::collections::HashMap::new();
        let mut failures = Vec::new();
        let mut checked = 0;
        for row in ENDPOINTS.iter().chain(FIELDS).chain(EVENT_TYPES).chain(COMMAND_LINE) {
            let checks = V1_TAGS.iter().filter_map(|tag| row.v1.map(|s| (*tag, v1_file(tag, s.file), s.needle))).chain(row.v2.map(|s| (V2_TAG, s.file, s.needle)));
            for (tag, file, needle) in checks {
                checked += 1;
                match source_at(&git_dir, tag, file, &mut cache) {
                    Some(text) if text.contains(needle) => {}
                    Some(_) => failures.push(format!("{}: {needle:?} not in {file} at {tag}", row.uses)),
                    None => failures.push(format!("{}: no {file} at {tag}", row.uses)),
                }
            }
        }
        assert!(failures.is_empty(), "{} of {checked} source checks failed:\n{}", failures.len(), failures.join("\n"));
        eprintln!("{checked} source checks hold");
    }
}
