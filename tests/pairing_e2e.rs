//! End-to-end pairing: `init`, `invite` and `join` as library calls (and the CLI for bad input)
//! against real Syncthings, the real background process (`BOTSYNC_DAEMON_BIN`) and an in-process
//! relay. Every test runs in its own network namespace and every root uses the `direct` profile,
//! so peers find each other only through the addresses exchanged while pairing.

mod common;
mod relay_support;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use botsync::commands::init::{InitOptions, InitReport};
use botsync::commands::invite::{InviteOptions, InviteReport};
use botsync::commands::join::{JoinOptions, JoinReport};
use botsync::commands::status::StatusReport;
use botsync::commands::{self, RootOptions};
use botsync::daemon::invites::{self, InviteStatus};
use botsync::engine::Engine;
use botsync::relay::{RateLimits, RelayConfig};
use common::{block_on, isolated, processes_mentioning, root_at, StopOnDrop};
use relay_support::{unlimited, Kind, TestRelay};
use serde_json::Value;

/// Generous: two Syncthings, a daemon each and the test share two CI cores.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
const JOIN_TIMEOUT_S: u32 = 90;

/// One machine: a root with the direct profile, stopped (daemon and Syncthing) when dropped.
struct Machine {
    path: PathBuf,
    _guard: StopOnDrop,
}

impl Machine {
    fn new(scratch: &Path, name: &str) -> Machine {
        // The daemon is found through the environment; each isolated test is its own process.
        std::env::set_var("BOTSYNC_DAEMON_BIN", env!("CARGO_BIN_EXE_botsync-daemon"));
        let path = scratch.join(name);
        Machine { _guard: StopOnDrop(root_at(path.clone())), path }
    }

    fn root(&self) -> String {
        self.path.display().to_string()
    }

    fn engine(&self) -> Engine {
        Engine::load(&root_at(self.path.clone())).expect("initialized root")
    }

    async fn init(&self, relay: &str) -> InitReport {
        let options = InitOptions {
            root: Some(self.root()),
            network: Some("direct".into()),
            relay: Some(relay.into()),
            ..Default::default()
        };
        commands::init::run(&options).await.unwrap_or_else(|e| panic!("init {}: {e}", self.root()))
    }

    async fn invite(&self, relay: &str, offline: bool) -> InviteReport {
        let options = InviteOptions { root: Some(self.root()), relay: Some(relay.into()), offline: Some(offline), wait: None };
        commands::invite::run(&options).await.unwrap_or_else(|e| panic!("invite {}: {e}", self.root()))
    }

    async fn join(&self, code: &str, relay: &str) -> Result<JoinReport, botsync::Error> {
        let options = JoinOptions {
            code: code.into(),
            root: Some(self.root()),
            network: Some("direct".into()),
            relay: Some(relay.into()),
            timeout_seconds: Some(JOIN_TIMEOUT_S),
        };
        commands::join::run(&options).await
    }

    async fn status(&self) -> StatusReport {
        commands::status::run(&RootOptions { root: Some(self.root()) }).await.expect("status")
    }

    async fn stop(&self) {
        commands::stop::run(&RootOptions { root: Some(self.root()) }).await.expect("stop");
    }

    fn write(&self, folder: &str, name: &str, contents: &str) {
        std::fs::write(self.path.join(folder).join(name), contents).unwrap();
    }

