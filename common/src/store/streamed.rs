//! Encoding an artifact whose one big array is written an element at a time, so a stage never
//! holds every element at once (the desired orgs of 200 000 accounts, every org of an instance).

use std::io::Write;
use std::ops::Range;

use serde::Serialize;

/// `{<head's fields>, "<array>": [<items>], <tail's fields>}` — byte for byte what serde writes
/// for a struct with those fields in that order (`head` and `tail` are structs of the fields
/// before and after the array, with the same serde attributes). Into a buffer, or into any
/// writer (`begin_into`: the bytes go on as they are made, e.g. to a blob's hasher).
pub struct StreamedArtifact<W: Write = Vec<u8>> {
    out: Counted<W>,
    items: usize,
    /// Where the array's first item starts (just after its `[`).
    array_start: usize,
}

/// A writer and how many bytes went to it: where each item's bytes are.
struct Counted<W> {
    inner: W,
    written: usize,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl StreamedArtifact {
    pub fn begin(
        head: &impl Serialize,
        array: &str,
    ) -> Result<StreamedArtifact, serde_json::Error> {
        StreamedArtifact::begin_sized(head, array, 0)
    }

    /// As [`StreamedArtifact::begin`], for an artifact of about `bytes`: the buffer is made that
    /// big at once, rather than doubled to up to twice the artifact on the way.
    pub fn begin_sized(
        head: &impl Serialize,
        array: &str,
        bytes: usize,
    ) -> Result<StreamedArtifact, serde_json::Error> {
        StreamedArtifact::begin_into(Vec::with_capacity(bytes), head, array)
    }

    /// The bytes of an item pushed, by the range [`StreamedArtifact::push`] answered.
    pub fn item(&self, at: Range<usize>) -> &[u8] {
        &self.out.inner[at]
    }

    /// Keeps only the items (`items`: every item's range, in push order) for which `keep`
    /// holds — a rare correction after the fact, which copies the array once.
    pub fn retain(&mut self, items: &[Range<usize>], keep: impl Fn(usize) -> bool) {
        assert_eq!(items.len(), self.items, "every item's range, in push order");
        let old = &self.out.inner;
        let mut body = Vec::with_capacity(old.len());
        body.extend_from_slice(&old[..self.array_start]);
        let mut kept = 0;
        for (index, at) in items.iter().enumerate() {
            if keep(index) {
                if kept > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&old[at.clone()]);
                kept += 1;
            }
        }
        self.out.written = body.len();
        self.out.inner = body;
        self.items = kept;
    }
}

impl<W: Write> StreamedArtifact<W> {
    /// Begins the artifact in `out`.
    pub fn begin_into(
        out: W,
        head: &impl Serialize,
        array: &str,
    ) -> Result<StreamedArtifact<W>, serde_json::Error> {
        let mut opening = serde_json::to_vec(head)?;
        assert_eq!(opening.pop(), Some(b'}'), "the head is a struct");
        if opening.len() > 1 {
            opening.push(b',');
        }
        serde_json::to_writer(&mut opening, array)?;
        opening.extend_from_slice(b":[");
        let mut out = Counted {
            inner: out,
            written: 0,
        };
        out.write_all(&opening).map_err(serde_json::Error::io)?;
        Ok(StreamedArtifact {
            array_start: out.written,
            out,
            items: 0,
        })
    }

    /// Appends an item; answers where its bytes are (for [`StreamedArtifact::item`] and
    /// [`StreamedArtifact::retain`]).
    pub fn push(&mut self, item: &impl Serialize) -> Result<Range<usize>, serde_json::Error> {
        self.separate()?;
        let start = self.out.written;
        serde_json::to_writer(&mut self.out, item)?;
        self.items += 1;
        Ok(start..self.out.written)
    }

    /// Appends an item already encoded as JSON (a snapshot's record), as it is.
    pub fn push_json(&mut self, json: &str) -> Result<(), serde_json::Error> {
        self.separate()?;
        self.out
            .write_all(json.as_bytes())
            .map_err(serde_json::Error::io)?;
        self.items += 1;
        Ok(())
    }

