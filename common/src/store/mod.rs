//! The artifact store: where every stage reads and writes the JSON artifacts of a run
//! (`runs/{run_id}/…`, SPEC §2).
//!
//! [`ArtifactStore`] is the port; [`S3Store`] (the cloud) and [`DirStore`] (local runs and
//! tests) are its two real implementations and behave the same for every valid key. Stages use
//! the typed helpers [`read_json`], [`read_json_opt`] and [`write_json`], which turn a corrupt
//! artifact into [`StoreError::InvalidArtifact`] naming the key and the JSON path (SPEC §10).
//! Through them, a run's big artifacts are stored as compressed, content-addressed blobs behind
//! small pointers ([`blob`]); [`read_artifact`] gives any artifact's bytes as they were written.

pub mod blob;
mod dir;
mod error;
mod key;
mod location;
mod s3;
mod streamed;

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use dir::DirStore;
pub use error::StoreError;
pub use key::{
    MAX_KEY_BYTES, RUNS_PREFIX, RunKeys, artifact_key, validate_key, validate_prefix,
    validate_run_id,
};
pub use location::{StoreUrl, open_store};
pub use s3::{S3Location, S3Store};
pub use streamed::StreamedArtifact;

/// A flat namespace of objects addressed by relative keys (see [`validate_key`]).
///
/// Object-safe so a stage context can hold an `Arc<dyn ArtifactStore>` whichever backend is
/// configured. Every method validates its key or prefix first and fails with
/// [`StoreError::InvalidKey`] before touching the backend.
#[async_trait::async_trait]
pub trait ArtifactStore: fmt::Debug + Send + Sync {
    /// The object's bytes, or `None` when no object has this key.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Creates or replaces the object. Readers see either the old or the new content, never a
    /// mix (S3 guarantees this; the directory store renames a complete temporary file).
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError>;

