//! Pairing codes: five BIP-39 words, `w1-w2-w3-w4-w5`. The first two name the relay mailbox (the
//! relay picks them and sees only them); the last three are secret and are the PAKE's strength.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use super::wire::{MailboxId, MAILBOX_WORDS};
use super::wordlist::{self, UnknownWord, WORD_COUNT};
use super::PairingError;

pub const CODE_WORDS: usize = 5;
pub const SECRET_WORDS: usize = CODE_WORDS - MAILBOX_WORDS;

/// Entropy of a whole code; the relay knows 22 of these bits, an attacker without it none.
pub const CODE_BITS: u32 = (CODE_WORDS as u32) * 11;

/// A whole pairing code. The secret part is kept out of `Debug` so it does not end up in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PairingCode([u16; CODE_WORDS]);

impl std::str::FromStr for MailboxId {
    type Err = PairingError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        MailboxId::parse_strict(text)
            .ok_or_else(|| PairingError::CodeInvalid(format!("\"{text}\" is not a mailbox id (two code words)")))
    }
}

impl PairingCode {
    /// A fresh code in `mailbox`, its secret words from the thread CSPRNG (ChaCha seeded by the OS).
    pub fn generate(mailbox: &MailboxId) -> Self {
        let mut rng = rand::rng();
        let mut indices = [0u16; CODE_WORDS];
        indices[..MAILBOX_WORDS].copy_from_slice(&mailbox.indices());
        for slot in &mut indices[MAILBOX_WORDS..] {
            *slot = rng.random_range(0..WORD_COUNT as u16);
        }
        PairingCode(indices)
    }

    pub fn from_indices(indices: [u16; CODE_WORDS]) -> Self {
        PairingCode(indices.map(|i| i % WORD_COUNT as u16))
    }

    pub fn mailbox(&self) -> MailboxId {
        MailboxId::from_indices([self.0[0], self.0[1]])
    }

    pub fn words(&self) -> [&'static str; CODE_WORDS] {
        self.0.map(wordlist::word)
    }

    /// Tolerant parse for humans: any case, words separated by any of `-_.,/:` or whitespace,
    /// unambiguous prefixes of four letters or more. Errors name the offending word and, for a
    /// typo, the word that was probably meant.
    pub fn parse(input: &str) -> Result<Self, PairingError> {
        let invalid = PairingError::CodeInvalid;
        if let Some(bad) = input.chars().find(|c| !c.is_ascii_alphabetic() && !is_separator(*c)) {
            return Err(invalid(format!(
                "a pairing code is {CODE_WORDS} words; {bad:?} is not a letter or separator"
            )));
        }
        let lowered = input.to_ascii_lowercase();
        let tokens: Vec<&str> = lowered.split(is_separator).filter(|t| !t.is_empty()).collect();
        let mut indices = Vec::with_capacity(CODE_WORDS);
        let mut unknown: Vec<UnknownWord> = Vec::new();
        for token in &tokens {
            match wordlist::resolve(token) {
                Ok(index) => indices.push(index),
                Err(e) => unknown.push(e),
            }
        }
        if tokens.len() != CODE_WORDS {
            return Err(invalid(format!(
                "a pairing code has {CODE_WORDS} words (like \"abandon-ability-able-about-above\"); got {}",
                tokens.len()
            )));
        }
        if let Some(first) = unknown.first() {
            let more = match unknown.len() {
                1 => String::new(),
                n => format!(" (and {} more unknown word{})", n - 1, if n > 2 { "s" } else { "" }),
            };
            return Err(invalid(format!("{first}{more}")));
        }
        Ok(PairingCode(indices.try_into().expect("checked count")))
    }
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '_' | '.' | ',' | '/' | ':' | ';')
}

impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words().join("-"))
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PairingCode({}-…)", self.mailbox())
    }
}

impl FromStr for PairingCode {
    type Err = PairingError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        PairingCode::parse(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip_and_tolerance() {
        let code = PairingCode::generate(&MailboxId::random());
        assert_eq!(code.to_string().parse::<PairingCode>().unwrap(), code);
        let canonical = "abandon-zoo-ability-act-zebra";
        let code: PairingCode = canonical.parse().unwrap();
        assert_eq!(code.to_string(), canonical);
        for variant in [
            "ABANDON ZOO Ability act zebra",
            "  abandon_zoo.ability,act\tzebra\n",
            "aban-zoo-abil-act-zebr",
            "abandon--zoo - ability . act,,zebra",
        ] {
            assert_eq!(PairingCode::parse(variant).unwrap(), code, "{variant}");
        }
        assert_eq!(code.mailbox().to_string(), "abandon-zoo");
        assert!(!format!("{code:?}").contains("zebra"), "Debug leaks the secret words");
    }

    #[test]
    fn errors_explain_what_is_wrong() {
        let e = PairingCode::parse("abandn-zoo-ability-act-zebra").unwrap_err().to_string();
        assert_eq!(e, "\"abandn\" is not a code word; did you mean \"abandon\"?");
        let e = PairingCode::parse("abandon-zoo-ability-act").unwrap_err().to_string();
        assert!(e.contains("has 5 words") && e.ends_with("got 4"), "{e}");
        let e = PairingCode::parse("abandon-zoo-ability-act-zebra-zoo").unwrap_err().to_string();
        assert!(e.ends_with("got 6"), "{e}");
        let e = PairingCode::parse("abandon-zoo-abil1ty-act-zebra").unwrap_err().to_string();
        assert!(e.contains("'1'"), "{e}");
        let e = PairingCode::parse("abandn-zoo-abilty-act-zebra").unwrap_err().to_string();
        assert!(e.contains("and 1 more unknown word"), "{e}");
    }

    #[test]
    fn codes_carry_more_than_50_bits_and_secret_words_vary() {
        assert!(CODE_BITS >= 50);
        assert_eq!(CODE_BITS, 55);
        let mailbox = MailboxId::random();
        let codes: std::collections::HashSet<String> =
            (0..200).map(|_| PairingCode::generate(&mailbox).to_string()).collect();
        // 33 secret bits: 200 draws colliding would mean the generator is broken.
        assert_eq!(codes.len(), 200);
        assert!(codes.iter().all(|c| c.starts_with(&mailbox.to_string())));
    }
}
