//! How saves are written in the inbox: one row per save or group of saves, its entries in a
//! compact binary form (no field names, no escaping, the body as the JSON bytes that will be
//! sent, the idempotency key as its 16 bytes), so a save writes little more than its body.
//!
//! Layout of an inbox row's `entries` (a BLOB): the format byte `1`, the number of entries
//! (LEB128 varint, so a row cut short is noticed), then for each entry
//! - the id and the sequence number, each as the zigzag LEB128 varint of its difference from
//!   the previous entry's (from 0 for the first);
//! - one byte: priority (bits 0–1), kind (bits 2–4), method (bits 5–7: 1 GET, 2 PUT, 3 POST,
//!   4 DELETE, 5 PATCH; 0: another method, written next as a string);
//! - the idempotency key (16 bytes);
//! - the path (length, then the bytes); the stream (0: the previous entry's; 1: the one its
//!   path implies, e.g. `attempt:{a}` for `/v1/attempts/{a}/…`; otherwise length + 2, then
//!   the bytes); the coalescing key (0: none; 1: the one its path implies,
//!   `answer:{a}:{q}`; otherwise length + 2); the body (0: none; otherwise length + 1);
//!   lengths as LEB128 varints.
//!
//! An entry's size for the quota is not stored: it follows from its path and body.
//! Rows written as TEXT by earlier versions (a JSON array of entries) are still read.

use std::fmt;

use rusqlite::types::ValueRef;

use super::{entry_bytes, Kind, Priority};

/// The format byte of the binary layout.
const FORMAT: u8 = 1;
const METHODS: [&str; 6] = ["", "GET", "PUT", "POST", "DELETE", "PATCH"];
const KINDS: [Kind; 6] = [
    Kind::Attempt,
    Kind::Answer,
    Kind::Submission,
    Kind::Event,
    Kind::Telemetry,
    Kind::Other,
];

/// One save as written in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub id: i64,
    pub method: String,
    pub path: String,
    /// The JSON body as it will be sent.
    pub body: Option<Vec<u8>>,
    /// The idempotency key (a UUIDv7).
    pub key: uuid::Uuid,
    pub stream: String,
    pub seq: i64,
    pub priority: i64,
    pub kind: String,
    pub coalesce_key: Option<String>,
    pub bytes: u64,
}

/// An inbox row that cannot be read.
#[derive(Debug)]
pub struct Damaged(String);

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a saved group in the inbox is damaged: {}", self.0)
    }
}

impl std::error::Error for Damaged {}

/// Borrowed view of an entry to write (nothing is copied before encoding).
pub(super) struct EntryRef<'a> {
    pub id: i64,
    pub seq: i64,
    pub priority: Priority,
    pub key: &'a uuid::Uuid,
    pub method: &'a str,
    pub kind: Kind,
    pub stream: &'a str,
    pub coalesce_key: Option<&'a str>,
    pub path: &'a str,
    pub body: Option<&'a [u8]>,
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_signed(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

/// Writes `bytes` with its length + 1 (0 stands for "none").
fn put_optional(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as u64 + 1);
            out.extend_from_slice(b);
        }
        None => out.push(0),
    }
}

/// Writes text with its length + 2 (0 and 1 are markers: "as before", "from the path").
fn put_text(out: &mut Vec<u8>, text: Option<&str>) {
    if let Some(t) = text {
        put_varint(out, t.len() as u64 + 2);
        out.extend_from_slice(t.as_bytes());
    }
}

/// The stream and the coalescing key an answer save's path implies
/// (`/v1/attempts/{a}/answers/{q}`: `attempt:{a}`, `answer:{a}:{q}`; `/v1/attempts/{a}/…`:
/// `attempt:{a}`), when its ids needed no escaping in the path.
fn derived(path: &str) -> (Option<String>, Option<String>) {
    let mut parts = path.split('/');
    let (Some(""), Some("v1"), Some("attempts"), Some(attempt)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (None, None);
    };
    if attempt.is_empty() || attempt.contains('%') {
        return (None, None);
    }
    let stream = Some(format!("attempt:{attempt}"));
    match (parts.next(), parts.next(), parts.next()) {
        (Some("answers"), Some(q), None) if !q.is_empty() && !q.contains('%') => {
            (stream, Some(format!("answer:{attempt}:{q}")))
        }
        _ => (stream, None),
    }
}

