//! Big artifacts as content-addressed, compressed blobs, transparent to every reader.
//!
//! An artifact of a run (`runs/…/*.json`) whose JSON is at least [`BLOB_MIN_BYTES`] is stored
//! as a gzip blob under `blobs/<sha256>.json.gz`, and the artifact's own key holds a small
//! pointer document:
//!
//! ```json
//! {"zdsync_blob":{"key":"blobs/9f…e1.json.gz","sha256":"9f…e1","bytes":6798741},
//!  "head":{"instance":"global","as_of":"2026-12-01"}}
//! ```
//!
//! The leading scalar members of the artifact (`run_id`, `as_of`, `instance`, …: what differs
//! from run to run while the records are equal) stay in the pointer's `head`; the blob is the
//! artifact without them, so two runs over unchanged data share one blob and a quiet run writes
//! only pointers. Reading puts the same bytes back together: `{head members, blob members}` is
//! byte for byte the artifact that was written. A blob is written before its pointer, so no
//! reader sees a pointer whose blob is not there yet, and is not written again while it is
//! younger than [`BLOB_REFRESH_DAYS`]; an older one is renewed in place
//! ([`ArtifactStore::touch`]), so the bucket's expiry of `blobs/` (longer than the runs' by
//! that age) never removes a blob a kept run points to.

use std::io::{Read, Write};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Digest;

use super::{ArtifactStore, RUNS_PREFIX, StoreError};

/// Where blobs live, outside `runs/`.
pub const BLOBS_PREFIX: &str = "blobs/";

/// Artifacts of at least this many bytes of JSON are stored as blobs; smaller ones stay plain
/// JSON that people can read as they are.
pub const BLOB_MIN_BYTES: usize = 64 * 1024;

/// A blob older than this is renewed (its modification time set to now) when a new artifact
/// points to it. The bucket's lifecycle must keep blobs at least this much longer than runs
/// (`infra/template.yaml`: `BlobRetentionDays` ≥ `ArtifactRetentionDays` + this).
pub const BLOB_REFRESH_DAYS: i64 = 30;

/// Every pointer starts with these bytes (serde writes the fields in order); no artifact does.
const POINTER_START: &[u8] = b"{\"zdsync_blob\":";

/// The head's leading members are taken while they fit in this many bytes.
const MAX_HEAD_BYTES: usize = 4096;

/// What a pointer names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// The blob's key: `blobs/<sha256>.json.gz`.
    pub key: String,
    /// SHA-256 (hex) of the blob's uncompressed bytes.
    pub sha256: String,
    /// The blob's uncompressed size.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct Pointer<'a> {
    zdsync_blob: BlobRef,
    #[serde(borrow)]
    head: &'a RawValue,
}

/// Whether an artifact under `key` goes to a blob when it is [`BLOB_MIN_BYTES`] or more: only a
/// run's JSON artifacts, not the snapshots under `state/` nor `latest_run.json`, which the
/// `runs/` lifecycle rule does not expire.
pub fn may_be_blob(key: &str) -> bool {
    key.starts_with(RUNS_PREFIX) && key.ends_with(".json")
}

/// Whether stored bytes are a pointer to a blob.
pub fn is_pointer(body: &[u8]) -> bool {
    body.starts_with(POINTER_START)
}

/// The blob a stored pointer names, or `None` when the bytes are not a pointer.
pub fn pointer_target(key: &str, body: &[u8]) -> Result<Option<BlobRef>, StoreError> {
    if !is_pointer(body) {
        return Ok(None);
    }
    parse_pointer(key, body).map(|p| Some(p.zdsync_blob))
}

fn parse_pointer<'a>(key: &str, body: &'a [u8]) -> Result<Pointer<'a>, StoreError> {
    serde_json::from_slice(body).map_err(|err| StoreError::InvalidArtifact {
        key: key.to_owned(),
        path: ".".to_owned(),
        message: format!("a blob pointer that cannot be read: {err}"),
    })
}

