//! Search snippets cut from an item's text on PostgreSQL: the passage of at most
//! [`WORDS`] words holding the most matches, each match between two marks. Words match
//! as PostgreSQL's `english` configuration indexes them (lower-case Snowball English
//! stems) against the query's lexemes as PostgreSQL made them. `ts_headline` did this
//! in the database by parsing and stemming each hit's whole body (0.4 ms per 2 KB hit,
//! a third of a search); here only words that can stem to a lexeme are stemmed. SQLite's
//! FTS5 cuts its snippets from its own index.

use std::collections::HashSet;

use rust_stemmers::{Algorithm, Stemmer};

/// Words in a snippet.
pub const WORDS: usize = 30;

/// The best passage of `text` for `lexemes`, matches between `marks`, "…" where the
/// text goes on; the start of the text when nothing matches (a title-only match).
pub fn cut(text: &str, lexemes: &HashSet<String>, marks: (char, char)) -> String {
    let words = words(text);
    if words.is_empty() {
        return String::new();
    }
    let matched = matches(text, &words, lexemes);
    let (start, end) = best_window(&matched, WORDS);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = words[start].0;
    for i in start..end {
        let (from, to) = words[i];
        out.push_str(&text[at..from]);
        if matched[i] {
            out.push(marks.0);
            out.push_str(&text[from..to]);
            out.push(marks.1);
        } else {
            out.push_str(&text[from..to]);
        }
        at = to;
    }
    if end < words.len() {
        out.push('…');
    }
    out
}

/// Byte spans of the words: runs of letters and digits.
fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

/// Which words stem to one of `lexemes`. A Snowball English stem keeps its word's
/// first letter, so only words starting like a lexeme are stemmed at all.
fn matches(text: &str, words: &[(usize, usize)], lexemes: &HashSet<String>) -> Vec<bool> {
    let stemmer = Stemmer::create(Algorithm::English);
    let firsts: HashSet<char> = lexemes.iter().filter_map(|l| l.chars().next()).collect();
    words
        .iter()
        .map(|&(from, to)| {
            let word = &text[from..to];
            let first = word.chars().next().and_then(|c| c.to_lowercase().next());
            if !first.is_some_and(|c| firsts.contains(&c)) {
                return false;
            }
            let lower = word.to_lowercase();
            lexemes.contains(&lower) || lexemes.contains(stemmer.stem(&lower).as_ref())
        })
        .collect()
}

/// The `size` consecutive words holding the most matches, with the matches centred
/// in it where the text allows.
fn best_window(matched: &[bool], size: usize) -> (usize, usize) {
    let n = matched.len();
    let size = size.min(n);
    let mut count = matched[..size].iter().filter(|&&m| m).count();
    let (mut best, mut best_start) = (count, 0);
    for start in 1..=n - size {
        count += usize::from(matched[start + size - 1]);
        count -= usize::from(matched[start - 1]);
        if count > best {
            (best, best_start) = (count, start);
        }
    }
    if best == 0 {
        return (0, size);
    }
    let in_window = &matched[best_start..best_start + size];
    let first = best_start + in_window.iter().position(|&m| m).unwrap_or(0);
    let last = best_start + in_window.iter().rposition(|&m| m).unwrap_or(0);
    let slack = size - (last - first + 1);
    let start = first.saturating_sub(slack / 2).min(n - size);
    (start, start + size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexemes(words: &[&str]) -> HashSet<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn matches_are_stemmed_words_and_marked() {
        let text = "The Capybara RUNS; capybaras ran, running—capyBARA.";
        let cut = cut(text, &lexemes(&["capybara", "run"]), ('[', ']'));
        assert_eq!(
            cut,
            "The [Capybara] [RUNS]; [capybaras] ran, [running]—[capyBARA]"
        );
    }

    #[test]
    fn the_passage_with_most_matches_is_cut_out_and_centred() {
        let mut words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        words[20] = "otter".into();
        words[120] = "otter".into();
        words[125] = "otters".into();
        let text = words.join(" ");
        let cut = cut(&text, &lexemes(&["otter"]), ('[', ']'));
        assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
        assert!(
            cut.contains("[otter] w121") && cut.contains("[otters]"),
            "{cut}"
        );
        assert!(!cut.contains("w20 "), "{cut}");
        assert_eq!(cut.split_whitespace().count(), WORDS, "{cut}");
        let first = cut.find("[otter]").unwrap();
        assert!(first > 20 && cut.len() - first > 40, "centred: {cut}");
    }

    #[test]
    fn without_matches_the_text_starts_the_snippet() {
        let text = "alpha beta gamma";
        assert_eq!(cut(text, &lexemes(&["zeta"]), ('[', ']')), text);
        assert_eq!(cut("", &lexemes(&["zeta"]), ('[', ']')), "");
        assert_eq!(cut(" ;; ", &lexemes(&["zeta"]), ('[', ']')), "");
    }

    #[test]
    fn stems_are_postgresql_english_ones() {
        // Pairs PostgreSQL's to_tsvector('english', word) gives.
        let stemmer = Stemmer::create(Algorithm::English);
        for (word, stem) in [
            ("running", "run"),
            ("capybaras", "capybara"),
            ("largest", "largest"),
            ("lives", "live"),
            ("generalization", "general"),
            ("happy", "happi"),
            ("dying", "die"),
        ] {
            assert_eq!(stemmer.stem(word), stem, "{word}");
        }
    }
}