    /// Every key starting with `prefix` (a plain string prefix, as on S3: `runs/a` matches
    /// `runs/ab/x.json`), sorted by byte order. Objects whose names are not valid keys (put
    /// there by something else) are left out, so every listed key can be read back.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// When the object was last written, or `None` when no object has this key: how old a
    /// gathered artifact (and so a plan made from it) is.
    async fn modified(
        &self,
        key: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;

    /// Sets the object's modification time to now without sending its bytes again (a blob an
    /// artifact points to again, so the lifecycle expiry counts from now); `false` when no
    /// object has this key. The default reads and writes the object back.
    async fn touch(&self, key: &str) -> Result<bool, StoreError> {
        match self.get(key).await? {
            Some(body) => self.put(key, body).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Where the store is, for logs and error messages: `s3://bucket/prefix` or a directory.
    fn describe(&self) -> String;
}

/// Reads and decodes a required artifact: [`StoreError::Missing`] when it does not exist,
/// [`StoreError::InvalidArtifact`] when it is not JSON of type `T`.
pub async fn read_json<T: DeserializeOwned>(
    store: &dyn ArtifactStore,
    key: &str,
) -> Result<T, StoreError> {
    read_json_opt(store, key)
        .await?
        .ok_or_else(|| StoreError::Missing {
            key: key.to_owned(),
        })
}

/// Like [`read_json`], but an artifact that does not exist is `Ok(None)` (optional inputs, and
/// checking whether a redriven stage already wrote its output).
pub async fn read_json_opt<T: DeserializeOwned>(
    store: &dyn ArtifactStore,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match read_artifact(store, key).await? {
        Some(body) => decode_json(key, &body).map(Some),
        None => Ok(None),
    }
}

/// An artifact's bytes as they were written, or `None` when it does not exist: a pointer to a
/// blob ([`blob`]) is resolved, its blob checked against the pointer's digest. A blob that is
/// missing or corrupt is [`StoreError::InvalidArtifact`] naming the artifact and the blob.
/// Every reader of artifacts (stages, `explain`, `report`, the cli) reads through this.
pub async fn read_artifact(
    store: &dyn ArtifactStore,
    key: &str,
) -> Result<Option<Bytes>, StoreError> {
    let Some(body) = store.get(key).await? else {
        return Ok(None);
    };
    crate::calls::artifact(key, body.len() as u64, false);
    if is_compressed(key) {
        return inflate(key, &body).map(|json| Some(Bytes::from(json)));
    }
    if !blob::is_pointer(&body) {
        return Ok(Some(body));
    }
    let (artifact, blob_key, stored) = blob::resolve(store, key, &body).await?;
    crate::calls::artifact(&blob_key, stored, false);
    Ok(Some(artifact))
}

/// Whether objects under `key` hold their JSON gzip-compressed (`….json.gz`: the snapshots
/// under `state/`, hundreds of MB of JSON that shrink 7–10×).
pub fn is_compressed(key: &str) -> bool {
    key.ends_with(".json.gz")
}

/// How hard compressed objects (the snapshots) are compressed: gzip's fastest level. A
/// snapshot is written whole by every full read and every change it takes in, and read by the
/// next run only: speed counts more than the last few MB (194 MB of Global organizations,
/// zlib: 17.0 MB in 0.7 s, against 12.1 MB in 1.6 s at the default level).
const SNAPSHOT_LEVEL: flate2::Compression = flate2::Compression::fast();

/// The JSON a compressed object holds.
fn inflate(key: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    blob::decompress(stored).map_err(|err| StoreError::InvalidArtifact {
        key: key.to_owned(),
        path: ".".into(),
        message: format!("not a readable gzip file: {err}"),
    })
}

/// Encodes `value` as compact JSON compressed as it is encoded (the JSON itself is never held
/// whole), into a buffer made about `json_bytes / 5` big, and stores it under `key` (a
/// `….json.gz` key). As with [`write_json`], nothing is written unless all of it encoded.
pub async fn write_json_compressed<T: Serialize + ?Sized>(
    store: &dyn ArtifactStore,
    key: &str,
    value: &T,
    json_bytes: usize,
) -> Result<(), StoreError> {
    debug_assert!(is_compressed(key), "{key} names a compressed object");
    let unencodable = |message: String| StoreError::Unencodable {
        key: key.to_owned(),
        message,
    };
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(json_bytes / 5 + 4096), SNAPSHOT_LEVEL);
    serde_json::to_writer(&mut encoder, value).map_err(|e| unencodable(e.to_string()))?;
    let body = encoder.finish().map_err(|e| unencodable(e.to_string()))?;
    put_counted(store, key, body).await
}

/// Encodes `value` as compact JSON and stores it under `key`. The value is encoded completely
/// before anything is written, so a value that fails to encode leaves the old artifact intact.
pub async fn write_json<T: Serialize + ?Sized>(
    store: &dyn ArtifactStore,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    if is_compressed(key) {
        return write_json_compressed(store, key, value, 0).await;
    }
    let body = serde_json::to_vec(value).map_err(|err| StoreError::Unencodable {
        key: key.to_owned(),
        message: err.to_string(),
    })?;
    write_encoded(store, key, body).await
}

/// Writes an artifact already encoded as JSON (by an encoder that streams it). A run's
/// artifact of [`blob::BLOB_MIN_BYTES`] or more is written as a blob (once: an equal blob is
/// not written again) and a pointer to it; any other is written as it is.
pub async fn write_encoded(
    store: &dyn ArtifactStore,
    key: &str,
    body: Vec<u8>,
) -> Result<(), StoreError> {
    if blob::may_be_blob(key) {
        return write_streamed(store, key, move |out| out.write_all(&body)).await;
    }
    put_counted(store, key, body).await
}

/// Writes the artifact `encode` writes as JSON, without its bytes ever being held whole when
/// it goes to a blob (see [`write_encoded`]): `encode` runs once to hash it and once more to
/// compress it when no equal blob is there, so it must write the same bytes each time. Any
/// other artifact is encoded whole first; as with [`write_json`], nothing is written unless all
/// of it encoded.
pub async fn write_streamed<E>(
    store: &dyn ArtifactStore,
    key: &str,
    encode: E,
) -> Result<(), StoreError>
where
    E: Fn(&mut dyn std::io::Write) -> std::io::Result<()> + Send + Sync + 'static,
{
    if blob::may_be_blob(key) {
        for (written, bytes) in blob::write(store, key, encode).await? {
            crate::calls::artifact(&written, bytes, true);
        }
        return Ok(());
    }
    let mut body = Vec::new();
    encode(&mut body).map_err(|err| StoreError::Unencodable {
        key: key.to_owned(),
        message: err.to_string(),
    })?;
    put_counted(store, key, body).await
}

/// Stores `body` under `key` as it is, and counts the bytes written.
async fn put_counted(
    store: &dyn ArtifactStore,
    key: &str,
    body: Vec<u8>,
) -> Result<(), StoreError> {
    let bytes = body.len() as u64;
    store.put(key, Bytes::from(body)).await?;
    crate::calls::artifact(key, bytes, true);
    Ok(())
}

/// Decodes an artifact's bytes as `T`, reporting where and why it failed. Exposed for callers
/// that obtained the bytes some other way (e.g. an overrides file fetched from a URL).
pub fn decode_json<'a, T: Deserialize<'a>>(key: &str, body: &'a [u8]) -> Result<T, StoreError> {
    let invalid = |err: serde_path_to_error::Error<serde_json::Error>| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let what = match inner.classify() {
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Eof => "not valid JSON (it ends early)",
            serde_json::error::Category::Data => "does not match the expected structure",
            // The deserializer reads from a slice, so there is no I/O to fail; kept for
            // completeness of the match.
            serde_json::error::Category::Io => "could not be read",
        };
        StoreError::InvalidArtifact {
            key: key.to_owned(),
            path,
            message: format!("{what}: {inner}"),
        }
    };
    // The fast path: plain serde_json, which also rejects trailing content. Only an artifact
    // that fails is decoded again with path tracking, to name where (tracking every element's
    // path costs about as much as the parse itself).
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(invalid)?;
    // A valid document followed by more content (two writers, a truncated rewrite) is as
    // corrupt as a syntax error.
    deserializer
        .end()
        .map_err(|err| StoreError::InvalidArtifact {
            key: key.to_owned(),
            path: ".".to_owned(),
            message: format!("not valid JSON (content after the document): {err}"),
        })?;
    Ok(value)
}
