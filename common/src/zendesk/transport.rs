//! One Zendesk request, authenticated and retried: 429s wait exactly `Retry-After`, 5xx
//! answers and broken connections back off exponentially with jitter, everything else is
//! answered at once. Bulk-job pacing (TooManyJobs) is the caller's business, not this layer's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::Retryable;
use reqwest::header::{ACCEPT, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::calls::{self, Call};
use crate::config::Secret;
use crate::retry::RetryPolicy;

use super::config::ZendeskConfig;
use super::error::{ZendeskError, from_response};
use super::pacing::{Pacer, current_fraction};

/// Zendesk's per-minute windows never ask for more than a minute; a longer `Retry-After`
/// (an account suspended for abuse, a misconfigured proxy) is not worth holding a Lambda
/// for, so the call fails as retryable and Step Functions decides when to come back.
const MAX_HONOURED_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// `zendesk-ratelimit-inflight-jobs: total=30; remaining=29; resets=60` (apis.md A7).
const INFLIGHT_JOBS_HEADER: &str = "zendesk-ratelimit-inflight-jobs";

/// Calls made by one client, by kind: what the efficiency tests and the run summary read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Every HTTP request sent, retries included.
    pub requests: u64,
    /// Requests repeated after a 5xx, a dropped connection or a 429.
    pub retries: u64,
    /// 429 answers other than TooManyJobs.
    pub rate_limited: u64,
    /// Bulk jobs Zendesk accepted.
    pub jobs_submitted: u64,
    /// Bulk submissions refused with TooManyJobs (resubmitted later).
    pub too_many_jobs: u64,
    /// Show Many Job Statuses calls.
    pub job_polls: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    pub jobs_submitted: AtomicU64,
    pub too_many_jobs: AtomicU64,
    pub job_polls: AtomicU64,
}

impl Counters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RequestCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RequestCounts {
            requests: read(&self.requests),
            retries: read(&self.retries),
            rate_limited: read(&self.rate_limited),
            jobs_submitted: read(&self.jobs_submitted),
            too_many_jobs: read(&self.too_many_jobs),
            job_polls: read(&self.job_polls),
        }
    }
}

/// A successful answer.
pub(super) struct Answer {
    pub status: StatusCode,
    /// The JSON body; `Null` when there was none (204).
    pub body: Value,
    /// `remaining=` of the in-flight jobs header, on job-creating answers.
    pub job_slots_left: Option<u64>,
}

/// A failed attempt and how long the server asked us to wait before the next one.
struct Failure {
    error: ZendeskError,
    retry_after: Option<Duration>,
    /// Whether Zendesk may have carried the request out: a 5xx, a timeout or a connection
    /// that broke after the request was sent. A refused connection or a 429 never landed.
    maybe_landed: bool,
}

impl Failure {
    fn is_worth_repeating(&self) -> bool {
        matches!(
            self.error,
            ZendeskError::RateLimited { .. } | ZendeskError::Transient { .. }
        )
    }

    /// Worth repeating a write that must not be carried out twice: only when the first
    /// attempt surely did not land.
    fn is_safe_to_repeat(&self) -> bool {
        self.is_worth_repeating() && !self.maybe_landed
    }
}

pub(super) struct Transport {
    http: reqwest::Client,
    /// `base_url` without a trailing slash; paths are appended as text so a base with a
    /// path (a proxy, the sandbox's `/zendesk/global`) keeps it.
    base: String,
    origin: url::Origin,
    basic_user: String,
    token: Secret,
    retry: RetryPolicy,
    pub counters: Counters,
    /// The service the calls count under in a stage's call stats (`zendesk_global`).
    service: String,
    /// Keeps every request of this client within its share of the account's limit.
    pacer: Pacer,
}

