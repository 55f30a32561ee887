//! Keeps this root's Syncthing in line with the member list (`membership::reconcile`): at start,
//! whenever a ledger arrives in the members folder, the configuration changes (a pairing added a
//! device), a device knocks or connects (a member configured with no address gets its address
//! then), and every `SAFETY_NET` in case an event was missed. Waiting on
//! Syncthing's event long-poll keeps it idle when nothing changes.

use std::time::Duration;

use tokio::sync::watch;

use crate::engine::events::EventData;
use crate::engine::Engine;
use crate::membership;

/// Events that can change what the member list asks of Syncthing. A ledger that arrives is a
/// `LocalIndexUpdated` of the members folder (one per database commit of the puller, where
/// `ItemFinished` would wake this loop for every file pulled into any folder).
const EVENTS: &str = "LocalIndexUpdated,ConfigSaved,PendingDevicesChanged,DeviceConnected";
const LONG_POLL: Duration = Duration::from_secs(60);
const SAFETY_NET: Duration = Duration::from_secs(30);
/// After a failed pass (Syncthing restarting): try again soon, not in a tight loop.
const RETRY: Duration = Duration::from_secs(2);

pub async fn run(engine: Engine, mut shutdown: watch::Receiver<bool>) {
    let rest = engine.rest();
    let mut since = 0u64;
    let mut last_error = String::new();
    loop {
        let pause = match membership::reconcile(&engine).await {
            Ok(outcome) => {
                for id in &outcome.added {
                    eprintln!("member {} configured from the member list", id.short());
                }
                for id in &outcome.dropped {
                    eprintln!("removed machine {} dropped from Syncthing", id.short());
                }
                last_error.clear();
                None
            }
            Err(e) => {
                let message = e.to_string();
                if message != last_error {
                    eprintln!("member list not applied yet: {message}");
                    last_error = message;
                }
                Some(RETRY)
            }
        };
        let wait = async {
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
                return;
            }
            loop {
                match rest.events(since, EVENTS, LONG_POLL, None).await {
                    Ok(batch) => {
                        since = batch.iter().map(|e| e.id).max().unwrap_or(since).max(since);
                        let relevant = batch.iter().any(|e| match &e.data {
                            EventData::LocalIndexUpdated(update) => update.folder == membership::FOLDER_ID,
                            _ => true,
                        });
                        if relevant || batch.is_empty() {
                            return;
                        }
                    }
                    Err(_) => {
                        tokio::time::sleep(RETRY).await;
                        return;
                    }
                }
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = tokio::time::sleep(SAFETY_NET) => {}
            _ = shutdown.changed() => return,
        }
    }
}
