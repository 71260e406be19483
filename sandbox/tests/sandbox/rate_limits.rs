use std::time::Duration;

use serde_json::json;

use crate::support::{Harness, empty, fast_config};

#[tokio::test]
async fn account_limit_answers_429_with_retry_after_until_the_window_resets() {
    let mut config = fast_config(empty());
    config.zendesk_rate_limit_per_minute = 3;
    config.zendesk_rate_limit_window = Duration::from_secs(2);
    let h = Harness::with_config(config).await;
    let zd = h.global();
    for expected_remaining in ["2", "1", "0"] {
        let reply = zd.get("/api/v2/organizations").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-rate-limit"), Some("3"));
        assert_eq!(reply.header("ratelimit-limit"), Some("3"));
        assert_eq!(
            reply.header("x-rate-limit-remaining"),
            Some(expected_remaining)
        );
        assert_eq!(
            reply.header("ratelimit-remaining"),
            Some(expected_remaining)
        );
        assert!(reply.header("ratelimit-reset").is_some());
    }
    let limited = zd.get("/api/v2/organizations").await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.body,
        json!({"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"})
    );
    assert_eq!(limited.header("x-rate-limit-remaining"), Some("0"));
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");

    // The other instance has its own window.
    assert_eq!(h.usgov().get("/api/v2/organizations").await.status, 200);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(zd.get("/api/v2/organizations").await.status, 200);
}

#[tokio::test]
async fn job_creating_calls_count_against_the_account_limit() {
    let mut config = fast_config(empty());
    config.zendesk_rate_limit_per_minute = 2;
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let body = json!({"organizations": [{"name": "A"}]});
    assert_eq!(
        zd.post("/api/v2/organizations/create_many", body.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        zd.post("/api/v2/organizations/create_many", body.clone())
            .await
            .status,
        200
    );
    assert_eq!(
        zd.post("/api/v2/organizations/create_many", body)
            .await
            .status,
        429
    );
}

#[tokio::test]
async fn requests_failing_authentication_do_not_use_the_quota() {
    let mut config = fast_config(empty());
    config.zendesk_rate_limit_per_minute = 1;
    let h = Harness::with_config(config).await;
    let url = h.global().url("/api/v2/organizations");
    for _ in 0..3 {
        assert_eq!(h.http.get(&url).send().await.expect("reply").status(), 401);
    }
    assert_eq!(h.global().get("/api/v2/organizations").await.status, 200);
}

/// What an incremental export request gets back, from the dawn of time.
async fn export(zd: &crate::support::Zendesk<'_>) -> crate::support::Reply {
    zd.get("/api/v2/incremental/organizations?start_time=0")
        .await
}

#[tokio::test]
async fn incremental_exports_have_their_own_limit_of_ten_a_minute() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    for n in 1..=10 {
        assert_eq!(export(&zd).await.status, 200, "request {n}");
    }
    let limited = export(&zd).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.body,
        json!({"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"})
    );
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The account counted all eleven; its quota headers are on the refusal too.
    assert_eq!(limited.header("x-rate-limit-remaining"), Some("689"));

    // Other endpoints still answer, and the other instance has its own window.
    let listed = zd.get("/api/v2/organizations").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.header("x-rate-limit-remaining"), Some("688"));
    assert_eq!(export(&h.usgov()).await.status, 200);
    // Advancing the sandbox clock ages records, not rate-limit windows.
    h.sandbox.advance_clock(Duration::from_secs(120));
    assert_eq!(export(&zd).await.status, 429);
}

#[tokio::test]
async fn the_user_cursor_export_shares_the_incremental_limit() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let users = "/api/v2/incremental/users/cursor?start_time=0";
    for n in 1..=5 {
        assert_eq!(export(&zd).await.status, 200, "organizations {n}");
        assert_eq!(zd.get(users).await.status, 200, "users {n}");
    }
    // Ten between them: the eleventh is refused whichever export it asks.
    let limited = zd.get(users).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"], json!("APIRateLimitExceeded"));
    assert!(limited.header("retry-after").is_some());
    assert_eq!(export(&zd).await.status, 429);
    // The cursor form is the same endpoint for the limit.
    let cursor = "/api/v2/incremental/users/cursor?cursor=abc";
    assert_eq!(zd.get(cursor).await.status, 429);
    assert_eq!(h.usgov().get(users).await.status, 200);
}

#[tokio::test]
async fn the_account_limit_applies_to_incremental_exports_too() {
    let mut config = fast_config(empty());
    config.zendesk_rate_limit_per_minute = 2;
    let h = Harness::with_config(config).await;
    let zd = h.global();
    assert_eq!(export(&zd).await.status, 200);
    assert_eq!(zd.get("/api/v2/organizations").await.status, 200);
    let limited = export(&zd).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("x-rate-limit-remaining"), Some("0"));
}
