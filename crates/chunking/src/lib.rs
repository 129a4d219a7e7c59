//! Splits text into chunks: whole paragraphs packed up to a target size; a paragraph
//! too long for one chunk is cut between sentences, and a sentence too long between
//! words. Every chunk is an exact span of the text, and its offsets count characters
//! (Unicode scalar values) from the start. Chunks may overlap: a chunk can start with
//! the last sentences of the one before, so a passage cut at a boundary is still found
//! whole. Used by the content service (its default splitter, no overlap) and by
//! ingestion (configured size and overlap).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Splits `body` into chunks of at most `max_chars` characters (at least 1), without
/// overlap.
pub fn split(body: &str, max_chars: usize) -> Vec<Chunk> {
    split_with_overlap(body, max_chars, 0)
}

/// Like [`split`], each chunk after the first starting with whole pieces (sentences or
/// paragraphs) of the previous one that fit in `overlap_chars` (and in `max_chars`).
pub fn split_with_overlap(body: &str, max_chars: usize, overlap_chars: usize) -> Vec<Chunk> {
    let max_chars = max_chars.max(1);
    let mut pieces = Vec::new();
    for (start, end) in paragraphs(body) {
        if chars(body, start, end) <= max_chars {
            pieces.push((start, end));
            continue;
        }
        for (s, e) in sentences(body, start, end) {
            if chars(body, s, e) <= max_chars {
                pieces.push((s, e));
            } else {
                pieces.extend(words(body, s, e, max_chars));
            }
        }
    }
    pack(body, &pieces, max_chars, overlap_chars)
}

fn chars(body: &str, start: usize, end: usize) -> usize {
    body[start..end].chars().count()
}

/// Byte spans of the paragraphs (runs of non-blank lines), trimmed.
fn paragraphs(body: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            spans.extend(current.take());
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        let start = line_start + lead;
        let end = start + trimmed.len();
        current = Some(match current {
            Some((s, _)) => (s, end),
            None => (start, end),
        });
    }
    spans.extend(current);
    spans
}

/// Byte spans of the sentences in `body[start..end]`: cut after `.`, `!` or `?`
/// followed by white space, and at line ends.
fn sentences(body: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let text = &body[start..end];
    let mut spans = Vec::new();
    let mut from = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let next_is_space = iter.peek().is_some_and(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            push_trimmed(&mut spans, text, start, from, i + c.len_utf8());
            from = i + c.len_utf8();
        }
    }
    push_trimmed(&mut spans, text, start, from, text.len());
    spans
}

fn push_trimmed(spans: &mut Vec<(usize, usize)>, text: &str, base: usize, from: usize, to: usize) {
    let piece = &text[from..to];
    let trimmed = piece.trim();
    if !trimmed.is_empty() {
        let lead = piece.len() - piece.trim_start().len();
        spans.push((base + from + lead, base + from + lead + trimmed.len()));
    }
}

/// Cuts a span with no sentence ends into pieces of at most `max_chars`, at the last
/// white space that fits (or mid-word when a single word is longer).
fn words(body: &str, start: usize, end: usize, max_chars: usize) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = start;
    while from < end {
        let text = &body[from..end];
        let mut limit = text.len();
        let mut last_space = None;
        for (count, (i, c)) in text.char_indices().enumerate() {
            if count == max_chars {
                limit = i;
                break;
            }
            if c.is_whitespace() && i > 0 {
                last_space = Some(i);
            }
        }
        let cut = if limit == text.len() {
            limit
        } else {
            last_space.unwrap_or(limit)
        };
        push_trimmed(&mut spans, body, 0, from, from + cut);
        from += cut;
        // Skip the white space the cut landed on.
        let rest = &body[from..end];
        from += rest.len() - rest.trim_start().len();
    }
    spans
}

