//! The daemon's half of pairing: completes every pending invite of this root while its code is
//! valid. Relay invites run the PAKE host side; original-protocol and offline invites accept,
//! from Syncthing's pending devices, exactly the device whose name carries the code's tag.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};

use super::notify::{BotsyncEvent, Peer};

use super::invites::{self, InviteKind, InviteRecord, InviteStatus};
use crate::clock;
use crate::device_id::DeviceId;
use crate::engine::Engine;
use crate::membership;
use crate::pairing::original::{self, OriginalCode};
use crate::pairing::pake::HostSeed;
use crate::pairing::exchange::host::Session;
use crate::pairing::{host, HostProgress, OfflineCode, PairingCode, PairingError, RelayClient};

/// How often pending devices are checked while an original-protocol or offline invite is open.
const TAG_CHECK_EVERY: Duration = Duration::from_millis(200);
/// Otherwise the invites folder is read when the CLI nudges us after recording an invite, and
/// this often as a safety net (expiry, clean-up, a nudge lost to a race).
const IDLE_RECHECK: Duration = Duration::from_secs(10);

/// Runs until `shutdown` turns true.
pub async fn run(engine: Engine, mut shutdown: watch::Receiver<bool>, paired: mpsc::Sender<BotsyncEvent>, wake: Arc<Notify>) {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        let records = invites::load_all(engine.root());
        let now = clock::now_ms();
        let mut tag_checks = Vec::new();
        for record in records {
            if !record.is_pending() {
                if now > record.expires_at_ms + invites::KEEP_AFTER_EXPIRY_MS {
                    invites::remove(engine.root(), &record.id);
                }
                continue;
            }
            match &record.kind {
                InviteKind::Relay { .. } => {
                    if in_flight.lock().expect("not poisoned").insert(record.id.clone()) {
                        let (engine, in_flight, paired) = (engine.clone(), in_flight.clone(), paired.clone());
                        tokio::spawn(async move {
                            let id = record.id.clone();
                            complete_relay_invite(&engine, record, &paired).await;
                            in_flight.lock().expect("not poisoned").remove(&id);
                        });
                    }
                }
                InviteKind::Original { .. } | InviteKind::Offline { .. } if now > record.expires_at_ms => {
                    finish(&engine, record, Err(PairingError::CodeExpired), &paired).await;
                }
                InviteKind::Original { .. } | InviteKind::Offline { .. } => tag_checks.push(record),
            }
        }
        let pause = if tag_checks.is_empty() { IDLE_RECHECK } else { TAG_CHECK_EVERY };
        if !tag_checks.is_empty() {
            accept_tagged_devices(&engine, tag_checks, &paired).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn complete_relay_invite(engine: &Engine, record: InviteRecord, paired: &mpsc::Sender<BotsyncEvent>) {
    let InviteKind::Relay { relay, code, host_token, progress } = &record.kind else { return };
    let outcome = async {
        let relay = RelayClient::new(relay)?;
        let code: PairingCode = code.parse()?;
        let token = host_token.as_ref().ok_or_else(|| {
            PairingError::PeerProtocol("this invite was recorded by an older botsync without its relay token: make a new one".into())
        })?;
        let deadline = clock::from_unix_ms(record.expires_at_ms);
        // Derived from a secret only this root has, so a daemon restarted mid-pairing resumes it.
        let seed = HostSeed::derive(engine.state().api_key.expose().as_bytes(), &code);
        let session = Session { code: &code, token, seed: Some(&seed), deadline };
        // Each step is on disk (the invite's record) before it is acted on, so a restarted daemon
        // answers only the guest message it answered before, with the very bytes it sent.
        let mut journal = |progress: &HostProgress| {
            let mut saved = record.clone();
            if let InviteKind::Relay { progress: slot, .. } = &mut saved.kind {
                **slot = progress.clone();
            }
            invites::save(engine.root(), &saved).map_err(|e| e.to_string())
        };
        host::complete_journaled(&relay, session, (**progress).clone(), &mut journal, |guest| async move {
            // No addresses yet: the joiner dials us once it has our answer. Were we to dial first,
            // it would refuse us as an unknown device and Syncthing would back off for seconds.
            crate::membership::refuse_removed(engine, &guest.device_id).map_err(|e| e.to_string())?;
            engine.add_peer(&guest.device_id, &guest.name, &[]).await.map_err(|e| e.to_string())?;
            crate::membership::record_guest(engine, &guest.device_id, &guest.name, &guest.addresses).map_err(|e| e.to_string())?;
            Ok(membership::introduction(engine, Some(&guest.device_id)))
        })
        .await
    }
    .await;
    if let Ok(guest) = &outcome {
        membership::announce(engine).await;
        let (engine, guest) = (engine.clone(), guest.clone());
        tokio::spawn(async move { remember_addresses_once_connected(&engine, &guest.device_id, &guest.addresses).await });
    }
    finish(engine, record, outcome.map(|guest| (guest.device_id, guest.name)), paired).await;
}

/// Once the joiner is connected (or has had a minute to), records its addresses so that we can
/// dial it too after either side restarts.
async fn remember_addresses_once_connected(engine: &Engine, peer: &DeviceId, addresses: &[String]) {
    let key = peer.to_string();
    for _ in 0..600 {
        let connected = engine.rest().connections().await.is_ok_and(|c| c.is_connected(&key));
        if connected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Err(e) = engine.set_peer_addresses(peer, addresses).await {
        eprintln!("cannot record the addresses of {}: {e}", peer.short());
    }
}

async fn accept_tagged_devices(engine: &Engine, records: Vec<InviteRecord>, paired: &mpsc::Sender<BotsyncEvent>) {
    let Ok(pending) = engine.rest().pending_devices().await else { return };
    for record in records {
        let verified = pending.iter().find_map(|(id, device)| {
            let id: DeviceId = id.parse().ok()?;
            let proven = match &record.kind {
                InviteKind::Original { code, .. } => {
                    OriginalCode::parse(code).is_ok_and(|code| original::verify_device_name(&code, &id, &device.name))
                }
                InviteKind::Offline { code } => {
                    code.parse::<OfflineCode>().is_ok_and(|code| code.verify_device_name(&id, &device.name))
                }
                InviteKind::Relay { .. } => false,
            };
            proven.then(|| (id, untagged(&device.name)))
        });
        if let Some((id, name)) = verified {
            let added = async {
                crate::membership::refuse_removed(engine, &id).map_err(|e| e.to_string())?;
                engine.add_peer(&id, &name, &[]).await.map_err(|e| e.to_string())?;
                crate::membership::record_guest(engine, &id, &name, &[]).map_err(|e| e.to_string())
            }
            .await
            .map_err(PairingError::AcceptFailed);
            if added.is_ok() {
                membership::announce(engine).await;
            }
            finish(engine, record, added.map(|()| (id, name)), paired).await;
        }
    }
}

/// The name a joiner announced, without the ` [tag]` proof it carried.
fn untagged(name: &str) -> String {
    match name.rfind(" [") {
        Some(at) if name.ends_with(']') => name[..at].to_string(),
        _ => name.to_string(),
    }
}

async fn finish(
    engine: &Engine,
    mut record: InviteRecord,
    outcome: Result<(DeviceId, String), PairingError>,
    paired: &mpsc::Sender<BotsyncEvent>,
) {
    record.status = match outcome {
        Ok((device_id, name)) => {
            eprintln!("paired with {name} ({})", device_id.short());
            let at_ms = clock::now_ms();
            let peer = Peer { device_id: device_id.to_string(), name: name.clone() };
            let _ = paired.send(BotsyncEvent::Paired { peer, at: clock::rfc3339(at_ms) }).await;
            InviteStatus::Paired { device_id: device_id.to_string(), name, at_ms }
        }
        Err(error) => {
            let code = error.code().as_str().to_string();
            eprintln!("invite {} ended: {error}", record.id);
            InviteStatus::Failed { code, error: error.to_string() }
        }
    };
    if let Err(e) = invites::save(engine.root(), &record) {
        eprintln!("cannot record the outcome of invite {}: {e}", record.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_stripped_from_announced_names() {
        assert_eq!(untagged("laptop [abcdefghij]"), "laptop");
        assert_eq!(untagged("laptop"), "laptop");
        assert_eq!(untagged("a [b] c"), "a [b] c");
    }
}
