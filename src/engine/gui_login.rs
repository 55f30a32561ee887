//! Syncthing's GUI/REST login. Syncthing listens on 127.0.0.1, which every local user can reach,
//! and without a login it hands a CSRF cookie to anyone who asks for `/`, after which `/rest/*`
//! accepts that user's requests: another account on the machine could add a device, share a
//! folder and read every file. So every root's config.xml gets a random user and a bcrypt
//! password before Syncthing first serves it. Nobody needs the password: botsync authenticates
//! with the API key header, which Syncthing accepts in place of a login; the plaintext is
//! dropped once hashed (a GUI user can set a password of their own through the GUI).

use rand::Rng;

/// bcrypt's work factor: the minimum. A work factor slows down guessing a password a person
/// chose; this one is 32 random characters (~190 bits), which no work factor makes more or less
/// guessable, while every step doubles what `init` waits for (cost 10 took 293 ms in a debug
/// build here, cost 4 a few) and what each wrong login attempt costs Syncthing's CPU.
const BCRYPT_COST: u32 = 4;

/// A fresh random login, with the password both in the clear (for a REST update, which Syncthing
/// hashes itself) and as bcrypt (for config.xml).
pub struct GuiLogin {
    pub user: String,
    password: String,
}

impl GuiLogin {
    pub fn generate() -> GuiLogin {
        let random = |n: usize| -> String { rand::rng().sample_iter(rand::distr::Alphanumeric).take(n).map(char::from).collect() };
        GuiLogin { user: format!("botsync-{}", random(12).to_ascii_lowercase()), password: random(32) }
    }

    /// The password in the clear, for `PATCH /rest/config/gui` only (Syncthing hashes it).
    pub fn expose_password(&self) -> &str {
        &self.password
    }

    /// The `$2a$` bcrypt hash Syncthing checks logins against (Go's bcrypt reads `$2a$`/`$2b$`).
    pub fn bcrypt_hash(&self) -> String {
        bcrypt::hash_with_result(&self.password, BCRYPT_COST)
            .expect("bcrypt hashes any password shorter than 72 bytes")
            .format_for_version(bcrypt::Version::TwoA)
    }
}

impl std::fmt::Debug for GuiLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuiLogin").field("user", &self.user).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_random_hashed_and_never_debug_printed() {
        let (a, b) = (GuiLogin::generate(), GuiLogin::generate());
        assert_ne!(a.user, b.user);
        assert_ne!(a.expose_password(), b.expose_password());
        let started = std::time::Instant::now();
        let hash = a.bcrypt_hash();
        eprintln!("bcrypt cost {BCRYPT_COST}: {:?}", started.elapsed());
        assert!(hash.starts_with("$2a$04$"), "{hash}");
        assert!(bcrypt::verify(a.expose_password(), &hash).unwrap());
        assert!(!bcrypt::verify(b.expose_password(), &hash).unwrap());
        assert!(!format!("{a:?}").contains(a.expose_password()));
    }
}
