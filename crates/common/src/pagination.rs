//! Cursor pagination as every list endpoint speaks it: `?limit=` (1..=100, default 20)
//! and `?cursor=` → `{"items": […], "next_cursor": "…" | null}`. A cursor is the last
//! id of the previous page, encoded so clients treat it as opaque.

use base64::Engine as _;

use crate::error::{ApiError, FieldError};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// A checked page request: how many items, after which id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<String>,
}

fn engine() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl PageRequest {
    /// Checks `limit` and decodes `cursor`; 422 naming the field otherwise.
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::validation(vec![FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )]));
        }
        let after = match cursor {
            None => None,
            Some(c) => Some(
                engine()
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        ApiError::validation(vec![FieldError::new(
                            "cursor",
                            "is not a cursor this API gave out",
                        )])
                    })?,
            ),
        };
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts the fetched rows to the page and returns the cursor of the next one.
    pub fn finish<T>(&self, items: &mut Vec<T>, id_of: impl Fn(&T) -> &str) -> Option<String> {
        if items.len() as i64 <= self.limit {
            return None;
        }
        items.truncate(self.limit as usize);
        items
            .last()
            .map(|last| engine().encode(id_of(last).as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_cursors_and_pages() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 20);
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(101), None).is_err());
        assert!(PageRequest::parse(None, Some("%%%")).is_err());
        let page = PageRequest::parse(Some(2), None).unwrap();
        let mut rows = vec!["c", "b", "a"];
        let cursor = page.finish(&mut rows, |r| r).unwrap();
        assert_eq!(rows, vec!["c", "b"]);
        let next = PageRequest::parse(Some(2), Some(&cursor)).unwrap();
        assert_eq!(next.after.as_deref(), Some("b"));
        let mut last = vec!["a"];
        assert_eq!(next.finish(&mut last, |r| r), None);
    }
}
