//! Adding peers in two configuration changes however many there are: every device and every
//! folder share of a batch in one `PUT /rest/config`, then one more that resumes them.
//!
//! Each REST write to Syncthing's configuration is a commit that Syncthing applies and saves
//! before it answers (`finish` in lib/api/confighandler.go: `waiter.Wait()` then `cfg.Save()`),
//! and a folder whose device list changes is restarted. Adding a peer the old way (put the
//! device paused, share each of the four folders, resume it) made six commits per peer, so a
//! machine joining a mesh of nine made 54 of them, one after the other, while `join` waited:
//! measured in bench/mesh.sh, each join took ~0.3 s longer per member already in the mesh
//! (1.8 s for the 2nd machine, 4.2 s for the 10th). Two commits per batch make that constant:
//! the devices, paused, with every share (`apply`, `hold_unconnected`), then their resume
//! (`resume`), so a new peer's first connection already carries every folder, restarted. A
//! process killed between the two leaves its peers paused; the daemon resumes them
//! (`daemon::members`).
//!
//! Syncthing gives each device and folder of a posted configuration its defaults before the
//! posted fields (`ReadJSON` in lib/config/config.go: `cfg.Devices[i] = cfg.Defaults.Device.Copy()`),
//! so a new device here carries only the fields botsync decides, as `PUT /rest/config/devices/{id}` did.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::device_id::DeviceId;

/// A peer to configure: its device ID, name and the addresses to dial it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPeer {
    pub device_id: DeviceId,
    pub name: String,
    pub addresses: Vec<String>,
}

