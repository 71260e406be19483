//! `POST /services/oauth2/token` (reference/apis.md B1): the client credentials, username-
//! password and JWT bearer grants. Successes carry `access_token, instance_url, id,
//! token_type, issued_at, signature` and no refresh token or expiry (a session lasts the org's
//! timeout); failures are OAuth-style `{"error", "error_description"}` with status 400.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use super::SalesforceState;
use std::sync::Arc;

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A refused token request.
#[derive(Debug, PartialEq, Eq)]
struct OAuthError {
    error: &'static str,
    description: &'static str,
}

impl OAuthError {
    fn authentication_failure() -> Self {
        Self {
            error: "invalid_grant",
            description: "authentication failure",
        }
    }

    fn unknown_client() -> Self {
        Self {
            error: "invalid_client_id",
            description: "client identifier invalid",
        }
    }

    fn bad_client_secret() -> Self {
        Self {
            error: "invalid_client",
            description: "invalid client credentials",
        }
    }

    fn invalid_assertion() -> Self {
        Self {
            error: "invalid_grant",
            description: "invalid assertion",
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

/// Issues a session token for a valid grant.
pub async fn token(
    State(state): State<Arc<SalesforceState>>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let granted = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => check_client(&state, &form, &headers),
        Some("password") => {
            check_client(&state, &form, &headers).and_then(|()| check_password(&state, &form))
        }
        Some(JWT_BEARER_GRANT) => check_assertion(&state, &form),
        _ => {
            let body = json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    if let Err(refusal) = granted {
        return refusal.into_response();
    }
    let instance_url = instance_url(&state, &original, &uri, &headers);
    Json(session_response(&state, &instance_url)).into_response()
}

/// The connected app's credentials, from the form or (client credentials flow) a Basic
/// header.
fn check_client(
    state: &SalesforceState,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(), OAuthError> {
    let (id, secret) = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => (id.clone(), secret.clone()),
        _ => basic_credentials(headers).ok_or_else(OAuthError::unknown_client)?,
    };
    let options = state.options();
    if id != options.client_id {
        return Err(OAuthError::unknown_client());
    }
    if secret != options.client_secret {
        return Err(OAuthError::bad_client_secret());
    }
    Ok(())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The password grant sends the user's password with the security token appended.
fn check_password(
    state: &SalesforceState,
    form: &HashMap<String, String>,
) -> Result<(), OAuthError> {
    let options = state.options();
    let expected_password = format!("{}{}", options.password, options.security_token);
    let username_ok = form.get("username") == Some(&options.username);
    let password_ok = form.get("password") == Some(&expected_password);
    if username_ok && password_ok {
        Ok(())
    } else {
        Err(OAuthError::authentication_failure())
    }
}

/// The claims Salesforce reads besides `aud` and `exp` (checked by the JWT library).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    /// `prn` is the legacy name of `sub`.
    #[serde(alias = "prn")]
    sub: String,
}

/// An RS256 assertion signed with the key of the app's certificate, issued by the app for
/// the integration user, addressed to a login host, and not expired.
fn check_assertion(
    state: &SalesforceState,
    form: &HashMap<String, String>,
) -> Result<(), OAuthError> {
    let options = state.options();
    let assertion = form
        .get("assertion")
        .ok_or_else(OAuthError::invalid_assertion)?;
    let pem = options
        .jwt_public_key_pem
        .as_deref()
        .ok_or_else(OAuthError::invalid_assertion)?;
    let key =
        DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| OAuthError::invalid_assertion())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&options.jwt_audiences);
    validation.set_required_spec_claims(&["exp", "aud"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|_| OAuthError::invalid_assertion())?
        .claims;
    if claims.iss != options.client_id {
        return Err(OAuthError::unknown_client());
    }
    if claims.sub != options.username {
        return Err(OAuthError {
            error: "invalid_grant",
            description: "user hasn't approved this consumer",
        });
    }
    Ok(())
}

/// Where this org's REST API is reached: the configured public base, or the scheme-less
/// loopback address the request came in on plus the path the router is nested under.
fn instance_url(state: &SalesforceState, original: &Uri, uri: &Uri, headers: &HeaderMap) -> String {
    if let Some(base) = &state.options().public_base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let prefix = original.path().strip_suffix(uri.path()).unwrap_or_default();
    format!("http://{host}{prefix}")
}

fn session_response(state: &SalesforceState, instance_url: &str) -> serde_json::Value {
    let options = state.options();
    let access_token = state.issue_token();
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    let id = format!("{instance_url}/id/{}/{}", options.org_id, options.user_id);
    let signature = sign(&options.client_secret, &format!("{id}{issued_at}"));
    json!({
        "access_token": access_token,
        "instance_url": instance_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
    })
}

/// Base64(HMAC-SHA256(client secret, id + issued_at)), which lets a client check that the
/// identity URL came from the org.
fn sign(client_secret: &str, data: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, client_secret.as_bytes());
    STANDARD.encode(aws_lc_rs::hmac::sign(&key, data.as_bytes()).as_ref())
}
