//! The OAuth session the query client works in: the token request for the configured grant
//! (client credentials, username-password, JWT bearer), the session kept while it works, and one
//! renewal when Salesforce refuses it. Apart from the query paging it serves.

use std::sync::atomic::{AtomicU64, Ordering};

use backon::Retryable;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::config::{SalesforceConfig, SalesforceCredentials};
use super::error::{SalesforceError, transport_error};
use crate::calls::{self, Call};
use crate::retry::RetryPolicy;

const SERVICE: &str = "salesforce";

/// How long a JWT bearer assertion is valid: Salesforce wants an expiry within 3 minutes.
const ASSERTION_LIFETIME_SECS: i64 = 180;

/// A logged-in session. Not `Debug`: the access token is a secret.
#[derive(Clone)]
pub(super) struct Session {
    pub(super) access_token: String,
    pub(super) instance_url: String,
}

/// The session of one client, requested at its first use and renewed when refused.
pub(super) struct Sessions {
    http: reqwest::Client,
    token_url: String,
    credentials: SalesforceCredentials,
    retry: RetryPolicy,
    session: Mutex<Option<Session>>,
    token_requests: AtomicU64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
    error_description: Option<String>,
}

impl Sessions {
    pub(super) fn new(http: reqwest::Client, config: &SalesforceConfig) -> Sessions {
        Sessions {
            http,
            token_url: config.token_url.clone(),
            credentials: config.credentials.clone(),
            retry: config.retry.clone(),
            session: Mutex::new(None),
            token_requests: AtomicU64::new(0),
        }
    }

    /// How many times a session was requested from the token endpoint (successfully or not).
    pub(super) fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    pub(super) async fn current(&self) -> Result<Session, SalesforceError> {
        let mut session = self.session.lock().await;
        if let Some(existing) = session.as_ref() {
            return Ok(existing.clone());
        }
        let fresh = self.request_session().await?;
        *session = Some(fresh.clone());
        Ok(fresh)
    }

    /// Replaces `refused` with a new session, unless a concurrent request already did.
    pub(super) async fn renew(&self, refused: &Session) -> Result<Session, SalesforceError> {
        let mut session = self.session.lock().await;
        if let Some(current) = session.as_ref()
            && current.access_token != refused.access_token
        {
            return Ok(current.clone());
        }
        *session = None;
        let fresh = self.request_session().await?;
        *session = Some(fresh.clone());
        Ok(fresh)
    }

    async fn request_session(&self) -> Result<Session, SalesforceError> {
        let form = self.grant_form()?;
        (|| self.post_token(&form))
            .retry(self.retry.backoff())
            .when(SalesforceError::is_transient_outage)
            .notify(|error, delay| {
                calls::count(SERVICE, Call::Retry);
                tracing::warn!(%error, ?delay, "Salesforce token request failed; retrying");
            })
            .await
    }

    async fn post_token(
        &self,
        form: &[(&'static str, String)],
    ) -> Result<Session, SalesforceError> {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        calls::count(SERVICE, Call::Request);
        let response = self
            .http
            .post(&self.token_url)
            .form(form)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| transport_error(&e))?;
        if status.is_success() {
            let token: TokenResponse =
                serde_json::from_str(&body).map_err(|e| SalesforceError::InvalidResponse {
                    message: format!("token response lacks access_token/instance_url: {e}"),
                })?;
            tracing::debug!(
                grant = self.credentials.grant_type(),
                instance_url = %token.instance_url,
                "Salesforce session established"
            );
            return Ok(Session {
                access_token: token.access_token,
                instance_url: token.instance_url.trim_end_matches('/').to_owned(),
            });
        }
        if status.is_server_error() {
            return Err(SalesforceError::Transient {
                message: format!("token endpoint answered {status}"),
            });
        }
        // OAuth errors carry `error` and `error_description` only: no secrets to leak.
        let refusal: Option<OAuthError> = serde_json::from_str(&body).ok();
        let message = match refusal {
            Some(OAuthError {
                error: Some(error),
                error_description,
            }) => format!("{error}: {}", error_description.unwrap_or_default()),
            _ => format!("token endpoint answered {status}"),
        };
        Err(SalesforceError::AuthFailed { message })
    }

    /// The token request's form for the configured grant.
    fn grant_form(&self) -> Result<Vec<(&'static str, String)>, SalesforceError> {
        Ok(match &self.credentials {
            SalesforceCredentials::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.clone()),
            ],
            SalesforceCredentials::Password {
                client_id,
                client_secret,
                username,
                password_with_token,
            } => vec![
                ("grant_type", "password".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.clone()),
                ("username", username.clone()),
                ("password", password_with_token.clone()),
            ],
            SalesforceCredentials::JwtBearer {
                client_id,
                username,
                audience,
                private_key_pem,
            } => vec![
                ("grant_type", self.credentials.grant_type().into()),
                (
                    "assertion",
                    signed_assertion(client_id, username, audience, private_key_pem)?,
                ),
            ],
        })
    }
}

impl SalesforceError {
    fn is_transient_outage(&self) -> bool {
        matches!(self, SalesforceError::Transient { .. })
    }
}

/// An RS256 assertion for the JWT bearer grant (reference/apis.md B1).
fn signed_assertion(
    client_id: &str,
    username: &str,
    audience: &str,
    private_key_pem: &str,
) -> Result<String, SalesforceError> {
    let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|e| {
        SalesforceError::InvalidConfig {
            message: format!("the JWT private key is not an RSA PEM key: {e}"),
        }
    })?;
    let claims = json!({
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": chrono::Utc::now().timestamp() + ASSERTION_LIFETIME_SECS,
    });
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).map_err(|e| {
        SalesforceError::InvalidConfig {
            message: format!("cannot sign the JWT assertion: {e}"),
        }
    })
}
