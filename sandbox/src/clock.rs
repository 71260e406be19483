//! The sandbox's own idea of "now": real time plus an offset a test can move forward.
//!
//! Behaviour that depends on how old a record is (the incremental export leaves out the last
//! minute's changes, the search index lags) would otherwise make tests sleep. Every record
//! timestamp and every age the emulated services compare with one comes from one [`Clock`],
//! shared by the whole sandbox, so advancing it ages every record at once and consistently.
//! Real durations (job delays and TTLs, rate-limit windows) are measured with `Instant`
//! instead: advancing the clock does not finish a job or reopen a rate-limit window.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// A cheap handle to the sandbox clock; clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clock {
    inner: Arc<Readings>,
}

#[derive(Debug, Default)]
struct Readings {
    /// How far the clock is ahead of real time, in milliseconds. It only grows.
    offset_ms: AtomicI64,
    /// The latest reading handed out, in microseconds since the epoch: a reading is never
    /// earlier than one before it, even if the host's wall clock steps back, so timestamps
    /// taken in order sort in order (the incremental export pages by them).
    latest_us: AtomicI64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock::default()
    }

    /// The sandbox's current time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let offset = TimeDelta::milliseconds(self.inner.offset_ms.load(Ordering::SeqCst));
        let reading = Utc::now()
            .checked_add_signed(offset)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .timestamp_micros();
        let previous = self.inner.latest_us.fetch_max(reading, Ordering::SeqCst);
        DateTime::from_timestamp_micros(reading.max(previous)).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Moves the clock forward by `by` (to the millisecond); it never moves back.
    pub(crate) fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        // Saturating, so an absurd step parks the clock at the end of time instead of
        // wrapping it into the past.
        let _ = self
            .inner
            .offset_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |offset| {
                Some(offset.saturating_add(ms))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_handle_forward() {
        let clock = Clock::new();
        let other = clock.clone();
        let before = clock.now();
        other.advance(Duration::from_secs(3600));
        let after = clock.now();
        assert!(
            after - before >= TimeDelta::seconds(3600),
            "{before} → {after}"
        );
        assert!(after - before < TimeDelta::seconds(3660));
    }

    #[test]
    fn readings_never_go_back() {
        let clock = Clock::new();
        let mut previous = clock.now();
        for _ in 0..1000 {
            let reading = clock.now();
            assert!(reading >= previous);
            previous = reading;
        }
    }
}