/// Splits an artifact into its head (a JSON object of its leading scalar members, `{}` when
/// none) and the offset where the blob's members start (0: the blob is the whole artifact;
/// otherwise the blob is `{` and the artifact from there), so that the head and the blob give
/// the bytes back.
fn split(body: &[u8]) -> (Vec<u8>, usize) {
    let none = (b"{}".to_vec(), 0);
    if body.first() != Some(&b'{') {
        return none;
    }
    // The offset of the ',' after the last member taken (1: none taken).
    let mut end = 1;
    let mut pos = 1;
    while let Some(key_end) = value_end(body, pos).filter(|_| body.get(pos) == Some(&b'"')) {
        if body.get(key_end) != Some(&b':') {
            break;
        }
        let value = key_end + 1;
        if matches!(body.get(value), None | Some(b'{' | b'[')) {
            break;
        }
        let Some(value_end) = value_end(body, value) else {
            break;
        };
        // Only members followed by another: the rest always keeps one.
        if value_end > MAX_HEAD_BYTES || body.get(value_end) != Some(&b',') {
            break;
        }
        end = value_end;
        pos = value_end + 1;
    }
    if end == 1 {
        return none;
    }
    let mut head = body[..end].to_vec();
    head.push(b'}');
    (head, end + 1)
}

/// The offset just past the JSON value starting at `start`.
fn value_end(body: &[u8], start: usize) -> Option<usize> {
    let mut values =
        serde_json::Deserializer::from_slice(&body[start..]).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    Some(start + values.byte_offset())
}

/// The blob's bytes, in two pieces of the artifact (no copy of a big artifact is made).
fn content_parts(body: &[u8], rest: usize) -> [&[u8]; 2] {
    if rest == 0 {
        [b"", body]
    } else {
        [b"{", &body[rest..]]
    }
}

