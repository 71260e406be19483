//! What the client needs to reach an org. Secrets are plain `String`s for the caller's
//! convenience, but never leave through `Debug` (and so never reach a log line).

use std::fmt;
use std::time::Duration;

pub use crate::retry::RetryPolicy;

/// Salesforce's default, minimum and maximum query batch sizes (SF-QOH).
pub const DEFAULT_BATCH_SIZE: u32 = 2000;
pub const MIN_BATCH_SIZE: u32 = 200;
pub const MAX_BATCH_SIZE: u32 = 2000;

const REDACTED: &str = "<redacted>";

/// How the client logs in (reference/apis.md B1). None of the grants returns a refresh token:
/// a new session is simply requested with the same grant when the old one is rejected.
#[derive(Clone, PartialEq, Eq)]
pub enum SalesforceCredentials {
    /// Client credentials flow: the connected app runs as its configured integration user.
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
    /// Username-password flow; the password has the user's security token appended.
    Password {
        client_id: String,
        client_secret: String,
        username: String,
        password_with_token: String,
    },
    /// JWT bearer flow: an RS256 assertion signed with the key whose certificate is uploaded
    /// to the connected app. `audience` is the login host (`https://login.salesforce.com`,
    /// `https://test.salesforce.com`) or community URL.
    JwtBearer {
        client_id: String,
        username: String,
        audience: String,
        private_key_pem: String,
    },
}

impl SalesforceCredentials {
    /// Who the client logs in as (never a secret): the username, or the connected app for the
    /// client credentials flow.
    pub fn identity(&self) -> &str {
        match self {
            Self::ClientCredentials { client_id, .. } => client_id,
            Self::Password { username, .. } | Self::JwtBearer { username, .. } => username,
        }
    }

    /// The grant's name, for logs.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::ClientCredentials { .. } => "client_credentials",
            Self::Password { .. } => "password",
            Self::JwtBearer { .. } => "urn:ietf:params:oauth:grant-type:jwt-bearer",
        }
    }
}

impl fmt::Debug for SalesforceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &REDACTED)
                .finish(),
            Self::Password {
                client_id,
                username,
                ..
            } => f
                .debug_struct("Password")
                .field("client_id", client_id)
                .field("client_secret", &REDACTED)
                .field("username", username)
                .field("password_with_token", &REDACTED)
                .finish(),
            Self::JwtBearer {
                client_id,
                username,
                audience,
                ..
            } => f
                .debug_struct("JwtBearer")
                .field("client_id", client_id)
                .field("username", username)
                .field("audience", audience)
                .field("private_key_pem", &REDACTED)
                .finish(),
        }
    }
}

/// Everything the client needs to reach an org.
#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    /// The OAuth token endpoint: `https://login.salesforce.com/services/oauth2/token`, the
    /// `test.` host, or the org's My Domain (required for client credentials).
    pub token_url: String,
    /// REST API version in path form, e.g. `v62.0`.
    pub api_version: String,
    pub credentials: SalesforceCredentials,
    /// Requested records per page, `Sforce-Query-Options: batchSize` (200..=2000). Salesforce
    /// may return fewer, and child rows count toward it.
    pub batch_size: u32,
    pub retry: RetryPolicy,
    /// Per-request timeout; a timed-out request is transient and retried.
    pub request_timeout: Duration,
}

impl SalesforceConfig {
    /// A configuration with Salesforce's defaults for everything but where and who.
    pub fn new(
        token_url: impl Into<String>,
        api_version: impl Into<String>,
        credentials: SalesforceCredentials,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            api_version: api_version.into(),
            credentials,
            batch_size: DEFAULT_BATCH_SIZE,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(120),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_secrets() {
        let all = [
            SalesforceCredentials::ClientCredentials {
                client_id: "app".into(),
                client_secret: "s3cr3t-client".into(),
            },
            SalesforceCredentials::Password {
                client_id: "app".into(),
                client_secret: "s3cr3t-client".into(),
                username: "user@example.test".into(),
                password_with_token: "s3cr3t-passTOKEN".into(),
            },
            SalesforceCredentials::JwtBearer {
                client_id: "app".into(),
                username: "user@example.test".into(),
                audience: "https://login.salesforce.com".into(),
                private_key_pem: "-----BEGIN PRIVATE KEY-----s3cr3t".into(),
            },
        ];
        for credentials in all {
            let config = SalesforceConfig::new("https://x.test", "v62.0", credentials);
            let shown = format!("{config:?} {config:#?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("app") && shown.contains(REDACTED), "{shown}");
        }
    }
}
