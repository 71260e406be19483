//! What every request to an instance passes first: API-token authentication, the account-wide
//! rate limit and, for the endpoints that have one, their own (apis.md A0, A7; the limits
//! themselves are `limits.rs`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::errors::ZendeskError;
use super::limits::Admission;
use super::state::InstanceState;
use crate::fixture::ZendeskCredentials;

pub(crate) async fn guard(
    State(state): State<Arc<InstanceState>>,
    request: Request,
    next: Next,
) -> Response {
    if !authenticates(request.headers(), &state.credentials) {
        return ZendeskError::Unauthorized.into_response();
    }
    let quota = match state.limits.admit_request() {
        Admission::Unlimited => None,
        Admission::Allowed(quota) => Some(quota),
        Admission::Throttled { quota, retry_after } => {
            let mut response = ZendeskError::RateLimited { retry_after }.into_response();
            quota.write_headers(response.headers_mut());
            return response;
        }
    };
    // Inside the instance's router the path is the API's own (`/api/v2/...`).
    let mut response = match state.limits.admit_endpoint(request.uri().path()) {
        Ok(()) => next.run(request).await,
        Err(throttled) => throttled.into_response(),
    };
    if let Some(quota) = quota {
        quota.write_headers(response.headers_mut());
    }
    response
}

/// `Authorization: Basic base64("{email}/token:{api_token}")`.
fn authenticates(headers: &HeaderMap, credentials: &ZendeskCredentials) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Some(decoded) = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return false;
    };
    let Some((user, token)) = decoded.split_once(':') else {
        return false;
    };
    user.strip_suffix("/token")
        .is_some_and(|email| email.eq_ignore_ascii_case(&credentials.email))
        && token == credentials.token
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn basic_auth_needs_token_form() {
        let credentials = ZendeskCredentials {
            email: "a@b.example".into(),
            token: "t0k".into(),
        };
        let with = |raw: &str| {
            let mut headers = HeaderMap::new();
            let value = format!("Basic {}", STANDARD.encode(raw));
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&value).expect("ascii"),
            );
            authenticates(&headers, &credentials)
        };
        assert!(with("a@b.example/token:t0k"));
        assert!(!with("a@b.example:t0k"));
        assert!(!with("a@b.example/token:wrong"));
        assert!(!authenticates(&HeaderMap::new(), &credentials));
    }
}