/// The start of an artifact whose blob follows: its head's members and a ',' (empty when the
/// head has none), to which the blob's bytes without their '{' are appended.
fn assembly_start(head: &[u8], capacity: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(head.len() + capacity);
    if head.len() > 2 {
        body.extend_from_slice(&head[..head.len() - 1]);
        body.push(b',');
    }
    body
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an artifact's encoder writes, as a blob's content: the first bytes are kept until the
/// head can be told ([`split`] over at least [`BLOB_MIN_BYTES`] reads the same as over the whole
/// artifact, since a head ends within [`MAX_HEAD_BYTES`]), then the content goes on to `inner` —
/// a hasher, or a compressor — and nothing else is held.
struct ContentSink<W> {
    kept: Vec<u8>,
    /// The head, once told.
    head: Option<Vec<u8>>,
    inner: W,
    /// The artifact's bytes written so far, and of them the blob's.
    artifact: u64,
    content: u64,
}

impl<W: Write> ContentSink<W> {
    fn new(inner: W) -> Self {
        ContentSink {
            kept: Vec::new(),
            head: None,
            inner,
            artifact: 0,
            content: 0,
        }
    }

    fn tell_head(&mut self) -> std::io::Result<()> {
        let (head, rest) = split(&self.kept);
        for part in content_parts(&self.kept, rest) {
            self.inner.write_all(part)?;
            self.content += part.len() as u64;
        }
        self.head = Some(head);
        self.kept = Vec::new();
        Ok(())
    }

    /// The artifact written whole: its head, what it went on to, and its own bytes when it is
    /// smaller than a blob (then `inner` has seen nothing).
    fn finish(mut self) -> std::io::Result<Encoded<W>> {
        if self.artifact >= BLOB_MIN_BYTES as u64 && self.head.is_none() {
            self.tell_head()?;
        }
        Ok(match self.head {
            Some(head) => Encoded::Blob {
                head,
                inner: self.inner,
                content: self.content,
            },
            None => Encoded::Small(self.kept),
        })
    }
}

impl<W: Write> Write for ContentSink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.artifact += buf.len() as u64;
        if self.head.is_some() {
            self.inner.write_all(buf)?;
            self.content += buf.len() as u64;
        } else {
            self.kept.extend_from_slice(buf);
            if self.kept.len() >= BLOB_MIN_BYTES {
                self.tell_head()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A hasher fed as a writer.
struct Hashing(sha2::Sha256);

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Encoded<W> {
    Blob {
        head: Vec<u8>,
        inner: W,
        content: u64,
    },
    Small(Vec<u8>),
}

/// Writes what `encode` writes as JSON under `key` (a run's artifact): as a blob (unless an
/// equal one is there) and the pointer to it, or as it is when it is smaller than a blob.
/// The artifact's bytes are never held whole: `encode` runs once into a hasher and, only when
/// the blob is not there yet, again into the compressor, so the stage holds what it encodes
/// from and the compressed blob. `encode` must write the same bytes each time. Returns the
/// bytes written: (key, bytes) for the blob when it was written, then the pointer.
pub(super) async fn write<E>(
    store: &dyn ArtifactStore,
    key: &str,
    encode: E,
) -> Result<Vec<(String, u64)>, StoreError>
where
    E: Fn(&mut dyn Write) -> std::io::Result<()> + Send + Sync + 'static,
{
    let encode = std::sync::Arc::new(encode);
    let unencodable = |err: std::io::Error| StoreError::Unencodable {
        key: key.to_owned(),
        message: err.to_string(),
    };
    // Encoding and hashing hundreds of megabytes is CPU work: off the async workers.
    let hashed = offload({
        let encode = encode.clone();
        move || {
            let mut sink = ContentSink::new(Hashing(sha2::Sha256::new()));
            encode(&mut sink)?;
            sink.finish()
        }
    })
    .await
    .map_err(unencodable)?;
    let (head, sha256, bytes) = match hashed {
        Encoded::Blob {
            head,
            inner,
            content,
        } => (head, hex(&inner.0.finalize()), content),
        Encoded::Small(body) => {
            let len = body.len() as u64;
            store.put(key, Bytes::from(body)).await?;
            return Ok(vec![(key.to_owned(), len)]);
        }
    };
    let blob_key = format!("{BLOBS_PREFIX}{sha256}.json.gz");
    let mut written = Vec::new();
    let now = chrono::Utc::now();
    let fresh = match store.modified(&blob_key).await? {
        Some(at) if now - at < chrono::Duration::days(BLOB_REFRESH_DAYS) => true,
        Some(_) => store.touch(&blob_key).await?,
        None => false,
    };
    if !fresh {
        // An artifact equal to a stored blob is not compressed again: a quiet run writes no
        // blob at all. JSON shrinks 10-16x at this level.
        let compressed = offload(move || {
            let encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(usize::try_from(bytes / 8).unwrap_or(0)),
                LEVEL,
            );
            let mut sink = ContentSink::new(encoder);
            encode(&mut sink)?;
            match sink.finish()? {
                Encoded::Blob { inner, content, .. } if content == bytes => inner.finish(),
                _ => Err(std::io::Error::other(
                    "the artifact encoded to other bytes the second time",
                )),
            }
        })
        .await
        .map_err(unencodable)?;
        let len = compressed.len() as u64;
        store.put(&blob_key, Bytes::from(compressed)).await?;
        written.push((blob_key.clone(), len));
    }
    let pointer = Pointer {
        zdsync_blob: BlobRef {
            key: blob_key,
            sha256,
            bytes,
        },
        head: serde_json::from_slice(&head).map_err(|err| StoreError::Unencodable {
            key: key.to_owned(),
            message: err.to_string(),
        })?,
    };
    let pointer = serde_json::to_vec(&pointer).map_err(|err| StoreError::Unencodable {
        key: key.to_owned(),
        message: err.to_string(),
    })?;
    written.push((key.to_owned(), pointer.len() as u64));
    store.put(key, Bytes::from(pointer)).await?;
    Ok(written)
}

/// How hard blobs are compressed: gzip's default level. A blob is written once and read by
/// every later run that points to it, and its bytes are what a run with few changes writes:
/// measured on 194 MB of Global organizations (zlib), level 6 gives 12.1 MB in 1.6 s, the
/// fastest level 17.0 MB in 0.7 s.
const LEVEL: flate2::Compression = flate2::Compression::new(6);

/// CPU-bound work off the async worker threads.
async fn offload<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(std::io::Error::new(std::io::ErrorKind::Interrupted, err)),
    }
}

