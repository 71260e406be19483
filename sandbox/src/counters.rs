//! Request counters, keyed by endpoint: `"global POST /api/v2/organizations/create_many"`.

use std::collections::BTreeMap;

use axum::http::Method;
use serde::{Deserialize, Serialize};

use crate::faults::{Fault, FaultTarget};
use crate::instance::ZendeskInstance;

/// A snapshot of the request counters.
///
/// `requests` counts every request an emulated service received, faulted or not; `faulted`
/// counts, by the same key, the ones a fault answered instead of the emulated API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub requests: BTreeMap<String, u64>,
    pub faulted: BTreeMap<String, FaultTally>,
    /// Requests per service: `global`, `usgov`, `salesforce`, `slack`, `other`.
    pub totals: BTreeMap<String, u64>,
    /// Per service, the most requests any 60 seconds held: how a client kept to its share of
    /// a per-minute rate limit.
    #[serde(default)]
    pub busiest_minute: BTreeMap<String, u64>,
    /// The requests of the last 60 seconds per service (for `busiest_minute`).
    #[serde(skip)]
    recent: BTreeMap<String, std::collections::VecDeque<std::time::Instant>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultTally {
    pub dropped: u64,
    pub server_errors: u64,
    pub throttled: u64,
    /// Carried out, answer lost: these reached the emulated API.
    #[serde(default)]
    pub lost: u64,
    #[serde(default)]
    pub slow: u64,
}

impl FaultTally {
    /// Requests a fault answered instead of the emulated API (lost and slow ones reached it).
    pub fn total(&self) -> u64 {
        self.dropped + self.server_errors + self.throttled
    }
}

impl Counters {
    /// Requests received for one endpoint key (0 when never called).
    pub fn get(&self, key: &str) -> u64 {
        self.requests.get(key).copied().unwrap_or(0)
    }

    pub fn total(&self, service: &str) -> u64 {
        self.totals.get(service).copied().unwrap_or(0)
    }

    pub fn faulted_total(&self) -> u64 {
        self.faulted
            .values()
            .map(|t| t.total() + t.lost + t.slow)
            .sum()
    }

    /// POST, PUT and DELETE calls that reached the emulated instance (faulted ones excluded,
    /// since the instance never saw them).
    pub fn zendesk_write_calls(&self, instance: ZendeskInstance) -> u64 {
        let is_write = |key: &str| {
            let mut parts = key.splitn(3, ' ');
            parts.next() == Some(instance.as_str())
                && matches!(parts.next(), Some("POST" | "PUT" | "DELETE"))
        };
        let received: u64 = self
            .requests
            .iter()
            .filter(|(key, _)| is_write(key))
            .map(|(_, n)| n)
            .sum();
        let faulted: u64 = self
            .faulted
            .iter()
            .filter(|(key, _)| is_write(key))
            .map(|(_, tally)| tally.total())
            .sum();
        received - faulted
    }

    pub(crate) fn record(&mut self, endpoint: &Endpoint, fault: Option<Fault>) {
        *self.requests.entry(endpoint.key.clone()).or_default() += 1;
        *self.totals.entry(endpoint.service.clone()).or_default() += 1;
        let now = std::time::Instant::now();
        let recent = self.recent.entry(endpoint.service.clone()).or_default();
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= std::time::Duration::from_secs(60))
        {
            recent.pop_front();
        }
        let busiest = self
            .busiest_minute
            .entry(endpoint.service.clone())
            .or_default();
        *busiest = (*busiest).max(recent.len() as u64);
        if let Some(fault) = fault {
            let tally = self.faulted.entry(endpoint.key.clone()).or_default();
            match fault {
                Fault::Drop => tally.dropped += 1,
                Fault::ServerError => tally.server_errors += 1,
                Fault::Throttle => tally.throttled += 1,
                Fault::Lost => tally.lost += 1,
                Fault::Slow => tally.slow += 1,
            }
        }
    }
}

/// A request's service and route template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub service: String,
    pub key: String,
    pub fault_target: Option<FaultTarget>,
    /// The path under the service (`/api/v2/organizations/42`).
    pub path: String,
    /// The same with record ids as `{id}` and `.json` removed (`/api/v2/organizations/{id}`).
    pub template: String,
}

impl Endpoint {
    /// `None` for the sandbox's own admin routes, which are not part of any emulated API.
    pub(crate) fn classify(method: &Method, path: &str) -> Option<Endpoint> {
        if path == "/_sandbox" || path.starts_with("/_sandbox/") {
            return None;
        }
        let (service, rest, fault_target) = split_service(path);
        let template = if service == "slack" {
            "/services/{webhook}".to_owned()
        } else {
            route_template(rest)
        };
        Some(Endpoint {
            key: format!("{service} {method} {template}"),
            service,
            fault_target,
            path: rest.to_owned(),
            template,
        })
    }
}