    fn separate(&mut self) -> Result<(), serde_json::Error> {
        if self.items > 0 {
            self.out.write_all(b",").map_err(serde_json::Error::io)?;
        }
        Ok(())
    }

    /// Items pushed so far.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Ends the array, writes the tail's fields and gives the writer back.
    pub fn finish(mut self, tail: &impl Serialize) -> Result<W, serde_json::Error> {
        let tail = serde_json::to_vec(tail)?;
        let mut closing = vec![b']'];
        if tail.len() > 2 {
            closing.push(b',');
        }
        closing.extend_from_slice(&tail[1..]);
        self.out
            .write_all(&closing)
            .map_err(serde_json::Error::io)?;
        Ok(self.out.inner)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[derive(Serialize)]
    struct Whole {
        a: u32,
        b: &'static str,
        items: Vec<Value>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        c: Vec<u32>,
    }

    #[derive(Serialize)]
    struct Head {
        a: u32,
        b: &'static str,
    }

    #[derive(Serialize)]
    struct Tail {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        c: Vec<u32>,
    }

    #[derive(Serialize)]
    struct Nothing {}

    #[test]
    fn the_bytes_are_serdes() {
        for (items, c) in [
            (vec![], vec![]),
            (vec![json!({"x": "é \"q\""})], vec![]),
            (vec![json!(1), json!({"y": [null, true]})], vec![7, 8]),
        ] {
            let mut streamed = StreamedArtifact::begin(&Head { a: 1, b: "two" }, "items").unwrap();
            for item in &items {
                streamed.push(item).unwrap();
            }
            assert_eq!(streamed.items(), items.len());
            let bytes = streamed.finish(&Tail { c: c.clone() }).unwrap();
            let whole = serde_json::to_vec(&Whole {
                a: 1,
                b: "two",
                items,
                c,
            })
            .unwrap();
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
        // Into another writer, items already encoded written as they are.
        let mut into = StreamedArtifact::begin_into(
            std::io::Cursor::new(Vec::new()),
            &Head { a: 2, b: "w" },
            "items",
        )
        .unwrap();
        into.push_json(r#"{"pre":"encoded"}"#).unwrap();
        into.push(&json!(3)).unwrap();
        let written = into.finish(&Tail { c: vec![1] }).unwrap().into_inner();
        assert_eq!(
            written,
            br#"{"a":2,"b":"w","items":[{"pre":"encoded"},3],"c":[1]}"#
        );
        let mut bare = StreamedArtifact::begin(&Nothing {}, "items").unwrap();
        bare.push(&1).unwrap();
        assert_eq!(bare.finish(&Nothing {}).unwrap(), br#"{"items":[1]}"#);
    }

    #[test]
    fn items_dropped_after_the_fact_leave_the_bytes_serde_writes_for_the_rest() {
        let items = [json!({"k": 1}), json!("two"), json!([3]), json!(null)];
        for dropped in [vec![], vec![0], vec![1, 2], vec![3], vec![0, 1, 2, 3]] {
            let mut streamed = StreamedArtifact::begin(&Head { a: 1, b: "x" }, "items").unwrap();
            let ranges: Vec<_> = items.iter().map(|i| streamed.push(i).unwrap()).collect();
            assert_eq!(streamed.item(ranges[1].clone()), br#""two""#);
            streamed.retain(&ranges, |index| !dropped.contains(&index));
            let kept: Vec<Value> = (0..items.len())
                .filter(|index| !dropped.contains(index))
                .map(|index| items[index].clone())
                .collect();
            assert_eq!(streamed.items(), kept.len());
            let bytes = streamed.finish(&Tail { c: vec![] }).unwrap();
            let whole = serde_json::to_vec(&Whole {
                a: 1,
                b: "x",
                items: kept,
                c: vec![],
            })
            .unwrap();
            assert_eq!(bytes, whole, "dropped {dropped:?}");
        }
    }
}
