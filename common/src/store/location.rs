//! Choosing a store from one configuration value: `s3://bucket/prefix` in the cloud, a
//! directory (a path or a `file://` URL) for local runs.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use aws_config::SdkConfig;

use super::{ArtifactStore, DirStore, S3Location, S3Store, StoreError};

/// Where the artifacts are, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    S3(S3Location),
    /// An absolute directory path (relative paths are resolved when parsed, so logs show
    /// where the files really are).
    Dir(PathBuf),
}

impl StoreUrl {
    /// Parses `s3://bucket[/prefix]`, `file:///absolute/path` or a filesystem path.
    pub fn parse(value: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidLocation {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        if value.trim().is_empty() {
            return Err(invalid("is empty"));
        }
        if let Some(scheme) = url_scheme(value) {
            // Anything that starts like a URL is one, never a relative path, so a typo such as
            // `s4://bucket` or `s3:/bucket` fails instead of creating a directory named `s4:`.
            if scheme.eq_ignore_ascii_case("s3") {
                return S3Location::parse(value).map(StoreUrl::S3);
            }
            if scheme.eq_ignore_ascii_case("file") {
                let url = ::url::Url::parse(value).map_err(|err| invalid(&err.to_string()))?;
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(invalid("a file URL takes no query or fragment"));
                }
                return url.to_file_path().map(StoreUrl::Dir).map_err(|()| {
                    invalid("a file URL names an absolute local path: file:///path/to/artifacts")
                });
            }
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?}; use s3://bucket/prefix, file:///path or a directory path"
            )));
        }
        std::path::absolute(value)
            .map(StoreUrl::Dir)
            .map_err(|err| invalid(&format!("cannot resolve the directory: {err}")))
    }

    /// Opens the store. For S3 the AWS configuration comes from the environment
    /// ([`aws_config::load_from_env`]: credentials, region, `AWS_ENDPOINT_URL_S3`); it is only
    /// loaded for S3, so local runs never wait for credential or region discovery.
    pub async fn open(&self) -> Arc<dyn ArtifactStore> {
        match self {
            StoreUrl::S3(location) => Arc::new(S3Store::from_env(location.clone()).await),
            StoreUrl::Dir(path) => Arc::new(DirStore::new(path.clone())),
        }
    }

    /// Opens the store with AWS configuration the caller already loaded (a Lambda function
    /// loads it once per process and shares it between clients).
    pub fn open_with(&self, sdk_config: &SdkConfig) -> Arc<dyn ArtifactStore> {
        match self {
            StoreUrl::S3(location) => {
                Arc::new(S3Store::from_sdk_config(sdk_config, location.clone()))
            }
            StoreUrl::Dir(path) => Arc::new(DirStore::new(path.clone())),
        }
    }
}

/// The scheme of a value that starts like a URL (`scheme:` before any '/'), per RFC 3986:
/// a letter, then letters, digits, '+', '-' or '.'.
fn url_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once(':')?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (starts_with_letter && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(scheme)
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        StoreUrl::parse(value)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::S3(location) => location.fmt(f),
            StoreUrl::Dir(path) => path.display().fmt(f),
        }
    }
}

/// Parses `value` (see [`StoreUrl::parse`]) and opens the store it names.
pub async fn open_store(value: &str) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    Ok(StoreUrl::parse(value)?.open().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(value: &str) -> String {
        match StoreUrl::parse(value) {
            Err(StoreError::InvalidLocation { value: v, reason }) => {
                assert_eq!(v, value);
                reason
            }
            other => panic!("{value:?} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn s3_urls_become_s3_locations() {
        assert_eq!(
            StoreUrl::parse("s3://zdsync-artifacts/prod").unwrap(),
            StoreUrl::S3(S3Location::new("zdsync-artifacts", "prod").unwrap())
        );
        assert_eq!(
            "s3://zdsync-artifacts"
                .parse::<StoreUrl>()
                .unwrap()
                .to_string(),
            "s3://zdsync-artifacts"
        );
        assert!(reason("s3://Bad_Bucket").contains("bucket name"));
    }

    #[test]
    fn paths_and_file_urls_become_absolute_directories() {
        assert_eq!(
            StoreUrl::parse("/var/lib/zdsync").unwrap(),
            StoreUrl::Dir(PathBuf::from("/var/lib/zdsync"))
        );
        assert_eq!(
            StoreUrl::parse("file:///var/lib/zd%20sync").unwrap(),
            StoreUrl::Dir(PathBuf::from("/var/lib/zd sync"))
        );
        assert_eq!(
            StoreUrl::parse("file:/tmp/a").unwrap(),
            StoreUrl::Dir(PathBuf::from("/tmp/a"))
        );
        // A colon after the first '/' is just part of a path.
        assert_eq!(
            StoreUrl::parse("/tmp/run:1").unwrap(),
            StoreUrl::Dir(PathBuf::from("/tmp/run:1"))
        );
        assert_eq!(
            StoreUrl::parse("file://localhost/tmp/a").unwrap(),
            StoreUrl::Dir(PathBuf::from("/tmp/a"))
        );
        let relative = StoreUrl::parse("artifacts/local").unwrap();
        assert_eq!(
            relative,
            StoreUrl::Dir(std::env::current_dir().unwrap().join("artifacts/local"))
        );
    }

    #[test]
    fn bad_values_are_named_with_the_reason() {
        assert_eq!(reason(""), "is empty");
        assert_eq!(reason("  "), "is empty");
        assert!(reason("s4://bucket").starts_with("unsupported scheme \"s4\""));
        assert!(reason("s3:/bucket").contains("starts with s3://"));
        assert!(reason("c:relative").starts_with("unsupported scheme \"c\""));
        assert!(reason("https://bucket.s3.amazonaws.com/x").starts_with("unsupported scheme"));
        assert!(reason("file://server/share").contains("absolute local path"));
        assert!(reason("file:///tmp/a?x=1").contains("no query"));
    }

    #[tokio::test]
    async fn open_store_opens_a_directory_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path().to_str().unwrap()).await.unwrap();
        assert_eq!(store.describe(), dir.path().display().to_string());
        store
            .put("runs/r1/a.json", bytes::Bytes::from_static(b"1"))
            .await
            .unwrap();
        assert!(dir.path().join("runs/r1/a.json").is_file());
    }
}
