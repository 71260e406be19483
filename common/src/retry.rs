//! How the API clients retry what may work a moment later (5xx, dropped connections,
//! throttling): capped exponential backoff with jitter, via `backon`.

use std::time::Duration;

use backon::ExponentialBuilder;

/// Capped exponential backoff with jitter for transient failures (5xx, connection errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The policy as a `backon` backoff: doubling from `min_delay`, capped at `max_delay`,
    /// jittered so concurrent callers do not retry in lockstep, at most `max_retries` times.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder;

    use super::*;

    #[test]
    fn backoff_gives_max_retries_delays_within_the_cap() {
        let policy = RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        };
        let delays: Vec<Duration> = policy.backoff().build().collect();
        assert_eq!(delays.len(), 4);
        // Jitter adds up to one more delay on top of the capped value.
        assert!(
            delays
                .iter()
                .all(|d| *d >= policy.min_delay && *d <= 2 * policy.max_delay),
            "{delays:?}"
        );
    }
}
