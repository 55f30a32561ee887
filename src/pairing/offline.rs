//! Offline codes: pairing with no relay at all. The host prints its device ID, its addresses and a
//! fresh secret; the joiner adds the host directly and proves it holds the code with a device-name
//! tag keyed by the secret.
//!
//! Binary layout (version 1), then lowercase unpadded base32 after the prefix `bso1` (the `1` is
//! not in the base32 alphabet, so the prefix never blends into the data):
//! `[version=1][device id: 32][secret: 16][n: 1] n × ([4|6][ip: 4|16][port: 2, BE]) [checksum: 4]`
//! where the checksum is the first 4 bytes of SHA-256 over everything before it. One IPv4 address
//! gives 102 characters, against the original's 291.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{name_tag, PairingError};
use crate::device_id::DeviceId;

pub const PREFIX: &str = "bso1";
const VERSION: u8 = 1;
const CHECKSUM_LEN: usize = 4;
/// More would only make the code long; Syncthing also finds peers through local discovery.
pub const MAX_ADDRESSES: usize = 8;
const TAG_DOMAIN: &[u8] = b"botsync-offline-pair-v1";
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

#[derive(Clone, PartialEq, Eq)]
pub struct OfflineCode {
    pub device_id: DeviceId,
    /// IP and port only: IPv6 scope ids and flow labels mean nothing on the other machine.
    pub addresses: Vec<SocketAddr>,
    pub secret: [u8; 16],
}

impl fmt::Debug for OfflineCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineCode")
            .field("device_id", &self.device_id)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

/// Whether text is meant as an offline code (so errors can speak about the right kind of code).
pub fn looks_offline(input: &str) -> bool {
    input.trim_start().get(..PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

impl OfflineCode {
    /// A code for this host with a fresh 128-bit secret; keeps at most `MAX_ADDRESSES` addresses.
    pub fn new(device_id: DeviceId, addresses: impl IntoIterator<Item = SocketAddr>) -> Self {
        let mut secret = [0u8; 16];
        rand::rng().fill_bytes(&mut secret);
        let addresses =
            addresses.into_iter().take(MAX_ADDRESSES).map(|a| SocketAddr::new(a.ip(), a.port())).collect();
        OfflineCode { device_id, addresses, secret }
    }

    /// Addresses in Syncthing's form, `tcp://ip:port`.
    pub fn syncthing_addresses(&self) -> Vec<String> {
        self.addresses.iter().map(|a| format!("tcp://{a}")).collect()
    }

    /// The tag the joiner puts in its Syncthing device name (see `name_tag::tagged_name`).
    pub fn device_name_tag(&self, joiner: &DeviceId) -> String {
        name_tag::tag(&self.secret, TAG_DOMAIN, joiner)
    }

    /// Host side: accept a pending device only if its announced name carries its tag.
    pub fn verify_device_name(&self, device: &DeviceId, name: &str) -> bool {
        name_tag::name_carries(name, &self.device_name_tag(device))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        out.extend_from_slice(self.device_id.as_bytes());
        out.extend_from_slice(&self.secret);
        let addresses = &self.addresses[..self.addresses.len().min(MAX_ADDRESSES)];
        out.push(addresses.len() as u8);
        for address in addresses {
            match address.ip() {
                IpAddr::V4(ip) => {
                    out.push(4);
                    out.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    out.push(6);
                    out.extend_from_slice(&ip.octets());
                }
            }
            out.extend_from_slice(&address.port().to_be_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PairingError> {
        let mut reader = Reader(bytes);
        let version = reader.take(1)?[0];
        if version != VERSION {
            // Tell "newer botsync" apart from noise by the checksum, whose place never moves.
            return Err(match bytes.split_last_chunk::<CHECKSUM_LEN>() {
                Some((body, sum)) if checksum(body) == *sum => PairingError::OfflineCodeInvalid(format!(
                    "this offline code was made by a newer botsync (format {version}); update botsync to use it"
                )),
                _ => PairingError::OfflineCodeCorrupted,
            });
        }
        let device_id = DeviceId::from_bytes(reader.take(32)?.try_into().expect("32 bytes"));
        let secret: [u8; 16] = reader.take(16)?.try_into().expect("16 bytes");
        let count = reader.take(1)?[0] as usize;
        if count > MAX_ADDRESSES {
            return Err(PairingError::OfflineCodeCorrupted);
        }
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let ip = match reader.take(1)?[0] {
                4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(reader.take(4)?).expect("4 bytes"))),
                6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(reader.take(16)?).expect("16 bytes"))),
                _ => return Err(PairingError::OfflineCodeCorrupted),
            };
            let port = u16::from_be_bytes(reader.take(2)?.try_into().expect("2 bytes"));
            addresses.push(SocketAddr::new(ip, port));
        }
        let body_len = bytes.len() - reader.0.len();
        let sum = reader.take(CHECKSUM_LEN)?;
        if !reader.0.is_empty() || checksum(&bytes[..body_len]) != sum {
            return Err(PairingError::OfflineCodeCorrupted);
        }
        Ok(OfflineCode { device_id, addresses, secret })
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    Sha256::digest(body)[..CHECKSUM_LEN].try_into().expect("digest is long enough")
}

/// Running out of bytes before the structure ends is what a cut-off copy looks like.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PairingError> {
        if self.0.len() < n {
            return Err(PairingError::OfflineCodeTruncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
}

impl fmt::Display for OfflineCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", BASE32_NOPAD.encode(&self.to_bytes()).to_ascii_lowercase())
    }
}