/// Applies `peers` to a configuration as `GET /rest/config` returned it: each one a device
/// (created, or updated: name, addresses, not an introducer, not paused) sharing every folder in
/// `folder_ids`. `members_folder` is added first if the configuration has no folder with that ID
/// (it is built from every device then configured, these peers included). Returns whether
/// anything changed: a converged configuration is not written again.
pub fn apply(config: &mut Value, me: &DeviceId, peers: &[NewPeer], folder_ids: &[&str], members_folder: Option<(&str, &dyn Fn(&[String]) -> Value)>) -> Result<bool, String> {
    let object = config.as_object_mut().ok_or("the configuration is not an object")?;
    let mut changed = false;

    let devices = object.entry("devices").or_insert_with(|| Value::Array(Vec::new()));
    let devices = devices.as_array_mut().ok_or("devices is not a list")?;
    for peer in peers.iter().filter(|p| p.device_id != *me) {
        let key = peer.device_id.to_string();
        let wanted = [
            ("name", json!(peer.name)),
            ("addresses", json!(peer.addresses)),
            ("introducer", json!(false)),
            ("paused", json!(false)),
        ];
        match devices.iter_mut().find(|d| d["deviceID"].as_str() == Some(key.as_str())) {
            Some(device) => {
                let device = device.as_object_mut().ok_or("a device is not an object")?;
                for (field, value) in wanted {
                    if device.get(field) != Some(&value) {
                        device.insert(field.into(), value);
                        changed = true;
                    }
                }
            }
            None => {
                let mut device = serde_json::Map::new();
                device.insert("deviceID".into(), json!(key));
                for (field, value) in wanted {
                    device.insert(field.into(), value);
                }
                devices.push(Value::Object(device));
                changed = true;
            }
        }
    }
    let device_ids: Vec<String> = devices.iter().filter_map(|d| d["deviceID"].as_str().map(str::to_string)).collect();

    let folders = object.entry("folders").or_insert_with(|| Value::Array(Vec::new()));
    let folders = folders.as_array_mut().ok_or("folders is not a list")?;
    if let Some((id, build)) = members_folder {
        if !folders.iter().any(|f| f["id"].as_str() == Some(id)) {
            // Shared with me and every device configured now (the new peers among them).
            let mut ids = vec![me.to_string()];
            ids.extend(device_ids.iter().filter(|d| **d != me.to_string()).cloned());
            folders.push(build(&ids));
            changed = true;
        }
    }
    for folder in folders.iter_mut().filter(|f| f["id"].as_str().is_some_and(|id| folder_ids.contains(&id))) {
        let shared = folder.as_object_mut().ok_or("a folder is not an object")?.entry("devices").or_insert_with(|| Value::Array(Vec::new()));
        let shared = shared.as_array_mut().ok_or("a folder's devices is not a list")?;
        for peer in peers.iter().filter(|p| p.device_id != *me) {
            let key = peer.device_id.to_string();
            if !shared.iter().any(|d| d["deviceID"].as_str() == Some(key.as_str())) {
                shared.push(json!({ "deviceID": key }));
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// Pauses every one of `peers` that is not `connected`, for the commit that shares the folders
/// with it, and returns their IDs for `resume`, the commit after it.
///
/// Syncthing hands a configuration change to its model and to its connection service at once
/// (`notifyListeners` in lib/config/wrapper.go: a goroutine per committer). The connection
/// service dials a new device while the model is still restarting, one after the other, the
/// folders whose device list changed; an index that arrives for a folder in mid-restart finds no
/// handler (`ReceiveIndex` in lib/model/indexhandler.go, 1.19 to 2.x), and Syncthing drops the
/// connection ("handling index for botsync-members: no such folder"; seen in CI on a host
/// accepting an original-protocol joiner that was dialling it). A paused device is neither
/// dialled nor let in, and `PUT /rest/config` answers only once every committer is done, so the
/// resume lands on restarted folders. Resuming also makes Syncthing dial the device at once
/// (`checkAndSignalConnectLoopOnUpdatedDevices` in lib/connections/service.go), which a device
/// it already had and failed to reach (pairing again after a removal) would otherwise wait for.
/// A connected device is left alone: pausing it would drop the connection, and the daemon's
/// member list can configure a joiner's host a moment before `join` itself does.
pub fn hold_unconnected(config: &mut Value, me: &DeviceId, peers: &[NewPeer], connected: &HashSet<String>) -> Vec<String> {
    let Some(devices) = config.get_mut("devices").and_then(Value::as_array_mut) else { return Vec::new() };
    let mut held = Vec::new();
    for device in devices.iter_mut() {
        let Some(id) = device["deviceID"].as_str().map(str::to_string) else { continue };
        if id != me.to_string() && peers.iter().any(|p| p.device_id.to_string() == id) && !connected.contains(&id) {
            device["paused"] = json!(true);
            held.push(id);
        }
    }
    held
}

/// Unpauses the devices `hold_unconnected` paused.
pub fn resume(config: &mut Value, held: &[String]) {
    let Some(devices) = config.get_mut("devices").and_then(Value::as_array_mut) else { return };
    for device in devices.iter_mut().filter(|d| d["deviceID"].as_str().is_some_and(|id| held.iter().any(|h| h == id))) {
        device["paused"] = json!(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 32])
    }

    fn config(me: &DeviceId) -> Value {
        json!({
            "version": 35,
            "gui": { "user": "x", "password": "$2a$10$hash" },
            "devices": [{ "deviceID": me.to_string(), "name": "me", "addresses": ["dynamic"], "compression": "metadata" }],
            "folders": [
                { "id": "botsync-shared", "path": "/r/shared", "devices": [{ "deviceID": me.to_string() }] },
                { "id": "botsync-inbox", "path": "/r/inbox", "devices": [{ "deviceID": me.to_string() }] },
                { "id": "other", "path": "/elsewhere", "devices": [{ "deviceID": me.to_string() }] }
            ],
            "remoteIgnoredDevices": []
        })
    }

    fn peer(n: u8, name: &str) -> NewPeer {
        NewPeer { device_id: id(n), name: name.into(), addresses: vec![format!("tcp://10.0.0.{n}:22000")] }
    }

    fn members(ids: &[String]) -> Value {
        json!({ "id": "botsync-members", "devices": ids.iter().map(|d| json!({ "deviceID": d })).collect::<Vec<_>>() })
    }

    fn shared_with(config: &Value, folder: &str) -> Vec<String> {
        let folder = config["folders"].as_array().unwrap().iter().find(|f| f["id"] == folder).unwrap();
        folder["devices"].as_array().unwrap().iter().map(|d| d["deviceID"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn a_batch_of_peers_is_one_edit_with_every_device_and_share() {
        let me = id(1);
        let mut c = config(&me);
        let peers = [peer(2, "b"), peer(3, "c")];
        let folders = ["botsync-shared", "botsync-inbox"];
        assert_eq!(apply(&mut c, &me, &peers, &folders, Some(("botsync-members", &members))), Ok(true));
        let devices = c["devices"].as_array().unwrap();
        assert_eq!(devices.len(), 3);
        let b = devices.iter().find(|d| d["deviceID"] == id(2).to_string()).unwrap();
        assert_eq!(b["name"], "b");
        assert_eq!(b["addresses"], json!(["tcp://10.0.0.2:22000"]));
        assert_eq!((b["introducer"].clone(), b["paused"].clone()), (json!(false), json!(false)));
        // Only the fields botsync decides: Syncthing fills the rest from its device defaults.
        assert!(b.get("compression").is_none());
        for folder in folders {
            assert_eq!(shared_with(&c, folder), vec![me.to_string(), id(2).to_string(), id(3).to_string()], "{folder}");
        }
        assert_eq!(shared_with(&c, "other"), vec![me.to_string()], "folders botsync does not manage are left alone");
        assert_eq!(shared_with(&c, "botsync-members"), vec![me.to_string(), id(2).to_string(), id(3).to_string()]);
        assert_eq!(c["gui"]["password"], "$2a$10$hash", "the rest of the configuration is sent back as it came");
    }

    #[test]
    fn a_converged_configuration_is_not_changed_again() {
        let me = id(1);
        let mut c = config(&me);
        let peers = [peer(2, "b")];
        let folders = ["botsync-shared", "botsync-inbox", "botsync-members"];
        assert_eq!(apply(&mut c, &me, &peers, &folders, Some(("botsync-members", &members))), Ok(true));
        let once = c.clone();
        assert_eq!(apply(&mut c, &me, &peers, &folders, Some(("botsync-members", &members))), Ok(false));
        assert_eq!(c, once);
    }

    #[test]
    fn a_known_device_is_updated_unpaused_and_never_an_introducer() {
        let me = id(1);
        let mut c = config(&me);
        c["devices"].as_array_mut().unwrap().push(json!({ "deviceID": id(2).to_string(), "name": "old", "addresses": ["dynamic"], "introducer": true, "paused": true, "compression": "always" }));
        assert_eq!(apply(&mut c, &me, &[peer(2, "b")], &["botsync-shared"], None), Ok(true));
        let b = c["devices"].as_array().unwrap().iter().find(|d| d["deviceID"] == id(2).to_string()).unwrap().clone();
        assert_eq!(b["name"], "b");
        assert_eq!((b["introducer"].clone(), b["paused"].clone()), (json!(false), json!(false)));
        assert_eq!(b["compression"], "always", "its other settings stay");
        assert_eq!(c["devices"].as_array().unwrap().len(), 2, "not added twice");
    }

    #[test]
    fn this_machine_is_never_added_as_its_own_peer() {
        let me = id(1);
        let mut c = config(&me);
        let mine = NewPeer { device_id: me, name: "me".into(), addresses: vec!["dynamic".into()] };
        assert_eq!(apply(&mut c, &me, &[mine], &["botsync-shared"], None), Ok(false));
    }

    #[test]
    fn peers_not_connected_are_held_paused_while_their_folders_restart_then_resumed() {
        let me = id(1);
        let mut c = config(&me);
        c["devices"].as_array_mut().unwrap().push(json!({ "deviceID": id(2).to_string(), "name": "b", "paused": false }));
        let peers = [peer(2, "b"), peer(3, "c"), peer(4, "d")];
        assert_eq!(apply(&mut c, &me, &peers, &["botsync-shared"], None), Ok(true));
        let d_connected: HashSet<String> = [id(4).to_string()].into();
        let held = hold_unconnected(&mut c, &me, &peers, &d_connected);
        assert_eq!(held, vec![id(2).to_string(), id(3).to_string()], "b (pairing again) and c (new); d is connected");
        let paused = |c: &Value, n: u8| c["devices"].as_array().unwrap().iter().find(|d| d["deviceID"] == id(n).to_string()).unwrap()["paused"].clone();
        assert_eq!((paused(&c, 2), paused(&c, 3), paused(&c, 4)), (json!(true), json!(true), json!(false)), "a connected device is never dropped");
        assert_eq!(shared_with(&c, "botsync-shared").len(), 4, "shared in the same commit as the pause");
        resume(&mut c, &held);
        assert_eq!((paused(&c, 2), paused(&c, 3), paused(&c, 4)), (json!(false), json!(false), json!(false)));
        let everyone: HashSet<String> = [id(2), id(3), id(4)].iter().map(ToString::to_string).collect();
        assert!(hold_unconnected(&mut c, &me, &peers, &everyone).is_empty(), "all connected: one commit");
        let mine = NewPeer { device_id: me, name: "me".into(), addresses: vec![] };
        assert!(hold_unconnected(&mut c, &me, &[mine], &HashSet::new()).is_empty(), "never this machine");
    }

    #[test]
    fn a_malformed_configuration_is_refused_not_overwritten() {
        let me = id(1);
        assert!(apply(&mut json!([]), &me, &[peer(2, "b")], &[], None).is_err());
        assert!(apply(&mut json!({ "devices": {} }), &me, &[peer(2, "b")], &[], None).is_err());
    }
}
