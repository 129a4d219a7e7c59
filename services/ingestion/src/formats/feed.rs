//! RSS, Atom and JSON Feed documents (feed-rs): the feed's title and its entries as
//! clean text, for feed polls and for uploaded feed files alike.

use super::html_to_text;

/// Entries taken from one poll at most (the newest).
pub const MAX_ENTRIES_PER_POLL: usize = 100;

/// One entry, ready to become an item.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The feed's own key: guid, id or link.
    pub key: String,
    pub title: String,
    pub text: String,
    pub link: Option<String>,
    pub published: Option<String>,
}

/// The feed's title and entries (newest first, as feeds list them).
pub fn parse(bytes: &[u8]) -> Result<(Option<String>, Vec<Entry>), String> {
    let feed = feed_rs::parser::parse(bytes)
        .map_err(|e| format!("not a readable RSS, Atom or JSON feed: {e}"))?;
    let title = feed
        .title
        .map(|t| t.content.trim().to_owned())
        .filter(|t| !t.is_empty());
    let entries = feed
        .entries
        .into_iter()
        .take(MAX_ENTRIES_PER_POLL)
        .map(|e| {
            let raw = e
                .content
                .and_then(|c| c.body)
                .or_else(|| e.summary.map(|s| s.content))
                .unwrap_or_default();
            let text = if raw.contains('<') {
                html_to_text(&raw)
            } else {
                raw.trim().to_owned()
            };
            let link = e.links.first().map(|l| l.href.clone());
            let title = e
                .title
                .map(|t| html_to_text(&t.content))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "Untitled entry".into());
            Entry {
                key: e.id,
                title: title.chars().take(500).collect(),
                text,
                link,
                published: e.published.or(e.updated).map(|t| t.to_rfc3339()),
            }
        })
        .collect();
    Ok((title, entries))
}
