//! JSON request bodies with one large string member (an item's `body`, up to 100 MiB).
//! `web::Json` holds the request bytes, serde's unescaping scratch and the parsed
//! string at once, each growing by doubling: ~3.5× the body. Here the request is read
//! into one buffer sized by its `Content-Length`, the other members are parsed apart,
//! and that buffer is then turned into the member's string in place: ~1× the body.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use peermesh_common::http::{from_json, read_json};
use peermesh_common::ApiError;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A request type with one large string member, parsed by [`LargeJson`].
pub trait LargeMember: DeserializeOwned {
    /// The member's name in the JSON object.
    const MEMBER: &'static str;
    /// Puts the member's value in (it was parsed as `""`).
    fn set_member(&mut self, value: String);
}

/// A JSON body extractor for [`LargeMember`] types: the same statuses and problem
/// documents as `web::Json` (413, 415, 400 for broken JSON, 422 for the wrong shape).
pub struct LargeJson<T>(pub T);

impl<T> LargeJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: LargeMember + Send + 'static> FromRequest for LargeJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_json(req, payload);
        Box::pin(async move {
            let body = body.await?;
            let value = tokio::task::spawn_blocking(move || parse::<T>(body))
                .await
                .map_err(ApiError::internal)??;
            Ok(LargeJson(value))
        })
    }
}

/// Parses `buf` into `T`, its large member decoded inside `buf`'s own allocation.
/// Whatever is refused is refused over the whole body by [`from_json`], so errors (and
/// so statuses and fields) are those of every other JSON body.
pub fn parse<T: LargeMember>(buf: Vec<u8>) -> Result<T, ApiError> {
    // No single string member of that name (absent, null, not a string, given
    // twice), or not an object, or broken JSON: nothing to take apart.
    let Some((rest, range)) = split_member(&buf, T::MEMBER) else {
        return from_json(&buf);
    };
    let mut value = match serde_json::from_str::<T>(&rest) {
        Ok(value) => value,
        Err(_) => return from_json(&buf),
    };
    match unescape_in_place(buf, range) {
        Ok(member) => value.set_member(member),
        Err(e) => {
            return Err(ApiError::bad_request(
                "malformed_json",
                format!("malformed JSON: {e}"),
            ))
        }
    }
    Ok(value)
}

/// The object's top-level members, borrowed from the request.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The object without `member` (which is given as `""`), and where `member`'s string
/// literal lies in `buf`, quotes excluded; `None` unless `buf` is an object with one
/// string member of that name and no other name twice.
fn split_member(buf: &[u8], member: &str) -> Option<(String, std::ops::Range<usize>)> {
    let members = serde_json::from_slice::<Members>(buf).ok()?.0;
    let names: std::collections::BTreeSet<&str> = members.iter().map(|(n, _)| n.as_ref()).collect();
    if names.len() != members.len() {
        return None;
    }
    let mut found = None;
    let mut rest = String::from("{");
    for (name, raw) in &members {
        let raw = raw.get();
        if name == member {
            if !raw.starts_with('"') {
                return None;
            }
            let start = raw.as_ptr() as usize - buf.as_ptr() as usize;
            found = Some(start + 1..start + raw.len() - 1);
            continue;
        }
        rest.push_str(&serde_json::to_string(name).ok()?);
        rest.push(':');
        rest.push_str(raw);
        rest.push(',');
    }
    rest.push_str(&serde_json::to_string(member).ok()?);
    rest.push_str(":\"\"}");
    Some((rest, found?))
}

