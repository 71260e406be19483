//! The S3 store: artifacts as objects in a bucket, under an optional key prefix.
//!
//! Encryption is the bucket's default (SSE-S3 or SSE-KMS as the template configures it), so no
//! per-object SSE headers are sent and a change of key policy needs no code change.

use std::fmt;

use aws_config::SdkConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_types::service_config::ServiceConfigKey;
use bytes::Bytes;

use super::{ArtifactStore, StoreError, validate_key, validate_prefix};

/// A bucket and a key prefix inside it: `s3://bucket` or `s3://bucket/some/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    bucket: String,
    /// Without leading or trailing '/'; empty for the whole bucket.
    prefix: String,
}

impl S3Location {
    /// Validates the bucket name (S3's rules) and the prefix (the key rules, so stored object
    /// keys stay valid keys). A trailing '/' on the prefix is optional.
    pub fn new(bucket: &str, prefix: &str) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidLocation {
            value: format!("s3://{bucket}/{prefix}"),
            reason,
        };
        if let Some(reason) = bucket_name_problem(bucket) {
            return Err(invalid(reason));
        }
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        if !prefix.is_empty() {
            validate_key(prefix).map_err(|err| match err {
                StoreError::InvalidKey { reason, .. } => {
                    invalid(format!("the key prefix {reason}"))
                }
                other => other,
            })?;
        }
        Ok(S3Location {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let rest = url
            .get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("s3://"))
            .map(|_| &url[5..])
            .ok_or_else(|| StoreError::InvalidLocation {
                value: url.to_owned(),
                reason: "an S3 location starts with s3://".to_owned(),
            })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        S3Location::new(bucket, prefix).map_err(|err| match err {
            StoreError::InvalidLocation { reason, .. } => StoreError::InvalidLocation {
                value: url.to_owned(),
                reason,
            },
            other => other,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix without a trailing '/'; empty for the whole bucket.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The S3 object key of a store key (or the start of one, for listings).
    pub fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// The store key of an S3 object key under this location, if it is one.
    fn store_key<'k>(&self, object_key: &'k str) -> Option<&'k str> {
        if self.prefix.is_empty() {
            Some(object_key)
        } else {
            object_key
                .strip_prefix(self.prefix.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// S3's bucket naming rules (general purpose buckets), checked up front so a typo in the
/// configuration fails at start naming the value rather than as a signature or DNS error.
fn bucket_name_problem(bucket: &str) -> Option<String> {
    if !(3..=63).contains(&bucket.len()) {
        return Some(format!(
            "bucket name {bucket:?} has {} characters; it must have 3 to 63",
            bucket.len()
        ));
    }
    if let Some(ch) = bucket
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-')))
    {
        return Some(format!(
            "bucket name {bucket:?} contains {ch:?}; only a-z, 0-9, '.' and '-' are allowed"
        ));
    }
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alphanumeric(bucket.chars().next()) || !alphanumeric(bucket.chars().last()) {
        return Some(format!(
            "bucket name {bucket:?} must start and end with a letter or digit"
        ));
    }
    if bucket.contains("..") {
        return Some(format!("bucket name {bucket:?} contains \"..\""));
    }
    None
}

/// Artifacts as S3 objects under an [`S3Location`].
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    location: S3Location,
    /// `max-keys` of each ListObjectsV2 page; `None` leaves S3's default (1000).
    page_size: Option<i32>,
}

impl S3Store {
    /// Uses an already configured client (the Lambda functions build one per process).
    pub fn new(client: Client, location: S3Location) -> Self {
        S3Store {
            client,
            location,
            page_size: None,
        }
    }

    /// Builds the client from shared AWS configuration. When that configuration overrides the
    /// S3 endpoint (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, a profile's `endpoint_url`, or
    /// `ConfigLoader::endpoint_url`), path-style addressing is forced: S3-compatible servers on
    /// a host name or IP address cannot serve `bucket.host` virtual-hosted requests.
    pub fn from_sdk_config(sdk_config: &SdkConfig, location: S3Location) -> Self {
        let overridden = endpoint_is_overridden(sdk_config);
        let config = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(overridden)
            .build();
        S3Store::new(Client::from_conf(config), location)
    }

    /// Builds the client from shared AWS configuration but sends every request to
    /// `endpoint_url` with path-style addressing: for local and test S3-compatible servers.
    pub fn with_endpoint(sdk_config: &SdkConfig, location: S3Location, endpoint_url: &str) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk_config)
            .endpoint_url(endpoint_url)
            .force_path_style(true)
            .build();
        S3Store::new(Client::from_conf(config), location)
    }

    /// Loads AWS configuration from the environment (credentials, region, endpoint overrides
    /// such as `AWS_ENDPOINT_URL_S3`), as [`aws_config::load_from_env`] does.
    pub async fn from_env(location: S3Location) -> Self {
        S3Store::from_sdk_config(&aws_config::load_from_env().await, location)
    }

    /// Lists in pages of at most `page_size` keys (S3 caps pages at 1000, the default).
    /// Smaller pages bound the memory of each response; tests use them to exercise paging.
    pub fn with_page_size(mut self, page_size: u16) -> Self {
        self.page_size = Some(i32::from(page_size.clamp(1, 1000)));
        self
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn object_url(&self, object_key: &str) -> String {
        format!("s3://{}/{object_key}", self.location.bucket)
    }
}

#[async_trait::async_trait]
impl ArtifactStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        validate_key(key)?;
        let object_key = self.location.object_key(key);
        let response = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(&object_key)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            // With s3:ListBucket permission S3 answers NoSuchKey; without it, AccessDenied,
            // which stays an error: the function's role must allow listing the bucket.
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(s3_error("GetObject", self.object_url(&object_key), err)),
        };
        let body = output.body.collect().await.map_err(|err| StoreError::S3 {
            operation: "GetObject",
            location: self.object_url(&object_key),
            code: None,
            status: None,
            message: format!("reading the body failed: {}", DisplayErrorContext(&err)),
            // A connection dropped mid-body: the object is fine, a new request may succeed.
            retryable: true,
        })?;
        Ok(Some(body.into_bytes()))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        let object_key = self.location.object_key(key);
        self.client
            .put_object()
            .bucket(&self.location.bucket)
            .key(&object_key)
            .content_type(content_type(key))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|err| s3_error("PutObject", self.object_url(&object_key), err))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        validate_prefix(prefix)?;
        let object_prefix = self.location.object_key(prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(&object_prefix)
            .set_max_keys(self.page_size)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|err| s3_error("ListObjectsV2", self.object_url(&object_prefix), err))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key())
                    .filter_map(|object_key| self.location.store_key(object_key))
                    // Folder markers and objects other tools put there cannot be read through
                    // the store, so they are not artifacts (same rule as the directory store).
                    .filter(|key| validate_key(key).is_ok())
                    .map(str::to_owned),
            );
        }
        // S3 already returns byte order; S3-compatible servers are not all so careful.
        keys.sort_unstable();
        Ok(keys)
    }

    async fn modified(
        &self,
        key: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        validate_key(key)?;
        let object_key = self.location.object_key(key);
        let response = self
            .client
            .head_object()
            .bucket(&self.location.bucket)
            .key(&object_key)
            .send()
            .await;
        match response {
            Ok(output) => Ok(output
                .last_modified()
                .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(s3_error("HeadObject", self.object_url(&object_key), err)),
        }
    }

    /// A copy of the object onto itself (server-side: no bytes travel), which S3 allows when
    /// the metadata is replaced; it sets the modification time the lifecycle rules count from.
    async fn touch(&self, key: &str) -> Result<bool, StoreError> {
        validate_key(key)?;
        let object_key = self.location.object_key(key);
        let response = self
            .client
            .copy_object()
            .bucket(&self.location.bucket)
            .key(&object_key)
            .copy_source(copy_source(&self.location.bucket, &object_key))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .content_type(content_type(key))
            .send()
            .await;
        match response {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.code() == Some("NoSuchKey"))
                    || err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 404) =>
            {
                Ok(false)
            }
            Err(err) => Err(s3_error("CopyObject", self.object_url(&object_key), err)),
        }
    }

    fn describe(&self) -> String {
        self.location.to_string()
    }
}

