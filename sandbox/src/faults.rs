//! Deterministic fault injection: each faultable request draws one number from a seeded
//! ChaCha stream, so the same seed and the same request order give the same faults.

use std::sync::Mutex;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// Fractions (0.0–1.0) of requests that meet a fault the real world has. The first three fail
/// before the emulated API sees the request; a *lost* answer is the worst case for a client:
/// the request is carried out (a write lands) and the connection closes before the response;
/// a *slow* answer arrives after `slow_ms`.
///
/// `zendesk_only` narrows the Zendesk faults to one endpoint (see [`Faults::zendesk_only`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Answered 429 with `Retry-After: 1`.
    pub zendesk_429: f64,
    /// Answered 500.
    pub zendesk_500: f64,
    /// Connection closed without a response.
    pub zendesk_drop: f64,
    /// Carried out, then the connection closed without the response.
    pub zendesk_lost: f64,
    /// Answered after `slow_ms`.
    pub zendesk_slow: f64,
    pub salesforce_500: f64,
    pub salesforce_drop: f64,
    pub salesforce_lost: f64,
    pub salesforce_slow: f64,
    /// How late a slow answer is.
    pub slow_ms: u64,
    /// When set, only requests to this Zendesk endpoint meet the Zendesk faults, on either
    /// instance, whatever the method. Other Zendesk requests are never faulted and draw
    /// nothing from the fault stream, so the faults a seed gives the chosen endpoint do not
    /// depend on the other calls. The Salesforce faults are not affected. In JSON a string:
    /// `"zendesk_only": "organizations/create_many"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zendesk_only: Option<ZendeskEndpoint>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            zendesk_429: 0.0,
            zendesk_500: 0.0,
            zendesk_drop: 0.0,
            zendesk_lost: 0.0,
            zendesk_slow: 0.0,
            salesforce_500: 0.0,
            salesforce_drop: 0.0,
            salesforce_lost: 0.0,
            salesforce_slow: 0.0,
            slow_ms: 1500,
            zendesk_only: None,
        }
    }
}

impl Faults {
    pub fn none() -> Self {
        Faults::default()
    }

    /// The same fractions on both services (Salesforce has no 429: its API limit is a daily
    /// quota answered with 403 `REQUEST_LIMIT_EXCEEDED`, not a throttle to wait out).
    pub fn everywhere(throttle: f64, server_error: f64, drop: f64, lost: f64) -> Self {
        Faults {
            zendesk_429: throttle,
            zendesk_500: server_error,
            zendesk_drop: drop,
            zendesk_lost: lost,
            salesforce_500: server_error,
            salesforce_drop: drop,
            salesforce_lost: lost,
            ..Faults::default()
        }
    }

