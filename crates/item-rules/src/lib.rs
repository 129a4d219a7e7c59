//! What a content item's title and tags may be. The content service is the judge;
//! ingestion checks the same rules when a file or URL arrives, so a queued upload is
//! refused at once instead of failing later in its job. Failures are messages for the
//! field they name (callers turn them into their 422).

pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 64;

/// A title, trimmed: 1..=500 characters, no control characters.
pub fn title(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    let count = trimmed.chars().count();
    if count == 0 {
        return Err("must not be empty".into());
    }
    if count > MAX_TITLE_CHARS {
        return Err(format!("must be at most {MAX_TITLE_CHARS} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(trimmed.to_owned())
}

/// Tags, trimmed, lower-case and without repeats; each failure as (field, message):
/// `tags` for too many, `tags[i]` for one that is empty, too long or holds control
/// characters.
pub fn tags(values: &[String]) -> Result<Vec<String>, Vec<(String, String)>> {
    if values.len() > MAX_TAGS {
        return Err(vec![("tags".into(), format!("at most {MAX_TAGS} tags"))]);
    }
    let mut out: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in values.iter().enumerate() {
        let tag = raw.trim().to_lowercase();
        let count = tag.chars().count();
        if count == 0 || count > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
            errors.push((
                format!("tags[{i}]"),
                format!("must be 1..{MAX_TAG_CHARS} characters without control characters"),
            ));
        } else if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(title("  Notes  ").unwrap(), "Notes");
        assert!(title(" ").is_err());
        assert!(title(&"x".repeat(501)).is_err());
        assert_eq!(title(&"é".repeat(500)).unwrap().chars().count(), 500);
        assert!(title("a\u{7}b").is_err());
    }

    #[test]
    fn tags_are_normalised_and_each_mistake_named() {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            tags(&owned(&[" Rust ", "rust", "Web"])).unwrap(),
            ["rust", "web"]
        );
        let errors = tags(&owned(&["ok", " ", &"y".repeat(65)])).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["tags[1]", "tags[2]"]);
        assert_eq!(tags(&owned(&["t"; 51])).unwrap_err()[0].0, "tags");
    }
}
