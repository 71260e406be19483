//! A share of the account's rate limit (SPEC §8): Zendesk's per-minute limit belongs to the
//! whole account — every app, integration and script shares it, and a 429 hits all of them —
//! so the client spaces its requests to stay within a share of it, instead of only reacting to
//! 429s.
//!
//! - The share is `zendesk.<instance>.max_requests_per_minute` when set, else half the limit
//!   the account reports in its rate-limit headers (`X-Rate-Limit`, `ratelimit-limit`); until
//!   the first answer, half of [`ASSUMED_LIMIT`] (Zendesk's smallest current plan).
//! - Requests are spaced evenly (no bursts), so no 60-second span holds more than the share.
//! - When the remaining allowance the headers report (`X-Rate-Limit-Remaining`,
//!   `ratelimit-remaining`) falls under 20 % of the limit — a figure that includes everybody
//!   else's use — the client slows further: what is left of the window is spread over the time
//!   until it resets (`ratelimit-reset`), and with nothing left it waits for the reset.
//! - One pacer per client, shared by every call of it: concurrent stages of one process (the
//!   local run) keep to one share. A stage that runs beside another calling the same instance in
//!   another process (two Lambdas) is given a fraction of the share by the state machine.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use reqwest::header::HeaderMap;

/// The limit assumed before Zendesk's first answer: the Team and Growth plans' 200 a minute,
/// the smallest of the plans GitLab could be on.
pub const ASSUMED_LIMIT: u32 = 200;
/// Below this share of the limit left in the window, the client slows further.
const LOW_REMAINING: f64 = 0.2;

tokio::task_local! {
    /// The fraction of the share the running stage may use (1 unless the state machine runs it
    /// beside another stage calling the same instance from another process).
    static FRACTION: f64;
}

/// Runs `work` with `fraction` of each client's share.
pub async fn with_share<F: std::future::Future>(fraction: f64, work: F) -> F::Output {
    FRACTION.scope(fraction, work).await
}

/// The fraction of the share the running stage may use.
pub fn current_fraction() -> f64 {
    FRACTION.try_with(|f| *f).unwrap_or(1.0)
}

/// What the rate-limit headers of one answer say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// Requests a minute the account may make.
    pub limit: Option<u32>,
    /// Left in the current window, everybody's use counted.
    pub remaining: Option<u32>,
    /// Seconds until the window resets.
    pub reset: Option<u64>,
}