    /// Parses `429=0.1,500=0.1,drop=0.05,lost=0.05,slow=0.02,slow_ms=800` (the `--faults` of
    /// the CLI): each kind on both services, as [`Faults::everywhere`]. `only=PATH` sets
    /// [`Faults::zendesk_only`], e.g. `lost=1.0,only=organizations/create_many`.
    pub fn parse(text: &str) -> Result<Self, SandboxError> {
        let mut faults = Faults::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                SandboxError::Faults(format!("{part:?}: expected KIND=FRACTION, e.g. 500=0.1"))
            })?;
            if name == "only" {
                faults.zendesk_only = Some(value.parse()?);
                continue;
            }
            if name == "slow_ms" {
                faults.slow_ms = value.parse().map_err(|_| {
                    SandboxError::Faults(format!("slow_ms={value}: not a number of milliseconds"))
                })?;
                continue;
            }
            let fraction: f64 = value
                .parse()
                .map_err(|_| SandboxError::Faults(format!("{name}={value}: not a fraction")))?;
            match name {
                "429" => faults.zendesk_429 = fraction,
                "500" => (faults.zendesk_500, faults.salesforce_500) = (fraction, fraction),
                "drop" => (faults.zendesk_drop, faults.salesforce_drop) = (fraction, fraction),
                "lost" => (faults.zendesk_lost, faults.salesforce_lost) = (fraction, fraction),
                "slow" => (faults.zendesk_slow, faults.salesforce_slow) = (fraction, fraction),
                other => {
                    return Err(SandboxError::Faults(format!(
                        "unknown fault {other:?}; expected 429, 500, drop, lost, slow, slow_ms or only"
                    )));
                }
            }
        }
        faults.validate()?;
        Ok(faults)
    }

    pub fn validate(&self) -> Result<(), SandboxError> {
        let all = [
            ("zendesk_429", self.zendesk_429),
            ("zendesk_500", self.zendesk_500),
            ("zendesk_drop", self.zendesk_drop),
            ("zendesk_lost", self.zendesk_lost),
            ("zendesk_slow", self.zendesk_slow),
            ("salesforce_500", self.salesforce_500),
            ("salesforce_drop", self.salesforce_drop),
            ("salesforce_lost", self.salesforce_lost),
            ("salesforce_slow", self.salesforce_slow),
        ];
        if let Some((name, value)) = all.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(SandboxError::Faults(format!(
                "{name} is {value}; it must be between 0 and 1"
            )));
        }
        let zendesk = self.zendesk_429
            + self.zendesk_500
            + self.zendesk_drop
            + self.zendesk_lost
            + self.zendesk_slow;
        let salesforce = self.salesforce_500
            + self.salesforce_drop
            + self.salesforce_lost
            + self.salesforce_slow;
        if zendesk > 1.0 || salesforce > 1.0 {
            return Err(SandboxError::Faults(
                "the fractions of one service add up to more than 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// Whether a Zendesk request meets the Zendesk faults: every request, unless
    /// `zendesk_only` names another endpoint. `path` is the request's path under the
    /// instance (`/api/v2/organizations/42.json`), `template` the same with record ids as
    /// `{id}` (`/api/v2/organizations/{id}`).
    fn covers_zendesk(&self, path: &str, template: &str) -> bool {
        self.zendesk_only.is_none_or(|only| {
            only.as_str() == api_path(path) || only.as_str() == api_path(template)
        })
    }
}

/// A Zendesk path reduced to the part under `/api/v2/`, without `.json` or slashes at the
/// ends: `/api/v2/organizations/create_many.json` → `organizations/create_many`.
fn api_path(path: &str) -> &str {
    let path = path.trim().trim_matches('/');
    let path = match path.strip_prefix("api/v2") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.trim_start_matches('/'),
        _ => path,
    };
    path.strip_suffix(".json")
        .unwrap_or(path)
        .trim_end_matches('/')
}

/// One Zendesk endpoint, as [`Faults::zendesk_only`] names it: its path under `/api/v2/`,
/// such as `organizations/create_many`, `job_statuses/show_many` or `organizations/{id}`
/// (`{id}` stands for any record id, as in the counter keys; a literal id names one record).
/// A leading `/api/v2/` and a trailing `.json` are accepted and dropped.
///
/// Kept inline (at most [`ZendeskEndpoint::MAX_LEN`] bytes) so that [`Faults`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZendeskEndpoint {
    len: u8,
    bytes: [u8; ZendeskEndpoint::MAX_LEN],
}

impl ZendeskEndpoint {
    pub const MAX_LEN: usize = 120;

    pub fn new(path: &str) -> Result<Self, SandboxError> {
        let path = api_path(path);
        let invalid = |why: &str| {
            SandboxError::Faults(format!(
                "endpoint {path:?} {why}; expected a path under /api/v2/, e.g. organizations/create_many"
            ))
        };
        if path.is_empty() {
            return Err(invalid("is empty"));
        }
        if path.contains(|c: char| c.is_whitespace() || matches!(c, '?' | '#' | '=' | ',')) {
            return Err(invalid("is not a plain path"));
        }
        if path.len() > Self::MAX_LEN {
            return Err(invalid("is too long"));
        }
        let mut bytes = [0; Self::MAX_LEN];
        bytes[..path.len()].copy_from_slice(path.as_bytes());
        Ok(ZendeskEndpoint {
            len: path.len() as u8,
            bytes,
        })
    }

    /// The path under `/api/v2/`, without `.json`: `organizations/create_many`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("built from a str")
    }
}

impl std::str::FromStr for ZendeskEndpoint {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ZendeskEndpoint::new(s)
    }
}

