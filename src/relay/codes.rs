//! What the relay accepts as a code, a mailbox id or a slot name, and how it picks new ones.
//!
//! Words come from the BIP-39 English list (2048 words, 11 bits each). The relay is strict:
//! lowercase words joined by single '-' and nothing else, so two spellings of one code can
//! never address two records.

use std::fmt;

use bip39::Language;
use rand::Rng;

/// Words in an original-protocol pairing code (`POST /pair`): 55 bits.
pub const PAIR_CODE_WORDS: usize = 5;

/// The BIP-39 English word list, the only vocabulary of codes.
pub use crate::pairing::wordlist::words as word_list;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("expected {expected} words joined by '-', found {found}")]
    WordCount { expected: usize, found: usize },
    #[error("{0:?} is not a word of the code list")]
    UnknownWord(String),
    #[error("unknown slot {0:?}")]
    UnknownSlot(String),
}

/// Checks `text` is exactly `expected` known words joined by '-'.
fn check_words(text: &str, expected: usize) -> Result<(), CodeError> {
    let words: Vec<&str> = text.split('-').collect();
    if words.len() != expected {
        return Err(CodeError::WordCount { expected, found: words.len() });
    }
    for word in words {
        // find_word is a binary search over the sorted list, so it is exact and case-sensitive.
        if Language::English.find_word(word).is_none() {
            return Err(CodeError::UnknownWord(word.chars().take(32).collect()));
        }
    }
    Ok(())
}

fn random_words(count: usize, rng: &mut impl Rng) -> String {
    let list = word_list();
    let mut out = String::with_capacity(count * 9);
    for i in 0..count {
        if i > 0 {
            out.push('-');
        }
        out.push_str(list[rng.random_range(0..list.len())]);
    }
    out
}

/// A 5-word original-protocol code, as `POST /pair` hands out and `GET /pair/:code` takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PairCode(String);

impl PairCode {
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        check_words(text, PAIR_CODE_WORDS)?;
        Ok(PairCode(text.to_string()))
    }

    /// A fresh code from a CSPRNG (`rand::rng()` is ChaCha-based and OS-seeded).
    pub fn random(rng: &mut impl Rng) -> Self {
        PairCode(random_words(PAIR_CODE_WORDS, rng))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The v2 wire (mailbox ids, slots, limits) is the client's own definition, shared.
pub use crate::pairing::wire::{MailboxId, Slot, MAILBOX_WORDS};

/// A slot named in a request path.
pub fn parse_slot(text: &str) -> Result<Slot, CodeError> {
    Slot::parse(text).ok_or_else(|| CodeError::UnknownSlot(text.chars().take(32).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_codes_parse_back() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let code = PairCode::random(&mut rng);
            assert_eq!(PairCode::parse(code.as_str()).unwrap(), code);

        }
    }

    #[test]
    fn malformed_codes_are_rejected() {
        assert!(PairCode::parse("abandon-ability-able-about-above").is_ok());
        for bad in [
            "",
            "abandon-ability-able-about",
            "abandon-ability-able-about-above-absent",
            "Abandon-ability-able-about-above",
            "abandon-ability-able-about-notaword",
            "abandon--ability-able-about",
            "abandon ability able about above",
            "abandon-ability-able-about-above-",
        ] {
            assert!(PairCode::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(MailboxId::parse_strict("zoo-zone").is_some());
        for bad in ["zoo", "zoo-zone-zero", "zoo_zone", "ZOO-zone", "zoo-zonee"] {
            assert!(MailboxId::parse_strict(bad).is_none(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn slots_round_trip() {
        for slot in Slot::ALL {
            assert_eq!(parse_slot(slot.as_str()).unwrap(), slot);
        }
        assert_eq!(parse_slot("host"), Err(CodeError::UnknownSlot("host".into())));
        assert!(Slot::HostData.consumes_mailbox());
        assert!(!Slot::GuestData.consumes_mailbox());
    }
}
