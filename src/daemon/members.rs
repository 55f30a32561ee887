//! Keeps this root's Syncthing in line with the member list (`membership::reconcile`): at start,
//! whenever a ledger arrives in the members folder, the configuration changes (a pairing added a
//! device) or a device knocks, and every `SAFETY_NET` in case an event was missed. Waiting on
//! Syncthing's event long-poll keeps it idle when nothing changes.

use std::time::Duration;

use tokio::sync::watch;

use crate::engine::{Engine, RestClient};
use crate::membership;

/// Events that can change what the member list asks of Syncthing.
const EVENTS: &str = "ItemFinished,ConfigSaved,PendingDevicesChanged";
const LONG_POLL_S: u64 = 60;
const SAFETY_NET: Duration = Duration::from_secs(30);
/// After a failed pass (Syncthing restarting): try again soon, not in a tight loop.
const RETRY: Duration = Duration::from_secs(2);

pub async fn run(engine: Engine, mut shutdown: watch::Receiver<bool>) {
    let events = RestClient::with_timeout(engine.gui_port(), engine.state().api_key.clone(), Duration::from_secs(LONG_POLL_S + 10));
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
            let position = since.to_string();
            let timeout = LONG_POLL_S.to_string();
            let query = [("since", position.as_str()), ("events", EVENTS), ("timeout", timeout.as_str())];
            loop {
                match events.get_json::<Vec<serde_json::Value>>("/rest/events", &query).await {
                    Ok(batch) => {
                        since = batch.iter().filter_map(|e| e["id"].as_u64()).max().unwrap_or(since).max(since);
                        let relevant = batch.iter().any(|e| e["type"] != "ItemFinished" || e["data"]["folder"] == membership::FOLDER_ID);
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