/// Decodes the JSON string literal at `range` of `buf` (quotes excluded) into a
/// `String` that reuses `buf`'s memory. An escape is never shorter than what it
/// stands for, so the decoded text is written over the literal as it is read.
pub fn unescape_in_place(
    mut buf: Vec<u8>,
    range: std::ops::Range<usize>,
) -> Result<String, serde_json::Error> {
    let (mut read, end) = (range.start, range.end);
    let mut write = 0;
    while read < end {
        // Copy the run up to the next escape as one block.
        let run = buf[read..end]
            .iter()
            .position(|&b| b == b'\\')
            .unwrap_or(end - read);
        buf.copy_within(read..read + run, write);
        read += run;
        write += run;
        if read == end {
            break;
        }
        // serde's own error for the escape (still unread, so intact) at `read`.
        let invalid = |buf: &[u8], at: usize| escape_error(&buf[at..end.min(at + 12)]);
        let at = read;
        let escape = *buf.get(read + 1).ok_or_else(|| invalid(&buf, at))?;
        read += 2;
        let byte = match escape {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut code = hex4(&buf, read, end).ok_or_else(|| invalid(&buf, at))?;
                read += 4;
                if (0xD800..0xDC00).contains(&code) {
                    // A surrogate pair: the low half must follow as its own escape.
                    let low = (buf.get(read..read + 2) == Some(b"\\u"))
                        .then(|| hex4(&buf, read + 2, end))
                        .flatten()
                        .filter(|low| (0xDC00..0xE000).contains(low))
                        .ok_or_else(|| invalid(&buf, at))?;
                    read += 6;
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                }
                let c = char::from_u32(code).ok_or_else(|| invalid(&buf, at))?;
                let mut utf8 = [0; 4];
                let encoded = c.encode_utf8(&mut utf8).as_bytes();
                buf[write..write + encoded.len()].copy_from_slice(encoded);
                write += encoded.len();
                continue;
            }
            _ => return Err(invalid(&buf, at)),
        };
        buf[write] = byte;
        write += 1;
    }
    buf.truncate(write);
    buf.shrink_to_fit();
    String::from_utf8(buf).map_err(|_| escape_error(b"\\uDC00"))
}

/// What serde says of a string literal holding `escape`: its error category and
/// message, so a refused escape answers as under `web::Json`.
fn escape_error(escape: &[u8]) -> serde_json::Error {
    let literal = [b"\"", escape, b"\""].concat();
    match serde_json::from_slice::<String>(&literal) {
        Err(e) => e,
        Ok(_) => <serde_json::Error as serde::de::Error>::custom("invalid escape in string"),
    }
}

/// Four hex digits at `at` (before `end`), as a number.
fn hex4(buf: &[u8], at: usize, end: usize) -> Option<u32> {
    if at + 4 > end {
        return None;
    }
    let digits = std::str::from_utf8(&buf[at..at + 4]).ok()?;
    u32::from_str_radix(digits, 16)
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_hexdigit()))
}

