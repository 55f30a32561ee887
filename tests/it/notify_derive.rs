//! Event derivation from Syncthing 1.19.2 event streams recorded by tests/fixtures/record-events.sh:
//! A ("agent-box") wrote report.md, notes/a.txt, big.bin and plan.md; B ("laptop") wrote from-b.txt;
//! both edited plan.md while paused, which made a conflict copy.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use botsync::daemon::notify::derive::EventDeriver;
use botsync::daemon::notify::{BotsyncEvent, FileAction};
use botsync::engine::events::{RawEvent, SyncthingEvent};
use botsync::SyncRoot;
use crate::support::notify::{fixture, fixture_ids};

fn recorded(name: &str) -> Vec<SyncthingEvent> {
    fixture(name).into_iter().map(|v| SyncthingEvent::from(serde_json::from_value::<RawEvent>(v).unwrap())).collect()
}

fn root() -> SyncRoot {
    SyncRoot::at("/home/agent/sync".into()).unwrap()
}

fn sizes() -> impl Fn(&std::path::Path) -> Option<u64> + Send + Sync {
    let table: HashMap<&str, u64> = [("report.md", 31), ("a.txt", 4), ("big.bin", 200_000), ("plan.md", 17), ("from-b.txt", 13)].into();
    move |p: &std::path::Path| table.get(p.file_name()?.to_str()?).copied()
}

/// Feeds everything at once (as one long-poll batch would) and then lets joins expire.
fn derive_all(deriver: &mut EventDeriver, events: &[SyncthingEvent]) -> Vec<BotsyncEvent> {
    let now = Instant::now();
    let mut out = Vec::new();
    for event in events {
        out.extend(deriver.feed(event, now));
    }
    out.extend(deriver.flush_expired(now + Duration::from_secs(60)));
    out
}

fn files(events: &[BotsyncEvent]) -> Vec<(String, FileAction, Option<i64>, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            BotsyncEvent::File { path, action, size, peer, .. } => Some((path.clone(), *action, *size, peer.as_ref().map(|p| p.name.clone()))),
            _ => None,
        })
        .collect()
}

#[test]
fn laptop_sees_what_agent_box_sent_and_nothing_of_its_own() {
    let ids = fixture_ids();
    let mut deriver = EventDeriver::new(root()).with_size_lookup(sizes());
    deriver.set_local_device(ids["b"].as_str().unwrap());
    let out = derive_all(&mut deriver, &recorded("events-b.json"));
    let from = Some("agent-box".to_string());
    assert_eq!(
        files(&out),
        vec![
            ("report.md".into(), FileAction::Added, Some(31), from.clone()),
            ("notes/a.txt".into(), FileAction::Added, Some(4), from.clone()),
            ("report.md".into(), FileAction::Modified, Some(31), from.clone()),
            ("notes/a.txt".into(), FileAction::Deleted, None, from.clone()),
            ("big.bin".into(), FileAction::Added, Some(200_000), from.clone()),
            ("plan.md".into(), FileAction::Added, Some(17), from.clone()),
            // After reconnecting, agent-box's newer plan.md wins over the local edit.
            ("plan.md".into(), FileAction::Modified, Some(17), from.clone()),
        ],
        "no directory (notes), no local write (from-b.txt), no conflict copy as a file"
    );
    let peer_ids: Vec<&str> = out
        .iter()
        .filter_map(|e| match e {
            BotsyncEvent::File { peer: Some(p), .. } => Some(p.device_id.as_str()),
            _ => None,
        })
        .collect();
    assert!(peer_ids.iter().all(|id| *id == ids["a"].as_str().unwrap()), "short IDs resolve to the full device ID");

    let conflicts: Vec<_> = out.iter().filter(|e| matches!(e, BotsyncEvent::Conflict { .. })).collect();
    assert_eq!(conflicts.len(), 1);
    match conflicts[0] {
        BotsyncEvent::Conflict { folder, path, copy, local_copy, .. } => {
            assert_eq!(folder, "shared");
            assert_eq!(path, "plan.md");
            assert_eq!(copy, "plan.sync-conflict-20261123-225404-J2UJDNG.md");
            assert_eq!(local_copy, "/home/agent/sync/shared/plan.sync-conflict-20261123-225404-J2UJDNG.md");
        }
        _ => unreachable!(),
    }
    let connects = out.iter().filter(|e| matches!(e, BotsyncEvent::DeviceConnected { .. })).count();
    let disconnects = out.iter().filter(|e| matches!(e, BotsyncEvent::DeviceDisconnected { .. })).count();
    assert_eq!((connects, disconnects), (2, 2));
    match out.iter().find(|e| matches!(e, BotsyncEvent::DeviceConnected { .. })).unwrap() {
        BotsyncEvent::DeviceConnected { peer, address, .. } => {
            assert_eq!(peer.name, "agent-box");
            assert_eq!(address, "127.0.0.1:22500");
        }
        _ => unreachable!(),
    }
}

