//! What a stage runs against: settings, the artifact store and the API clients. Built once per
//! process (a Lambda cold start, a local run) and shared by every invocation.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::table::{Needs, Stage};
use crate::config::{ConfigError, SalesforceGrant, Settings};
use crate::error::StageError;
use crate::model::Instance;
use crate::progress::{LogProgress, ProgressSink};
use crate::salesforce::{SalesforceClient, SalesforceConfig, SalesforceCredentials};
use crate::slack::SlackNotifier;
use crate::store::ArtifactStore;
use crate::zendesk::{ZendeskClient, ZendeskConfig};

/// Another execution of the same state machine that has not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningExecution {
    pub execution_arn: String,
    pub start: DateTime<Utc>,
}

/// The state machine's executions: Step Functions in the cloud, the local run directory for
/// `zdsync run`.
#[async_trait]
pub trait Executions: Send + Sync {
    /// The running executions, for the overlap guard.
    async fn running(&self, state_machine_arn: &str) -> Result<Vec<RunningExecution>, StageError>;

    /// What the history of a stopped execution says about its end: the state that failed and
    /// the states still running, for the failure summary.
    async fn how_it_ended(&self, execution_arn: &str) -> Result<HowItEnded, StageError>;
}

/// The end of an execution as its history tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HowItEnded {
    pub failed_state: Option<String>,
    pub running: Vec<String>,
}

#[derive(Clone)]
pub struct StageContext {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn ArtifactStore>,
    pub salesforce: Option<Arc<SalesforceClient>>,
    pub zendesk: BTreeMap<Instance, Arc<ZendeskClient>>,
    pub slack: Option<Arc<SlackNotifier>>,
    pub executions: Option<Arc<dyn Executions>>,
    pub http: reqwest::Client,
    /// Where the stages report how far they have got: a log line a minute by default (what
    /// Lambda gets), live bars for `zdsync run`.
    pub progress: Arc<dyn ProgressSink>,
}

impl StageContext {
    /// A context with the clients `needs` asks for, built from `settings`. Fails naming the
    /// first missing or invalid setting, so a misconfigured function fails at start.
    pub fn build(
        settings: Arc<Settings>,
        store: Arc<dyn ArtifactStore>,
        needs: Needs,
        executions: Option<Arc<dyn Executions>>,
    ) -> Result<StageContext, StageError> {
        let salesforce = needs
            .salesforce
            .then(|| salesforce_client(&settings))
            .transpose()?
            .map(Arc::new);
        let mut zendesk = BTreeMap::new();
        for instance in needs.zendesk {
            zendesk.insert(*instance, Arc::new(zendesk_client(&settings, *instance)?));
        }
        let slack = match (&settings.slack.webhook_url, needs.slack) {
            (Some(url), true) => Some(Arc::new(SlackNotifier::new(url.clone()))),
            _ => None,
        };
        if needs.executions && executions.is_none() {
            return Err(StageError::InvalidConfig(
                "the guard stage needs a way to list running executions".into(),
            ));
        }
        Ok(StageContext {
            settings,
            store,
            salesforce,
            zendesk,
            slack,
            executions,
            http: reqwest::Client::new(),
            progress: Arc::new(LogProgress::default()),
        })
    }

    /// The same context, its stages reporting their progress to `sink`.
    pub fn with_progress(self, sink: Arc<dyn ProgressSink>) -> StageContext {
        StageContext {
            progress: sink,
            ..self
        }
    }

    /// A context for every stage at once (local runs).
    pub fn build_all(
        settings: Arc<Settings>,
        store: Arc<dyn ArtifactStore>,
        executions: Arc<dyn Executions>,
    ) -> Result<StageContext, StageError> {
        let needs = Stage::ALL.iter().fold(Needs::default(), |all, stage| {
            let n = stage.needs();
            Needs {
                salesforce: all.salesforce || n.salesforce,
                // A local run talks to both instances as soon as any stage does.
                zendesk: if n.zendesk.is_empty() {
                    all.zendesk
                } else {
                    &Instance::ALL
                },
                slack: all.slack || n.slack,
                executions: all.executions || n.executions,
                http: all.http || n.http,
            }
        });
        StageContext::build(settings, store, needs, Some(executions))
    }

    pub fn salesforce(&self) -> Result<&SalesforceClient, StageError> {
        self.salesforce.as_deref().ok_or_else(|| {
            StageError::InvalidConfig(
                "no Salesforce client was configured for this function".into(),
            )
        })
    }

    pub fn zendesk(&self, instance: Instance) -> Result<&ZendeskClient, StageError> {
        self.zendesk.get(&instance).map(Arc::as_ref).ok_or_else(|| {
            StageError::InvalidConfig(format!(
                "no Zendesk {instance} client was configured for this function"
            ))
        })
    }
}

fn salesforce_client(settings: &Settings) -> Result<SalesforceClient, StageError> {
    settings.require_salesforce_credentials()?;
    let sf = &settings.salesforce;
    let secret = |s: &Option<crate::config::Secret>| {
        s.as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    };
    let credentials = match sf.grant {
        SalesforceGrant::ClientCredentials => SalesforceCredentials::ClientCredentials {
            client_id: sf.client_id.clone().unwrap_or_default(),
            client_secret: secret(&sf.client_secret),
        },
        SalesforceGrant::Password => SalesforceCredentials::Password {
            client_id: sf.client_id.clone().unwrap_or_default(),
            client_secret: secret(&sf.client_secret),
            username: sf.username.clone().unwrap_or_default(),
            password_with_token: secret(&sf.password),
        },
    };
    let token_url = format!(
        "{}/services/oauth2/token",
        sf.login_url.trim_end_matches('/')
    );
    let mut config = SalesforceConfig::new(token_url, sf.api_version.clone(), credentials);
    config.batch_size = sf.batch_size;
    SalesforceClient::new(config).map_err(|e| {
        StageError::InvalidConfig(ConfigError::new("salesforce", e.to_string()).to_string())
    })
}

fn zendesk_client(settings: &Settings, instance: Instance) -> Result<ZendeskClient, StageError> {
    let (url, email, token) = settings.zendesk_instance(instance)?;
    let mut config = ZendeskConfig::new(url, email, token, settings.sync.max_inflight_jobs);
    config.service = format!("zendesk_{instance}");
    config.max_requests_per_minute = settings.zendesk.instance(instance).max_requests_per_minute;
    ZendeskClient::new(config).map_err(|e| {
        StageError::InvalidConfig(
            ConfigError::new(&format!("zendesk.{instance}"), e.to_string()).to_string(),
        )
    })
}