peermesh_common::document_as_json_body!(LargeJson);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        title: String,
        body: String,
        tags: Option<Vec<String>>,
    }

    impl LargeMember for Doc {
        const MEMBER: &'static str = "body";
        fn set_member(&mut self, value: String) {
            self.body = value;
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        body: Option<String>,
    }

    impl LargeMember for Patch {
        const MEMBER: &'static str = "body";
        fn set_member(&mut self, value: String) {
            self.body = Some(value);
        }
    }

    /// Random strings heavy in what JSON escapes: quotes, backslashes, controls,
    /// non-ASCII, astral characters (surrogate pairs when escaped as `\u`).
    fn strings() -> Vec<String> {
        let alphabet = [
            "a", "\"", "\\", "/", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{1}", "\u{1f}", "é", "—",
            "😀", "\u{7f}", " ", "\u{fffd}", "\u{e000}",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        (0..2000)
            .map(|_| {
                (0..next(40))
                    .map(|_| alphabet[next(alphabet.len())])
                    .collect()
            })
            .collect()
    }

    /// JSON text of `s` with every character past ASCII written as a `\u` escape.
    fn ascii_json(s: &str) -> String {
        let mut out = String::from("\"");
        for unit in s.encode_utf16() {
            match unit {
                0x20..=0x7e if unit != b'"' as u16 && unit != b'\\' as u16 => {
                    out.push(unit as u8 as char)
                }
                _ => out.push_str(&format!("\\u{unit:04X}")),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn unescaping_agrees_with_serde_json() {
        for s in strings() {
            for literal in [serde_json::to_string(&s).unwrap(), ascii_json(&s)] {
                let end = literal.len() - 1;
                let decoded = unescape_in_place(literal.clone().into_bytes(), 1..end).unwrap();
                assert_eq!(decoded, s, "{literal}");
                let theirs: String = serde_json::from_str(&literal).unwrap();
                assert_eq!(decoded, theirs);
            }
        }
    }

    #[test]
    fn broken_escapes_are_errors_not_panics() {
        for bad in [
            r"\",
            r"\x",
            r"\u12",
            r"\u12G4",
            r"\uD800",
            r"\uD800\u0041",
            r"\uDC00",
            r"\uD800\",
        ] {
            let len = bad.len();
            assert!(
                unescape_in_place(bad.as_bytes().to_vec(), 0..len).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn documents_parse_as_serde_parses_them() {
        for s in strings().into_iter().take(300) {
            let doc = Doc {
                title: s.clone(),
                body: s.clone() + &s,
                tags: Some(vec![s.clone()]),
            };
            let json = serde_json::to_vec(&doc).unwrap();
            assert_eq!(parse::<Doc>(json).unwrap(), doc);
        }
        let cases: [(&str, Option<Doc>); 4] = [
            (
                r#"{"tags":null,"b\u006fdy":"x\ny","title":"t"}"#,
                Some(Doc {
                    title: "t".into(),
                    body: "x\ny".into(),
                    tags: None,
                }),
            ),
            (r#"{"title":"t"}"#, None),
            (r#"{"title":"t","body":"a","body":"b"}"#, None),
            (r#"{"title":"t","body":"a","colour":1}"#, None),
        ];
        // Refused as every other JSON body is: the same status, code and fields.
        let same_refusal = |json: &str| {
            let ours = parse::<Doc>(json.as_bytes().to_vec()).unwrap_err();
            let theirs = from_json::<Doc>(json.as_bytes()).unwrap_err();
            assert_eq!(
                serde_json::to_value(ours.to_problem(None)).unwrap(),
                serde_json::to_value(theirs.to_problem(None)).unwrap(),
                "{json}"
            );
            ours.status().as_u16()
        };
        for (json, expected) in cases {
            let ours = parse::<Doc>(json.as_bytes().to_vec());
            assert_eq!(ours.as_ref().ok(), expected.as_ref(), "{json}");
            if expected.is_none() {
                assert_eq!(same_refusal(json), 422, "{json}");
            }
        }
        for broken in [r#"{"body":"a"#, "", r#"{"body":"\q"}"#] {
            assert_eq!(same_refusal(broken), 400, "{broken}");
        }
        // A lone surrogate passes serde's first look (it does not decode escapes) and
        // is refused by the decoding, as serde refuses it in a String.
        let lone = parse::<Doc>(br#"{"title":"t","body":"a\ud800b"}"#.to_vec()).unwrap_err();
        assert_eq!(
            (lone.status().as_u16(), lone.code()),
            (400, "malformed_json")
        );
        assert!(serde_json::from_str::<Doc>(r#"{"title":"t","body":"a\ud800b"}"#).is_err());
        assert_eq!(
            parse::<Patch>(br#"{}"#.to_vec()).unwrap(),
            Patch { body: None }
        );
        assert_eq!(
            parse::<Patch>(br#"{"body":null}"#.to_vec()).unwrap(),
            Patch { body: None }
        );
        assert_eq!(
            parse::<Patch>(br#"{"body":"\u00e9"}"#.to_vec()).unwrap(),
            Patch {
                body: Some("é".into())
            }
        );
    }
}