impl FromStr for OfflineCode {
    type Err = PairingError;

    /// Tolerates case, surrounding text whitespace and line breaks (codes get wrapped in
    /// terminals and chat windows); the prefix may be omitted.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let compact: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        let data = compact.strip_prefix(PREFIX).unwrap_or(&compact);
        if data.is_empty() {
            return Err(PairingError::OfflineCodeTruncated);
        }
        if let Some(bad) = data.chars().find(|c| !ALPHABET.contains(&(*c as u8)) || !c.is_ascii()) {
            return Err(if compact.starts_with(PREFIX) {
                PairingError::OfflineCodeCorrupted
            } else {
                PairingError::OfflineCodeInvalid(format!(
                    "this is not an offline code (those start with `{PREFIX}`; {bad:?} is not part of one)"
                ))
            });
        }
        OfflineCode::from_bytes(&decode_base32_lenient(data))
    }
}

/// Base32 without length or trailing-bit checks: a truncated code then decodes to a short byte
/// string, which the structure reader reports as truncated instead of as a base32 error.
fn decode_base32_lenient(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c).expect("validated alphabet") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OfflineCode {
        OfflineCode::new(
            DeviceId::from_bytes([0xab; 32]),
            ["192.168.1.20:22000".parse().unwrap(), "[fe80::1]:22001".parse().unwrap()],
        )
    }

    #[test]
    fn round_trips_and_is_short() {
        let code = sample();
        let text = code.to_string();
        assert!(text.starts_with(PREFIX));
        assert_eq!(text.parse::<OfflineCode>().unwrap(), code);
        let one = OfflineCode::new(DeviceId::from_bytes([1; 32]), ["10.0.0.1:22000".parse().unwrap()]);
        assert_eq!(one.to_string().len(), 102);
        assert!(text.len() < 291 / 2, "{} chars", text.len());
        // Wrapped, shouted, pasted with spaces.
        let mangled = format!("  {}\n{}  ", &text[..40].to_uppercase(), &text[40..]);
        assert_eq!(mangled.parse::<OfflineCode>().unwrap(), code);
        assert_eq!(code.syncthing_addresses(), ["tcp://192.168.1.20:22000", "tcp://[fe80::1]:22001"]);
    }

    #[test]
    fn truncation_and_corruption_are_told_apart() {
        let text = sample().to_string();
        for cut in [PREFIX.len(), PREFIX.len() + 1, 20, 60, text.len() - 1] {
            assert_eq!(text[..cut].parse::<OfflineCode>(), Err(PairingError::OfflineCodeTruncated), "cut at {cut}");
        }
        let mut chars: Vec<char> = text.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let corrupted: String = chars.into_iter().collect();
        assert_eq!(corrupted.parse::<OfflineCode>(), Err(PairingError::OfflineCodeCorrupted));
        assert_eq!(format!("{text}aaaa").parse::<OfflineCode>(), Err(PairingError::OfflineCodeCorrupted));
        assert!(matches!("abandon-zoo".parse::<OfflineCode>(), Err(PairingError::OfflineCodeInvalid(_))));
    }

    #[test]
    fn newer_versions_are_named_as_such() {
        let mut bytes = sample().to_bytes();
        bytes[0] = 2;
        let n = bytes.len() - CHECKSUM_LEN;
        let sum = checksum(&bytes[..n]);
        bytes[n..].copy_from_slice(&sum);
        let e = OfflineCode::from_bytes(&bytes).unwrap_err().to_string();
        assert!(e.contains("newer botsync"), "{e}");
    }

    #[test]
    fn tags_prove_the_secret() {
        let code = sample();
        let joiner = DeviceId::from_bytes([3; 32]);
        let name = name_tag::tagged_name("agent box", &code.device_name_tag(&joiner));
        assert!(code.verify_device_name(&joiner, &name));
        assert!(!code.verify_device_name(&DeviceId::from_bytes([4; 32]), &name));
        let other = OfflineCode { secret: [0; 16], ..code.clone() };
        assert!(!other.verify_device_name(&joiner, &name));
    }
}