impl RateLimitInfo {
    /// `X-Rate-Limit` / `ratelimit-limit`, `X-Rate-Limit-Remaining` / `ratelimit-remaining`,
    /// `ratelimit-reset` (apis.md A7); the first form found wins.
    pub fn from_headers(headers: &HeaderMap) -> RateLimitInfo {
        let number = |names: &[&str]| {
            names.iter().find_map(|name| {
                headers
                    .get(*name)?
                    .to_str()
                    .ok()?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        RateLimitInfo {
            limit: number(&["x-rate-limit", "ratelimit-limit"])
                .map(|n| n.min(u32::MAX as u64) as u32),
            remaining: number(&["x-rate-limit-remaining", "ratelimit-remaining"])
                .map(|n| n.min(u32::MAX as u64) as u32),
            reset: number(&["ratelimit-reset"]),
        }
    }
}

/// The spacing between two requests: a pure function of the share and what the last answer
/// said.
pub fn spacing(share_per_minute: f64, seen: &RateLimitInfo) -> Duration {
    let even = Duration::from_secs_f64(60.0 / share_per_minute.max(0.1));
    let (Some(limit), Some(remaining)) = (seen.limit, seen.remaining) else {
        return even;
    };
    if f64::from(remaining) >= LOW_REMAINING * f64::from(limit) {
        return even;
    }
    // Others use the account heavily: spread what is left over the rest of the window (at
    // most a minute), keeping a tenth of the limit for them.
    let reset = Duration::from_secs(seen.reset.unwrap_or(60).clamp(1, 60));
    let ours = f64::from(remaining) - 0.1 * f64::from(limit);
    if ours < 1.0 {
        return even.max(reset);
    }
    even.max(reset.div_f64(ours))
}

/// Spaces a client's requests to its share of the account's limit.
#[derive(Debug)]
pub struct Pacer {
    /// The configured share (requests a minute); `None`: half the reported limit.
    configured: Option<u32>,
    state: Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    /// The earliest the next request may go.
    next: Option<Instant>,
    seen: RateLimitInfo,
}

impl Pacer {
    pub fn new(configured: Option<u32>) -> Pacer {
        Pacer {
            configured,
            state: Mutex::new(PacerState {
                next: None,
                seen: RateLimitInfo::default(),
            }),
        }
    }

    /// The share in requests a minute, times `fraction` (a stage sharing the instance with
    /// another process at once takes its part).
    pub fn share(&self, fraction: f64) -> f64 {
        let state = self.state.lock().expect("pacer lock");
        self.share_of(&state.seen, fraction)
    }

    fn share_of(&self, seen: &RateLimitInfo, fraction: f64) -> f64 {
        let base = match self.configured {
            Some(n) => f64::from(n),
            None => f64::from(seen.limit.unwrap_or(ASSUMED_LIMIT)) / 2.0,
        };
        (base * fraction.clamp(0.01, 1.0)).max(0.1)
    }

    /// Waits for this request's turn: reserves the next slot, then sleeps until it.
    pub async fn wait_turn(&self, fraction: f64) {
        let slot = {
            let mut state = self.state.lock().expect("pacer lock");
            let now = Instant::now();
            let slot = state.next.map_or(now, |next| next.max(now));
            let gap = spacing(self.share_of(&state.seen, fraction), &state.seen);
            state.next = Some(slot + gap);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Takes in what an answer's headers say about the account's use.
    pub fn observe(&self, headers: &HeaderMap) {
        let info = RateLimitInfo::from_headers(headers);
        if info == RateLimitInfo::default() {
            return;
        }
        let mut state = self.state.lock().expect("pacer lock");
        state.seen = RateLimitInfo {
            limit: info.limit.or(state.seen.limit),
            remaining: info.remaining,
            reset: info.reset,
        };
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn seen(limit: u32, remaining: u32, reset: u64) -> RateLimitInfo {
        RateLimitInfo {
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(reset),
        }
    }

    #[test]
    fn requests_are_spaced_evenly_to_the_share() {
        assert_eq!(
            spacing(350.0, &RateLimitInfo::default()),
            Duration::from_secs_f64(60.0 / 350.0)
        );
        assert_eq!(
            spacing(350.0, &seen(700, 400, 30)),
            Duration::from_secs_f64(60.0 / 350.0),
            "plenty left: the share's pace"
        );
    }

    #[test]
    fn under_a_fifth_of_the_limit_left_the_client_slows_further() {
        // 100 left of 700 (others are busy), 30 s to the reset: 30 for us over 30 s.
        let slow = spacing(350.0, &seen(700, 100, 30));
        assert_eq!(slow, Duration::from_secs(1));
        // Nothing left beyond the others' tenth: wait for the reset.
        assert_eq!(spacing(350.0, &seen(700, 60, 20)), Duration::from_secs(20));
    }

    #[test]
    fn the_share_is_the_setting_or_half_the_reported_limit() {
        let pacer = Pacer::new(None);
        assert_eq!(pacer.share(1.0), f64::from(ASSUMED_LIMIT) / 2.0);
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit", HeaderValue::from_static("700"));
        headers.insert("x-rate-limit-remaining", HeaderValue::from_static("699"));
        pacer.observe(&headers);
        assert_eq!(pacer.share(1.0), 350.0);
        assert_eq!(pacer.share(0.5), 175.0);
        assert_eq!(Pacer::new(Some(100)).share(1.0), 100.0);
    }

    #[test]
    fn both_header_forms_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("ratelimit-limit", HeaderValue::from_static("400"));
        headers.insert("ratelimit-remaining", HeaderValue::from_static("12"));
        headers.insert("ratelimit-reset", HeaderValue::from_static("41"));
        assert_eq!(RateLimitInfo::from_headers(&headers), seen(400, 12, 41));
    }

    #[tokio::test]
    async fn turns_are_reserved_one_after_another() {
        let pacer = Pacer::new(Some(6_000));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait_turn(1.0).await;
        }
        // 6 000 a minute: 10 ms apart; the fifth goes 40 ms after the first.
        assert!(start.elapsed() >= Duration::from_millis(40));
        // Half the share: twice the spacing.
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait_turn(0.5).await;
        }
        assert!(start.elapsed() >= Duration::from_millis(40));
    }
}
