//! EventStream and EventFeed against a fake Syncthing on loopback: the API key header, the event
//! mask, keeping the position across errors, and a Syncthing restart (event IDs from 1 again).

use std::time::Duration;

use botsync::daemon::notify::derive::EventDeriver;
use botsync::daemon::notify::{BotsyncEvent, EventFeed};
use botsync::engine::events::{EventData, EventStream};
use botsync::engine::{ApiKey, RestClient};
use botsync::SyncRoot;
use crate::support::notify::{fixture, fixture_ids, rest, FakeSyncthing, LOCAL_ID};
use serde_json::json;

fn item(n: u32) -> serde_json::Value {
    json!({"item": format!("f{n}.txt"), "folder": "botsync-shared", "error": null, "type": "file", "action": "update"})
}

fn items(events: &[botsync::engine::events::SyncthingEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::ItemFinished(i) => Some(i.item.clone()),
            _ => None,
        })
        .collect()
}

async fn stream_for(fake: &FakeSyncthing) -> (EventStream, tokio::task::JoinHandle<()>) {
    let (addr, server) = fake.start().await;
    (EventStream::botsync(rest(addr)).with_poll_timeout(Duration::from_secs(1)), server)
}

#[tokio::test]
async fn polls_with_the_key_and_the_explicit_mask_and_advances() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    fake.push("ItemFinished", item(1));
    fake.push("Starting", json!({}));
    fake.push("ItemFinished", item(2));
    let (mut stream, server) = stream_for(&fake).await;

    let batch = stream.next_batch().await.unwrap();
    assert_eq!(items(&batch.events), vec!["f1.txt", "f2.txt"], "Starting is outside the mask");
    assert!(!batch.restarted);
    assert_eq!(stream.position().0, 3);
    assert_eq!(stream.local_device(), Some(LOCAL_ID));

    fake.push("ItemFinished", item(3));
    let batch = stream.next_batch().await.unwrap();
    assert_eq!(items(&batch.events), vec!["f3.txt"]);

    // Nothing new: the long poll times out with an empty batch and the position stays.
    let batch = stream.next_batch().await.unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(stream.position().0, 4);

    let state = fake.0.lock().unwrap();
    assert_eq!(state.bad_keys, 0);
    let mask = state.event_queries[0].get("events").unwrap();
    assert!(mask.split(',').any(|t| t == "RemoteChangeDetected"), "RemoteChangeDetected must be asked for: {mask}");
    assert_eq!(state.event_queries[1].get("since").map(String::as_str), Some("3"));
    drop(state);
    server.abort();
}

#[tokio::test]
async fn an_error_keeps_the_position_and_the_next_poll_resumes() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    fake.push("ItemFinished", item(1));
    let (mut stream, server) = stream_for(&fake).await;
    assert_eq!(items(&stream.next_batch().await.unwrap().events), vec!["f1.txt"]);
    fake.push("ItemFinished", item(2));
    fake.0.lock().unwrap().fail_event_polls = 2;
    assert!(stream.next_batch().await.is_err());
    assert!(stream.next_batch().await.is_err());
    assert_eq!(stream.position().0, 1);
    assert_eq!(items(&stream.next_batch().await.unwrap().events), vec!["f2.txt"]);
    server.abort();
}

