//! The events agents see (`botsync watch`, `events()` in Node, OpenClaw messages): what arrived,
//! from whom, and what needs attention. Serialized with a `type` tag in camelCase.

use serde::{Deserialize, Serialize};

/// What happened to a file that arrived from a peer.
#[cfg_attr(feature = "node", napi_derive::napi(string_enum = "lowercase"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    Added,
    Modified,
    Deleted,
}

impl FileAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::Added => "added",
            FileAction::Modified => "modified",
            FileAction::Deleted => "deleted",
        }
    }
}

/// A paired machine.
#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    /// The full Syncthing device ID; only the 7-character short ID when the peer is not known yet.
    pub device_id: String,
    /// The name this machine gave the peer, else the name the peer announced, else its short ID.
    pub name: String,
}

impl Peer {
    pub fn short_id(&self) -> &str {
        self.device_id.get(..7).unwrap_or(&self.device_id)
    }

    /// `laptop (ABCDEF1)`, or just the short ID when the name is the short ID.
    /// The name is the peer's choice: control and invisible characters are escaped (see
    /// `untrusted`), so that printing it cannot drive the terminal.
    pub fn label(&self) -> String {
        let id = super::untrusted::short_id(self.short_id());
        if self.name.is_empty() || self.name == self.short_id() {
            id
        } else {
            format!("{} ({id})", super::untrusted::escaped(&self.name, super::untrusted::MAX_NAME_CHARS))
        }
    }
}

/// An event in a botsync root.
#[cfg_attr(feature = "node", napi_derive::napi(discriminant = "type", discriminant_case = "camelCase"))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum BotsyncEvent {
    /// A file arrived from (or was deleted by) a peer. Never reported for this machine's own writes.
    #[serde(rename_all = "camelCase")]
    File {
        /// `shared`, `deliverables` or `inbox`.
        folder: String,
        /// Relative to the folder, with `/` separators.
        path: String,
        /// Absolute path on this machine.
        local_path: String,
        action: FileAction,
        /// Bytes on disk after the change; absent for deletions.
        size: Option<i64>,
        /// Who made the change, when Syncthing said so.
        peer: Option<Peer>,
        /// When Syncthing finished the change (RFC 3339).
        at: String,
    },
    #[serde(rename_all = "camelCase")]
    DeviceConnected {
        peer: Peer,
        /// The peer's address as seen from here.
        address: String,
        at: String,
    },
    #[serde(rename_all = "camelCase")]
    DeviceDisconnected {
        peer: Peer,
        reason: Option<String>,
        at: String,
    },
    /// The same file was changed on two machines: both versions are kept, the older one as `copy`.
    #[serde(rename_all = "camelCase")]
    Conflict {
        folder: String,
        /// The file both machines edited, relative to the folder.
        path: String,
        /// The conflict copy, relative to the folder.
        copy: String,
        /// Absolute path of the conflict copy on this machine.
        local_copy: String,
        at: String,
    },
    /// A new machine was paired with this root (reported by the pairing layer, not by Syncthing).
    #[serde(rename_all = "camelCase")]
    Paired { peer: Peer, at: String },
    /// A change made on this machine reached a peer: the peer announced that it holds this
    /// version of the file (a receipt, not a guess). Once per peer and version.
    #[serde(rename_all = "camelCase")]
    Delivered {
        folder: String,
        /// Relative to the folder, with `/` separators.
        path: String,
        /// Absolute path on this machine.
        local_path: String,
        peer: Peer,
        /// Syncthing's version vector of the delivered version (`SHORTID:counter,…`).
        version: String,
        /// The delivered change is a deletion.
        deleted: bool,
        /// When this machine learned of the delivery (RFC 3339).
        at: String,
    },
}

impl BotsyncEvent {
    /// One line for people (`botsync watch` without `--json`).
    pub fn human(&self) -> String {
        match self {
            BotsyncEvent::File { folder, path, action, size, peer, .. } => {
                let from = peer.as_ref().map(|p| format!(" from {}", p.label())).unwrap_or_default();
                let size = size.map(|s| format!(" ({})", human_size(s))).unwrap_or_default();
                let path = super::untrusted::escaped(path, super::untrusted::MAX_PATH_CHARS);
                format!("{:<8} {folder}/{path}{size}{from}", action.as_str())
            }
            BotsyncEvent::DeviceConnected { peer, address, .. } => format!("online   {} at {address}", peer.label()),
            BotsyncEvent::DeviceDisconnected { peer, .. } => format!("offline  {}", peer.label()),
            BotsyncEvent::Conflict { folder, path, copy, .. } => {
                let (path, copy) = (super::untrusted::escaped(path, super::untrusted::MAX_PATH_CHARS), super::untrusted::escaped(copy, super::untrusted::MAX_PATH_CHARS));
                format!("conflict {folder}/{path}: both versions kept, the other as {folder}/{copy}")
            }
            BotsyncEvent::Paired { peer, .. } => format!("paired   {}", peer.label()),
            BotsyncEvent::Delivered { folder, path, peer, deleted, .. } => {
                let what = if *deleted { "deletion of " } else { "" };
                format!("delivered {what}{folder}/{path} to {}", peer.label())
            }
        }
    }
}

/// `12 B`, `3.4 KB`, `120.0 MB`: decimal units, as file managers show them.
pub fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_camel_case_type_tag() {
        let event = BotsyncEvent::DeviceConnected {
            peer: Peer { device_id: "ABCDEFG-XXX".into(), name: "laptop".into() },
            address: "127.0.0.1:22000".into(),
            at: "t".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "deviceConnected");
        assert_eq!(json["peer"]["deviceId"], "ABCDEFG-XXX");
        let back: BotsyncEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn watch_lines_cannot_drive_the_terminal() {
        let peer = Peer { device_id: "ABCDEFG-XXX".into(), name: "lap\u{1b}[2Jtop\nfake".into() };
        let event = BotsyncEvent::File {
            folder: "shared".into(),
            path: "a\u{1b}]0;owned\u{7}.txt".into(),
            local_path: "/r/shared/a".into(),
            action: FileAction::Added,
            size: None,
            peer: Some(peer),
            at: "t".into(),
        };
        let line = event.human();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(line, "added    shared/a\\u{1b}]0;owned\\u{7}.txt from lap\\u{1b}[2Jtop\\nfake (ABCDEFG)");
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(200_000), "200.0 KB");
        assert_eq!(human_size(3_400_000), "3.4 MB");
    }
}
