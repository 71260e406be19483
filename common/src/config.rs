//! Settings: one typed struct, loaded from a TOML file and/or the environment (the environment
//! wins), validated at start with errors that name the setting.
//!
//! Every setting has a path (`zendesk.global.url`) and an environment name: `ZDSYNC_` + the
//! path upper-cased with `.` → `_` (`ZDSYNC_ZENDESK_GLOBAL_URL`). The list of paths is derived
//! from [`Settings::default`], so a new field is configurable from both places at once. Unknown
//! `ZDSYNC_*` variables and unknown TOML keys are errors: a typo must not silently fall back to
//! a default.
//!
//! Secrets ([`Secret`]) never print: `Debug` and `Serialize` show `<redacted>`.

use crate::model::ApiName;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::model::{Instance, SalesforceId};
use crate::rules::DeletionGuard;
use crate::rules::users::Protection;

pub const ENV_PREFIX: &str = "ZDSYNC_";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub salesforce: SalesforceSettings,
    pub zendesk: ZendeskSettings,
    pub slack: SlackSettings,
    pub store: StoreSettings,
    pub sync: SyncSettings,
    /// Lambda only: Secrets Manager ARNs the credentials are read from at cold start.
    pub secrets: SecretArns,
    /// Operator commands (`zdsync cloud …`) only.
    pub cloud: CloudSettings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudSettings {
    /// The deployed state machine (`zdsync cloud start|redrive|status`).
    pub state_machine_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceSettings {
    /// Where the OAuth token endpoint lives: `{login_url}/services/oauth2/token` (login.salesforce.com,
    /// test.salesforce.com, or the org's My Domain — required for client credentials).
    pub login_url: String,
    pub api_version: String,
    /// `client_credentials` or `password`.
    pub grant: SalesforceGrant,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub username: Option<String>,
    /// Password with the security token appended (username-password flow).
    pub password: Option<Secret>,
    /// `Sforce-Query-Options: batchSize` (200–2000).
    pub batch_size: u32,
    /// The subscription object of the org's billing package, whose changes a delta gather
    /// maps to their accounts through `account_lookup`.
    pub subscription_object: String,
    /// The subscription charge object, likewise.
    pub charge_object: String,
    /// The lookup from a subscription or charge to its account.
    pub account_lookup: String,
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        SalesforceSettings {
            login_url: "https://login.salesforce.com".into(),
            api_version: "v62.0".into(),
            grant: SalesforceGrant::ClientCredentials,
            client_id: None,
            client_secret: None,
            username: None,
            password: None,
            batch_size: 2000,
            subscription_object: "Zuora__Subscription__c".into(),
            charge_object: "Zuora__SubscriptionProductCharge__c".into(),
            account_lookup: "Zuora__Account__c".into(),
        }
    }
}

impl SalesforceSettings {
    /// The subscription and charge objects, each with its account lookup, checked to be API
    /// names before they reach a query.
    pub fn child_objects(&self) -> Result<ChildObjects, ConfigError> {
        let name = |path: &str, value: &str| {
            ApiName::parse(value.trim()).map_err(|e| ConfigError::new(path, e))
        };
        Ok(ChildObjects {
            subscription: name("salesforce.subscription_object", &self.subscription_object)?,
            charge: name("salesforce.charge_object", &self.charge_object)?,
            account_lookup: name("salesforce.account_lookup", &self.account_lookup)?,
        })
    }
}

