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

/// A secret from which the host draws its SPAKE2 scalar, so that a host restarted mid-pairing
/// (the daemon killed and started again) publishes the very message it published before and can
/// finish the exchange a guest already began. It must never leave the machine: whoever knows it
/// and the code can finish the host's side. Debug shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct HostSeed([u8; 32]);

impl HostSeed {
    /// The seed for `code` from a machine-local secret (`secret` must be high-entropy and private,
    /// such as the root's Syncthing API key). Distinct codes get independent seeds.
    pub fn derive(secret: &[u8], code: &PairingCode) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"botsync-host-pake-seed-v1"), secret);
        let mut seed = [0u8; 32];
        hkdf.expand(code.to_string().as_bytes(), &mut seed).expect("32 bytes is a valid HKDF length");
        HostSeed(seed)
    }
}

impl std::fmt::Debug for HostSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostSeed(<hidden>)")
    }
}

/// HKDF-SHA256 output as a deterministic CSPRNG keyed by a `HostSeed`.
struct SeededRng {
    hkdf: Hkdf<Sha256>,
    block: u64,
}

impl rand_core_06::RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // HKDF-Expand yields at most 255 hash lengths per info; each block gets its own info.
        for chunk in dest.chunks_mut(255 * 32) {
            let info = [b"botsync-host-pake-rng".as_slice(), &self.block.to_be_bytes()].concat();
            self.hkdf.expand(&info, chunk).expect("chunk within HKDF's output limit");
            self.block += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core_06::CryptoRng for SeededRng {}

impl HostPake {
    /// Returns the state and the message for the `host-pake` slot.
    pub fn start(code: &PairingCode) -> (Self, Vec<u8>) {
        let (host, guest) = identities();
        let (state, message) =
            Spake2::<Ed25519Group>::start_a(&Password::new(code.to_string().as_bytes()), &host, &guest);
        (HostPake(state), message)
    }

    /// `start` with the scalar drawn from `seed`: the same seed and code give the same message.
    pub fn start_seeded(code: &PairingCode, seed: &HostSeed) -> (Self, Vec<u8>) {
        let (host, guest) = identities();
        let rng = SeededRng { hkdf: Hkdf::<Sha256>::from_prk(&seed.0).expect("32-byte PRK"), block: 0 };
        let (state, message) =
            Spake2::<Ed25519Group>::start_a_with_rng(&Password::new(code.to_string().as_bytes()), &host, &guest, rng);
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
    fn seeded_hosts_repeat_their_message_and_still_agree_with_the_guest() {
        let c = code("abandon-zoo-ability-act-zebra");
        let seed = HostSeed::derive(b"a machine-local secret", &c);
        let (_, first) = HostPake::start_seeded(&c, &seed);
        let (host, again) = HostPake::start_seeded(&c, &seed);
        assert_eq!(first, again, "a restarted host publishes the same message");
        let other = HostSeed::derive(b"a machine-local secret", &code("abandon-zoo-ability-act-zero"));
        assert_ne!(HostPake::start_seeded(&c, &other).1, first, "another code, another scalar");
        assert_ne!(HostPake::start_seeded(&c, &HostSeed::derive(b"another machine", &c)).1, first);
        let (guest, guest_msg) = GuestPake::start(&c);
        let sealed = guest.finish(&again).unwrap().seal_for_host(b"hi");
        assert_eq!(host.finish(&guest_msg).unwrap().open_from_guest(&sealed).unwrap(), b"hi");
        assert_eq!(format!("{seed:?}"), "HostSeed(<hidden>)");
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