#[tokio::test]
async fn a_restart_is_detected_and_nothing_of_the_new_process_is_skipped() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    for n in 1..=3 {
        fake.push("ItemFinished", item(n));
    }
    let (mut stream, server) = stream_for(&fake).await;
    assert_eq!(stream.next_batch().await.unwrap().events.len(), 3);

    // The new process already has more events than our old position: a naive `since=3` would
    // return only its 4th and 5th and silently lose the first three.
    fake.restart("2026-01-01T00:05:00Z");
    for n in 10..=14 {
        fake.push("ItemFinished", item(n));
    }
    let batch = stream.next_batch().await.unwrap();
    assert!(batch.restarted);
    assert!(batch.events.is_empty(), "a batch that straddles a restart is not trusted");
    assert_eq!(stream.restarts(), 1);
    let batch = stream.next_batch().await.unwrap();
    assert_eq!(items(&batch.events), vec!["f10.txt", "f11.txt", "f12.txt", "f13.txt", "f14.txt"]);

    // A restart with fewer events than our position: a naive poll would wait for ever.
    fake.restart("2026-01-01T00:10:00Z");
    fake.push("ItemFinished", item(20));
    let batch = stream.next_batch().await.unwrap();
    assert!(batch.restarted);
    assert_eq!(items(&stream.next_batch().await.unwrap().events), vec!["f20.txt"]);
    server.abort();
}

#[tokio::test]
async fn a_restart_within_the_same_second_is_caught_by_uptime_going_back() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    fake.push("ItemFinished", item(1));
    fake.push("ItemFinished", item(2));
    let (mut stream, server) = stream_for(&fake).await;
    assert_eq!(stream.next_batch().await.unwrap().events.len(), 2);
    // 1.19 reports startTime in whole seconds: a quick restart can keep the same string.
    fake.restart("2026-01-01T00:00:00Z");
    fake.push("ItemFinished", item(30));
    fake.push("ItemFinished", item(31));
    fake.push("ItemFinished", item(32));
    assert!(stream.next_batch().await.unwrap().restarted);
    assert_eq!(items(&stream.next_batch().await.unwrap().events), vec!["f30.txt", "f31.txt", "f32.txt"]);
    server.abort();
}

#[tokio::test]
async fn a_lazily_checked_stream_asks_for_the_process_once_per_interval_and_after_empty_polls() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    let (addr, server) = fake.start().await;
    let mut stream = EventStream::botsync(rest(addr)).with_poll_timeout(Duration::from_secs(1)).with_process_check_every(Duration::from_secs(3600));
    let status_queries = || fake.0.lock().unwrap().status_queries;
    for n in 1..=5 {
        fake.push("ItemFinished", item(n));
        assert_eq!(items(&stream.next_batch().await.unwrap().events), vec![format!("f{n}.txt")]);
    }
    assert_eq!(status_queries(), 2, "pinned before the first poll and checked after it, then not while batches keep coming");
    assert!(stream.next_batch().await.unwrap().events.is_empty());
    assert_eq!(status_queries(), 3, "an empty poll is checked");

    let mut strict = EventStream::botsync(rest(addr)).with_poll_timeout(Duration::from_secs(1));
    for _ in 0..3 {
        strict.next_batch().await.unwrap();
    }
    assert_eq!(status_queries(), 3 + 1 + 3, "the default stream brackets every batch");
    server.abort();
}

#[tokio::test]
async fn a_lazily_checked_stream_catches_a_restart_through_the_failed_poll() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    for n in 1..=3 {
        fake.push("ItemFinished", item(n));
    }
    let (addr, server) = fake.start().await;
    let mut stream = EventStream::botsync(rest(addr)).with_poll_timeout(Duration::from_secs(1)).with_process_check_every(Duration::from_secs(3600));
    assert_eq!(stream.next_batch().await.unwrap().events.len(), 3);
    fake.push("ItemFinished", item(4));
    assert_eq!(stream.next_batch().await.unwrap().events.len(), 1);

    // A restart ends the open long poll: that poll fails, and the new process has more events
    // than the old position, which a poll with `since=4` would skip.
    fake.0.lock().unwrap().fail_event_polls = 1;
    assert!(stream.next_batch().await.is_err());
    fake.restart("2026-01-01T00:05:00Z");
    for n in 10..=15 {
        fake.push("ItemFinished", item(n));
    }
    let batch = stream.next_batch().await.unwrap();
    assert!(batch.restarted, "checked before polling again");
    assert_eq!(stream.restarts(), 1);
    assert_eq!(items(&stream.next_batch().await.unwrap().events), vec!["f10.txt", "f11.txt", "f12.txt", "f13.txt", "f14.txt", "f15.txt"]);
    server.abort();
}