impl Transport {
    pub(super) fn new(config: &ZendeskConfig, base: &Url) -> Result<Self, ZendeskError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| ZendeskError::InvalidConfig {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            origin: base.origin(),
            basic_user: format!("{}/token", config.email.trim()),
            token: config.token.clone(),
            retry: config.retry.clone(),
            counters: Counters::default(),
            service: config.service.clone(),
            pacer: Pacer::new(config.max_requests_per_minute),
        })
    }

    /// A request sent again by a caller (a job submission whose answer was lost and that
    /// never landed) counts as a retry, as the transport's own repeats do.
    pub(super) fn count_retry(&self) {
        Counters::bump(&self.counters.retries);
        calls::count(&self.service, Call::Retry);
    }

    pub(super) fn counts(&self) -> RequestCounts {
        self.counters.snapshot()
    }

    /// This client's share of the account's limit now, in requests a minute.
    pub(super) fn share_per_minute(&self) -> f64 {
        self.pacer.share(current_fraction())
    }

    /// `{base}/api/v2/{path}?{query}`.
    pub(super) fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, ZendeskError> {
        let mut url = Url::parse(&format!("{}/api/v2/{path}", self.base)).map_err(|e| {
            ZendeskError::InvalidConfig {
                message: format!("cannot build a URL for {path}: {e}"),
            }
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// A pagination link from a response, checked to point at this instance: the request
    /// carries the API token, which must not go anywhere else.
    /// `https://acme.zendesk.com`: which Zendesk this is.
    pub(super) fn origin(&self) -> String {
        self.origin.ascii_serialization()
    }

    pub(super) fn link(&self, link: &str) -> Result<Url, ZendeskError> {
        let url = Url::parse(link).map_err(|e| ZendeskError::InvalidResponse {
            message: format!("pagination link is not a URL: {e}"),
        })?;
        if url.origin() != self.origin {
            return Err(ZendeskError::InvalidResponse {
                message: format!(
                    "pagination link points at {}, not at this instance",
                    url.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }

    pub(super) async fn get(&self, url: Url) -> Result<Answer, ZendeskError> {
        self.send(Method::GET, url, None).await
    }

    pub(super) async fn post(&self, url: Url, body: &Value) -> Result<Answer, ZendeskError> {
        self.send(Method::POST, url, Some(body)).await
    }

    pub(super) async fn put(&self, url: Url, body: &Value) -> Result<Answer, ZendeskError> {
        self.send(Method::PUT, url, Some(body)).await
    }

    /// A POST that must not be carried out twice (a Create Many job: two identical jobs can
    /// both create). Repeated only after failures that surely did not reach Zendesk (a refused
    /// connection, a 429); a failure that may have landed (a 5xx, a timeout, a connection
    /// broken after sending) is [`ZendeskError::AnswerLost`], for the caller to find out what
    /// became of it before sending it again.
    pub(super) async fn post_once(&self, url: Url, body: &Value) -> Result<Answer, ZendeskError> {
        self.send_repeating(Method::POST, url, Some(body), Failure::is_safe_to_repeat)
            .await
            .map_err(|failure| match failure.error {
                ZendeskError::Transient { message } if failure.maybe_landed => {
                    ZendeskError::AnswerLost { message }
                }
                error => error,
            })
    }

    /// Sends until answered, retrying throttling and outages within the policy.
    ///
    /// Updates are repeated too: the failures repeated here either never reached Zendesk
    /// (refused connection, 429) or left it unknown whether they did (5xx, a connection
    /// dropped mid-request), and sending an update twice is harmless. Create jobs go through
    /// [`Transport::post_once`] instead.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, ZendeskError> {
        self.send_repeating(method, url, body, Failure::is_worth_repeating)
            .await
            .map_err(|failure| failure.error)
    }

    /// Sends, repeating the failures `repeat` allows within the retry policy (each repeat
    /// counted and logged).
    async fn send_repeating(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        repeat: fn(&Failure) -> bool,
    ) -> Result<Answer, Failure> {
        (|| self.send_once(method.clone(), url.clone(), body))
            .retry(self.retry.backoff())
            .when(repeat)
            .adjust(wait_before_repeating)
            .notify(|failure, wait| {
                Counters::bump(&self.counters.retries);
                calls::count(&self.service, Call::Retry);
                tracing::warn!(
                    error = %failure.error,
                    ?wait,
                    %method,
                    path = url.path(),
                    "Zendesk request failed; repeating it"
                );
            })
            .await
    }

    async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Answer, Failure> {
        self.pacer.wait_turn(current_fraction()).await;
        Counters::bump(&self.counters.requests);
        calls::count(&self.service, Call::Request);
        let mut request = self
            .http
            .request(method, url)
            .basic_auth(&self.basic_user, Some(self.token.expose()))
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
            calls::count(&self.service, Call::Sent(bytes.len() as u64));
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let response = request.send().await.map_err(transport_failure)?;
        let status = response.status();
        let headers = response.headers().clone();
        self.pacer.observe(&headers);
        let text = response.text().await.map_err(transport_failure)?;
        calls::count(&self.service, Call::Received(text.len() as u64));
        if status.is_success() {
            return Ok(Answer {
                status,
                body: parse_body(&text)?,
                job_slots_left: job_slots_left(&headers),
            });
        }
        let retry_after = retry_after(&headers);
        let error = from_response(status.as_u16(), retry_after, &text);
        let maybe_landed = status.is_server_error();
        match &error {
            ZendeskError::TooManyJobs { .. } => {
                Counters::bump(&self.counters.too_many_jobs);
                calls::count(&self.service, Call::Throttled);
            }
            ZendeskError::RateLimited { .. } => {
                Counters::bump(&self.counters.rate_limited);
                calls::count(&self.service, Call::Throttled);
            }
            _ => {}
        }
        Err(Failure {
            error,
            retry_after,
            maybe_landed,
        })
    }
}

/// Exactly `Retry-After` when the server sent one (no jitter: the window reopens then, not
/// sooner), else the policy's next backoff. `None` (give up) once the policy's retries are
/// spent, or when the server asks for longer than [`MAX_HONOURED_RETRY_AFTER`].
fn wait_before_repeating(failure: &Failure, backoff: Option<Duration>) -> Option<Duration> {
    let backoff = backoff?;
    match failure.retry_after {
        Some(wait) if wait > MAX_HONOURED_RETRY_AFTER => None,
        Some(wait) => Some(wait),
        None => Some(backoff),
    }
}

fn parse_body(text: &str) -> Result<Value, Failure> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| Failure {
        error: ZendeskError::InvalidResponse {
            message: format!("the body of a success answer is not JSON: {e}"),
        },
        retry_after: None,
        maybe_landed: false,
    })
}

/// `Retry-After` in seconds; Zendesk sends whole seconds (an HTTP date is not expected and
/// falls back to the backoff).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

fn job_slots_left(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(INFLIGHT_JOBS_HEADER)?.to_str().ok()?;
    value.split(';').find_map(|part| {
        let (key, number) = part.trim().split_once('=')?;
        (key.trim() == "remaining")
            .then(|| number.trim().parse().ok())
            .flatten()
    })
}

/// Timeouts, refused connections and broken bodies: the request may work next time. The
/// URL is left out: a search URL holds an email address.
fn transport_failure(error: reqwest::Error) -> Failure {
    Failure {
        maybe_landed: !error.is_connect(),
        error: ZendeskError::Transient {
            message: crate::http::describe_failure(&error),
        },
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(
            retry_after(&headers("retry-after", " 7 ")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn job_slots_come_from_the_remaining_part_of_the_header() {
        let header = headers(INFLIGHT_JOBS_HEADER, "total=30; remaining=0; resets=60");
        assert_eq!(job_slots_left(&header), Some(0));
        let header = headers(INFLIGHT_JOBS_HEADER, "total=30;remaining=12");
        assert_eq!(job_slots_left(&header), Some(12));
        assert_eq!(job_slots_left(&HeaderMap::new()), None);
    }

    #[test]
    fn the_wait_is_retry_after_exactly_within_the_retry_budget() {
        let throttled = |retry_after| Failure {
            error: ZendeskError::RateLimited {
                message: "slow down".into(),
                retry_after,
            },
            retry_after,
            maybe_landed: false,
        };
        let backoff = Some(Duration::from_millis(300));
        let three = Some(Duration::from_secs(3));
        assert_eq!(wait_before_repeating(&throttled(three), backoff), three);
        assert_eq!(wait_before_repeating(&throttled(None), backoff), backoff);
        assert_eq!(wait_before_repeating(&throttled(three), None), None);
        let too_long = Some(MAX_HONOURED_RETRY_AFTER + Duration::from_secs(1));
        assert_eq!(wait_before_repeating(&throttled(too_long), backoff), None);
    }
}
