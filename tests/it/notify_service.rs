//! The whole chain the daemon runs: fake Syncthing events in, OpenClaw POSTs out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use botsync::daemon::notify::{serve_with, BotsyncEvent, HooksToken, NotifierOptions, NotifySettings, Peer};
use botsync::SyncRoot;
use crate::support::notify::{fixture, fixture_ids, FakeOpenClaw, FakeSyncthing};
use tokio::sync::{mpsc, oneshot};

#[tokio::test]
async fn syncthing_events_become_openclaw_messages_until_shutdown() {
    let ids = fixture_ids();
    let syncthing = FakeSyncthing::new(ids["b"].as_str().unwrap());
    let gateway = FakeOpenClaw::new();
    let (gateway_addr, gateway_server) = gateway.start_on(0).await;
    let dir = tempfile::tempdir().unwrap();
    let root = SyncRoot::at(dir.path().to_owned()).unwrap();
    // Syncthing is not up yet when the service starts: it must wait for it.
    let port = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    crate::support::notify::record_engine(&root, port);

    let settings = NotifySettings::new(format!("http://{gateway_addr}/hooks/agent"), HooksToken::new("tok")).unwrap();
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&logs);
    let options = NotifierOptions { log: Arc::new(move |l| sink.lock().unwrap().push(l.to_string())), ..NotifierOptions::default() };
    let (inject, injected) = mpsc::channel(8);
    let (stop, stopped) = oneshot::channel::<()>();
    let service = tokio::spawn(serve_with(root.clone(), Some(settings), injected, options, async move {
        let _ = stopped.await;
    }));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, syncthing_server) = crate::support::notify::serve(syncthing.router(), port).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    syncthing.push_recorded(&fixture("events-b.json")[..28]);
    inject
        .send(BotsyncEvent::Paired { peer: Peer { device_id: ids["a"].as_str().unwrap().into(), name: "agent-box".into() }, at: "t".into() })
        .await
        .unwrap();
    gateway.wait_for(3, Duration::from_secs(10)).await;
    let messages = gateway.messages();
    stop.send(()).unwrap();
    service.await.unwrap().unwrap();

    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("BotSync: \"agent-box\" (J2UJDNG) connected from 127.0.0.1:22500")), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("BotSync: paired with \"agent-box\" (J2UJDNG)")), "{messages:?}");
    let batch = messages.iter().find(|m| m.contains("files synced")).expect("one batch for the files");
    assert!(batch.starts_with("BotSync: 4 files synced from \"agent-box\" (J2UJDNG):"), "{batch}");
    assert!(logs.lock().unwrap().iter().any(|l| l.contains("waiting for Syncthing")));
    syncthing_server.abort();
    gateway_server.abort();
}
