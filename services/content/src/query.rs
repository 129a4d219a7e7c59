//! The search syntax both backends share, in the spirit of a web search box: words
//! (all must match), `"exact phrases"`, `-excluded` words or phrases, and `OR` between
//! two alternatives. A query is parsed here once and then written out for SQLite FTS5
//! (every term quoted, so nothing a user types is FTS5 syntax) or for PostgreSQL's
//! `websearch_to_tsquery`. Mistakes are reported, never passed to the database.

pub const MAX_QUERY_CHARS: usize = 500;
pub const MAX_TERMS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// All must match; each is one term or several alternatives joined by OR.
    required: Vec<Vec<Term>>,
    excluded: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Word(String),
    Phrase(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Term { term: Term, negated: bool },
    Or,
}

impl SearchQuery {
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("must be at most {MAX_QUERY_CHARS} characters"));
        }
        let tokens = tokenize(input)?;
        let mut required: Vec<Vec<Term>> = Vec::new();
        let mut excluded = Vec::new();
        let mut pending_or = false;
        let mut count = 0;
        for (i, token) in tokens.iter().enumerate() {
            match token {
                Token::Or => {
                    let after_term =
                        i > 0 && matches!(tokens[i - 1], Token::Term { negated: false, .. });
                    let before_term =
                        matches!(tokens.get(i + 1), Some(Token::Term { negated: false, .. }));
                    if !after_term || !before_term {
                        return Err("OR needs a word or phrase on both sides".into());
                    }
                    pending_or = true;
                }
                Token::Term { term, negated } => {
                    count += 1;
                    if *negated {
                        excluded.push(term.clone());
                    } else if pending_or {
                        if let Some(last) = required.last_mut() {
                            last.push(term.clone());
                        }
                        pending_or = false;
                    } else {
                        required.push(vec![term.clone()]);
                    }
                }
            }
        }
        if count > MAX_TERMS {
            return Err(format!("may hold at most {MAX_TERMS} words or phrases"));
        }
        if required.is_empty() {
            return Err(if excluded.is_empty() {
                "needs at least one word to search for".into()
            } else {
                "needs at least one word to search for besides the excluded ones".into()
            });
        }
        Ok(Self { required, excluded })
    }

    /// An FTS5 MATCH expression; every term is a quoted string.
    pub fn to_fts5(&self) -> String {
        let quote = |t: &Term| match t {
            Term::Word(w) | Term::Phrase(w) => format!("\"{}\"", w.replace('"', "\"\"")),
        };
        let group = |alternatives: &[Term]| {
            let parts: Vec<String> = alternatives.iter().map(quote).collect();
            if parts.len() == 1 {
                parts.join("")
            } else {
                format!("({})", parts.join(" OR "))
            }
        };
        let mut expr = self
            .required
            .iter()
            .map(|g| group(g))
            .collect::<Vec<_>>()
            .join(" AND ");
        for term in &self.excluded {
            expr = format!("({expr}) NOT {}", quote(term));
        }
        expr
    }

    /// The words searched for (not the excluded ones), phrases split into words.
    pub fn wanted_words(&self) -> String {
        let mut words = Vec::new();
        for term in self.required.iter().flatten() {
            match term {
                Term::Word(w) | Term::Phrase(w) => words.push(w.as_str()),
            }
        }
        words.join(" ")
    }

    /// Text for PostgreSQL's `websearch_to_tsquery`, which understands this syntax.
    pub fn to_websearch(&self) -> String {
        let write = |t: &Term| match t {
            Term::Word(w) => w.clone(),
            Term::Phrase(p) => format!("\"{p}\""),
        };
        let mut parts: Vec<String> = self
            .required
            .iter()
            .map(|g| g.iter().map(write).collect::<Vec<_>>().join(" or "))
            .collect();
        parts.extend(self.excluded.iter().map(|t| format!("-{}", write(t))));
        parts.join(" ")
    }
}

/// Words are runs of non-space characters; a word with no letter or digit in it (a
/// lone `+`, `&`) searches for nothing and is dropped.
fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut negated = false;
        if c == '-' {
            chars.next();
            negated = true;
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut phrase = String::new();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                phrase.push(c);
            }
            if !closed {
                return Err("has a quote that is never closed".into());
            }
            let words: Vec<&str> = phrase
                .split_whitespace()
                .filter(|w| searchable(w))
                .collect();
            if !words.is_empty() {
                tokens.push(Token::Term {
                    term: Term::Phrase(words.join(" ")),
                    negated,
                });
            }
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '"' {
                break;
            }
            word.push(c);
            chars.next();
        }
        if word == "OR" && !negated {
            tokens.push(Token::Or);
        } else if searchable(&word) {
            tokens.push(Token::Term {
                term: Term::Word(word),
                negated,
            });
        }
    }
    Ok(tokens)
}

fn searchable(word: &str) -> bool {
    word.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_phrases_exclusions_and_alternatives() {
        let q = SearchQuery::parse(r#"rust "async runtime" -python tokio OR actix"#).unwrap();
        assert_eq!(
            q.to_fts5(),
            r#"("rust" AND "async runtime" AND ("tokio" OR "actix")) NOT "python""#
        );
        assert_eq!(
            q.to_websearch(),
            r#"rust "async runtime" tokio or actix -python"#
        );
    }

    #[test]
    fn fts5_syntax_typed_by_a_user_is_only_text() {
        let q = SearchQuery::parse(r#"title:secret NEAR(a b) x*"#).unwrap();
        assert_eq!(
            q.to_fts5(),
            r#""title:secret" AND "NEAR(a" AND "b)" AND "x*""#
        );
        let q = SearchQuery::parse(r#"say ""hello"" "#).unwrap();
        assert!(!q.to_fts5().contains("\"\"\"\""), "{}", q.to_fts5());
    }

    #[test]
    fn mistakes_are_reported() {
        for bad in [
            "",
            "   ",
            "\"unclosed phrase",
            "-only -negative",
            "OR",
            "word OR",
            "OR word",
            "a OR OR b",
            "+ & !",
        ] {
            assert!(SearchQuery::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert!(SearchQuery::parse(&"a ".repeat(40)).is_err());
        assert!(SearchQuery::parse(&"a".repeat(501)).is_err());
    }

    #[test]
    fn lowercase_or_is_a_word() {
        let q = SearchQuery::parse("this or that").unwrap();
        assert_eq!(q.to_fts5(), r#""this" AND "or" AND "that""#);
    }
}
