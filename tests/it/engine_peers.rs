//! Adding a batch of peers is one configuration change in a real Syncthing (`engine::peers`):
//! a machine joining a mesh of nine configures nine devices and 36 folder shares with one
//! commit, where it made 54 before (bench/mesh.sh: the 10th join took 4.2 s, the 2nd 1.8 s).
//! Peers it has already are paused first, so that Syncthing dials them at once when resumed.

use std::time::Duration;

use botsync::commands::{self, init::InitOptions};
use botsync::device_id::DeviceId;
use botsync::engine::peers::NewPeer;
use botsync::engine::Engine;
use crate::support::{block_on, isolated, root_at, StopOnDrop};

fn peer(n: u8) -> NewPeer {
    NewPeer { device_id: DeviceId::from_bytes([n; 32]), name: format!("peer-{n}"), addresses: vec![format!("tcp://10.9.9.{n}:22000")] }
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
        let url = format!("http://127.0.0.1:{}{path_and_query}", engine.gui_port());
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let answer = http.get(url).header("X-API-Key", engine.state().api_key.expose()).send().await.expect("REST call");
        answer.error_for_status().expect("REST answer").json().await.expect("JSON")
    }

    /// The commits since the previous call, counted once Syncthing has been quiet for a moment.
    async fn count(&mut self, engine: &Engine) -> usize {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let events = Self::get(engine, &format!("/rest/events?since={}&timeout=0&events=ConfigSaved", self.since)).await;
        let events = events.as_array().expect("a list of events").clone();
        let mut commits = 0;
        for event in events {
            self.since = self.since.max(event["id"].as_u64().expect("event id"));
            if self.last_saved.as_ref() != Some(&event["data"]) {
                commits += 1;
                self.last_saved = Some(event["data"].clone());
            }
        }
        commits
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
fn a_batch_of_peers_is_one_commit_with_every_folder_shared() {
    isolated(test_path!("a_batch_of_peers_is_one_commit_with_every_folder_shared"), |scratch| {
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
            assert_eq!(commits.count(&engine).await, 1, "nine peers and every share in one configuration change");
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
        });
    });
}
