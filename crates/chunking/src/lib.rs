//! Splits text into chunks: whole paragraphs packed up to a target size; a paragraph
//! too long for one chunk is cut between sentences, and a sentence too long between
//! words. Every chunk is an exact span of the text, and its offsets count characters
//! (Unicode scalar values) from the start. Chunks may overlap: a chunk can start with
//! the last sentences of the one before, so a passage cut at a boundary is still found
//! whole. Text too large to hold can be given in parts ([`Splitter`]). Used by the
//! content service (its default splitter, no overlap) and by ingestion (configured
//! size and overlap).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

impl Chunk {
    fn new(span: Span, text: &str) -> Self {
        Chunk {
            text: text.to_owned(),
            start: span.start,
            end: span.end,
        }
    }
}

/// Where a chunk lies in the whole text, without its text: characters (as in
/// [`Chunk`]) and bytes (`&text[byte_start..byte_end]` is the chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub byte_start: usize,
    pub byte_end: usize,
}

/// The chunks of `body` as in [`split`], as spans: for a text held whole, whose chunks
/// need not be copied out of it (a 100 MiB body). The text goes through the splitter
/// in parts, so the splitter's own buffer stays small too.
pub fn spans(body: &str, max_chars: usize) -> Vec<Span> {
    const PART: usize = 64 * 1024;
    let mut spans = Vec::new();
    let mut splitter = Splitter::new(max_chars, 0);
    let mut from = 0;
    while from < body.len() {
        let mut to = (from + PART).min(body.len());
        while !body.is_char_boundary(to) {
            to += 1;
        }
        splitter.push_spans(&body[from..to], |span, _| spans.push(span));
        from = to;
    }
    splitter.finish_spans(|span, _| spans.push(span));
    spans
}

/// Splits `body` into chunks of at most `max_chars` characters (at least 1), without
/// overlap.
pub fn split(body: &str, max_chars: usize) -> Vec<Chunk> {
    split_with_overlap(body, max_chars, 0)
}

/// Like [`split`], each chunk after the first starting with whole pieces (sentences or
/// paragraphs) of the previous one that fit in `overlap_chars` (and in `max_chars`).
pub fn split_with_overlap(body: &str, max_chars: usize, overlap_chars: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut splitter = Splitter::new(max_chars, overlap_chars);
    splitter.push(body, |c| chunks.push(c));
    splitter.finish(|c| chunks.push(c));
    chunks
}

/// [`split_with_overlap`] over text that arrives in parts (a large file read block by
/// block): the chunks are the same as of the whole text, in order, each handed out as
/// soon as it is complete. It holds only the chunk being packed, the paragraph being
/// read while it may still fit in one chunk, and an unfinished line.
pub struct Splitter {
    max_chars: usize,
    overlap_chars: usize,
    /// The text still needed, from byte `base` of the whole text.
    buf: String,
    base: usize,
    /// Where the first line not yet split off starts, and how far a line end was
    /// already looked for (whole-text byte offsets).
    line_start: usize,
    scanned: usize,
    /// A byte offset of the whole text and its character offset; moves forward only.
    counted: (usize, usize),
    /// The paragraph being read while it may still be one piece: its trimmed span
    /// so far and its length in characters.
    paragraph: Option<(usize, usize, usize)>,
    /// The paragraph being read is longer than a chunk: its sentences are pieces,
    /// taken line by line (a sentence never spans a line end).
    long_paragraph: bool,
    /// The pieces of the chunk being packed.
    pieces: std::collections::VecDeque<Piece>,
}

/// A paragraph, sentence or word run: byte and character spans in the whole text.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    first_char: usize,
    end_char: usize,
}

/// Text no longer needed is dropped from the buffer once it is this long (and half
/// the buffer): dropping costs a copy of what is kept.
const DROP_AT: usize = 64 * 1024;

impl Splitter {
    pub fn new(max_chars: usize, overlap_chars: usize) -> Self {
        Self {
            max_chars: max_chars.max(1),
            overlap_chars,
            buf: String::new(),
            base: 0,
            line_start: 0,
            scanned: 0,
            counted: (0, 0),
            paragraph: None,
            long_paragraph: false,
            pieces: Default::default(),
        }
    }

    /// Takes the next part of the text; `emit` gets the chunks it completes.
    pub fn push(&mut self, text: &str, mut emit: impl FnMut(Chunk)) {
        self.push_spans(text, |span, text| emit(Chunk::new(span, text)));
    }

    /// Ends the text; `emit` gets the last chunks.
    pub fn finish(self, mut emit: impl FnMut(Chunk)) {
        self.finish_spans(|span, text| emit(Chunk::new(span, text)));
    }

