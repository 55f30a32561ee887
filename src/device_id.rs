//! Syncthing device IDs: the SHA-256 of a device's certificate, shown as base32 with a Luhn
//! check character per 13-character chunk, in dash-separated groups of 7.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    #[error("`{0}` is not a Syncthing device ID (expected 8 groups of 7 letters and digits)")]
    Malformed(String),
    #[error("`{0}` has a wrong check character: it was mistyped or truncated")]
    BadCheck(String),
}

impl DeviceId {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DeviceId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first group, as Syncthing uses it in conflict file names and short displays.
    pub fn short(&self) -> String {
        self.to_string()[..7].to_string()
    }
}

fn codepoint(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Syncthing's Luhn mod 32 over its base32 alphabet.
fn luhn_check(chunk: &[u8]) -> u8 {
    let mut factor = 1;
    let mut sum = 0;
    for &c in chunk {
        let addend = factor * codepoint(c).expect("chunk is base32");
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / 32 + addend % 32;
    }
    ALPHABET[((32 - sum % 32) % 32) as usize]
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = BASE32_NOPAD.encode(&self.0);
        let mut checked = Vec::with_capacity(56);
        for chunk in plain.as_bytes().chunks(13) {
            checked.extend_from_slice(chunk);
            checked.push(luhn_check(chunk));
        }
        let groups: Vec<&str> =
            checked.chunks(7).map(|g| std::str::from_utf8(g).expect("base32 is ASCII")).collect();
        f.write_str(&groups.join("-"))
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = DeviceIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let malformed = || DeviceIdError::Malformed(input.to_string());
        let compact: Vec<u8> = input
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' '))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        if compact.len() != 56 || compact.iter().any(|&c| codepoint(c).is_none()) {
            return Err(malformed());
        }
        let mut plain = Vec::with_capacity(52);
        for chunk in compact.chunks(14) {
            let (body, check) = chunk.split_at(13);
            if luhn_check(body) != check[0] {
                return Err(DeviceIdError::BadCheck(input.to_string()));
            }
            plain.extend_from_slice(body);
        }
        let bytes = BASE32_NOPAD.decode(&plain).map_err(|_| malformed())?;
        Ok(DeviceId(bytes.try_into().map_err(|_| malformed())?))
    }
}

impl serde::Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real pair: `syncthing serve --device-id` and the SHA-256 of the same cert.pem in DER.
    const REAL_ID: &str = "CCVOXXV-GAHX6WK-DZC7NLH-OEFBA4Y-TQYHIJA-TPDXMF4-NRHXRWQ-EK5F6A5";
    const REAL_HASH: &str = "10aaebdea601efeb0f22fb567710a107270c1d0904de3bb0ad89ef1b408ae97c";

    fn real_bytes() -> [u8; 32] {
        let bytes: Vec<u8> =
            (0..32).map(|i| u8::from_str_radix(&REAL_HASH[i * 2..i * 2 + 2], 16).unwrap()).collect();
        bytes.try_into().unwrap()
    }

    #[test]
    fn matches_syncthing_encoding() {
        assert_eq!(DeviceId::from_bytes(real_bytes()).to_string(), REAL_ID);
        assert_eq!(REAL_ID.parse::<DeviceId>().unwrap().as_bytes(), &real_bytes());
    }

    #[test]
    fn parsing_is_tolerant_of_case_and_dashes_but_checks_luhn() {
        let lower = REAL_ID.to_lowercase().replace('-', "");
        assert_eq!(lower.parse::<DeviceId>().unwrap().to_string(), REAL_ID);
        let typo = REAL_ID.replacen("CCVOXXV", "CCVOXXW", 1);
        assert!(matches!(typo.parse::<DeviceId>(), Err(DeviceIdError::BadCheck(_))));
        assert!(matches!("ABC".parse::<DeviceId>(), Err(DeviceIdError::Malformed(_))));
    }
}