fn split_service(path: &str) -> (String, &str, Option<FaultTarget>) {
    if let Some(rest) = path.strip_prefix("/zendesk/") {
        let instance = rest.split('/').next().unwrap_or_default();
        if instance.parse::<ZendeskInstance>().is_ok() {
            return (
                instance.to_owned(),
                &rest[instance.len()..],
                Some(FaultTarget::Zendesk),
            );
        }
        return ("other".to_owned(), path, None);
    }
    if path == "/salesforce" || path.starts_with("/salesforce/") {
        return (
            "salesforce".to_owned(),
            &path["/salesforce".len()..],
            Some(FaultTarget::Salesforce),
        );
    }
    if path.starts_with("/slack/") {
        return ("slack".to_owned(), &path["/slack".len()..], None);
    }
    ("other".to_owned(), path, None)
}

/// Replaces record ids in a path with `{id}` so calls for different records share a key.
fn route_template(path: &str) -> String {
    let path = path.strip_suffix(".json").unwrap_or(path);
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| {
            if is_record_id(segment) {
                "{id}".to_owned()
            } else {
                segment.to_owned()
            }
        })
        .collect();
    let joined = segments.join("/");
    if joined.is_empty() {
        "/".to_owned()
    } else {
        joined
    }
}

fn is_record_id(segment: &str) -> bool {
    let digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    let job_id = segment.len() == 32 && segment.bytes().all(|b| b.is_ascii_hexdigit());
    let salesforce_id = matches!(segment.len(), 15 | 18)
        && segment.bytes().all(|b| b.is_ascii_alphanumeric())
        && segment.bytes().any(|b| b.is_ascii_digit());
    // A Salesforce query locator: `01gRO0000016PIAYA2-500`.
    let locator = segment.split_once('-').is_some_and(|(cursor, offset)| {
        !cursor.is_empty()
            && cursor.bytes().all(|b| b.is_ascii_alphanumeric())
            && !offset.is_empty()
            && offset.bytes().all(|b| b.is_ascii_digit())
    });
    digits || job_id || salesforce_id || locator
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(method: Method, path: &str) -> Option<String> {
        Endpoint::classify(&method, path).map(|e| e.key)
    }

    #[test]
    fn zendesk_keys_use_instance_and_templated_route() {
        assert_eq!(
            key(
                Method::POST,
                "/zendesk/global/api/v2/organizations/create_many.json"
            )
            .as_deref(),
            Some("global POST /api/v2/organizations/create_many")
        );
        assert_eq!(
            key(Method::PUT, "/zendesk/usgov/api/v2/organizations/360001").as_deref(),
            Some("usgov PUT /api/v2/organizations/{id}")
        );
        assert_eq!(
            key(
                Method::GET,
                "/zendesk/usgov/api/v2/job_statuses/8b726e606741012ffc2d782bcb7848fe"
            )
            .as_deref(),
            Some("usgov GET /api/v2/job_statuses/{id}")
        );
    }

    #[test]
    fn salesforce_slack_and_admin_paths() {
        assert_eq!(
            key(
                Method::GET,
                "/salesforce/services/data/v62.0/query/01gRO0000016PIAYA2-500"
            )
            .as_deref(),
            Some("salesforce GET /services/data/v62.0/query/{id}")
        );
        assert_eq!(
            key(Method::POST, "/slack/services/T0/B0/secret").as_deref(),
            Some("slack POST /services/{webhook}")
        );
        assert_eq!(key(Method::GET, "/_sandbox/state"), None);
        assert_eq!(
            key(Method::GET, "/zendesk/eu/api/v2/users").as_deref(),
            Some("other GET /zendesk/eu/api/v2/users")
        );
    }

    #[test]
    fn write_calls_exclude_faulted_and_reads() {
        let mut counters = Counters::default();
        let post = Endpoint::classify(&Method::POST, "/zendesk/global/api/v2/organizations")
            .expect("zendesk endpoint");
        let get = Endpoint::classify(&Method::GET, "/zendesk/global/api/v2/organizations")
            .expect("zendesk endpoint");
        counters.record(&post, None);
        counters.record(&post, Some(Fault::ServerError));
        counters.record(&get, None);
        assert_eq!(counters.zendesk_write_calls(ZendeskInstance::Global), 1);
        assert_eq!(counters.zendesk_write_calls(ZendeskInstance::Usgov), 0);
        assert_eq!(counters.total("global"), 3);
        assert_eq!(counters.faulted_total(), 1);
    }
}
