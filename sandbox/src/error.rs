use std::path::PathBuf;

/// Why a fixture cannot be loaded into the emulator.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read fixture {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fixture {path} is not valid fixture JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("fixture zendesk.{instance}.{collection}[{index}]: {reason}")]
    Record {
        instance: String,
        collection: &'static str,
        index: usize,
        reason: String,
    },
    #[error("fixture zendesk.{instance}: {reason}")]
    Fields { instance: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// Why a sandbox cannot start or accept a setting.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid faults: {0}")]
    Faults(String),
    #[error("waiting for Ctrl-C failed: {0}")]
    Signal(std::io::Error),
}
