//! Keeps this root's Syncthing in line with the member list (`membership::reconcile`): at start,
//! whenever a ledger arrives in the members folder, the configuration changes (a pairing added a
//! device), a device knocks or connects (a member configured with no address gets its address
//! then), when Syncthing restarted, and once per `SAFETY_NET` in case an event was missed. Waiting
//! on Syncthing's event long-poll keeps it idle when nothing changes: the safety net is the poll's
//! own timeout, so a quiet root costs Syncthing one poll and one pass every few minutes. Each
//! request is work for it: with a pass every 30 s, the passes' GETs and the polls' process checks
//! were a fifth to a third of an idle Syncthing's CPU in the 100,000-file benchmark. A member left
//! paused by an interrupted `add_peers` is resumed once it has stayed paused for `LEFT_PAUSED`
//! (`Held`): a pairing in progress resumes its own peers within milliseconds, and resuming them
//! earlier would let a peer connect while its folders still restart, the race the pause is there for.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::device_id::DeviceId;
use crate::engine::events::{EventData, EventStream};
use crate::engine::Engine;
use crate::membership;

/// Events that can change what the member list asks of Syncthing. A ledger that arrives is a
/// `LocalIndexUpdated` of the members folder (one per database commit of the puller, where
/// `ItemFinished` would wake this loop for every file pulled into any folder).
const EVENTS: [&str; 4] = ["LocalIndexUpdated", "ConfigSaved", "PendingDevicesChanged", "DeviceConnected"];
/// A pass at least this often, event or not: the long-poll's timeout.
const SAFETY_NET: Duration = Duration::from_secs(300);
/// A restart fails the open poll, and the poll after a failure checks the process first (see
/// `EventStream::with_process_check_every`); busy batches (a pull commits the shared folder's
/// index many times a second) need no check each.
const PROCESS_CHECK: Duration = Duration::from_secs(10);
/// After a failed pass (Syncthing restarting): try again soon, not in a tight loop.
const RETRY: Duration = Duration::from_secs(2);
/// How long a member may stay paused before the daemon takes its resume for lost.
const LEFT_PAUSED: Duration = Duration::from_secs(10);

/// Members seen paused, since when. A pure core: the passes report what they saw, with the time.
#[derive(Debug, Default)]
struct Held {
    since: HashMap<DeviceId, Instant>,
}

impl Held {
    /// Records the members a pass found paused at `now`; returns those paused for `LEFT_PAUSED`
    /// or longer. A member not in `paused` was resumed and is forgotten.
    fn observe(&mut self, paused: &[DeviceId], now: Instant) -> Vec<DeviceId> {
        self.since.retain(|id, _| paused.contains(id));
        for id in paused {
            self.since.entry(*id).or_insert(now);
        }
        self.since.iter().filter(|(_, since)| now.duration_since(**since) >= LEFT_PAUSED).map(|(id, _)| *id).collect()
    }

    /// When the next pass must come to resume what is held, if anything is.
    fn next_check(&self) -> Option<Instant> {
        self.since.values().min().map(|since| *since + LEFT_PAUSED)
    }
}

pub async fn run(engine: Engine, mut shutdown: watch::Receiver<bool>) {
    let mut stream = EventStream::new(engine.rest(), &EVENTS).with_process_check_every(PROCESS_CHECK).with_poll_timeout(SAFETY_NET);
    // The first pass reads the state itself; what Syncthing buffered before it is no news.
    let _ = stream.skip_to_now().await;
    let mut last_error = String::new();
    let mut held = Held::default();
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
                let mut failed = None;
                for id in held.observe(&outcome.paused, Instant::now()) {
                    match engine.resume_peer(&id).await {
                        Ok(()) => eprintln!("member {} was left paused by an interrupted pairing: resumed", id.short()),
                        Err(e) => {
                            eprintln!("member {} left paused, not resumed yet: {e}", id.short());
                            failed = Some(RETRY);
                        }
                    }
                }
                failed
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
                match stream.next_batch().await {
                    Ok(batch) => {
                        let relevant = batch.events.iter().any(|e| match &e.data {
                            EventData::LocalIndexUpdated(update) => update.folder == membership::FOLDER_ID,
                            _ => true,
                        });
                        // An empty batch is the poll's timeout: the safety net's pass.
                        if relevant || batch.restarted || batch.events.is_empty() {
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
        let held_check = async {
            match held.next_check() {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = held_check => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 32])
    }

    #[test]
    fn a_member_is_resumed_only_once_it_has_stayed_paused() {
        let start = Instant::now();
        let mut held = Held::default();
        assert!(held.observe(&[id(1)], start).is_empty(), "a pairing in progress holds it for milliseconds");
        assert_eq!(held.next_check(), Some(start + LEFT_PAUSED));
        assert!(held.observe(&[id(1), id(2)], start + LEFT_PAUSED / 2).is_empty());
        assert_eq!(held.observe(&[id(1), id(2)], start + LEFT_PAUSED), vec![id(1)], "paused since the first pass");
        assert_eq!(held.next_check(), Some(start + LEFT_PAUSED), "until a pass sees it resumed");
    }

    #[test]
    fn a_member_resumed_in_between_starts_over() {
        let start = Instant::now();
        let mut held = Held::default();
        held.observe(&[id(1)], start);
        assert!(held.observe(&[], start + LEFT_PAUSED / 2).is_empty());
        assert_eq!(held.next_check(), None, "nothing held, nothing to check");
        assert!(held.observe(&[id(1)], start + LEFT_PAUSED).is_empty(), "paused again: a new pairing's hold");
        assert_eq!(held.observe(&[id(1)], start + LEFT_PAUSED * 2), vec![id(1)]);
    }
}
