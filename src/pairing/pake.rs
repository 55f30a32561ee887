//! SPAKE2 over Ed25519 and the two one-shot AEAD keys derived from it. No I/O here, so every
//! step can be fed garbage in tests.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::{PairingCode, PairingError};

const HOST_IDENTITY: &[u8] = b"botsync-host";
const GUEST_IDENTITY: &[u8] = b"botsync-guest";
const KEY_SALT: &[u8] = b"botsync-pairing-v2";

/// What the host writes to `host-data` (unencrypted) when the guest's data does not decrypt.
pub const MISMATCH_MARKER: &[u8] = b"mismatch";

fn identities() -> (Identity, Identity) {
    (Identity::new(HOST_IDENTITY), Identity::new(GUEST_IDENTITY))
}

/// The host's half-finished SPAKE2 (side A).
pub struct HostPake(Spake2<Ed25519Group>);

/// The guest's half-finished SPAKE2 (side B).
pub struct GuestPake(Spake2<Ed25519Group>);

impl HostPake {
    /// Returns the state and the message for the `host-pake` slot.
    pub fn start(code: &PairingCode) -> (Self, Vec<u8>) {
        let (host, guest) = identities();
        let (state, message) =
            Spake2::<Ed25519Group>::start_a(&Password::new(code.to_string().as_bytes()), &host, &guest);
        (HostPake(state), message)
    }

    /// A malformed guest message is indistinguishable from tampering: both are a mismatch.
    pub fn finish(self, guest_message: &[u8]) -> Result<SessionKeys, PairingError> {
        let shared = self.0.finish(guest_message).map_err(|_| PairingError::CodeMismatch)?;
        Ok(SessionKeys::derive(&shared))
    }
}

impl GuestPake {
    pub fn start(code: &PairingCode) -> (Self, Vec<u8>) {
        let (host, guest) = identities();
        let (state, message) =
            Spake2::<Ed25519Group>::start_b(&Password::new(code.to_string().as_bytes()), &host, &guest);
        (GuestPake(state), message)
    }

    pub fn finish(self, host_message: &[u8]) -> Result<SessionKeys, PairingError> {
        let shared = self.0.finish(host_message).map_err(|_| PairingError::CodeMismatch)?;
        Ok(SessionKeys::derive(&shared))
    }
}

/// One key per direction; each encrypts exactly one message, which is why a fixed zero nonce is
/// safe.
pub struct SessionKeys {
    guest_to_host: [u8; 32],
    host_to_guest: [u8; 32],
}

impl SessionKeys {
    fn derive(shared: &[u8]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(KEY_SALT), shared);
        let mut guest_to_host = [0u8; 32];
        let mut host_to_guest = [0u8; 32];
        hkdf.expand(b"guest->host", &mut guest_to_host).expect("32 bytes is a valid HKDF length");
        hkdf.expand(b"host->guest", &mut host_to_guest).expect("32 bytes is a valid HKDF length");
        SessionKeys { guest_to_host, host_to_guest }
    }

    pub fn seal_for_host(&self, plaintext: &[u8]) -> Vec<u8> {
        seal(&self.guest_to_host, plaintext)
    }

    pub fn open_from_guest(&self, ciphertext: &[u8]) -> Result<Vec<u8>, PairingError> {
        open(&self.guest_to_host, ciphertext)
    }

    pub fn seal_for_guest(&self, plaintext: &[u8]) -> Vec<u8> {
        seal(&self.host_to_guest, plaintext)
    }

    pub fn open_from_host(&self, ciphertext: &[u8]) -> Result<Vec<u8>, PairingError> {
        open(&self.host_to_guest, ciphertext)
    }
}

fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&[0u8; 12]), plaintext)
        .expect("ChaCha20-Poly1305 encryption of a small message cannot fail")
}

fn open(key: &[u8; 32], ciphertext: &[u8]) -> Result<Vec<u8>, PairingError> {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(&[0u8; 12]), ciphertext)
        .map_err(|_| PairingError::CodeMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> PairingCode {
        text.parse().unwrap()
    }

    #[test]
    fn same_code_gives_same_keys_in_each_direction() {
        let c = code("abandon-zoo-ability-act-zebra");
        let (host, host_msg) = HostPake::start(&c);
        let (guest, guest_msg) = GuestPake::start(&c);
        let host_keys = host.finish(&guest_msg).unwrap();
        let guest_keys = guest.finish(&host_msg).unwrap();
        let sealed = guest_keys.seal_for_host(b"hello host");
        assert_eq!(host_keys.open_from_guest(&sealed).unwrap(), b"hello host");
        let reply = host_keys.seal_for_guest(b"hello guest");
        assert_eq!(guest_keys.open_from_host(&reply).unwrap(), b"hello guest");
        // Directions are separate keys: a message cannot be reflected back to its sender.
        assert_eq!(host_keys.open_from_guest(&reply), Err(PairingError::CodeMismatch));
    }

    #[test]
    fn different_codes_do_not_decrypt() {
        let (host, host_msg) = HostPake::start(&code("abandon-zoo-ability-act-zebra"));
        let (guest, guest_msg) = GuestPake::start(&code("abandon-zoo-ability-act-zero"));
        let host_keys = host.finish(&guest_msg).unwrap();
        let guest_keys = guest.finish(&host_msg).unwrap();
        let sealed = guest_keys.seal_for_host(b"secret");
        assert_eq!(host_keys.open_from_guest(&sealed), Err(PairingError::CodeMismatch));
    }

    #[test]
    fn malformed_messages_are_a_mismatch() {
        let c = code("abandon-zoo-ability-act-zebra");
        let (_, host_msg) = HostPake::start(&c);
        let (host, _) = HostPake::start(&c);
        // A host message where a guest message belongs has the wrong side byte.
        assert!(matches!(host.finish(&host_msg), Err(PairingError::CodeMismatch)));
        let (guest, _) = GuestPake::start(&c);
        assert!(matches!(guest.finish(b"short"), Err(PairingError::CodeMismatch)));
    }
}
