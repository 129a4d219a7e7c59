//! Field rules for what clients send; each failure names its field (422).

use peermesh_common::{ApiError, FieldError};
use serde_json::Value;

pub use peermesh_item_rules::title;
/// Chunks one item may carry: a 100 MiB body in ~1 500-character chunks is ~70 000.
pub const MAX_CHUNKS: usize = 200_000;
/// Vectors one embeddings request may carry.
pub const MAX_VECTORS: usize = 10_000;
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_FILENAME_CHARS: usize = 255;
pub const MAX_SLUG_CHARS: usize = 64;

/// Collects field errors; `finish` turns any into one 422.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            self.add(field, message);
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

pub fn body(value: &str, max_bytes: usize) -> Result<(), String> {
    if value.len() > max_bytes {
        return Err(format!("must be at most {max_bytes} bytes (UTF-8)"));
    }
    Ok(())
}

/// Lower-case slugs: `kind`, `relation`, `source.type`.
pub fn slug(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_SLUG_CHARS
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1..{MAX_SLUG_CHARS} characters of a-z, 0-9, - and _, starting with a letter or digit"
        ))
    }
}

/// Embedding model names: like a slug but may hold `/`, `.` and `:` (`org/model-v1.5`).
pub fn model(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c));
    if ok {
        Ok(())
    } else {
        Err("must be 1..128 characters of A-Z, a-z, 0-9, - _ . / :".into())
    }
}

/// Tags are trimmed and lower-cased; duplicates fold into one, order is kept.
/// Tags as the item rules make them; each mistake goes to `errors`.
pub fn tags(values: &[String], errors: &mut Errors) -> Vec<String> {
    peermesh_item_rules::tags(values).unwrap_or_else(|mistakes| {
        for (field, message) in mistakes {
            errors.add(field, message);
        }
        Vec::new()
    })
}

/// A JSON object no larger than `max_bytes` serialised and no deeper than `max_depth`.
pub fn metadata(value: &Value, max_bytes: usize, max_depth: usize) -> Result<String, String> {
    if !value.is_object() {
        return Err("must be a JSON object".into());
    }
    if depth(value) > max_depth {
        return Err(format!("must be nested at most {max_depth} levels deep"));
    }
    let text = value.to_string();
    if text.len() > max_bytes {
        return Err(format!("must be at most {max_bytes} bytes as JSON"));
    }
    Ok(text)
}

fn depth(value: &Value) -> usize {
    // Iterative, so a hostile document cannot exhaust the stack here.
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(map) => {
                deepest = deepest.max(d);
                stack.extend(map.values().map(|c| (c, d + 1)));
            }
            Value::Array(items) => {
                deepest = deepest.max(d);
                stack.extend(items.iter().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

pub fn url(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters"));
    }
    let lower = value.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://"))
        || value.contains(char::is_whitespace)
    {
        return Err("must be an absolute http(s) URL".into());
    }
    Ok(())
}

pub fn filename(value: &str) -> Result<(), String> {
    let count = value.chars().count();
    if count == 0 || count > MAX_FILENAME_CHARS || value.chars().any(char::is_control) {
        return Err(format!(
            "must be 1..{MAX_FILENAME_CHARS} characters without control characters"
        ));
    }
    Ok(())
}

pub fn sha256(value: &str) -> Result<(), String> {
    if value.len() == 64
        && value
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err("must be 64 lower-case hex digits".into())
    }
}

/// A path id: the service's ids are UUIDs, anything else cannot name an item.
pub fn is_id(value: &str) -> bool {
    uuid::Uuid::parse_str(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_and_slugs() {
        assert!(slug("related-to").is_ok());
        assert!(slug("Related").is_err());
        assert!(slug("-x").is_err());
        let mut errors = Errors::default();
        assert_eq!(
            tags(&[" Rust ".into(), "rust".into(), "web".into()], &mut errors),
            vec!["rust", "web"]
        );
        tags(&["x".repeat(65)], &mut errors);
        assert!(errors.finish().is_err());
    }

    #[test]
    fn metadata_is_a_bounded_object() {
        assert_eq!(metadata(&json!({"a": 1}), 100, 2).unwrap(), r#"{"a":1}"#);
        assert!(metadata(&json!([1]), 100, 2).is_err());
        assert!(metadata(&json!({"a": {"b": {"c": 1}}}), 100, 2).is_err());
        assert!(metadata(&json!({"a": {"b": 1}}), 100, 2).is_ok());
        assert!(metadata(&json!({"a": "x".repeat(200)}), 100, 2).is_err());
    }
}
