//! The one error type of the artifact store, shared by both backends so stages can tell a
//! missing artifact from a corrupt one and a transient outage from a permanent misconfiguration.

use std::io;
use std::path::PathBuf;

/// Why an artifact store operation failed.
///
/// No variant carries credentials: S3 errors keep only the operation, the object location, the
/// service's error code and message, or the SDK's error chain, none of which contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A required artifact does not exist (an earlier stage did not write it).
    #[error("artifact {key} is missing")]
    Missing { key: String },

    /// An artifact exists but is not valid JSON or does not have the expected shape (SPEC §10).
    /// `path` is the JSON path where reading failed (`orgs[3].id`, `.` for the document root).
    #[error("artifact {key} is invalid at {path}: {message}")]
    InvalidArtifact {
        key: String,
        path: String,
        message: String,
    },

    /// A value could not be encoded as JSON, so nothing was written.
    #[error("cannot encode artifact {key} as JSON: {message}")]
    Unencodable { key: String, message: String },

    /// A key or key prefix that could escape its place in the store or that a backend cannot hold.
    #[error("invalid artifact key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },

    /// A run id that is not a Step Functions execution name this project accepts.
    #[error("invalid run id {run_id:?}: {reason}")]
    InvalidRunId { run_id: String, reason: String },

    /// A store location (`s3://bucket/prefix`, a path or a `file://` URL) that cannot be used.
    #[error("invalid artifact store location {value:?}: {reason}")]
    InvalidLocation { value: String, reason: String },

    /// The local filesystem failed.
    #[error("{operation} {}: {source}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// S3 failed (after the SDK's own retries). `location` is `s3://bucket/key` or
    /// `s3://bucket/prefix` for a listing.
    #[error("S3 {operation} {location} failed: {message}")]
    S3 {
        operation: &'static str,
        location: String,
        /// The S3 error code (`AccessDenied`, `NoSuchBucket`, `SlowDown`, …) when the service sent one.
        code: Option<String>,
        /// The HTTP status when a response arrived.
        status: Option<u16>,
        message: String,
        retryable: bool,
    },
}

impl StoreError {
    /// Whether repeating the operation later may succeed: throttling, 5xx, timeouts and dropped
    /// connections are; a missing or invalid artifact, a bad key, AccessDenied or NoSuchBucket
    /// are not. Stages map this onto the `Retryable` error name of SPEC §11.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::S3 { retryable, .. } => *retryable,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::WouldBlock
                    | io::ErrorKind::ResourceBusy
            ),
            StoreError::Missing { .. }
            | StoreError::InvalidArtifact { .. }
            | StoreError::Unencodable { .. }
            | StoreError::InvalidKey { .. }
            | StoreError::InvalidRunId { .. }
            | StoreError::InvalidLocation { .. } => false,
        }
    }

    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            operation,
            path: path.into(),
            source,
        }
    }
}
