//! What a stage's API calls cost: requests, retries and throttling answers per service, counted
//! for the stage that made them. The clients count into the scope of the stage running on the
//! task ([`in_stage`]), so the figures are the stage's own even where clients are shared by
//! concurrent stages (a local run) or outlive an invocation (a warm Lambda).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

/// Calls per service (`salesforce`, `zendesk_global`, `zendesk_usgov`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallStats(pub BTreeMap<String, ServiceCalls>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCalls {
    /// Every HTTP request sent, repeats included.
    pub requests: u64,
    /// Requests repeated after a 5xx, a dropped connection or a throttling answer.
    pub retries: u64,
    /// 429 answers (account rate limit, too many jobs).
    pub throttled: u64,
    /// Body bytes received: answers (HTTP), artifacts read (the store).
    #[serde(default)]
    pub bytes_received: u64,
    /// Body bytes sent: requests (HTTP), artifacts written (the store).
    #[serde(default)]
    pub bytes_sent: u64,
    /// The service's daily allowance as its last answer reported it (Salesforce's
    /// `Sforce-Limit-Info: api-usage=N/M`: the whole org's use, not only ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<Allowance>,
}

/// A daily API allowance: `used` of `limit` calls so far today, everybody's use counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    pub used: u64,
    pub limit: u64,
}

impl Allowance {
    /// `api-usage=18/5000` (the value of `Sforce-Limit-Info`; other parts are ignored).
    pub fn parse_sforce_limit_info(value: &str) -> Option<Allowance> {
        value.split(';').find_map(|part| {
            let (key, usage) = part.trim().split_once('=')?;
            if !key.trim().eq_ignore_ascii_case("api-usage") {
                return None;
            }
            let (used, limit) = usage.trim().split_once('/')?;
            Some(Allowance {
                used: used.trim().parse().ok()?,
                limit: limit.trim().parse().ok()?,
            })
        })
    }

    /// The share of the allowance used, 0–1 (0 with no limit).
    pub fn ratio(&self) -> f64 {
        if self.limit == 0 {
            0.0
        } else {
            self.used as f64 / self.limit as f64
        }
    }

    /// The later of two readings: usage only grows within a day.
    pub fn latest(a: Option<Allowance>, b: Option<Allowance>) -> Option<Allowance> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.used >= a.used { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

impl CallStats {
    pub fn retries(&self) -> u64 {
        self.0.values().map(|s| s.retries).sum()
    }

    pub fn requests(&self) -> u64 {
        self.0.values().map(|s| s.requests).sum()
    }

    /// Every service's calls but `service`'s, added up (a gather's calls to its source: all but
    /// the artifact store's).
    pub fn excluding(&self, service: &str) -> ServiceCalls {
        let mut total = ServiceCalls::default();
        for (name, calls) in &self.0 {
            if name != service {
                total.requests += calls.requests;
                total.retries += calls.retries;
                total.throttled += calls.throttled;
                total.bytes_received += calls.bytes_received;
                total.bytes_sent += calls.bytes_sent;
            }
        }
        total
    }

    /// Adds `other` in (the calls of several stages).
    pub fn add(&mut self, other: &CallStats) {
        for (service, calls) in &other.0 {
            let mine = self.0.entry(service.clone()).or_default();
            mine.requests += calls.requests;
            mine.retries += calls.retries;
            mine.throttled += calls.throttled;
            mine.bytes_received += calls.bytes_received;
            mine.bytes_sent += calls.bytes_sent;
            mine.allowance = Allowance::latest(mine.allowance, calls.allowance);
        }
    }

    /// The latest daily allowance reading of `service`, if any answer reported one.
    pub fn allowance(&self, service: &str) -> Option<Allowance> {
        self.0.get(service).and_then(|s| s.allowance)
    }
}

/// The artifacts a stage read and wrote, key → bytes (what the benchmark's JSON floor is
/// measured on).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactIo {
    #[serde(default)]
    pub read: BTreeMap<String, u64>,
    #[serde(default)]
    pub written: BTreeMap<String, u64>,
}

/// What one stage's scope counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageIo {
    pub calls: CallStats,
    pub artifacts: ArtifactIo,
}

