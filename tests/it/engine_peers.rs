//! Adding a batch of peers is two configuration changes in a real Syncthing, whatever its size
//! (`engine::peers`): a machine joining a mesh of nine configures nine devices and 36 folder
//! shares in one commit, where it made 54 before (bench/mesh.sh: the 10th join took 4.2 s, the
//! 2nd 1.8 s), with the peers not yet connected held paused; the second commit resumes them, so
//! a first connection comes only once every folder has restarted for it, and Syncthing dials
//! them at once. A peer left paused by a process killed in between is resumed by the daemon.

use std::time::Duration;

use botsync::commands::{self, init::InitOptions};
use botsync::device_id::DeviceId;
use botsync::engine::peers::NewPeer;
use botsync::engine::Engine;
use crate::support::{block_on, isolated, root_at, StopOnDrop};

fn peer(n: u8) -> NewPeer {
    NewPeer { device_id: DeviceId::from_bytes([n; 32]), name: format!("peer-{n}"), addresses: vec![format!("tcp://10.9.9.{n}:22000")] }
}

/// `peer`'s device in a configuration as `ConfigSaved` carries it.
fn device_in<'c>(config: &'c serde_json::Value, peer: &NewPeer) -> &'c serde_json::Value {
    let id = peer.device_id.to_string();
    config["devices"].as_array().expect("devices").iter().find(|d| d["deviceID"] == id.as_str()).unwrap_or_else(|| panic!("{} configured", peer.name))
}

/// The devices `folder` is shared with in a configuration as `ConfigSaved` carries it.
fn shared_with(config: &serde_json::Value, folder: &str) -> Vec<String> {
    let folder = config["folders"].as_array().expect("folders").iter().find(|f| f["id"] == folder).unwrap_or_else(|| panic!("{folder} configured"));
    folder["devices"].as_array().expect("folder devices").iter().filter_map(|d| d["deviceID"].as_str().map(str::to_string)).collect()
}

/// A request to the engine's Syncthing REST API, with its key. The tests read what Syncthing
/// saved and change what botsync would not, beside `Engine::rest`.
fn syncthing_api(engine: &Engine, method: reqwest::Method, path_and_query: &str) -> reqwest::RequestBuilder {
    let url = format!("http://127.0.0.1:{}{path_and_query}", engine.gui_port());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    http.request(method, url).header("X-API-Key", engine.state().api_key.expose())
}

/// Counts configuration commits through Syncthing's `ConfigSaved` events. A save that writes the
/// configuration the previous save wrote is no commit: Syncthing saves again by itself a few
/// seconds after a change (the wrapper's save timer, `minSaveInterval` in lib/config/wrapper.go,
/// 5 s), and that second save lands in a counting window whenever the machine is slow.
struct Commits {
    since: u64,
    last_saved: Option<serde_json::Value>,
}

impl Commits {
    fn new() -> Self {
        Commits { since: 0, last_saved: None }
    }

    async fn get(engine: &Engine, path_and_query: &str) -> serde_json::Value {
        let answer = syncthing_api(engine, reqwest::Method::GET, path_and_query).send().await.expect("REST call");
        answer.error_for_status().expect("REST answer").json().await.expect("JSON")
    }

    /// The configurations committed since the previous call, in order, read once Syncthing has
    /// been quiet for a moment.
    async fn commits(&mut self, engine: &Engine) -> Vec<serde_json::Value> {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let events = Self::get(engine, &format!("/rest/events?since={}&timeout=0&events=ConfigSaved", self.since)).await;
        let events = events.as_array().expect("a list of events").clone();
        let mut commits = Vec::new();
        for event in events {
            self.since = self.since.max(event["id"].as_u64().expect("event id"));
            if self.last_saved.as_ref() != Some(&event["data"]) {
                commits.push(event["data"].clone());
                self.last_saved = Some(event["data"].clone());
            }
        }
        commits
    }

    async fn count(&mut self, engine: &Engine) -> usize {
        self.commits(engine).await.len()
    }

