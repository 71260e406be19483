//! Encoding an artifact whose one big array is written an element at a time, so a stage never
//! holds every element at once (the desired orgs of 200 000 accounts, every org of an instance).

use serde::Serialize;

/// `{<head's fields>, "<array>": [<items>], <tail's fields>}` — byte for byte what serde writes
/// for a struct with those fields in that order (`head` and `tail` are structs of the fields
/// before and after the array, with the same serde attributes).
pub struct StreamedArtifact {
    body: Vec<u8>,
    items: usize,
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
        let mut body = Vec::with_capacity(bytes);
        serde_json::to_writer(&mut body, head)?;
        assert_eq!(body.pop(), Some(b'}'), "the head is a struct");
        if body.len() > 1 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, array)?;
        body.extend_from_slice(b":[");
        Ok(StreamedArtifact { body, items: 0 })
    }

    pub fn push(&mut self, item: &impl Serialize) -> Result<(), serde_json::Error> {
        if self.items > 0 {
            self.body.push(b',');
        }
        serde_json::to_writer(&mut self.body, item)?;
        self.items += 1;
        Ok(())
    }

    /// Items pushed so far.
    pub fn items(&self) -> usize {
        self.items
    }

    pub fn finish(mut self, tail: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
        let tail = serde_json::to_vec(tail)?;
        self.body.push(b']');
        if tail.len() > 2 {
            self.body.push(b',');
        }
        self.body.extend_from_slice(&tail[1..]);
        Ok(self.body)
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
        let mut bare = StreamedArtifact::begin(&Nothing {}, "items").unwrap();
        bare.push(&1).unwrap();
        assert_eq!(bare.finish(&Nothing {}).unwrap(), br#"{"items":[1]}"#);
    }
}