/// Encodes a group of entries as one inbox row.
pub(super) fn encode<'a>(
    entries: impl ExactSizeIterator<Item = EntryRef<'a>>,
    size_hint: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint + 11);
    out.push(FORMAT);
    put_varint(&mut out, entries.len() as u64);
    let (mut id, mut seq, mut stream) = (0i64, 0i64, None::<&str>);
    for e in entries {
        put_signed(&mut out, e.id.wrapping_sub(id));
        put_signed(&mut out, e.seq.wrapping_sub(seq));
        (id, seq) = (e.id, e.seq);
        let method = METHODS
            .iter()
            .skip(1)
            .position(|m| *m == e.method)
            .map_or(0, |i| i + 1);
        let kind = KINDS.iter().position(|k| *k == e.kind).unwrap_or(5);
        out.push((e.priority as u8 & 0b11) | ((kind as u8) << 2) | ((method as u8) << 5));
        if method == 0 {
            put_optional(&mut out, Some(e.method.as_bytes()));
        }
        out.extend_from_slice(e.key.as_bytes());
        put_varint(&mut out, e.path.len() as u64);
        out.extend_from_slice(e.path.as_bytes());
        let (derived_stream, derived_coalesce) = derived(e.path);
        if stream == Some(e.stream) {
            out.push(0);
        } else if derived_stream.as_deref() == Some(e.stream) {
            out.push(1);
        } else {
            put_text(&mut out, Some(e.stream));
        }
        stream = Some(e.stream);
        match e.coalesce_key {
            None => out.push(0),
            Some(k) if derived_coalesce.as_deref() == Some(k) => out.push(1),
            Some(k) => put_text(&mut out, Some(k)),
        }
        put_optional(&mut out, e.body);
    }
    out
}

