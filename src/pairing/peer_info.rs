//! What the two machines tell each other once the PAKE has authenticated the channel.

use serde::{Deserialize, Serialize};

use crate::device_id::DeviceId;

/// One side of a pairing: enough for the other side's Syncthing to add and reach this device.
/// On the host side `members` lists the other devices of the mesh, so a new machine joins all of
/// them at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    pub device_id: DeviceId,
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub members: Vec<MemberInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberInfo {
    pub device_id: DeviceId,
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_camel_case_as_the_protocol_says() {
        let id = DeviceId::from_bytes([7; 32]);
        let info = PeerInfo {
            device_id: id,
            name: "laptop".into(),
            addresses: vec!["tcp://10.0.0.2:22001".into()],
            members: vec![MemberInfo { device_id: id, name: "m".into(), addresses: vec![] }],
        };
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["deviceId"], id.to_string());
        assert_eq!(json["members"][0]["deviceId"], id.to_string());
        assert_eq!(serde_json::from_value::<PeerInfo>(json).unwrap(), info);
        let minimal: PeerInfo =
            serde_json::from_str(&format!(r#"{{"deviceId":"{id}","name":"x"}}"#)).unwrap();
        assert!(minimal.addresses.is_empty() && minimal.members.is_empty());
    }
}
