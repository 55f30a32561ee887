//! The code words: BIP-39 English. Its 2048 words are distinct in their first four letters, so
//! people may type just those, and it has few near-homophones, so codes survive being read aloud.

use bip39::Language;

/// Each word carries 11 bits.
pub const WORD_COUNT: usize = 2048;

pub fn words() -> &'static [&'static str; WORD_COUNT] {
    Language::English.word_list()
}

pub fn word(index: u16) -> &'static str {
    words()[index as usize & (WORD_COUNT - 1)]
}

/// Why a typed token is not a code word, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    pub typed: String,
    pub suggestion: Option<&'static str>,
}

impl std::fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.suggestion {
            Some(word) => write!(f, "\"{}\" is not a code word; did you mean \"{word}\"?", self.typed),
            None => write!(f, "\"{}\" is not a code word", self.typed),
        }
    }
}

/// Resolves one lowercase token: the word itself, or (from four letters on) an unambiguous prefix.
pub fn resolve(token: &str) -> Result<u16, UnknownWord> {
    let list = words();
    if let Ok(index) = list.binary_search(&token) {
        return Ok(index as u16);
    }
    if token.len() >= 4 {
        // Four letters identify a BIP-39 word, so a longer prefix can match at most one word.
        let mut matches = list.iter().enumerate().filter(|(_, w)| w.starts_with(token));
        if let (Some((index, _)), None) = (matches.next(), matches.next()) {
            return Ok(index as u16);
        }
    }
    Err(UnknownWord { typed: token.to_string(), suggestion: closest(token) })
}

/// The word the person most likely meant: the one sharing its first four letters, else the one at
/// the smallest edit distance, if that distance is small enough to be a typo rather than a guess.
pub fn closest(token: &str) -> Option<&'static str> {
    let list = words();
    if token.is_empty() {
        return None;
    }
    if let Some(prefix) = token.get(..4) {
        if let Some(word) = list.iter().find(|w| w.starts_with(prefix)) {
            return Some(word);
        }
    }
    let typed: Vec<char> = token.chars().take(32).collect();
    let (best, distance) = list
        .iter()
        .map(|w| (*w, edit_distance(&typed, &w.chars().collect::<Vec<_>>())))
        .min_by_key(|(_, d)| *d)?;
    let tolerated = if typed.len() <= 4 { 1 } else { 2 };
    (distance <= tolerated).then_some(best)
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("abnadon").
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=m {
        d[0][j] = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_bip39_english_and_four_letter_prefixes_are_unique() {
        assert_eq!(words().len(), 2048);
        assert_eq!(words()[0], "abandon");
        assert_eq!(words()[2047], "zoo");
        let mut prefixes: Vec<&str> = words().iter().map(|w| &w[..w.len().min(4)]).collect();
        prefixes.dedup();
        assert_eq!(prefixes.len(), 2048);
    }

    #[test]
    fn resolves_words_and_prefixes() {
        assert_eq!(resolve("abandon"), Ok(0));
        assert_eq!(resolve("aban"), Ok(0));
        assert_eq!(resolve("aband"), Ok(0));
        assert_eq!(word(resolve("zoo").unwrap()), "zoo");
        // Three-letter words are whole words, and three letters are not a prefix.
        assert_eq!(word(resolve("act").unwrap()), "act");
        assert!(resolve("aba").is_err());
    }

    #[test]
    fn suggests_the_closest_word() {
        assert_eq!(resolve("abandn").unwrap_err().suggestion, Some("abandon"));
        assert_eq!(resolve("abnadon").unwrap_err().suggestion, Some("abandon"));
        assert_eq!(resolve("zebar").unwrap_err().suggestion, Some("zebra"));
        assert_eq!(resolve("qqqqqqqq").unwrap_err().suggestion, None);
        assert_eq!(
            resolve("abandn").unwrap_err().to_string(),
            "\"abandn\" is not a code word; did you mean \"abandon\"?"
        );
    }
}