    /// [`Splitter::push`], handing out each chunk's span and a borrow of its text.
    pub fn push_spans(&mut self, text: &str, mut emit: impl FnMut(Span, &str)) {
        self.buf.push_str(text);
        let end = self.base + self.buf.len();
        while let Some(at) = self.buf[self.scanned - self.base..].find('\n') {
            let line_end = self.scanned + at + 1;
            self.line(self.line_start, line_end, &mut emit);
            self.line_start = line_end;
            self.scanned = line_end;
        }
        self.scanned = end;
        self.drop_unneeded();
    }

    /// [`Splitter::finish`], handing out spans and borrowed text.
    pub fn finish_spans(mut self, mut emit: impl FnMut(Span, &str)) {
        let end = self.base + self.buf.len();
        if self.line_start < end {
            self.line(self.line_start, end, &mut emit);
        }
        self.end_paragraph(&mut emit);
        if let (Some(&first), Some(&last)) = (self.pieces.front(), self.pieces.back()) {
            self.chunk(first, last, &mut emit);
        }
    }

    /// One line, `start..end` with its line end if it has one.
    fn line(&mut self, start: usize, end: usize, emit: &mut impl FnMut(Span, &str)) {
        let raw = &self.buf[start - self.base..end - self.base];
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            self.end_paragraph(emit);
            return;
        }
        let from = start + (raw.len() - raw.trim_start().len());
        let to = from + trimmed.len();
        if self.long_paragraph {
            self.sentence_pieces(from, to, emit);
            return;
        }
        let (first, chars) = match self.paragraph {
            Some((first, last, chars)) => (first, chars + self.chars(last, to)),
            None => (from, trimmed.chars().count()),
        };
        if chars <= self.max_chars {
            self.paragraph = Some((first, to, chars));
        } else {
            self.paragraph = None;
            self.long_paragraph = true;
            self.sentence_pieces(first, to, emit);
        }
    }

    fn end_paragraph(&mut self, emit: &mut impl FnMut(Span, &str)) {
        if let Some((start, end, _)) = self.paragraph.take() {
            self.piece(start, end, emit);
        }
        self.long_paragraph = false;
    }

    /// The sentences of `start..end` as pieces, those longer than a chunk cut between
    /// words.
    fn sentence_pieces(&mut self, start: usize, end: usize, emit: &mut impl FnMut(Span, &str)) {
        let text = &self.buf[start - self.base..end - self.base];
        let mut spans = Vec::new();
        for (s, e) in sentences(text) {
            if text[s..e].chars().count() <= self.max_chars {
                spans.push((s, e));
            } else {
                spans.extend(words(text, s, e, self.max_chars));
            }
        }
        for (s, e) in spans {
            self.piece(start + s, start + e, emit);
        }
    }

    /// Characters in `start..end` (`start` at or after the last count).
    fn chars(&self, start: usize, end: usize) -> usize {
        self.buf[start - self.base..end - self.base].chars().count()
    }

    /// The character offset of byte `at`, counting on from the last position asked.
    fn char_at(&mut self, at: usize) -> usize {
        let (byte, chars) = self.counted;
        let chars = chars + self.chars(byte, at);
        self.counted = (at, chars);
        chars
    }

    /// Packs the next piece: greedily joins pieces while the chunk stays within
    /// `max_chars`; a new chunk reaches back over earlier pieces within `overlap_chars`.
    fn piece(&mut self, start: usize, end: usize, emit: &mut impl FnMut(Span, &str)) {
        let piece = Piece {
            start,
            first_char: self.char_at(start),
            end_char: self.char_at(end),
            end,
        };
        if let (Some(&first), Some(&last)) = (self.pieces.front(), self.pieces.back()) {
            if piece.end_char - first.first_char > self.max_chars {
                self.chunk(first, last, emit);
                // The next chunk starts at this piece, or earlier by whole pieces within
                // the overlap, as long as this piece still fits after them.
                let mut next = self.pieces.len();
                while self.overlap_chars > 0
                    && next > 1
                    && last.end_char - self.pieces[next - 1].first_char <= self.overlap_chars
                    && piece.end_char - self.pieces[next - 1].first_char <= self.max_chars
                {
                    next -= 1;
                }
                self.pieces.drain(..next);
            }
        }
        self.pieces.push_back(piece);
    }

    fn chunk(&self, first: Piece, last: Piece, emit: &mut impl FnMut(Span, &str)) {
        let span = Span {
            start: first.first_char,
            end: last.end_char,
            byte_start: first.start,
            byte_end: last.end,
        };
        emit(
            span,
            &self.buf[first.start - self.base..last.end - self.base],
        );
    }

    /// Forgets the text before the first piece, paragraph or line still needed.
    fn drop_unneeded(&mut self) {
        let needed = [
            self.pieces.front().map(|p| p.start),
            self.paragraph.map(|(start, _, _)| start),
            Some(self.line_start),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.line_start);
        let dead = needed - self.base;
        if dead < DROP_AT || dead * 2 < self.buf.len() {
            return;
        }
        if needed > self.counted.0 {
            self.char_at(needed);
        }
        self.buf.drain(..dead);
        self.base = needed;
    }
}

