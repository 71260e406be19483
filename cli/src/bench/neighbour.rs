//! Another app of the Zendesk account, making steady requests while the sync runs: does the
//! sync leave it its part of the rate limit?

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

/// Another app of the Zendesk account, making steady requests while the sync runs.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Neighbour {
    pub(super) requests_per_minute: u32,
    pub(super) requests: u64,
    pub(super) throttled: u64,
}

impl Neighbour {
    /// Sends `rpm` Global requests a minute, evenly, until `stop` says so.
    pub(super) async fn run(
        rpm: u32,
        env: BTreeMap<String, String>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Neighbour> {
        let url = format!(
            "{}/api/v2/organizations?page[size]=1",
            env.get("ZDSYNC_ZENDESK_GLOBAL_URL")
                .context("the sandbox's Global URL")?
                .trim_end_matches('/')
        );
        let user = format!(
            "{}/token",
            env.get("ZDSYNC_ZENDESK_GLOBAL_EMAIL")
                .context("the sandbox's Global email")?
        );
        let token = env
            .get("ZDSYNC_ZENDESK_GLOBAL_TOKEN")
            .context("the sandbox's Global token")?
            .clone();
        let http = reqwest::Client::new();
        let mut figures = Neighbour {
            requests_per_minute: rpm,
            ..Neighbour::default()
        };
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(60.0 / f64::from(rpm)));
        while !*stop.borrow() {
            ticks.tick().await;
            let answer = http
                .get(&url)
                .basic_auth(&user, Some(&token))
                .send()
                .await?;
            figures.requests += 1;
            if answer.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
                figures.throttled += 1;
            }
        }
        Ok(figures)
    }
}
