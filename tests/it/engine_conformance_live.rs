//! The 1.x rows of `engine::conformance`, checked against a running Syncthing (Debian's 1.19.2,
//! or `BOTSYNC_TEST_SYNCTHING`, e.g. sid's 1.29.x): every endpoint answers and every field botsync
//! reads is in its answer. Rows whose answer is an empty collection here (pending devices on a
//! root nobody dialled; connections on 1.29+, which no longer lists this device) cannot show
//! their fields and are listed as such (`versions_pairing` reads them with a real peer).


use botsync::engine::conformance::{ENDPOINTS, FIELDS};
use botsync::engine::Engine;
use botsync::root::SharedFolder;
use crate::support::{block_on, isolated, root_at};
use crate::support::reliability::*;
use serde_json::Value;

fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key) || map.values().any(|v| has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

fn is_empty(value: &Value) -> bool {
    matches!(value, Value::Object(m) if m.is_empty()) || matches!(value, Value::Array(a) if a.is_empty())
}

#[test]
fn the_running_syncthing_has_every_endpoint_and_field_botsync_relies_on() {
    isolated(test_path!("the_running_syncthing_has_every_endpoint_and_field_botsync_relies_on"), |scratch| {
        use_daemon_bin();
        let root = scratch.join("root");
        let _guard = RootGuard::new(&root);
        let arg = root.display().to_string();
        let init = cli(None, &["--json", "--root", &arg, "init", "--network", "direct", "--offline"]);
        assert_eq!(init.status, 0, "{init:?}");
        let engine = Engine::load(&root_at(root.clone())).unwrap();
        let base = format!("http://127.0.0.1:{}", engine.gui_port());
        let key = engine.state().api_key.expose().to_string();
        let folder = SharedFolder::Shared.folder_id();
        let own = engine.device_id().to_string();
        // No pooling: each request runs on its own short runtime (`block_on`).
        let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().unwrap();
        let post = |path: &str, query: &[(&str, &str)]| {
            let response = block_on(http.post(format!("{base}{path}")).query(query).header("X-API-Key", &key).send()).unwrap();
            assert!(response.status().is_success(), "POST {path}: HTTP {}", response.status());
        };
        // A file of this machine's own, so `/rest/db/file` has a record to show.
        std::fs::write(root.join("shared").join("conformance.txt"), b"conformance").unwrap();
        post("/rest/db/scan", &[("folder", folder), ("sub", "conformance.txt")]);
        let get = |path: &str| -> Value {
            let query: &[(&str, &str)] = match path {
                "/rest/db/status" | "/rest/db/completion" | "/rest/db/ignores" | "/rest/folder/versions" => &[("folder", folder)],
                "/rest/db/file" => &[("folder", folder), ("file", "conformance.txt")],
                "/rest/events" => &[("since", "0"), ("limit", "1"), ("timeout", "0")],
                _ => &[],
            };
            // One runtime per request and its body: a connection lives on the runtime that opened it.
            block_on(async {
                let response = http.get(format!("{base}{path}")).query(query).header("X-API-Key", &key).send().await.unwrap();
                assert!(response.status().is_success(), "GET {path}: HTTP {}", response.status());
                response.json().await.unwrap_or_else(|e| panic!("GET {path} is not JSON: {e}"))
            })
        };
        // Endpoints: the read-only ones answer GET; the others are exercised by botsync itself.
        for row in ENDPOINTS {
            match row.uses {
                "/rest/system/pause" | "/rest/system/resume" | "/rest/db/scan" => post(row.uses, &[("device", own.as_str()), ("folder", folder)]),
                path => drop(get(path)),
            }
        }
        post("/rest/system/resume", &[("device", own.as_str())]);
        let mut unseen = Vec::new();
        for row in FIELDS {
            let mut words = row.uses.split_whitespace();
            let path = words.next().unwrap();
            let whole = get(path);
            // 1.29 and later list only peers in `connections` (1.19 also listed this device).
            let answer = if path == "/rest/system/connections" { whole["connections"].clone() } else { whole };
            for field in words {
                // A file only this machine has lists nobody in `availability` (entries need a peer).
                if is_empty(&answer) || (path == "/rest/db/file" && field == "id") {
                    unseen.push(format!("{path} {field}"));
                    continue;
                }
                let field = if path == "/rest/system/version" && field == "version" { "longVersion" } else { field };
                assert!(has_key(&answer, field), "{path} has no {field:?}: {answer}");
            }
        }
        // Kept versions exist only once a peer replaced a file (`agents_versions` reads them).
        let needs_peer = |f: &String| {
            ["/rest/cluster/pending/devices", "/rest/system/connections", "/rest/folder/versions", "/rest/db/file id"]
                .iter()
                .any(|prefix| f.starts_with(prefix))
        };
        assert!(unseen.iter().all(needs_peer), "only fields that need a peer may be unseen: {unseen:?}");
        eprintln!("fields not visible without a peer: {unseen:?}");
        block_on(botsync::commands::stop::run(&root_options(&root))).unwrap();
    });
}