/// Byte spans of the sentences in `text`, trimmed: cut after `.`, `!` or `?` followed
/// by white space, and at line ends.
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let next_is_space = iter.peek().is_some_and(|(_, n)| n.is_whitespace());
        if c == '\n' || (matches!(c, '.' | '!' | '?') && next_is_space) {
            push_trimmed(&mut spans, text, from, i + c.len_utf8());
            from = i + c.len_utf8();
        }
    }
    push_trimmed(&mut spans, text, from, text.len());
    spans
}

fn push_trimmed(spans: &mut Vec<(usize, usize)>, text: &str, from: usize, to: usize) {
    let piece = &text[from..to];
    let trimmed = piece.trim();
    if !trimmed.is_empty() {
        let lead = piece.len() - piece.trim_start().len();
        spans.push((from + lead, from + lead + trimmed.len()));
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
        push_trimmed(&mut spans, body, from, from + cut);
        from += cut;
        // Skip the white space the cut landed on.
        let rest = &body[from..end];
        from += rest.len() - rest.trim_start().len();
    }
    spans
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

    /// Text from a small deterministic generator: words (some long, some not ASCII),
    /// sentence ends, line ends, indented and blank lines, `\r\n`.
    fn generated(seed: u64, len: usize) -> String {
        let mut state = seed;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let words = [
            "alpha",
            "beta",
            "Ünïcödé",
            "x",
            "façade",
            "longlonglonglongword",
        ];
        let mut text = String::new();
        while text.len() < len {
            match next(12) {
                0 => text.push_str(". "),
                1 => text.push_str("!\n"),
                2 => text.push('\n'),
                3 => text.push_str("\n\n"),
                4 => text.push_str("\n  \t\n   "),
                5 => text.push_str("\r\n"),
                _ => {
                    text.push_str(words[next(words.len() as u64) as usize]);
                    text.push(' ');
                }
            }
        }
        text
    }

    /// `text` in parts of about `size` bytes, cut on character boundaries.
    fn parts(text: &str, size: usize) -> Vec<&str> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut cut = size.min(rest.len());
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            let (part, tail) = rest.split_at(cut);
            parts.push(part);
            rest = tail;
        }
        parts
    }

    #[test]
    fn text_given_in_parts_is_split_as_a_whole() {
        for seed in 0..12 {
            let body = generated(seed, 3000);
            for (max, overlap) in [(1, 0), (9, 0), (40, 0), (40, 15), (200, 60), (5000, 0)] {
                let whole = split_with_overlap(&body, max, overlap);
                check_spans(&body, &whole, max);
                for size in [1, 3, 17, 700] {
                    let mut streamed = Vec::new();
                    let mut splitter = Splitter::new(max, overlap);
                    for part in parts(&body, size) {
                        splitter.push(part, |c| streamed.push(c));
                    }
                    splitter.finish(|c| streamed.push(c));
                    assert_eq!(
                        streamed, whole,
                        "seed {seed}, {max}/{overlap}, parts of {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_splitter_keeps_a_bounded_part_of_the_text() {
        let body = generated(7, 4 << 20);
        let mut splitter = Splitter::new(1000, 200);
        let (mut count, mut held) = (0, 0);
        for part in parts(&body, 64 * 1024) {
            splitter.push(part, |_| count += 1);
            held = held.max(splitter.buf.len());
        }
        splitter.finish(|_| count += 1);
        assert!(count > 4000, "{count} chunks");
        assert!(held < 4 * DROP_AT, "held {held} bytes of {}", body.len());
    }

    #[test]
    fn spans_point_at_the_chunks_of_the_whole_text() {
        // Long enough to be fed to the splitter in several parts, with multi-byte text.
        let mut body = generated(3, 200_000);
        let near_a_part_end = (65_535..).find(|&i| body.is_char_boundary(i)).unwrap();
        body.insert_str(near_a_part_end, "é—ü");
        for max in [1, 40, 1000] {
            let chunks = split(&body, max);
            let spans = spans(&body, max);
            assert_eq!(spans.len(), chunks.len(), "max {max}");
            for (span, chunk) in spans.iter().zip(&chunks) {
                assert_eq!((span.start, span.end), (chunk.start, chunk.end));
                assert_eq!(&body[span.byte_start..span.byte_end], chunk.text);
            }
        }
        assert!(spans("  \n ", 10).is_empty());
    }

    #[test]
    fn blank_bodies_have_no_chunks() {
        assert!(split("", 100).is_empty());
        assert!(split(" \n\n\t ", 100).is_empty());
    }
}