    /// Waits until the host's record of invite `id` says who paired.
    async fn wait_invite_paired(&self, id: &str) -> String {
        let root = root_at(self.path.clone());
        let started = Instant::now();
        loop {
            match invites::load(&root, id).unwrap().map(|r| r.status) {
                Some(InviteStatus::Paired { device_id, .. }) => return device_id,
                Some(InviteStatus::Failed { error, .. }) => panic!("invite {id} failed: {error}"),
                _ if started.elapsed() > SYNC_TIMEOUT => panic!("invite {id} still pending after {SYNC_TIMEOUT:?}"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn is_connected_to(&self, device_id: &str) -> bool {
        let connections = self.engine().rest().connections().await.expect("connections");
        connections.connections.get(device_id).is_some_and(|c| c.connected)
    }
}

/// Waits until `path` holds exactly `expected`; panics with what is there after `SYNC_TIMEOUT`.
async fn wait_for_contents(path: &Path, expected: &str) {
    let started = Instant::now();
    loop {
        let found = std::fs::read_to_string(path).ok();
        if found.as_deref() == Some(expected) {
            return;
        }
        if started.elapsed() > SYNC_TIMEOUT {
            panic!("{} never held {expected:?} (has {found:?})", path.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < SYNC_TIMEOUT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- 1. init + join, files both ways, over either relay store -------------------------------

fn pair_and_sync_both_ways(scratch: &Path, kind: Kind) {
    let a = Machine::new(scratch, "a");
    let b = Machine::new(scratch, "b");
    block_on(async {
        let relay = TestRelay::start(kind, unlimited()).await;
        let init = a.init(&relay.url).await;
        assert_eq!(init.invite.kind, "relay");
        assert_eq!(init.invite.relay.as_deref(), Some(relay.url.as_str()));

        let joined = b.join(&init.invite.code, &relay.url).await.expect("join");
        assert_eq!(joined.kind, "relay");
        assert_eq!(joined.peer.device_id, init.device_id);
        // `join` returns only once Syncthing reports the host connected: it is, right now.
        assert!(b.is_connected_to(&init.device_id).await, "join returned before the connection");
        assert_eq!(a.wait_invite_paired(&init.invite.id).await, joined.device_id);

        a.write("shared", "from-a.txt", "written on A\n");
        b.write("inbox", "from-b.txt", "written on B\n");
        wait_for_contents(&b.path.join("shared/from-a.txt"), "written on A\n").await;
        wait_for_contents(&a.path.join("inbox/from-b.txt"), "written on B\n").await;

        let status = a.status().await;
        let peer = status.peers.iter().find(|p| p.device_id == joined.device_id).expect("A lists B");
        assert!(peer.connected, "{peer:?}");
    });
}

#[test]
fn pair_and_sync_over_memory_relay() {
    isolated("pair_and_sync_over_memory_relay", |scratch| pair_and_sync_both_ways(scratch, Kind::Memory));
}

#[test]
fn pair_and_sync_over_redis_relay() {
    isolated("pair_and_sync_over_redis_relay", |scratch| pair_and_sync_both_ways(scratch, Kind::Redis));
}

// ---- 2. a mesh grown from a member other than the first, surviving that member ---------------

#[test]
fn mesh_via_second_member_survives_the_inviter() {
    isolated("mesh_via_second_member_survives_the_inviter", |scratch| {
        let a = Machine::new(scratch, "a");
        let b = Machine::new(scratch, "b");
        let c = Machine::new(scratch, "c");
        block_on(async {
            let relay = TestRelay::start(Kind::Memory, unlimited()).await;
            let init = a.init(&relay.url).await;
            let b_joined = b.join(&init.invite.code, &relay.url).await.expect("B joins A");

            let invite = b.invite(&relay.url, false).await;
            assert_eq!(invite.kind, "relay");
            let c_joined = c.join(&invite.code, &relay.url).await.expect("C joins via B");
            assert_eq!(c_joined.peer.device_id, b_joined.device_id);
            assert_eq!(c_joined.members, 1, "B told C about A");

            c.write("shared", "from-c.txt", "C via the mesh\n");
            wait_for_contents(&a.path.join("shared/from-c.txt"), "C via the mesh\n").await;
            let c_id = c_joined.device_id.clone();
            wait_until("A's status to list C", || async {
                a.status().await.peers.iter().any(|p| p.device_id == c_id)
            })
            .await;

            b.stop().await;
            assert!(!b.status().await.running);
            c.write("deliverables", "after-b-left.txt", "B is gone\n");
            wait_for_contents(&a.path.join("deliverables/after-b-left.txt"), "B is gone\n").await;
            wait_until("A to be connected to C directly", || async { a.is_connected_to(&c_id).await }).await;
        });
    });
}

// ---- 3. conflicts ---------------------------------------------------------------------------

/// The file's contents and those of its conflict copies, sorted.
fn versions(dir: &Path, stem: &str, ext: &str) -> (Option<String>, Vec<String>) {
    let main = std::fs::read_to_string(dir.join(format!("{stem}.{ext}"))).ok();
    let mut copies: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with(&format!("{stem}.sync-conflict-")) && name.ends_with(&format!(".{ext}"))
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    copies.sort();
    (main, copies)
}

#[test]
fn edits_on_both_sides_while_apart_both_survive() {
    isolated("edits_on_both_sides_while_apart_both_survive", |scratch| {
        let a = Machine::new(scratch, "a");
        let b = Machine::new(scratch, "b");
        block_on(async {
            let relay = TestRelay::start(Kind::Memory, unlimited()).await;
            let init = a.init(&relay.url).await;
            let joined = b.join(&init.invite.code, &relay.url).await.expect("join");
            a.write("shared", "notes.md", "first draft\n");
            wait_for_contents(&b.path.join("shared/notes.md"), "first draft\n").await;

            // Both sides pause the link, so neither redials while the edits are made.
            let (a_engine, b_engine) = (a.engine(), b.engine());
            a_engine.rest().pause_device(&joined.device_id.parse().unwrap()).await.unwrap();
            b_engine.rest().pause_device(&init.device_id.parse().unwrap()).await.unwrap();
            wait_until("the link to go down", || async {
                !a.is_connected_to(&joined.device_id).await && !b.is_connected_to(&init.device_id).await
            })
            .await;

            a.write("shared", "notes.md", "edited on A\n");
            b.write("shared", "notes.md", "edited on B\n");
            // Each side's index must hold its own edit before the link comes back.
            a_engine.rest().scan("botsync-shared", Some("notes.md")).await.unwrap();
            b_engine.rest().scan("botsync-shared", Some("notes.md")).await.unwrap();

            a_engine.rest().resume_device(&joined.device_id.parse().unwrap()).await.unwrap();
            b_engine.rest().resume_device(&init.device_id.parse().unwrap()).await.unwrap();

            let both = vec!["edited on A\n".to_string(), "edited on B\n".to_string()];
            for side in [&a, &b] {
                let dir = side.path.join("shared");
                wait_until("both versions on each side", || {
                    let dir = dir.clone();
                    let both = both.clone();
                    async move {
                        let (main, copies) = versions(&dir, "notes", "md");
                        let mut all: Vec<String> = main.into_iter().chain(copies.iter().cloned()).collect();
                        all.sort();
                        copies.len() == 1 && all == both
                    }
                })
                .await;
            }
            // Both sides agree on which edit kept the name.
            assert_eq!(
                std::fs::read_to_string(a.path.join("shared/notes.md")).unwrap(),
                std::fs::read_to_string(b.path.join("shared/notes.md")).unwrap()
            );
        });
    });
}
