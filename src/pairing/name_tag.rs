//! Proof of holding a code, carried in a Syncthing device name. Where no PAKE runs (original-
//! protocol relays, offline codes) the host only learns a joiner's device ID from Syncthing's
//! pending-device list, which anyone who can reach the host can land on. The joiner therefore puts
//! a tag in its device name, a PRF of its device ID keyed by the shared secret, and the host
//! accepts only a pending device whose name carries the right tag.

use data_encoding::BASE32_NOPAD;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::device_id::DeviceId;

/// 10 base32 characters: 50 bits, so guessing a tag for a given device ID is hopeless.
pub const TAG_LEN: usize = 10;

/// HKDF-SHA256 as a PRF: the secret is the key material, `domain` separates uses, the device ID
/// is the input.
pub fn tag(secret: &[u8], domain: &[u8], device: &DeviceId) -> String {
    let mut out = [0u8; 8];
    Hkdf::<Sha256>::new(Some(domain), secret)
        .expand(device.as_bytes(), &mut out)
        .expect("8 bytes is a valid HKDF length");
    BASE32_NOPAD.encode(&out).to_ascii_lowercase()[..TAG_LEN].to_string()
}

/// The device name a joiner announces: its usual name with the tag appended.
pub fn tagged_name(base_name: &str, tag: &str) -> String {
    format!("{base_name} [{tag}]")
}

/// Whether `name` contains `expected` as a whole word (any non-alphanumeric character separates
/// words, so the tag survives however the name around it was written).
pub fn name_carries(name: &str, expected: &str) -> bool {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| constant_time_eq(word.to_ascii_lowercase().as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_secret_domain_and_device() {
        let a = DeviceId::from_bytes([1; 32]);
        let b = DeviceId::from_bytes([2; 32]);
        let t = tag(b"secret", b"d", &a);
        assert_eq!(t.len(), TAG_LEN);
        assert_eq!(t, tag(b"secret", b"d", &a));
        assert_ne!(t, tag(b"secret", b"d", &b));
        assert_ne!(t, tag(b"other", b"d", &a));
        assert_ne!(t, tag(b"secret", b"e", &a));
        assert!(name_carries(&tagged_name("my laptop", &t), &t));
        assert!(name_carries(&format!("laptop-{}", t.to_uppercase()), &t));
        assert!(!name_carries(&format!("laptop {}x", t), &t));
        assert!(!name_carries("laptop", &t));
    }
}