/// The objects an account record's child rows come from, as a delta gather queries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildObjects {
    pub subscription: ApiName,
    pub charge: ApiName,
    pub account_lookup: ApiName,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesforceGrant {
    #[default]
    ClientCredentials,
    Password,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZendeskSettings {
    pub global: ZendeskInstanceSettings,
    pub usgov: ZendeskInstanceSettings,
}

impl ZendeskSettings {
    pub fn instance(&self, instance: Instance) -> &ZendeskInstanceSettings {
        match instance {
            Instance::Global => &self.global,
            Instance::Usgov => &self.usgov,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZendeskInstanceSettings {
    /// `https://{subdomain}.zendesk.com`.
    pub url: Option<String>,
    /// The API token's owner (`{email}/token:{token}`).
    pub email: Option<String>,
    pub token: Option<Secret>,
    /// This sync's share of the account's per-minute rate limit, which every app and
    /// integration of the account shares. Unset: half the limit the account reports in its
    /// rate-limit headers.
    #[serde(deserialize_with = "whole_number_or_text")]
    pub max_requests_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackSettings {
    /// Incoming webhook for "new org without contacts" notices. Unset: warnings only.
    pub webhook_url: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `s3://bucket/prefix` or a directory.
    pub url: String,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: "./data".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// A `plans.yaml` path; unset: the one built into the binary.
    pub plans_file: Option<String>,
    /// Overrides source: an `https://` URL, `store:KEY` (a key in the artifact store), or a path.
    pub overrides: Option<String>,
    /// The token an `https://` overrides source is fetched with (a private or internal project
    /// serves its files only with one). In Lambda it comes from `secrets.overrides_token_arn`.
    pub overrides_token: Option<Secret>,
    /// The header the token goes in: `PRIVATE-TOKEN` (GitLab's API) or `Authorization` (sent as
    /// `Bearer <token>`).
    pub overrides_token_header: String,
    /// Salesforce ids whose orgs are never marked for deletion.
    #[serde(deserialize_with = "list")]
    pub protected_ids: Vec<String>,
    /// Users with these email domains are never touched by the user sync.
    #[serde(deserialize_with = "list")]
    pub protected_user_domains: Vec<String>,
    #[serde(deserialize_with = "list")]
    pub protected_user_emails: Vec<String>,
    /// The alliance partner account of the partner query (SPEC §9).
    pub alliance_partner_id: Option<String>,
    pub max_inflight_jobs: usize,
    pub max_record_errors: usize,
    /// Share of gathered records that may be rejected before the gather fails.
    pub max_rejected_ratio: f64,
    pub deletion_guard_min: usize,
    pub deletion_guard_ratio: f64,
    /// A sync invocation sends no job and waits for none past this many seconds of its start
    /// (it saves its place and the state machine invokes it again for the rest: Lambda stops a
    /// function at 15 minutes), and starts no window of work it does not expect to finish in
    /// it but the first.
    pub invocation_budget_secs: u64,
    /// A sync starts no window of work it does not expect to finish within this many seconds
    /// of the execution's start — of its redrive, for a redriven execution; the rest is left
    /// for the next run (the state machine's timeout is 50 minutes, and the summary must still
    /// run).
    pub execution_budget_secs: u64,
    /// A sync whose plan was made from gathers older than this writes nothing and fails with
    /// `PlanStale` (a redrive hours later must not apply an old plan). Default: the schedule's
    /// interval.
    pub plan_max_age_secs: u64,
    /// Gathers read their sources in full this often (hours since the last full read) instead
    /// of at the first run of each UTC day; between full reads they read only what changed.
    #[serde(deserialize_with = "whole_number_or_text")]
    pub full_every_hours: Option<u32>,
}

/// Lambda's 900 s less room for saving the place after the budget's end.
pub const MAX_INVOCATION_BUDGET_SECS: u64 = 720;
/// The state machine's 3000 s less room for a slice, the other syncs and the summary.
pub const MAX_EXECUTION_BUDGET_SECS: u64 = 2820;

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            plans_file: None,
            overrides: None,
            overrides_token: None,
            overrides_token_header: "PRIVATE-TOKEN".into(),
            protected_ids: Vec::new(),
            protected_user_domains: vec!["gitlab.com".into()],
            protected_user_emails: Vec::new(),
            alliance_partner_id: None,
            max_inflight_jobs: 25,
            max_record_errors: 50,
            max_rejected_ratio: 0.01,
            deletion_guard_min: 25,
            deletion_guard_ratio: 0.05,
            invocation_budget_secs: 600,
            execution_budget_secs: 45 * 60,
            plan_max_age_secs: 3600,
            full_every_hours: None,
        }
    }
}

impl SyncSettings {
    pub fn deletion_guard(&self) -> DeletionGuard {
        DeletionGuard {
            min: self.deletion_guard_min,
            ratio: self.deletion_guard_ratio,
        }
    }

    /// The alliance partner account of the partner query; the partner sync cannot run without it.
    pub fn alliance_partner(&self) -> Result<SalesforceId, ConfigError> {
        let path = "sync.alliance_partner_id";
        let id = self.alliance_partner_id.as_deref().ok_or_else(|| {
            ConfigError::new(
                path,
                "is required by the partner sync (the alliance partner's Salesforce account id)",
            )
        })?;
        SalesforceId::parse(id.trim()).map_err(|e| ConfigError::new(path, e.to_string()))
    }

    /// The users the user sync never touches.
    pub fn user_protection(&self) -> Protection {
        Protection::new(&self.protected_user_domains, &self.protected_user_emails)
    }

    /// The protected ids, canonical (validated by [`Settings::validate`]).
    pub fn protected_salesforce_ids(&self) -> Vec<SalesforceId> {
        self.protected_ids
            .iter()
            .filter_map(|id| SalesforceId::parse(id.trim()).ok())
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretArns {
    pub salesforce_arn: Option<String>,
    pub zendesk_global_arn: Option<String>,
    pub zendesk_usgov_arn: Option<String>,
    pub slack_arn: Option<String>,
    /// `{"token"}`: the token an `https://` overrides source is fetched with.
    pub overrides_token_arn: Option<String>,
}

/// A credential. Never printed or serialised in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The clear value, for the one place that sends it (an auth header, a form body).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A list given either as a TOML array or as one comma-separated string (environment).
fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(items) => items,
        Either::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// A setting that is missing or wrong, named by its path and environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {path} ({env}): {message}")]
pub struct ConfigError {
    pub path: String,
    pub env: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.to_owned(),
            env: env_name(path),
            message: message.into(),
        }
    }
}

/// `zendesk.global.url` → `ZDSYNC_ZENDESK_GLOBAL_URL`.
pub fn env_name(path: &str) -> String {
    format!("{ENV_PREFIX}{}", path.replace('.', "_").to_uppercase())
}

/// The environment name of every setting, sorted (`ZDSYNC_SALESFORCE_API_VERSION`, …,
/// `ZDSYNC_ZENDESK_USGOV_URL`): exactly the `ZDSYNC_*` variables [`Settings::load`] accepts.
/// A deployment may set only these (`tests/infra.rs` checks the SAM template against it).
pub fn setting_env_names() -> Vec<String> {
    let mut names: Vec<String> = leaf_paths()
        .into_iter()
        .map(|(path, _)| env_name(&path))
        .collect();
    names.sort();
    names
}

impl Settings {
    /// Loads `file` (if given) and then the environment on top, and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Settings, ConfigError> {
        let mut tree = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        "(config file)",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let table: toml::Table = text.parse().map_err(|e| {
                    ConfigError::new(
                        "(config file)",
                        format!("{} is not valid TOML: {e}", path.display()),
                    )
                })?;
                serde_json::to_value(table).expect("TOML is representable as JSON")
            }
            None => Value::Object(Map::new()),
        };
        overlay_env(&mut tree, env)?;
        let settings: Settings = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::new(&path, e.into_inner().to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// The process environment's `ZDSYNC_*` variables.
    pub fn process_env() -> BTreeMap<String, String> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect()
    }

    /// Checks everything that can be checked without knowing which stage runs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sync = &self.sync;
        if !(1..=30).contains(&sync.max_inflight_jobs) {
            return Err(ConfigError::new(
                "sync.max_inflight_jobs",
                "must be 1 to 30 (Zendesk allows 30 queued or running jobs)",
            ));
        }
        for (path, ratio) in [
            ("sync.max_rejected_ratio", sync.max_rejected_ratio),
            ("sync.deletion_guard_ratio", sync.deletion_guard_ratio),
        ] {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(ConfigError::new(path, "must be between 0 and 1"));
            }
        }
        if sync.invocation_budget_secs > MAX_INVOCATION_BUDGET_SECS {
            return Err(ConfigError::new(
                "sync.invocation_budget_secs",
                format!(
                    "must be at most {MAX_INVOCATION_BUDGET_SECS} (Lambda ends a function at 900 seconds, and the place is saved after the budget's end)"
                ),
            ));
        }
        if sync.execution_budget_secs > MAX_EXECUTION_BUDGET_SECS {
            return Err(ConfigError::new(
                "sync.execution_budget_secs",
                format!(
                    "must be at most {MAX_EXECUTION_BUDGET_SECS} (the state machine times out at 3000 seconds, and the summary runs after the syncs)"
                ),
            ));
        }
        for instance in Instance::ALL {
            if self.zendesk.instance(instance).max_requests_per_minute == Some(0) {
                return Err(ConfigError::new(
                    &format!("zendesk.{instance}.max_requests_per_minute"),
                    "must be at least 1 (unset: half the limit the account reports)",
                ));
            }
        }
        let header = sync.overrides_token_header.trim();
        if header.is_empty()
            || !header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                "sync.overrides_token_header",
                "must be an HTTP header name such as PRIVATE-TOKEN or Authorization",
            ));
        }
        if sync.plan_max_age_secs == 0 {
            return Err(ConfigError::new(
                "sync.plan_max_age_secs",
                "must be at least 1 (a plan is at least as old as its gathers)",
            ));
        }
        if sync.full_every_hours == Some(0) {
            return Err(ConfigError::new(
                "sync.full_every_hours",
                "must be at least 1 (hours between full reads); unset for once a UTC day",
            ));
        }
        for id in &sync.protected_ids {
            SalesforceId::parse(id.trim())
                .map_err(|e| ConfigError::new("sync.protected_ids", e.to_string()))?;
        }
        if let Some(id) = &sync.alliance_partner_id {
            SalesforceId::parse(id.trim())
                .map_err(|e| ConfigError::new("sync.alliance_partner_id", e.to_string()))?;
        }
        self.salesforce.child_objects()?;
        if !(200..=2000).contains(&self.salesforce.batch_size) {
            return Err(ConfigError::new(
                "salesforce.batch_size",
                "must be 200 to 2000 (Salesforce's limits)",
            ));
        }
        if !self.salesforce.api_version.starts_with('v')
            || self.salesforce.api_version[1..].parse::<f64>().is_err()
        {
            return Err(ConfigError::new(
                "salesforce.api_version",
                "must look like v62.0",
            ));
        }
        check_url("salesforce.login_url", Some(&self.salesforce.login_url))?;
        for instance in Instance::ALL {
            check_url(
                &format!("zendesk.{instance}.url"),
                self.zendesk.instance(instance).url.as_deref(),
            )?;
        }
        check_url(
            "slack.webhook_url",
            self.slack.webhook_url.as_ref().map(Secret::expose),
        )?;
        if self.store.url.trim().is_empty() {
            return Err(ConfigError::new(
                "store.url",
                "must be s3://bucket/prefix or a directory",
            ));
        }
        Ok(())
    }

    /// The Zendesk settings of one instance, with every field a client needs present.
    pub fn zendesk_instance(
        &self,
        instance: Instance,
    ) -> Result<(String, String, Secret), ConfigError> {
        let section = self.zendesk.instance(instance);
        let path = |leaf: &str| format!("zendesk.{instance}.{leaf}");
        let url = section
            .url
            .clone()
            .ok_or_else(|| ConfigError::new(&path("url"), "is required"))?;
        let email = section
            .email
            .clone()
            .ok_or_else(|| ConfigError::new(&path("email"), "is required"))?;
        let token = section
            .token
            .clone()
            .ok_or_else(|| ConfigError::new(&path("token"), "is required"))?;
        Ok((url, email, token))
    }

    /// Fails naming the first Salesforce credential the configured grant needs but lacks.
    pub fn require_salesforce_credentials(&self) -> Result<(), ConfigError> {
        let sf = &self.salesforce;
        let mut required = vec![
            ("salesforce.client_id", sf.client_id.is_some()),
            ("salesforce.client_secret", sf.client_secret.is_some()),
        ];
        if sf.grant == SalesforceGrant::Password {
            required.push(("salesforce.username", sf.username.is_some()));
            required.push(("salesforce.password", sf.password.is_some()));
        }
        match required.into_iter().find(|(_, present)| !present) {
            Some((path, _)) => Err(ConfigError::new(path, "is required")),
            None => Ok(()),
        }
    }
}