/// Greedily joins consecutive pieces while the joined span stays within `max_chars`;
/// a new chunk reaches back over earlier pieces within `overlap_chars`.
fn pack(
    body: &str,
    pieces: &[(usize, usize)],
    max_chars: usize,
    overlap_chars: usize,
) -> Vec<Chunk> {
    // Character offset of every piece boundary, in one forward walk.
    let mut char_of = Vec::with_capacity(pieces.len());
    let (mut byte, mut chars_so_far) = (0usize, 0usize);
    for &(start, end) in pieces {
        chars_so_far += body[byte..start].chars().count();
        let cs = chars_so_far;
        chars_so_far += body[start..end].chars().count();
        byte = end;
        char_of.push((cs, chars_so_far));
    }
    let span = |first: usize, last: usize| char_of[last].1 - char_of[first].0;

    let mut chunks = Vec::new();
    let mut first = 0;
    while first < pieces.len() {
        let mut last = first;
        while last + 1 < pieces.len() && span(first, last + 1) <= max_chars {
            last += 1;
        }
        chunks.push(Chunk {
            text: body[pieces[first].0..pieces[last].1].to_owned(),
            start: char_of[first].0,
            end: char_of[last].1,
        });
        if last + 1 >= pieces.len() {
            break;
        }
        // The next chunk starts at the next piece, or earlier by whole pieces within
        // the overlap, as long as the new piece still fits after them.
        let mut next = last + 1;
        while overlap_chars > 0
            && next > first + 1
            && char_of[last].1 - char_of[next - 1].0 <= overlap_chars
            && span(next - 1, last + 1) <= max_chars
        {
            next -= 1;
        }
        first = next;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_spans(body: &str, chunks: &[Chunk], max: usize) {
        let all: Vec<char> = body.chars().collect();
        for c in chunks {
            assert!(c.text.chars().count() <= max, "{c:?} longer than {max}");
            let span: String = all[c.start..c.end].iter().collect();
            assert_eq!(span, c.text, "offsets must point at the text");
        }
        for pair in chunks.windows(2) {
            assert!(pair[0].start < pair[1].start, "chunks are in order");
        }
    }

    #[test]
    fn packs_paragraphs_until_the_limit() {
        let body = "First para.\n\nSecond para.\n\n\nThird one here.";
        let chunks = split(body, 30);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].text, "First para.\n\nSecond para.");
        assert_eq!(chunks[1].text, "Third one here.");
        check_spans(body, &chunks, 30);
    }

    #[test]
    fn long_paragraphs_split_between_sentences_then_words() {
        let body = "Alpha beta gamma. Delta epsilon zeta! Eta theta iota kappa lambda mu nu xi";
        let chunks = split(body, 20);
        check_spans(body, &chunks, 20);
        assert_eq!(chunks[0].text, "Alpha beta gamma.");
        assert!(chunks.iter().all(|c| !c.text.starts_with(' ')));
        let joined: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            joined.join(" ").split_whitespace().count(),
            body.split_whitespace().count(),
            "no word is lost: {joined:?}"
        );
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let body = "Ünïcödé façade.\n\nZweiter Absatz mit ß.";
        let chunks = split(body, 16);
        check_spans(body, &chunks, 16);
        assert_eq!(
            chunks[1].start,
            body.find("Zweiter")
                .map(|b| body[..b].chars().count())
                .unwrap()
        );
    }

    #[test]
    fn a_word_longer_than_the_limit_is_cut() {
        let body = "x".repeat(25);
        let chunks = split(&body, 10);
        assert_eq!(chunks.len(), 3);
        check_spans(&body, &chunks, 10);
    }

    #[test]
    fn chunks_overlap_by_whole_sentences() {
        let body = "One one one. Two two two. Three three. Four four four. Five five.";
        let chunks = split_with_overlap(body, 30, 15);
        check_spans(body, &chunks, 30);
        assert!(chunks.len() >= 3, "{chunks:?}");
        for pair in chunks.windows(2) {
            assert!(pair[1].start < pair[0].end, "overlap: {pair:?}");
            assert!(pair[1].end > pair[0].end, "progress: {pair:?}");
        }
        let plain = split(body, 30);
        assert!(plain.windows(2).all(|p| p[0].end <= p[1].start));
    }

    #[test]
    fn blank_bodies_have_no_chunks() {
        assert!(split("", 100).is_empty());
        assert!(split(" \n\n\t ", 100).is_empty());
    }
}
