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
}

impl CallStats {
    pub fn retries(&self) -> u64 {
        self.0.values().map(|s| s.retries).sum()
    }

    pub fn requests(&self) -> u64 {
        self.0.values().map(|s| s.requests).sum()
    }

    /// Adds `other` in (the calls of several stages).
    pub fn add(&mut self, other: &CallStats) {
        for (service, calls) in &other.0 {
            let mine = self.0.entry(service.clone()).or_default();
            mine.requests += calls.requests;
            mine.retries += calls.retries;
            mine.throttled += calls.throttled;
        }
    }
}

tokio::task_local! {
    static STAGE_CALLS: RefCell<CallStats>;
}

/// What a client reports about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Request,
    Retry,
    Throttled,
}

/// Counts one call for the stage running on this task (nothing outside a stage's scope).
pub fn count(service: &str, call: Call) {
    let _ = STAGE_CALLS.try_with(|stats| {
        let mut stats = stats.borrow_mut();
        let calls = stats.0.entry(service.to_owned()).or_default();
        match call {
            Call::Request => calls.requests += 1,
            Call::Retry => calls.retries += 1,
            Call::Throttled => calls.throttled += 1,
        }
    });
}

/// Runs `stage` with its own call counts, and returns them with its result.
pub async fn in_stage<F: Future>(stage: F) -> (F::Output, CallStats) {
    STAGE_CALLS
        .scope(RefCell::new(CallStats::default()), async move {
            let output = stage.await;
            let stats = STAGE_CALLS.with(|stats| stats.borrow().clone());
            (output, stats)
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
        assert_eq!(first.requests(), 2);
        assert_eq!(first.retries(), 1);
        assert_eq!(second.0["salesforce"].throttled, 1);
        assert!(!second.0.contains_key("zendesk_global"));
        let mut both = first.clone();
        both.add(&second);
        assert_eq!(both.requests(), 3);
    }
}