/// Which credentials a Secrets Manager secret holds, and so where its JSON keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `{"client_id", "client_secret", "username"?, "password"?}`
    Salesforce,
    /// `{"email", "token"}` (the instance URL is a plain setting)
    Zendesk(Instance),
    /// `{"webhook_url"}`
    Slack,
    /// `{"token"}`: the overrides source's token.
    Overrides,
}

impl SecretKind {
    /// The setting holding the secret's ARN.
    pub fn arn_setting(self) -> &'static str {
        match self {
            SecretKind::Salesforce => "secrets.salesforce_arn",
            SecretKind::Zendesk(Instance::Global) => "secrets.zendesk_global_arn",
            SecretKind::Zendesk(Instance::Usgov) => "secrets.zendesk_usgov_arn",
            SecretKind::Slack => "secrets.slack_arn",
            SecretKind::Overrides => "secrets.overrides_token_arn",
        }
    }

    pub fn arn(self, settings: &Settings) -> Option<&str> {
        let arns = &settings.secrets;
        match self {
            SecretKind::Salesforce => arns.salesforce_arn.as_deref(),
            SecretKind::Zendesk(Instance::Global) => arns.zendesk_global_arn.as_deref(),
            SecretKind::Zendesk(Instance::Usgov) => arns.zendesk_usgov_arn.as_deref(),
            SecretKind::Slack => arns.slack_arn.as_deref(),
            SecretKind::Overrides => arns.overrides_token_arn.as_deref(),
        }
    }
}