/// The artifact a pointer stored under `key` stands for: its blob read, decompressed and
/// checked against the pointer's digest and size, and its head put back. A blob that is
/// missing, unreadable or not the one named is an [`StoreError::InvalidArtifact`] naming the
/// artifact and the blob. Returns the artifact and the blob's stored size.
pub(super) async fn resolve(
    store: &dyn ArtifactStore,
    key: &str,
    pointer: &[u8],
) -> Result<(Bytes, String, u64), StoreError> {
    let pointer = parse_pointer(key, pointer)?;
    let blob = pointer.zdsync_blob;
    let head = pointer.head.get().as_bytes().to_vec();
    let bad = |why: String| StoreError::InvalidArtifact {
        key: key.to_owned(),
        path: ".".to_owned(),
        message: format!("its blob {} {why}", blob.key),
    };
    if !blob.key.starts_with(BLOBS_PREFIX) {
        return Err(bad("is not under blobs/".to_owned()));
    }
    let Some(compressed) = store.get(&blob.key).await? else {
        return Err(bad(format!(
            "is missing from {} (expired, or deleted)",
            store.describe()
        )));
    };
    let stored = compressed.len() as u64;
    let expected = usize::try_from(blob.bytes).unwrap_or(0);
    // The blob is expanded straight after the head's members: no second copy of the artifact.
    let (mut body, start) = offload(move || {
        let mut body = assembly_start(&head, expected);
        let start = body.len();
        flate2::read::GzDecoder::new(compressed.as_ref()).read_to_end(&mut body)?;
        Ok((body, start))
    })
    .await
    .map_err(|err| bad(format!("is not a readable gzip file: {err}")))?;
    let content = &body[start..];
    if content.len() as u64 != blob.bytes {
        return Err(bad(format!(
            "holds {} bytes, not the {} its pointer names: it is corrupt",
            content.len(),
            blob.bytes
        )));
    }
    let digest = sha256_hex(content);
    if digest != blob.sha256 {
        return Err(bad(format!(
            "has SHA-256 {digest}, not the {} its pointer names: it is corrupt",
            blob.sha256
        )));
    }
    if start > 0 {
        // The blob's own '{': the head's members and their ',' stand before its members.
        if body.get(start) != Some(&b'{') {
            return Err(bad(
                "is not a JSON object, yet its pointer has a head".to_owned()
            ));
        }
        body.remove(start);
    }
    Ok((Bytes::from(body), blob.key, stored))
}