#[tokio::test]
async fn skip_to_now_ignores_what_was_buffered() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    fake.push("ItemFinished", item(1));
    fake.push("ItemFinished", item(2));
    let (mut stream, server) = stream_for(&fake).await;
    stream.skip_to_now().await.unwrap();
    fake.push("ItemFinished", item(3));
    assert_eq!(items(&stream.next_batch().await.unwrap().events), vec!["f3.txt"]);
    server.abort();
}

#[tokio::test]
async fn a_wrong_key_is_an_error_not_a_silent_empty_stream() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    let (addr, server) = fake.start().await;
    let mut stream = EventStream::botsync(RestClient::new(addr.port(), ApiKey::from_string(String::from("wrong"))));
    let error = stream.next_batch().await.unwrap_err();
    assert!(error.to_string().contains("403"), "{error}");
    server.abort();
}

#[tokio::test]
async fn the_feed_turns_recorded_events_into_botsync_events_across_a_restart() {
    let ids = fixture_ids();
    let fake = FakeSyncthing::new(ids["b"].as_str().unwrap());
    fake.0.lock().unwrap().devices = vec![
        json!({"deviceID": ids["a"], "name": "agent box (configured)"}),
        json!({"deviceID": ids["b"], "name": "me"}),
    ];
    let (addr, server) = fake.start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = SyncRoot::at(dir.path().to_owned()).unwrap();
    let stream = EventStream::botsync(rest(addr)).with_poll_timeout(Duration::from_secs(1));
    let mut feed = EventFeed::start_with(stream, EventDeriver::new(root)).await.unwrap();

    let recorded = fixture("events-b.json");
    fake.push_recorded(&recorded[..7]); // connect + report.md
    let first = tokio::time::timeout(Duration::from_secs(10), feed.next()).await.unwrap();
    assert!(matches!(&first, BotsyncEvent::DeviceConnected { peer, .. } if peer.name == "agent box (configured)"), "{first:?}");
    let second = tokio::time::timeout(Duration::from_secs(10), feed.next()).await.unwrap();
    match &second {
        BotsyncEvent::File { path, peer: Some(peer), .. } => {
            assert_eq!(path, "report.md");
            assert_eq!(peer.device_id, ids["a"].as_str().unwrap());
        }
        other => panic!("expected a file event, got {other:?}"),
    }

    fake.restart("2026-01-01T01:00:00Z");
    fake.push_recorded(&recorded[7..16]); // notes/ and notes/a.txt
    let third = tokio::time::timeout(Duration::from_secs(10), feed.next()).await.unwrap();
    assert!(matches!(&third, BotsyncEvent::File { path, .. } if path == "notes/a.txt"), "{third:?}");
    assert_eq!(feed.stream().restarts(), 1);
    server.abort();
}

#[tokio::test]
async fn the_feed_reports_a_lone_item_finished_after_the_join_window_without_new_events() {
    let fake = FakeSyncthing::new(LOCAL_ID);
    let (addr, server) = fake.start().await;
    let dir = tempfile::tempdir().unwrap();
    let root = SyncRoot::at(dir.path().to_owned()).unwrap();
    // A long poll timeout: the feed must wake up for the join deadline on its own.
    let stream = EventStream::botsync(rest(addr)).with_poll_timeout(Duration::from_secs(30));
    let deriver = EventDeriver::new(root).with_join_window(Duration::from_millis(300));
    let mut feed = EventFeed::start_with(stream, deriver).await.unwrap();
    fake.push("ItemFinished", item(7));
    let started = std::time::Instant::now();
    let event = tokio::time::timeout(Duration::from_secs(10), feed.next()).await.unwrap();
    assert!(matches!(&event, BotsyncEvent::File { path, peer: None, .. } if path == "f7.txt"), "{event:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    server.abort();
}