tokio::task_local! {
    static STAGE_IO: RefCell<StageIo>;
}

/// The artifact store's service name in [`CallStats`].
pub const STORE: &str = "store";

/// What a client reports about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Request,
    Retry,
    Throttled,
    /// An answer's body arrived, this many bytes.
    Received(u64),
    /// A request's body went out, this many bytes.
    Sent(u64),
    /// An answer reported the service's daily allowance.
    Allowance(Allowance),
}

/// Counts one call for the stage running on this task (nothing outside a stage's scope).
pub fn count(service: &str, call: Call) {
    let _ = STAGE_IO.try_with(|io| {
        let mut io = io.borrow_mut();
        let calls = io.calls.0.entry(service.to_owned()).or_default();
        match call {
            Call::Request => calls.requests += 1,
            Call::Retry => calls.retries += 1,
            Call::Throttled => calls.throttled += 1,
            Call::Received(bytes) => calls.bytes_received += bytes,
            Call::Sent(bytes) => calls.bytes_sent += bytes,
            Call::Allowance(reading) => {
                calls.allowance = Allowance::latest(calls.allowance, Some(reading));
            }
        }
    });
}

/// Counts an artifact read (`written == false`) or written by the stage running on this task.
pub fn artifact(key: &str, bytes: u64, written: bool) {
    let _ = STAGE_IO.try_with(|io| {
        let mut io = io.borrow_mut();
        let (side, call) = if written {
            (&mut io.artifacts.written, Call::Sent(bytes))
        } else {
            (&mut io.artifacts.read, Call::Received(bytes))
        };
        side.insert(key.to_owned(), bytes);
        drop(io);
        count(STORE, Call::Request);
        count(STORE, call);
    });
}

/// Runs `stage` with its own counts, and returns them with its result.
pub async fn in_stage<F: Future>(stage: F) -> (F::Output, StageIo) {
    STAGE_IO
        .scope(RefCell::new(StageIo::default()), async move {
            let output = stage.await;
            let io = STAGE_IO.with(|io| io.borrow().clone());
            (output, io)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_stage_counts_only_its_own_calls() {
        count("salesforce", Call::Request); // outside any stage: not counted anywhere
        let one = in_stage(async {
            count("zendesk_global", Call::Request);
            count("zendesk_global", Call::Retry);
            count("zendesk_global", Call::Request);
        });
        let two = in_stage(async {
            count("salesforce", Call::Request);
            count("salesforce", Call::Throttled);
        });
        let (((), first), ((), second)) = tokio::join!(one, two);
        let (first, second) = (first.calls, second.calls);
        assert_eq!(first.requests(), 2);
        assert_eq!(first.retries(), 1);
        assert_eq!(second.0["salesforce"].throttled, 1);
        assert!(!second.0.contains_key("zendesk_global"));
        let mut both = first.clone();
        both.add(&second);
        assert_eq!(both.requests(), 3);
    }

    #[tokio::test]
    async fn artifacts_and_bytes_are_counted_for_the_stage() {
        let ((), io) = in_stage(async {
            artifact("runs/r/a.json", 100, false);
            artifact("runs/r/b.json", 40, true);
            count("zendesk_global", Call::Received(7));
            count("zendesk_global", Call::Sent(3));
        })
        .await;
        assert_eq!(io.artifacts.read["runs/r/a.json"], 100);
        assert_eq!(io.artifacts.written["runs/r/b.json"], 40);
        let store = io.calls.0[STORE];
        assert_eq!(
            (store.requests, store.bytes_received, store.bytes_sent),
            (2, 100, 40)
        );
        let zendesk = io.calls.0["zendesk_global"];
        assert_eq!((zendesk.bytes_received, zendesk.bytes_sent), (7, 3));
    }
}