/// Room for an encoded entry besides its strings, for sizing buffers.
pub(super) const FIXED_BYTES: usize = 2 * 10 + 1 + 16 + 4 * 3;

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Damaged> {
        if self.rest.len() < n {
            return Err(Damaged(format!(
                "it ends inside an entry's {what} ({} of {n} bytes left)",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn varint(&mut self, what: &str) -> Result<u64, Damaged> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let [b] = self.take(1, what)? else {
                return Err(Damaged(format!("an entry's {what} is cut")));
            };
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(Damaged(format!("an entry's {what} is too long")))
    }

    fn signed(&mut self, what: &str) -> Result<i64, Damaged> {
        let n = self.varint(what)?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    fn len(&mut self, what: &str) -> Result<usize, Damaged> {
        usize::try_from(self.varint(what)?)
            .map_err(|_| Damaged(format!("an entry's {what} has an impossible length")))
    }

    /// Bytes written with [`put_optional`].
    fn optional(&mut self, what: &str) -> Result<Option<&'a [u8]>, Damaged> {
        match self.len(what)? {
            0 => Ok(None),
            n => self.take(n - 1, what).map(Some),
        }
    }

    fn text(bytes: &[u8], what: &str) -> Result<String, Damaged> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Damaged(format!("an entry's {what} is not UTF-8")))
    }
}

fn decode_binary(data: &[u8]) -> Result<Vec<InboxEntry>, Damaged> {
    let Some((&format, body)) = data.split_first() else {
        return Err(Damaged("it is empty".into()));
    };
    if format != FORMAT {
        return Err(Damaged(format!(
            "format {format} is unknown (this version reads format {FORMAT}); a newer version wrote it"
        )));
    }
    let mut r = Reader { rest: body };
    let count = r.len("count")?;
    if count == 0 {
        // Groups are never written empty.
        return Err(Damaged("it holds no saves".into()));
    }
    // Each entry takes at least 20 bytes: a count beyond that is damage, not a reason to
    // reserve memory.
    let mut out: Vec<InboxEntry> = Vec::with_capacity(count.min(body.len() / 20 + 1));
    let (mut id, mut seq) = (0i64, 0i64);
    for _ in 0..count {
        id = id.wrapping_add(r.signed("id")?);
        seq = seq.wrapping_add(r.signed("sequence number")?);
        let [codes] = r.take(1, "kind")? else {
            return Err(Damaged("an entry's kind is cut".into()));
        };
        let priority = i64::from(codes & 0b11);
        let kind = KINDS
            .get(usize::from((codes >> 2) & 0b111))
            .ok_or_else(|| Damaged(format!("entry {id} has an unknown kind")))?;
        let method = match METHODS.get(usize::from(codes >> 5)) {
            Some(&"") => match r.optional("method")? {
                Some(m) => Reader::text(m, "method")?,
                None => return Err(Damaged(format!("entry {id} has no method"))),
            },
            Some(m) => (*m).to_string(),
            None => return Err(Damaged(format!("entry {id} has an unknown method"))),
        };
        let mut key = [0u8; 16];
        key.copy_from_slice(r.take(16, "idempotency key")?);
        let path_len = r.len("path")?;
        let path = Reader::text(r.take(path_len, "path")?, "path")?;
        let (derived_stream, derived_coalesce) = derived(&path);
        let stream = match r.len("stream")? {
            0 => match out.last() {
                Some(previous) => previous.stream.clone(),
                None => return Err(Damaged(format!("entry {id} has no stream"))),
            },
            1 => derived_stream.ok_or_else(|| {
                Damaged(format!("entry {id}'s stream cannot follow from its path"))
            })?,
            n => Reader::text(r.take(n - 2, "stream")?, "stream")?,
        };
        let coalesce_key = match r.len("coalescing key")? {
            0 => None,
            1 => Some(derived_coalesce.ok_or_else(|| {
                Damaged(format!(
                    "entry {id}'s coalescing key cannot follow from its path"
                ))
            })?),
            n => Some(Reader::text(
                r.take(n - 2, "coalescing key")?,
                "coalescing key",
            )?),
        };
        let body = r.optional("body")?.map(<[u8]>::to_vec);
        out.push(InboxEntry {
            id,
            seq,
            bytes: entry_bytes(&path, body.as_deref()),
            priority,
            key: uuid::Uuid::from_bytes(key),
            method,
            kind: kind.as_str().to_string(),
            stream,
            coalesce_key,
            path,
            body,
        });
    }
    if !r.rest.is_empty() {
        return Err(Damaged(format!(
            "{} bytes follow its last entry",
            r.rest.len()
        )));
    }
    Ok(out)
}

/// An entry as earlier versions wrote it (JSON, in a TEXT row).
#[derive(serde::Deserialize)]
struct JsonEntry {
    id: i64,
    method: String,
    path: String,
    body: Option<String>,
    key: String,
    stream: String,
    seq: i64,
    priority: i64,
    kind: String,
    coalesce_key: Option<String>,
    bytes: u64,
}

fn decode_json(text: &[u8]) -> Result<Vec<InboxEntry>, Damaged> {
    let entries: Vec<JsonEntry> =
        serde_json::from_slice(text).map_err(|e| Damaged(format!("its JSON: {e}")))?;
    entries
        .into_iter()
        .map(|e| {
            Ok(InboxEntry {
                key: uuid::Uuid::parse_str(&e.key)
                    .map_err(|_| Damaged(format!("entry {} has no valid key", e.id)))?,
                id: e.id,
                method: e.method,
                path: e.path,
                body: e.body.map(String::into_bytes),
                stream: e.stream,
                seq: e.seq,
                priority: e.priority,
                kind: e.kind,
                coalesce_key: e.coalesce_key,
                bytes: e.bytes,
            })
        })
        .collect()
}

/// The entries of an inbox row's `entries` column.
pub fn decode(value: ValueRef<'_>) -> Result<Vec<InboxEntry>, Damaged> {
    match value {
        ValueRef::Blob(b) => decode_binary(b),
        ValueRef::Text(t) => decode_json(t),
        other => Err(Damaged(format!(
            "it holds {} instead of saves",
            other.data_type()
        ))),
    }
}

/// [`decode`] of column `idx` of a row, as a column conversion error if it cannot be read.
pub(crate) fn decode_column(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<Vec<InboxEntry>> {
    let value = row.get_ref(idx)?;
    let data_type = value.data_type();
    decode(value)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, data_type, Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, body: Option<&str>, coalesce: Option<&str>) -> InboxEntry {
        let path = format!("/v1/attempts/a/answers/q{id}");
        let body = body.map(|b| b.as_bytes().to_vec());
        InboxEntry {
            id,
            method: "PUT".into(),
            bytes: entry_bytes(&path, body.as_deref()),
            path,
            body,
            key: uuid::Uuid::now_v7(),
            stream: "attempt:a".into(),
            seq: id + 10,
            priority: 1,
            kind: "answer".into(),
            coalesce_key: coalesce.map(str::to_string),
        }
    }

    fn encode_all(entries: &[InboxEntry]) -> Vec<u8> {
        encode(
            entries.iter().map(|e| EntryRef {
                id: e.id,
                seq: e.seq,
                priority: Priority::from_db(e.priority),
                key: &e.key,
                method: &e.method,
                kind: Kind::from_db(&e.kind),
                stream: &e.stream,
                coalesce_key: e.coalesce_key.as_deref(),
                path: &e.path,
                body: e.body.as_deref(),
            }),
            0,
        )
    }

    #[test]
    fn entries_come_back_as_written() {
        let entries = vec![
            entry(
                1,
                Some(r#"{"value":"Xin chào \"thế giới\"\n","seq":11}"#),
                Some("answer:a:q1"),
            ),
            entry(2, None, None),
            entry(3, Some(""), Some("")),
        ];
        let data = encode_all(&entries);
        assert_eq!(decode(ValueRef::Blob(&data)).unwrap(), entries);
    }

    #[test]
    fn rows_written_as_json_by_earlier_versions_are_read() {
        let key = uuid::Uuid::now_v7();
        let text = format!(
            r#"[{{"id":7,"method":"PUT","path":"/v1/x","body":"{{\"value\":1}}","key":"{key}","stream":"attempt:a","seq":3,"priority":1,"kind":"answer","coalesce_key":"answer:a:q","bytes":140}}]"#
        );
        let got = decode(ValueRef::Text(text.as_bytes())).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key, key);
        assert_eq!(got[0].body.as_deref(), Some(&br#"{"value":1}"#[..]));
        assert_eq!((got[0].id, got[0].seq, got[0].bytes), (7, 3, 140));
    }

    #[test]
    fn a_damaged_row_is_named_not_guessed() {
        let one = encode_all(&[entry(1, Some("{}"), None)]);
        let data = encode_all(&[entry(1, Some("{}"), None), entry(2, Some("{}"), None)]);
        // Cut anywhere, including right after the first entry.
        for cut in [0, 1, 2, 10, one.len(), data.len() - 1] {
            let err = decode(ValueRef::Blob(&data[..cut]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("damaged"), "{err}");
        }
        let mut longer = data.clone();
        longer.push(0);
        let err = decode(ValueRef::Blob(&longer)).unwrap_err().to_string();
        assert!(err.contains("1 bytes follow"), "{err}");
        let mut newer = data.clone();
        newer[0] = 9;
        let err = decode(ValueRef::Blob(&newer)).unwrap_err().to_string();
        assert!(err.contains("format 9 is unknown"), "{err}");
        let err = decode(ValueRef::Integer(5)).unwrap_err().to_string();
        assert!(err.to_lowercase().contains("holds integer"), "{err}");
    }
}