impl std::fmt::Display for ZendeskEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for ZendeskEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZendeskEndpoint({:?})", self.as_str())
    }
}

impl Serialize for ZendeskEndpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ZendeskEndpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ZendeskEndpoint::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Which emulated service a request is for, as far as faults are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultTarget {
    Zendesk,
    Salesforce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Drop,
    ServerError,
    Throttle,
    /// Carried out; the answer never arrives.
    Lost,
    /// Answered late.
    Slow,
}

pub(crate) struct FaultInjector {
    faults: Mutex<Faults>,
    rng: Mutex<ChaCha8Rng>,
}

impl FaultInjector {
    pub(crate) fn new(faults: Faults, seed: u64) -> Self {
        FaultInjector {
            faults: Mutex::new(faults),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    pub(crate) fn set(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }

    pub(crate) fn current(&self) -> Faults {
        *self.faults.lock().expect("faults lock")
    }

    pub(crate) fn slow_ms(&self) -> u64 {
        self.faults.lock().expect("faults lock").slow_ms
    }

    /// Draws for every faultable request, even with all fractions at zero, so changing the
    /// fractions mid-run does not shift which later requests a seed picks. A Zendesk request
    /// outside [`Faults::zendesk_only`] draws nothing and is never faulted. `path` and
    /// `template` are the request's path under the service and its route template.
    pub(crate) fn decide(&self, target: FaultTarget, path: &str, template: &str) -> Option<Fault> {
        let faults = self.faults.lock().expect("faults lock");
        if target == FaultTarget::Zendesk && !faults.covers_zendesk(path, template) {
            return None;
        }
        let draw: f64 = self.rng.lock().expect("fault rng lock").random();
        let bands: &[(Fault, f64)] = match target {
            FaultTarget::Zendesk => &[
                (Fault::Drop, faults.zendesk_drop),
                (Fault::ServerError, faults.zendesk_500),
                (Fault::Throttle, faults.zendesk_429),
                (Fault::Lost, faults.zendesk_lost),
                (Fault::Slow, faults.zendesk_slow),
            ],
            FaultTarget::Salesforce => &[
                (Fault::Drop, faults.salesforce_drop),
                (Fault::ServerError, faults.salesforce_500),
                (Fault::Lost, faults.salesforce_lost),
                (Fault::Slow, faults.salesforce_slow),
            ],
        };
        let mut upper = 0.0;
        for (fault, fraction) in bands {
            upper += fraction;
            if draw < upper {
                return Some(*fault);
            }
        }
        None
    }
}

/// A deterministic crash for tests of crash and redrive: once armed for an instance, that
/// instance answers the next `after` write requests (POST, PUT, DELETE) as usual and holds the
/// one after them without an answer, and [`CrashSwitch::crashed`] resolves. Whoever runs the
/// client then ends it there, as a process that dies: exactly `after` writes landed and the
/// next never did.
#[derive(Clone, Default)]
pub struct CrashSwitch {
    inner: std::sync::Arc<CrashInner>,
}

#[derive(Default)]
struct CrashInner {
    armed: Mutex<Option<(crate::instance::ZendeskInstance, u64)>>,
    crashed: tokio::sync::Notify,
}

impl CrashSwitch {
    pub fn arm(&self, instance: crate::instance::ZendeskInstance, after: u64) {
        *self.inner.armed.lock().expect("crash lock") = Some((instance, after));
    }

    pub fn disarm(&self) {
        *self.inner.armed.lock().expect("crash lock") = None;
    }

    /// Resolves when an armed switch holds a write.
    pub async fn crashed(&self) {
        self.inner.crashed.notified().await;
    }

    /// Whether this write request is the one to hold (and the crash to signal).
    pub(crate) fn holds(&self, instance: crate::instance::ZendeskInstance) -> bool {
        let mut armed = self.inner.armed.lock().expect("crash lock");
        match armed.as_mut() {
            Some((which, 0)) if *which == instance => {
                *armed = None;
                self.inner.crashed.notify_one();
                true
            }
            Some((which, left)) if *which == instance => {
                *left -= 1;
                false
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_fractions_outside_unit_interval_or_summing_past_one() {
        let mut faults = Faults {
            zendesk_500: 1.5,
            ..Faults::none()
        };
        assert!(faults.validate().is_err());
        faults.zendesk_500 = 0.6;
        faults.zendesk_429 = 0.6;
        assert!(faults.validate().is_err());
        faults.zendesk_429 = 0.4;
        assert!(faults.validate().is_ok());
    }

    #[test]
    fn same_seed_gives_same_sequence() {
        let faults = Faults {
            zendesk_500: 0.3,
            zendesk_drop: 0.1,
            ..Faults::none()
        };
        let run = |seed| {
            let injector = FaultInjector::new(faults, seed);
            (0..200)
                .map(|_| injector.decide(FaultTarget::Zendesk, LIST, LIST))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn salesforce_requests_never_get_zendesk_faults() {
        let injector = FaultInjector::new(
            Faults {
                zendesk_429: 1.0,
                ..Faults::none()
            },
            1,
        );
        let query = "/services/data/v62.0/query";
        assert!((0..50).all(|_| {
            injector
                .decide(FaultTarget::Salesforce, query, query)
                .is_none()
        }));
        assert_eq!(
            injector.decide(FaultTarget::Zendesk, LIST, LIST),
            Some(Fault::Throttle)
        );
    }

    const LIST: &str = "/api/v2/organizations";

    #[test]
    fn a_scope_matches_its_endpoint_with_or_without_json_and_ids() {
        let scoped = |only: &str| Faults {
            zendesk_only: Some(only.parse().expect("a path")),
            ..Faults::none()
        };
        let create_many = "/api/v2/organizations/create_many";
        for only in [
            "organizations/create_many",
            "/api/v2/organizations/create_many.json",
            "organizations/create_many/",
        ] {
            let faults = scoped(only);
            assert_eq!(
                faults.zendesk_only.map(|e| e.to_string()).as_deref(),
                Some("organizations/create_many")
            );
            assert!(faults.covers_zendesk(create_many, create_many), "{only}");
            assert!(
                faults.covers_zendesk("/api/v2/organizations/create_many.json", create_many),
                "{only}"
            );
            assert!(!faults.covers_zendesk(LIST, LIST), "{only}");
        }
        let one = "/api/v2/organizations/{id}";
        assert!(scoped("organizations/{id}").covers_zendesk("/api/v2/organizations/42", one));
        assert!(scoped("organizations/42").covers_zendesk("/api/v2/organizations/42", one));
        assert!(!scoped("organizations/42").covers_zendesk("/api/v2/organizations/43", one));
        assert!(Faults::none().covers_zendesk(LIST, LIST));
        for bad in ["", "/api/v2/", "organizations?x=1", "a b"] {
            assert!(ZendeskEndpoint::new(bad).is_err(), "{bad:?}");
        }
        assert!(ZendeskEndpoint::new(&"x".repeat(ZendeskEndpoint::MAX_LEN + 1)).is_err());
    }

    #[test]
    fn out_of_scope_requests_draw_nothing() {
        let faults = Faults {
            zendesk_500: 0.5,
            zendesk_only: Some("organizations/create_many".parse().expect("a path")),
            ..Faults::none()
        };
        let create_many = "/api/v2/organizations/create_many";
        let alone = FaultInjector::new(faults, 3);
        let interleaved = FaultInjector::new(faults, 3);
        for _ in 0..100 {
            assert_eq!(interleaved.decide(FaultTarget::Zendesk, LIST, LIST), None);
            assert_eq!(
                interleaved.decide(FaultTarget::Zendesk, create_many, create_many),
                alone.decide(FaultTarget::Zendesk, create_many, create_many)
            );
        }
    }

    #[test]
    fn parse_reads_the_scope_and_names_every_kind_when_lost() {
        let faults = Faults::parse("lost=1.0, only=organizations/create_many").expect("valid");
        assert_eq!(faults.zendesk_lost, 1.0);
        assert_eq!(
            faults.zendesk_only,
            Some(ZendeskEndpoint::new("/api/v2/organizations/create_many.json").expect("a path"))
        );
        let unknown = Faults::parse("late=0.1").expect_err("unknown kind");
        assert!(unknown.to_string().contains("slow_ms or only"), "{unknown}");
        assert!(Faults::parse("500=0.1,only=").is_err());
    }
}
