//! How the emulated org is configured: who may log in, which API versions exist, and the
//! knobs that make paging and limits observable with small fixtures.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Settings of the emulated org. `Default` gives a working org with well-known sandbox
/// credentials (never real ones).
#[derive(Debug, Clone)]
pub struct SalesforceOptions {
    /// The connected app's consumer key (`client_id`; the `iss` of a JWT assertion).
    pub client_id: String,
    /// The connected app's consumer secret; also the key of the token response `signature`.
    pub client_secret: String,
    /// The integration user (`username` of the password grant, `sub` of a JWT assertion).
    pub username: String,
    /// The user's password; the password grant expects it followed by `security_token`.
    pub password: String,
    pub security_token: String,
    /// PEM of the certificate's public key uploaded to the connected app. `None` means the
    /// app has no certificate, so every JWT bearer assertion fails with `invalid_grant`.
    pub jwt_public_key_pem: Option<String>,
    /// Accepted JWT `aud` values (Salesforce accepts its login hosts or a community URL).
    pub jwt_audiences: Vec<String>,
    /// The org id (`00D…`) and user id (`005…`) in the identity URL.
    pub org_id: String,
    pub user_id: String,
    /// Supported REST API versions, inclusive, as whole numbers (`62` for `v62.0`); any
    /// other `vNN.N` in a path is a 404 `NOT_FOUND`, as for a retired version.
    pub min_api_version: u32,
    pub max_api_version: u32,
    /// Emulator cap on records per page (parents plus child rows), applied after the
    /// `Sforce-Query-Options: batchSize` clamp to 200..=2000, so a test with a handful of
    /// records can still see many pages. Salesforce itself may return smaller batches than
    /// asked ("there is no guarantee that the requested batch size is the actual batch size").
    pub max_batch_size: usize,
    /// Child rows of one parent returned inline; a larger child set is truncated with its own
    /// `nextRecordsUrl`.
    pub child_page_size: usize,
    /// How long an access token is valid (Salesforce: the org's session timeout, default 2 h).
    pub token_lifetime: Duration,
    /// How long a query cursor can be continued (Salesforce, API 56.0+: 2 days).
    pub cursor_lifetime: Duration,
    /// API requests allowed (rolling 24 h in Salesforce; here: since start or reset). The
    /// request after the limit gets 403 `REQUEST_LIMIT_EXCEEDED`.
    pub daily_api_limit: u64,
    /// The `instance_url` to hand out. `None` derives it from each token request: `http://`
    /// + its `Host` header + the path the router is nested under (e.g. `/salesforce`).
    pub public_base_url: Option<String>,
    /// The `SystemModstamp` given to fixture records loaded without one. `None` (the
    /// default) stamps them with the clock's time at load, so a sandbox restarted with a
    /// changed world file shows every record as changed, which is safe. A benchmark that
    /// generates its world just before the first run sets an earlier time, so the world is
    /// not all "changed". Records that carry a stamp keep it.
    pub initial_modstamp: Option<DateTime<Utc>>,
}

impl Default for SalesforceOptions {
    fn default() -> Self {
        Self {
            client_id: "zdsync-sandbox-client-id".into(),
            client_secret: "zdsync-sandbox-client-secret".into(),
            username: "integration@zdsync.sandbox".into(),
            password: "sandbox-password".into(),
            security_token: "SANDBOXSECURITYTOKEN".into(),
            jwt_public_key_pem: None,
            jwt_audiences: vec![
                "https://login.salesforce.com".into(),
                "https://test.salesforce.com".into(),
            ],
            org_id: "00D000000000001EAA".into(),
            user_id: "005000000000001AAA".into(),
            min_api_version: 31,
            max_api_version: 66,
            max_batch_size: 2000,
            child_page_size: 200,
            token_lifetime: Duration::from_secs(2 * 60 * 60),
            cursor_lifetime: Duration::from_secs(2 * 24 * 60 * 60),
            daily_api_limit: 100_000,
            public_base_url: None,
            initial_modstamp: None,
        }
    }
}