/// Whether the configuration points S3 somewhere other than AWS, replicating how the S3
/// client's config builder picks its endpoint from `SdkConfig` (service-specific first).
fn endpoint_is_overridden(sdk_config: &SdkConfig) -> bool {
    let s3_endpoint_key = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("all three parts of the key are set");
    sdk_config.endpoint_url().is_some()
        || sdk_config
            .service_config()
            .is_some_and(|config| config.load_config(s3_endpoint_key).is_some())
}

/// `bucket/key` for CopyObject's source header, the key URL-encoded as S3 requires.
fn copy_source(bucket: &str, object_key: &str) -> String {
    let mut source = format!("{bucket}/");
    for byte in object_key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            source.push(char::from(byte));
        } else {
            source.push_str(&format!("%{byte:02X}"));
        }
    }
    source
}

/// Content types by extension, so the console and downloads show artifacts as what they are.
fn content_type(key: &str) -> &'static str {
    let extension = key
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase());
    match extension.as_deref() {
        Some("json") => "application/json",
        Some("yaml" | "yml") => "application/yaml",
        _ => "application/octet-stream",
    }
}

/// S3 error codes that mean "try again later" even when the HTTP status alone does not say so
/// (RequestTimeout is a 400).
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

fn s3_error<E>(operation: &'static str, location: String, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|raw| raw.status().as_u16());
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().map(str::to_owned);
            let detail = service.err().message();
            let status_text = status.map_or_else(String::new, |s| format!(" (HTTP {s})"));
            let message = match (code.as_deref(), detail) {
                (Some(code), Some(detail)) => format!("{code}: {detail}{status_text}"),
                (Some(code), None) => format!("{code}{status_text}"),
                (None, _) => format!("error response{status_text}"),
            };
            let retryable = status.is_some_and(|s| s == 429 || s >= 500)
                || code
                    .as_deref()
                    .is_some_and(|code| TRANSIENT_CODES.contains(&code));
            StoreError::S3 {
                operation,
                location,
                code,
                status,
                message,
                retryable,
            }
        }
        other => {
            let retryable = match other {
                // No answer in time, or an answer that could not be read: the next attempt may
                // get through.
                SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
                // Connection refused/reset or timed out may pass; a user error (bad endpoint
                // URL, no credentials) will not.
                SdkError::DispatchFailure(failure) => !failure.is_user(),
                // The request could not even be built (e.g. no region): configuration.
                _ => false,
            };
            StoreError::S3 {
                operation,
                location,
                code: None,
                status,
                message: DisplayErrorContext(&err).to_string(),
                retryable,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_display() {
        let location = S3Location::parse("s3://zdsync-artifacts/prod/").unwrap();
        assert_eq!(location.bucket(), "zdsync-artifacts");
        assert_eq!(location.prefix(), "prod");
        assert_eq!(location.to_string(), "s3://zdsync-artifacts/prod");
        assert_eq!(
            location.object_key("runs/r1/summary.json"),
            "prod/runs/r1/summary.json"
        );
        assert_eq!(
            location.store_key("prod/runs/r1/summary.json"),
            Some("runs/r1/summary.json")
        );
        assert_eq!(location.store_key("production/x.json"), None);

        let whole = S3Location::parse("s3://my.bucket-1").unwrap();
        assert_eq!(whole.prefix(), "");
        assert_eq!(whole.to_string(), "s3://my.bucket-1");
        assert_eq!(whole.object_key("a.json"), "a.json");
        assert_eq!(
            S3Location::parse("S3://b12/a/b").unwrap(),
            S3Location::new("b12", "a/b/").unwrap()
        );
    }

    #[test]
    fn bad_locations_name_the_value_and_the_problem() {
        for (url, fragment) in [
            ("s3://", "has 0 characters"),
            ("s3:///prefix", "has 0 characters"),
            ("s3://ab", "has 2 characters"),
            ("s3://My_Bucket/x", "contains 'M'"),
            ("s3://-bucket", "start and end"),
            ("s3://a..b", "contains \"..\""),
            ("s3://bucket/../x", "the key prefix has a \"..\" segment"),
            ("s3://bucket//x", "the key prefix starts with '/'"),
            ("s3://bucket/a b", "the key prefix contains ' '"),
            ("http://bucket/x", "starts with s3://"),
        ] {
            match S3Location::parse(url) {
                Err(err @ StoreError::InvalidLocation { .. }) => {
                    let StoreError::InvalidLocation { value, reason } = &err else {
                        unreachable!()
                    };
                    assert_eq!(value, url);
                    assert!(reason.contains(fragment), "{url}: {reason}");
                    assert!(err.to_string().contains(url));
                }
                other => panic!("{url} should be rejected, got {other:?}"),
            }
        }
    }

    #[test]
    fn copy_sources_encode_the_key() {
        assert_eq!(
            copy_source("b1", "p/blobs/ab12.json.gz"),
            "b1/p/blobs/ab12.json.gz"
        );
        assert_eq!(
            copy_source("b1", "runs/a b+c.json"),
            "b1/runs/a%20b%2Bc.json"
        );
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("runs/r1/summary.json"), "application/json");
        assert_eq!(content_type("config/overrides.YAML"), "application/yaml");
        assert_eq!(content_type("config/plans.yml"), "application/yaml");
        assert_eq!(content_type("runs/r1/blob"), "application/octet-stream");
    }

    #[test]
    fn no_endpoint_means_aws_and_an_explicit_one_is_an_override() {
        let plain = SdkConfig::builder().build();
        assert!(!endpoint_is_overridden(&plain));
        let explicit = SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:9000")
            .build();
        assert!(endpoint_is_overridden(&explicit));
    }

    /// Answers like `AWS_ENDPOINT_URL_S3=…` in the environment (or `endpoint_url` in a
    /// profile's `s3` services section) would, and nothing else.
    #[derive(Debug)]
    struct S3EndpointInEnvironment;

    impl aws_types::service_config::LoadServiceConfig for S3EndpointInEnvironment {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            (key.service_id() == "S3"
                && key.env() == "AWS_ENDPOINT_URL"
                && key.profile() == "endpoint_url")
                .then(|| "http://localhost:9000".to_owned())
        }
    }

    #[test]
    fn a_service_specific_endpoint_counts_as_an_override() {
        let config = SdkConfig::builder()
            .service_config(S3EndpointInEnvironment)
            .build();
        assert!(endpoint_is_overridden(&config));
    }
}
