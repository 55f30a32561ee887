//! Network profiles: how far a root's Syncthing reaches out to find its peers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Chosen at `init` (`--network`) and written into config.xml before Syncthing's first start, so
/// a `direct` or `lan` root never contacts a discovery server, relay or NAT gateway at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkProfile {
    /// Global discovery, relays and NAT traversal: peers find each other anywhere.
    #[default]
    Internet,
    /// Local (broadcast/multicast) discovery only: peers on the same network.
    Lan,
    /// No discovery, relays or NAT; TCP only. Peers are reached at the addresses exchanged while pairing.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network profile `{0}`: use internet, lan or direct")]
pub struct UnknownProfile(pub String);

impl NetworkProfile {
    pub const ALL: [NetworkProfile; 3] = [NetworkProfile::Internet, NetworkProfile::Lan, NetworkProfile::Direct];

    pub fn as_str(self) -> &'static str {
        match self {
            NetworkProfile::Internet => "internet",
            NetworkProfile::Lan => "lan",
            NetworkProfile::Direct => "direct",
        }
    }

    /// The Syncthing options this profile decides, for a sync listener on `listen_port`.
    pub fn options(self, listen_port: u16) -> ProfileOptions {
        let tcp = format!("tcp://0.0.0.0:{listen_port}");
        let quic = format!("quic://0.0.0.0:{listen_port}");
        match self {
            NetworkProfile::Internet => ProfileOptions {
                global_announce: true,
                local_announce: true,
                relays: true,
                nat: true,
                listen_addresses: vec![tcp, quic, "dynamic+https://relays.syncthing.net/endpoint".into()],
            },
            NetworkProfile::Lan => ProfileOptions {
                global_announce: false,
                local_announce: true,
                relays: false,
                nat: false,
                listen_addresses: vec![tcp, quic],
            },
            NetworkProfile::Direct => ProfileOptions {
                global_announce: false,
                local_announce: false,
                relays: false,
                nat: false,
                listen_addresses: vec![tcp],
            },
        }
    }

    /// Whether the sync port must also be free for UDP (QUIC listens there too).
    pub fn uses_udp(self) -> bool {
        !matches!(self, NetworkProfile::Direct)
    }
}

/// The option values a profile sets; rendered into config.xml before the first start and into a
/// REST `PATCH /rest/config/options` body when a running root changes profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOptions {
    pub global_announce: bool,
    pub local_announce: bool,
    pub relays: bool,
    pub nat: bool,
    pub listen_addresses: Vec<String>,
}

impl ProfileOptions {
    /// `(option name, value)` for the boolean options, named as in config.xml and REST alike.
    pub fn flags(&self) -> [(&'static str, bool); 4] {
        [
            ("globalAnnounceEnabled", self.global_announce),
            ("localAnnounceEnabled", self.local_announce),
            ("relaysEnabled", self.relays),
            ("natEnabled", self.nat),
        ]
    }

    pub fn to_rest_patch(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        for (name, value) in self.flags() {
            body.insert(name.into(), value.into());
        }
        body.insert("listenAddresses".into(), self.listen_addresses.clone().into());
        serde_json::Value::Object(body)
    }
}

impl fmt::Display for NetworkProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkProfile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|p| p.as_str() == wanted).ok_or_else(|| UnknownProfile(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_profiles_and_rejects_others() {
        assert_eq!("direct".parse(), Ok(NetworkProfile::Direct));
        assert_eq!("LAN".parse(), Ok(NetworkProfile::Lan));
        assert_eq!("internet".parse(), Ok(NetworkProfile::Internet));
        assert!("wan".parse::<NetworkProfile>().is_err());
    }

    #[test]
    fn direct_listens_on_tcp_only_and_reaches_nothing() {
        let options = NetworkProfile::Direct.options(22123);
        assert_eq!(options.listen_addresses, vec!["tcp://0.0.0.0:22123".to_string()]);
        assert!(options.flags().iter().all(|(_, on)| !on));
        let patch = options.to_rest_patch();
        assert_eq!(patch["relaysEnabled"], false);
    }
}