#[test]
fn agent_box_sees_the_laptop_file_and_the_conflict_copy_once() {
    let ids = fixture_ids();
    let mut deriver = EventDeriver::new(root()).with_size_lookup(sizes());
    deriver.set_local_device(ids["a"].as_str().unwrap());
    deriver.learn_peer(ids["b"].as_str().unwrap(), "my laptop");
    let out = derive_all(&mut deriver, &recorded("events-a.json"));
    assert_eq!(files(&out), vec![("from-b.txt".into(), FileAction::Added, Some(13), Some("my laptop".into()))]);
    let conflicts: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            BotsyncEvent::Conflict { path, copy, .. } => Some((path.as_str(), copy.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(conflicts, vec![("plan.md", "plan.sync-conflict-20261123-225404-J2UJDNG.md")]);
    // The configured name wins over the name the peer announces.
    assert!(out.iter().any(|e| matches!(e, BotsyncEvent::DeviceConnected { peer, .. } if peer.name == "my laptop")));
}

#[test]
fn files_known_on_disk_arrive_as_modified() {
    let dir = tempfile::tempdir().unwrap();
    let root = SyncRoot::at(dir.path().to_owned()).unwrap();
    std::fs::create_dir_all(root.path().join("shared")).unwrap();
    std::fs::write(root.path().join("shared/report.md"), "old").unwrap();
    std::fs::write(root.path().join("shared/.syncthing.x.tmp"), "").unwrap();
    let mut deriver = EventDeriver::new(root);
    deriver.seed_from_disk();
    let out = derive_all(&mut deriver, &recorded("events-b.json")[..7]);
    // The real size is read from disk when no lookup is injected.
    assert_eq!(files(&out), vec![("report.md".into(), FileAction::Modified, Some(3), Some("agent-box".into()))]);
}

#[test]
fn either_order_joins_and_a_lone_half_is_reported_after_the_window() {
    let events = recorded("events-b.json");
    let finished = events.iter().find(|e| e.id == 4).unwrap().clone(); // ItemFinished report.md
    let changed = events.iter().find(|e| e.id == 6).unwrap().clone(); // RemoteChangeDetected report.md
    let t0 = Instant::now();

    // RemoteChangeDetected first, then ItemFinished: joined at once.
    let mut deriver = EventDeriver::new(root());
    assert!(deriver.feed(&changed, t0).is_empty());
    let out = deriver.feed(&finished, t0);
    assert_eq!(files(&out), vec![("report.md".into(), FileAction::Added, None, Some("J2UJDNG".into()))]);
    assert_eq!(deriver.next_deadline(), None);

    // ItemFinished alone (RemoteChangeDetected not delivered): reported without a sender, after the window.
    let mut deriver = EventDeriver::new(root()).with_join_window(Duration::from_secs(5));
    assert!(deriver.feed(&finished, t0).is_empty());
    assert!(deriver.flush_expired(t0 + Duration::from_secs(4)).is_empty());
    assert_eq!(deriver.next_deadline(), Some(t0 + Duration::from_secs(5)));
    let out = deriver.flush_expired(t0 + Duration::from_secs(5));
    assert_eq!(files(&out), vec![("report.md".into(), FileAction::Added, None, None)]);
}

#[test]
fn failed_pulls_temp_files_and_foreign_folders_are_ignored() {
    let raw = serde_json::json!([
        {"id": 1, "type": "ItemFinished", "time": "t", "data": {"item": "x.txt", "folder": "botsync-shared", "error": "peers who had this file went away", "type": "file", "action": "update"}},
        {"id": 2, "type": "ItemFinished", "time": "t", "data": {"item": ".syncthing.y.txt.tmp", "folder": "botsync-shared", "error": null, "type": "file", "action": "update"}},
        {"id": 3, "type": "RemoteChangeDetected", "time": "t", "data": {"folder": "botsync-shared", "path": "~syncthing~z.tmp", "modifiedBy": "ABCDEFG", "action": "modified", "type": "file"}},
        {"id": 4, "type": "ItemFinished", "time": "t", "data": {"item": "w.txt", "folder": "someone-elses", "error": null, "type": "file", "action": "update"}},
        {"id": 5, "type": "RemoteChangeDetected", "time": "t", "data": {"folder": "someone-elses", "path": "w.txt", "modifiedBy": "ABCDEFG", "action": "modified", "type": "file"}},
        {"id": 6, "type": "SomethingNew", "time": "t", "data": {"x": 1}}
    ]);
    let events = botsync::engine::events::parse_events(raw.to_string().as_bytes()).unwrap();
    let mut deriver = EventDeriver::new(root());
    assert!(derive_all(&mut deriver, &events).is_empty());
}
