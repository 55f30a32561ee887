//! The REST API key: random, kept in config.json and config.xml (both 0600), handed to Syncthing
//! through its environment, never printed.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn generate() -> ApiKey {
        ApiKey(rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect())
    }

    pub fn from_string(key: String) -> ApiKey {
        ApiKey(key)
    }

    /// The secret itself, for the X-API-Key header and STGUIAPIKEY only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_never_debug_printed() {
        let (a, b) = (ApiKey::generate(), ApiKey::generate());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 32);
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