/// The JSON gzip-compressed bytes hold: a blob file read directly, or a compressed object
/// (a snapshot, `store::read_artifact`).
pub fn decompress(stored: &[u8]) -> std::io::Result<Vec<u8>> {
    // Sized from the gzip trailer's ISIZE (the size mod 2³², bounded by what such a ratio
    // allows): a 263 MB snapshot grown by doubling would take up to twice that.
    let size_hint = stored
        .last_chunk::<4>()
        .map_or(0, |isize| u32::from_le_bytes(*isize) as usize)
        .min(stored.len().saturating_mul(64));
    let mut content = Vec::with_capacity(size_hint);
    flate2::read::GzDecoder::new(stored).read_to_end(&mut content)?;
    Ok(content)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::store::{DirStore, read_artifact, read_json, write_encoded, write_json};

    /// A run's artifact well over the threshold: `{"run_id":…,"as_of":…,"orgs":[…]}`.
    fn big_artifact(run_id: &str, orgs: usize) -> serde_json::Value {
        serde_json::json!({
            "run_id": run_id,
            "as_of": "2026-12-01",
            "orgs": (0..orgs).map(|i| serde_json::json!({"id": i, "name": format!("Org {i}")})).collect::<Vec<_>>(),
        })
    }

    fn blob_files(root: &Path) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(root.join("blobs"))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    #[tokio::test]
    async fn a_big_artifact_is_a_pointer_to_a_blob_and_reads_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let value = big_artifact("r1", 5_000);
        let body = serde_json::to_vec(&value).unwrap();
        assert!(body.len() >= BLOB_MIN_BYTES);
        write_json(&store, "runs/r1/zendesk_global.json", &value)
            .await
            .unwrap();

        let on_disk = std::fs::read(dir.path().join("runs/r1/zendesk_global.json")).unwrap();
        assert!(
            is_pointer(&on_disk),
            "{}",
            String::from_utf8_lossy(&on_disk)
        );
        let pointer: serde_json::Value = serde_json::from_slice(&on_disk).unwrap();
        assert_eq!(
            pointer["head"],
            serde_json::json!({"run_id": "r1", "as_of": "2026-12-01"})
        );
        let blobs = blob_files(dir.path());
        assert_eq!(blobs.len(), 1);
        let named = pointer["zdsync_blob"]["key"].as_str().unwrap();
        assert!(blobs[0].ends_with(named));
        assert!(std::fs::metadata(&blobs[0]).unwrap().len() < body.len() as u64 / 4);
        // A person (or a tool) can read the blob with gzip alone.
        let content = decompress(&std::fs::read(&blobs[0]).unwrap()).unwrap();
        assert!(content.starts_with(b"{\"orgs\":["));

        let back = read_artifact(&store, "runs/r1/zendesk_global.json")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.as_ref(), body.as_slice());
        let typed: serde_json::Value = read_json(&store, "runs/r1/zendesk_global.json")
            .await
            .unwrap();
        assert_eq!(typed, value);
    }

    #[tokio::test]
    async fn an_equal_artifact_of_another_run_writes_only_its_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        write_json(&store, "runs/r1/a.json", &big_artifact("r1", 5_000))
            .await
            .unwrap();
        let blob = blob_files(dir.path()).remove(0);
        let first_write = std::fs::metadata(&blob).unwrap().modified().unwrap();

        // Another run, another run id in the head: the records are equal, the blob is shared.
        let ((), io) = crate::calls::in_stage(async {
            write_json(&store, "runs/r2/a.json", &big_artifact("r2", 5_000))
                .await
                .unwrap();
        })
        .await;
        assert_eq!(blob_files(dir.path()), std::slice::from_ref(&blob));
        assert_eq!(
            std::fs::metadata(&blob).unwrap().modified().unwrap(),
            first_write
        );
        let written: Vec<_> = io.artifacts.written.keys().cloned().collect();
        assert_eq!(written, ["runs/r2/a.json"]);
        assert!(io.artifacts.written["runs/r2/a.json"] < 400);
        let r2: serde_json::Value = read_json(&store, "runs/r2/a.json").await.unwrap();
        assert_eq!(r2, big_artifact("r2", 5_000));

        // Other records: another blob.
        write_json(&store, "runs/r3/a.json", &big_artifact("r3", 5_001))
            .await
            .unwrap();
        assert_eq!(blob_files(dir.path()).len(), 2);
    }

    #[tokio::test]
    async fn a_blob_past_the_refresh_age_is_renewed_when_pointed_to_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        write_json(&store, "runs/r1/a.json", &big_artifact("r1", 5_000))
            .await
            .unwrap();
        let blob = blob_files(dir.path()).remove(0);
        let old = SystemTime::now() - Duration::from_secs(86_400 * (BLOB_REFRESH_DAYS as u64 + 1));
        std::fs::File::options()
            .append(true)
            .open(&blob)
            .unwrap()
            .set_modified(old)
            .unwrap();
        write_json(&store, "runs/r2/a.json", &big_artifact("r2", 5_000))
            .await
            .unwrap();
        let renewed = std::fs::metadata(&blob).unwrap().modified().unwrap();
        assert!(renewed > old + Duration::from_secs(86_400), "{renewed:?}");
        assert_eq!(blob_files(dir.path()), [blob]);
    }

    #[tokio::test]
    async fn small_artifacts_state_and_other_files_stay_plain() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let small = big_artifact("r1", 10);
        write_json(&store, "runs/r1/small.json", &small)
            .await
            .unwrap();
        let big = serde_json::to_vec(&big_artifact("r1", 5_000)).unwrap();
        write_encoded(&store, "state/zendesk_global_orgs.json", big.clone())
            .await
            .unwrap();
        write_encoded(&store, "latest_run.json", big.clone())
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("runs/r1/small.json")).unwrap(),
            serde_json::to_vec(&small).unwrap()
        );
        assert_eq!(
            std::fs::read(dir.path().join("state/zendesk_global_orgs.json")).unwrap(),
            big
        );
        assert_eq!(
            std::fs::read(dir.path().join("latest_run.json")).unwrap(),
            big
        );
        assert!(blob_files(dir.path()).is_empty());
    }

    async fn unreadable(store: &DirStore, key: &str) -> String {
        match read_json::<serde_json::Value>(store, key).await {
            Err(err @ StoreError::InvalidArtifact { .. }) => {
                assert!(!err.is_retryable());
                err.to_string()
            }
            other => panic!("expected InvalidArtifact, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_or_corrupt_blob_names_the_artifact_and_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let key = "runs/r1/global_accounts.json";
        write_json(&store, key, &big_artifact("r1", 5_000))
            .await
            .unwrap();
        let blob = blob_files(dir.path()).remove(0);
        let blob_key = format!("blobs/{}", blob.file_name().unwrap().to_string_lossy());
        let good = std::fs::read(&blob).unwrap();

        // Another blob's bytes under this name: the digest says so.
        let other = {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let mut content = decompress(&good).unwrap();
            let at = content.len() - 10;
            content[at] = b'9';
            encoder.write_all(&content).unwrap();
            encoder.finish().unwrap()
        };
        std::fs::write(&blob, &other).unwrap();
        let message = unreadable(&store, key).await;
        assert!(
            message.starts_with(&format!(
                "artifact {key} is invalid at .: its blob {blob_key} has SHA-256 "
            )),
            "{message}"
        );
        assert!(message.contains("it is corrupt"), "{message}");

        std::fs::write(&blob, &good[..good.len() / 2]).unwrap();
        let message = unreadable(&store, key).await;
        assert!(message.contains(&blob_key), "{message}");
        assert!(message.contains("is not a readable gzip file"), "{message}");

        std::fs::remove_file(&blob).unwrap();
        let message = unreadable(&store, key).await;
        assert!(
            message.contains(&format!("its blob {blob_key} is missing from ")),
            "{message}"
        );

        // A pointer that is itself damaged.
        std::fs::write(dir.path().join(key), b"{\"zdsync_blob\":{\"key\":1}}").unwrap();
        let message = unreadable(&store, key).await;
        assert!(
            message.contains("a blob pointer that cannot be read"),
            "{message}"
        );
    }

    /// Writing as an encoder writes, in pieces of any size, stores what writing the whole
    /// bytes would: the same head (told from the first bytes only, even when a head member
    /// crosses the 4 KiB a head may take, or the bytes kept) and the same blob; an artifact
    /// smaller than a blob stays plain.
    #[tokio::test]
    async fn an_artifact_written_as_it_is_encoded_is_stored_as_its_whole_bytes_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let orgs = |n: usize| {
            (0..n)
                .map(|i| format!(r#"{{"id":{i},"name":"Org {i}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        let long = |n: usize| "x".repeat(n);
        let bodies = [
            format!(
                r#"{{"run_id":"r","as_of":"2026-12-01","orgs":[{}]}}"#,
                orgs(5_000)
            ),
            format!(
                r#"{{"note":"{}","n":12345,"orgs":[{}]}}"#,
                long(4_070),
                orgs(5_000)
            ),
            format!(
                r#"{{"note":"{}","n":12345,"orgs":[{}]}}"#,
                long(5_000),
                orgs(5_000)
            ),
            format!(r#"{{"note":"{}","orgs":[]}}"#, long(70_000)),
            format!(r#"{{"n":{},"orgs":[]}}"#, "9".repeat(66_000)),
            format!(r#"{{"run_id":"r","orgs":[{}]}}"#, orgs(10)),
            format!("[{}]", orgs(5_000)),
        ];
        for (n, body) in bodies.iter().enumerate() {
            let whole = format!("runs/whole/{n}.json");
            let pieces = format!("runs/pieces/{n}.json");
            write_encoded(&store, &whole, body.clone().into_bytes())
                .await
                .unwrap();
            let text = body.clone();
            let written = write(&store, &pieces, move |out| {
                for piece in text.as_bytes().chunks(997) {
                    out.write_all(piece)?;
                }
                Ok(())
            })
            .await
            .unwrap();
            let stored = |key: &str| std::fs::read(dir.path().join(key)).unwrap();
            let pointer = |key: &str| pointer_target(key, &stored(key)).unwrap();
            assert_eq!(pointer(&pieces), pointer(&whole), "body {n}");
            assert_eq!(pointer(&pieces).is_some(), body.len() >= BLOB_MIN_BYTES);
            if let Some(blob) = pointer(&pieces) {
                let head = |key: &str| {
                    let bytes = stored(key);
                    parse_pointer(key, &bytes).unwrap().head.get().to_owned()
                };
                assert_eq!(head(&pieces), head(&whole), "body {n}");
                assert_eq!(
                    head(&pieces).into_bytes(),
                    split(body.as_bytes()).0,
                    "body {n}"
                );
                // The blob was written by the whole write: the streamed one wrote its pointer.
                assert_eq!(written, [(pieces.clone(), stored(&pieces).len() as u64)]);
                assert!(dir.path().join(&blob.key).exists());
            }
            let back = read_artifact(&store, &pieces).await.unwrap().unwrap();
            assert_eq!(back, body.as_bytes(), "body {n}");
        }
    }

    /// An encoder that writes other bytes when asked again (for the compressed blob) fails the
    /// write, and leaves neither a blob nor a pointer; one that fails leaves the old artifact.
    #[tokio::test]
    async fn an_encoder_that_changes_its_mind_or_fails_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path());
        let key = "runs/r1/zendesk_global.json";
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let err = write(&store, key, move |out| {
            let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = big_artifact(&format!("r{call}"), 4_000 + call).to_string();
            out.write_all(body.as_bytes())
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("other bytes the second time"),
            "{err}"
        );
        assert!(blob_files(dir.path()).is_empty());
        assert!(!dir.path().join(key).exists());

        write_json(&store, key, &big_artifact("r1", 4_000))
            .await
            .unwrap();
        let err = write(&store, key, |out| {
            out.write_all(b"{\"orgs\":[")?;
            Err(std::io::Error::other("a record cannot be encoded"))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Unencodable { .. }), "{err}");
        let back: serde_json::Value = read_json(&store, key).await.unwrap();
        assert_eq!(back, big_artifact("r1", 4_000));
    }

    fn round_trip(body: &str) -> (String, String) {
        let (head, rest) = split(body.as_bytes());
        let content = content_parts(body.as_bytes(), rest).concat();
        let mut back = assembly_start(&head, content.len());
        let start = back.len();
        back.extend_from_slice(&content);
        if start > 0 {
            back.remove(start);
        }
        assert_eq!(String::from_utf8(back).unwrap(), body);
        (
            String::from_utf8(head).unwrap(),
            String::from_utf8(content).unwrap(),
        )
    }

    #[test]
    fn leading_scalars_go_to_the_head_and_join_gives_the_bytes_back() {
        assert_eq!(
            round_trip(r#"{"instance":"global","as_of":"2026-12-01","orgs":[{"id":1}],"n":2}"#),
            (
                r#"{"instance":"global","as_of":"2026-12-01"}"#.to_owned(),
                r#"{"orgs":[{"id":1}],"n":2}"#.to_owned()
            )
        );
        // Numbers, escapes, null; the last member always stays in the blob.
        assert_eq!(
            round_trip(r#"{"a\"b":1.5e3,"c":null,"d":"x\u00e9"}"#),
            (
                r#"{"a\"b":1.5e3,"c":null}"#.to_owned(),
                r#"{"d":"x\u00e9"}"#.to_owned()
            )
        );
        for plain in [
            r#"{"orgs":[],"as_of":"2026-12-01"}"#,
            r#"{"only":"one"}"#,
            "{}",
            "[1,2,3]",
            "not json at all",
            "",
            r#"{ "spaced": 1, "x": 2}"#,
        ] {
            let (head, content) = round_trip(plain);
            assert_eq!(head, "{}");
            assert_eq!(content, plain);
        }
    }

    #[test]
    fn pointers_are_recognised_by_their_first_bytes() {
        assert!(is_pointer(br#"{"zdsync_blob":{}}"#));
        assert!(!is_pointer(br#"{"instance":"global","zdsync_blob":1}"#));
        assert!(may_be_blob("runs/r1/zendesk_global.json"));
        assert!(!may_be_blob("state/zendesk_global_orgs.json"));
        assert!(!may_be_blob("runs/r1/report.md"));
        assert!(!may_be_blob("latest_run.json"));
    }
}