    /// Waits for the daemon's first pass (the members folder exists) and then for a quiet moment
    /// without a configuration commit.
    async fn settle(&mut self, engine: &Engine) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while engine.rest().folder("botsync-members").await.expect("folder").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "the daemon never created the members folder");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while self.count(engine).await > 0 {
            assert!(tokio::time::Instant::now() < deadline, "the configuration never settled");
        }
        // The settled configuration, as a save would write it: the timer's save of the last
        // change before this can still come, and must not count.
        self.last_saved = Some(Self::get(engine, "/rest/config").await);
    }

    /// The configuration Syncthing has now is the one its last save wrote.
    async fn assert_last_save_is_current(&self, engine: &Engine) {
        assert_eq!(self.last_saved.as_ref(), Some(&Self::get(engine, "/rest/config").await), "a save writes what /rest/config reads");
    }
}

#[test]
fn a_batch_of_peers_is_two_commits_with_every_folder_shared() {
    isolated(test_path!("a_batch_of_peers_is_two_commits_with_every_folder_shared"), |scratch| {
        let path = scratch.join("root");
        let _guard = StopOnDrop(root_at(path.clone()));
        block_on(async {
            let options = InitOptions { root: Some(path.display().to_string()), network: Some("direct".into()), offline: Some(true), ..Default::default() };
            commands::init::run(&options).await.expect("init");
            let engine = Engine::load(&root_at(path.clone())).unwrap();
            let rest = engine.rest();
            // Let the start settle, then count from now: the daemon's first reconcile pass creates
            // the members folder, one commit, at a time of its own (late on a loaded machine).
            let mut commits = Commits::new();
            commits.settle(&engine).await;

            let nine: Vec<NewPeer> = (2..=10).map(peer).collect();
            engine.add_peers(&nine).await.expect("add_peers");
            let saved = commits.commits(&engine).await;
            assert_eq!(saved.len(), 2, "nine peers and every share in one configuration change, then their resume");
            let held = &saved[0];
            for p in &nine {
                assert_eq!(device_in(held, p)["paused"], true, "{} held paused while its folders restart", p.name);
                for folder in ["botsync-shared", "botsync-deliverables", "botsync-inbox", "botsync-members"] {
                    assert!(shared_with(held, folder).contains(&p.device_id.to_string()), "{folder} shared with {} in the first commit", p.name);
                }
            }
            assert!(nine.iter().all(|p| device_in(&saved[1], p)["paused"] == false), "the second commit resumes them all");
            commits.assert_last_save_is_current(&engine).await;

            let devices = rest.devices().await.unwrap();
            for p in &nine {
                let device = devices.iter().find(|d| d.device_id == p.device_id).unwrap_or_else(|| panic!("{} configured", p.name));
                assert_eq!(device.name, p.name);
                assert_eq!(device.addresses, p.addresses, "direct profile: the given addresses only");
                assert_eq!(device.other["paused"], false);
                assert_eq!(device.other["introducer"], false);
                // Fields botsync does not send take Syncthing's device defaults.
                assert_eq!(device.other["compression"], "metadata");
            }
            for folder in ["botsync-shared", "botsync-deliverables", "botsync-inbox", "botsync-members"] {
                let config = rest.folder(folder).await.unwrap().unwrap_or_else(|| panic!("{folder} configured"));
                for p in &nine {
                    assert!(config.devices.iter().any(|d| d.device_id == p.device_id), "{folder} shared with {}", p.name);
                }
            }

            // Pairing again with peers it has (a machine back after a removal): paused, then
            // resumed, so that Syncthing dials them at once: two commits, whatever their number.
            engine.add_peers(&nine).await.expect("add_peers again");
            assert_eq!(commits.count(&engine).await, 2, "known peers: one pause and one resume");
            let devices = rest.devices().await.unwrap();
            assert!(nine.iter().all(|p| devices.iter().any(|d| d.device_id == p.device_id && d.other["paused"] == false)), "all resumed");

            // A process killed between the two commits leaves its peers paused: the daemon
            // resumes a member once it has stayed paused for a while, and not at once.
            let stranded = &nine[0];
            let paused = |devices: &[botsync::engine::rest::DeviceConfig]| devices.iter().any(|d| d.device_id == stranded.device_id && d.other["paused"] == true);
            syncthing_api(&engine, reqwest::Method::PATCH, &format!("/rest/config/devices/{}", stranded.device_id))
                .json(&serde_json::json!({ "paused": true }))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .expect("pause a member as an interrupted add_peers leaves it");
            let left = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(paused(&rest.devices().await.unwrap()), "a hold is not undone while a pairing may still resume it");
            while paused(&rest.devices().await.unwrap()) {
                assert!(left.elapsed() < Duration::from_secs(60), "the daemon never resumed a member left paused");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    });
}