impl Settings {
    /// Puts a secret's JSON (`SecretString`) into the settings. Errors name the secret's ARN
    /// setting and the key, never a value.
    pub fn apply_secret(&mut self, kind: SecretKind, secret_json: &str) -> Result<(), ConfigError> {
        let path = kind.arn_setting();
        let fields: BTreeMap<String, String> = serde_json::from_str(secret_json).map_err(|_| {
            ConfigError::new(
                path,
                "the secret is not a JSON object of strings (see README, Deploy)",
            )
        })?;
        let allowed: &[&str] = match kind {
            SecretKind::Salesforce => &["client_id", "client_secret", "username", "password"],
            SecretKind::Zendesk(_) => &["email", "token"],
            SecretKind::Slack => &["webhook_url"],
            SecretKind::Overrides => &["token"],
        };
        if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ConfigError::new(
                path,
                format!(
                    "the secret has an unknown key {unknown:?}; expected {}",
                    allowed.join(", ")
                ),
            ));
        }
        let take = |key: &str| fields.get(key).cloned();
        match kind {
            SecretKind::Salesforce => {
                let sf = &mut self.salesforce;
                sf.client_id = take("client_id").or(sf.client_id.take());
                sf.client_secret = take("client_secret")
                    .map(Secret)
                    .or(sf.client_secret.take());
                sf.username = take("username").or(sf.username.take());
                sf.password = take("password").map(Secret).or(sf.password.take());
            }
            SecretKind::Zendesk(instance) => {
                let zd = match instance {
                    Instance::Global => &mut self.zendesk.global,
                    Instance::Usgov => &mut self.zendesk.usgov,
                };
                zd.email = take("email").or(zd.email.take());
                zd.token = take("token").map(Secret).or(zd.token.take());
            }
            SecretKind::Slack => {
                self.slack.webhook_url = take("webhook_url")
                    .map(Secret)
                    .or(self.slack.webhook_url.take());
            }
            SecretKind::Overrides => {
                self.sync.overrides_token = take("token")
                    .map(Secret)
                    .or(self.sync.overrides_token.take());
            }
        }
        self.validate()
    }
}

fn check_url(path: &str, value: Option<&str>) -> Result<(), ConfigError> {
    match value {
        Some(text) => url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|_| ())
            .ok_or_else(|| ConfigError::new(path, "must be an http(s) URL")),
        None => Ok(()),
    }
}

/// Every leaf path of the settings tree and the JSON type of its default, e.g.
/// `("sync.max_inflight_jobs", Number)`.
fn leaf_paths() -> Vec<(String, Value)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, child, out);
                }
            }
            leaf => out.push((prefix.to_owned(), leaf.clone())),
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(Settings::default()).expect("settings serialise"),
        &mut out,
    );
    out
}

/// An optional whole number from TOML (`600`) or from the environment, where every unset
/// option arrives as text (`"600"`): an unset option's default is null, so [`overlay_env`]
/// cannot tell its type.
fn whole_number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u32),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Number(n)) => Ok(Some(n)),
        Some(Raw::Text(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a whole number"))),
    }
}

/// Puts every `ZDSYNC_*` variable into the tree at its path, typed like the default there.
fn overlay_env(tree: &mut Value, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let paths: BTreeMap<String, (String, Value)> = leaf_paths()
        .into_iter()
        .map(|(path, default)| (env_name(&path), (path, default)))
        .collect();
    for (name, raw) in env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)) {
        let (path, default) = paths.get(name).ok_or_else(|| ConfigError {
            path: "(environment)".into(),
            env: name.clone(),
            message: "is not a zdsync setting".into(),
        })?;
        let value =
            match default {
                Value::Bool(_) => match raw.trim() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(ConfigError::new(
                            path,
                            format!("{raw:?} is not true or false"),
                        ));
                    }
                },
                Value::Number(n) if n.is_f64() => raw
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| ConfigError::new(path, format!("{raw:?} is not a number")))?,
                Value::Number(_) => raw.trim().parse::<u64>().map(Value::from).map_err(|_| {
                    ConfigError::new(path, format!("{raw:?} is not a whole number"))
                })?,
                // Lists take a comma-separated string (see `list`); text and unset options stay text.
                _ => Value::String(raw.clone()),
            };
        let mut slot = &mut *tree;
        for segment in path.split('.') {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot = slot
                .as_object_mut()
                .expect("object")
                .entry(segment)
                .or_insert(Value::Null);
        }
        *slot = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::load(None, &BTreeMap::new()).unwrap();
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.sync.max_inflight_jobs, 25);
        assert_eq!(settings.sync.deletion_guard(), DeletionGuard::default());
        assert_eq!(settings.sync.protected_user_domains, vec!["gitlab.com"]);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let f = file(
            r#"
[zendesk.global]
url = "https://gitlab.zendesk.com"
email = "sync@example.com"
token = "from-file"
[sync]
max_inflight_jobs = 10
protected_ids = ["0011U00000V0tkDQAR"]
"#,
        );
        let settings = Settings::load(
            Some(f.path()),
            &env(&[
                ("ZDSYNC_ZENDESK_GLOBAL_TOKEN", "from-env"),
                ("ZDSYNC_SYNC_MAX_INFLIGHT_JOBS", "20"),
                ("ZDSYNC_SYNC_DELETION_GUARD_RATIO", "0.1"),
                (
                    "ZDSYNC_SYNC_PROTECTED_USER_DOMAINS",
                    "gitlab.com, example.org",
                ),
                ("ZDSYNC_SALESFORCE_CLIENT_SECRET", "s3cr3t"),
                ("ZDSYNC_SALESFORCE_GRANT", "password"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.zendesk.global.token.as_ref().unwrap().expose(),
            "from-env"
        );
        assert_eq!(
            settings.zendesk.global.email.as_deref(),
            Some("sync@example.com")
        );
        assert_eq!(settings.sync.max_inflight_jobs, 20);
        assert_eq!(settings.sync.deletion_guard_ratio, 0.1);
        assert_eq!(
            settings.sync.protected_user_domains,
            vec!["gitlab.com", "example.org"]
        );
        assert_eq!(settings.sync.protected_salesforce_ids().len(), 1);
        assert_eq!(settings.salesforce.grant, SalesforceGrant::Password);
        assert_eq!(
            settings.zendesk_instance(Instance::Global).unwrap().0,
            "https://gitlab.zendesk.com"
        );
    }

    #[test]
    fn errors_name_the_setting_and_its_variable() {
        let err =
            Settings::load(None, &env(&[("ZDSYNC_SYNC_MAX_INFLIGHT_JOBS", "lots")])).unwrap_err();
        assert_eq!(err.path, "sync.max_inflight_jobs");
        assert_eq!(err.env, "ZDSYNC_SYNC_MAX_INFLIGHT_JOBS");
        assert!(
            err.to_string().contains("\"lots\" is not a whole number"),
            "{err}"
        );

        let err =
            Settings::load(None, &env(&[("ZDSYNC_SYNC_MAX_INFLIGHT_JOBS", "31")])).unwrap_err();
        assert!(err.message.contains("1 to 30"));

        let share = Settings::load(
            None,
            &env(&[("ZDSYNC_ZENDESK_GLOBAL_MAX_REQUESTS_PER_MINUTE", "350")]),
        )
        .unwrap();
        assert_eq!(share.zendesk.global.max_requests_per_minute, Some(350));
        let err = Settings::load(
            None,
            &env(&[("ZDSYNC_ZENDESK_USGOV_MAX_REQUESTS_PER_MINUTE", "lots")]),
        )
        .unwrap_err();
        assert_eq!(err.env, "ZDSYNC_ZENDESK_USGOV_MAX_REQUESTS_PER_MINUTE");
        assert!(
            err.message.contains("\"lots\" is not a whole number"),
            "{err}"
        );

        let err = Settings::load(None, &env(&[("ZDSYNC_ZENDESK_GLOBAL_URLL", "x")])).unwrap_err();
        assert_eq!(err.env, "ZDSYNC_ZENDESK_GLOBAL_URLL");
        assert!(err.message.contains("not a zdsync setting"));

        let err = Settings::load(
            None,
            &env(&[("ZDSYNC_ZENDESK_USGOV_URL", "gitlab-federal.zendesk.com")]),
        )
        .unwrap_err();
        assert_eq!(err.path, "zendesk.usgov.url");

        let err = Settings::load(None, &env(&[("ZDSYNC_SYNC_PROTECTED_IDS", "001' OR 1=1")]))
            .unwrap_err();
        assert_eq!(err.path, "sync.protected_ids");

        let err = Settings::load(None, &env(&[("ZDSYNC_SALESFORCE_GRANT", "jwt")])).unwrap_err();
        assert_eq!(err.path, "salesforce.grant", "{err}");

        let f = file("[sync]\nmax_inflight_job = 3\n");
        let err = Settings::load(Some(f.path()), &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("max_inflight_job"), "{err}");

        let f = file("[sync\n");
        assert!(
            Settings::load(Some(f.path()), &BTreeMap::new())
                .unwrap_err()
                .message
                .contains("not valid TOML")
        );
    }

    #[test]
    fn missing_credentials_are_named() {
        let settings = Settings::default();
        assert_eq!(
            settings.zendesk_instance(Instance::Usgov).unwrap_err().path,
            "zendesk.usgov.url"
        );
        assert_eq!(
            settings.require_salesforce_credentials().unwrap_err().env,
            "ZDSYNC_SALESFORCE_CLIENT_ID"
        );
        let mut settings = Settings::default();
        settings.salesforce.client_id = Some("id".into());
        settings.salesforce.client_secret = Some(Secret::new("s"));
        assert!(settings.require_salesforce_credentials().is_ok());
        settings.salesforce.grant = SalesforceGrant::Password;
        assert_eq!(
            settings.require_salesforce_credentials().unwrap_err().path,
            "salesforce.username"
        );
    }

    #[test]
    fn secrets_never_print() {
        let settings = Settings::load(
            None,
            &env(&[
                ("ZDSYNC_ZENDESK_GLOBAL_TOKEN", "tok-123"),
                (
                    "ZDSYNC_SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/services/T/B/secret-path",
                ),
            ]),
        )
        .unwrap();
        let debug = format!("{settings:?}");
        let json = serde_json::to_string(&settings).unwrap();
        for shown in [debug, json] {
            assert!(
                !shown.contains("tok-123") && !shown.contains("secret-path"),
                "{shown}"
            );
            assert!(shown.contains("<redacted>"));
        }
    }

    #[test]
    fn secrets_manager_json_fills_the_credentials() {
        let mut settings = Settings::default();
        settings
            .apply_secret(
                SecretKind::Zendesk(Instance::Usgov),
                r#"{"email": "sync@gov.example", "token": "t0k"}"#,
            )
            .unwrap();
        assert_eq!(
            settings.zendesk.usgov.email.as_deref(),
            Some("sync@gov.example")
        );
        assert_eq!(
            settings.zendesk.usgov.token.as_ref().unwrap().expose(),
            "t0k"
        );
        settings
            .apply_secret(
                SecretKind::Salesforce,
                r#"{"client_id": "id", "client_secret": "s"}"#,
            )
            .unwrap();
        assert!(settings.require_salesforce_credentials().is_ok());
        settings
            .apply_secret(
                SecretKind::Slack,
                r#"{"webhook_url": "https://hooks.slack.com/services/T/B/x"}"#,
            )
            .unwrap();
        assert!(settings.slack.webhook_url.is_some());

        let err = settings
            .apply_secret(SecretKind::Slack, r#"{"webhook_url": "not a url"}"#)
            .unwrap_err();
        assert_eq!(err.path, "slack.webhook_url");
        assert!(
            !err.to_string().contains("not a url"),
            "values are never echoed: {err}"
        );
        let err = settings
            .apply_secret(SecretKind::Zendesk(Instance::Global), r#"{"emial": "x"}"#)
            .unwrap_err();
        assert_eq!(err.path, "secrets.zendesk_global_arn");
        assert!(err.message.contains("emial"));
        let err = settings
            .apply_secret(SecretKind::Salesforce, "hunter2")
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn setting_env_names_are_exactly_what_the_loader_accepts() {
        let names = setting_env_names();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(unique, names, "sorted and without duplicates");
        for expected in [
            "ZDSYNC_STORE_URL",
            "ZDSYNC_SALESFORCE_LOGIN_URL",
            "ZDSYNC_SALESFORCE_CLIENT_SECRET",
            "ZDSYNC_ZENDESK_GLOBAL_URL",
            "ZDSYNC_SYNC_OVERRIDES",
            "ZDSYNC_SYNC_PROTECTED_IDS",
            "ZDSYNC_SECRETS_SLACK_ARN",
            "ZDSYNC_SECRETS_ZENDESK_USGOV_ARN",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing");
        }
        for name in &names {
            // A value of the wrong type may be refused, but never as an unknown variable.
            if let Err(e) = Settings::load(None, &env(&[(name, "x")])) {
                assert!(!e.message.contains("not a zdsync setting"), "{name}: {e}");
            }
        }
        let err = Settings::load(None, &env(&[("ZDSYNC_STORE_URI", "x")])).unwrap_err();
        assert!(err.message.contains("not a zdsync setting"));
        assert!(!names.contains(&"ZDSYNC_STORE_URI".to_owned()));
        for kind in [
            SecretKind::Salesforce,
            SecretKind::Zendesk(Instance::Global),
            SecretKind::Zendesk(Instance::Usgov),
            SecretKind::Slack,
        ] {
            assert!(names.contains(&env_name(kind.arn_setting())), "{kind:?}");
        }
    }
}
