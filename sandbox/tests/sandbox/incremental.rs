//! The Incremental Organization Export (`/api/v2/incremental/organizations`) and the sandbox
//! clock that ages records without a test sleeping. Its rate limit is in `rate_limits.rs`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use zdsync_sandbox::Fixture;

use crate::support::{
    Harness, Reply, Zendesk, names_in, start_times_are_checked, unix, unlimited_exports,
};

const EXPORT: &str = "/api/v2/incremental/organizations";

/// The export's own rate limit has its own tests; here it would only count requests.
async fn export(zd: &Zendesk<'_>, query: &str) -> Reply {
    let reply = zd.get(&format!("{EXPORT}?{query}")).await;
    assert_eq!(reply.status, 200, "{query}: {:?}", reply.body);
    reply
}

fn names(reply: &Reply) -> Vec<&str> {
    names_in(reply, "organizations")
}

/// Organizations changed at these times (RFC 3339), named `A`, `B`, … in that order; ids
/// are given in reverse so the order within a second is visibly by id.
fn changed_at(times: &[&str]) -> Fixture {
    let mut fixture = Fixture::default();
    fixture.zendesk.global.organizations = times
        .iter()
        .enumerate()
        .map(|(i, at)| {
            json!({"id": 900 - i as u64, "name": ((b'A' + i as u8) as char).to_string(),
                "created_at": "2024-01-01T00:00:00Z", "updated_at": at})
        })
        .collect();
    fixture
}

#[tokio::test]
async fn a_change_of_the_last_minute_is_held_back_until_the_clock_passes_it() {
    let h = Harness::with_config(unlimited_exports(Fixture::default())).await;
    let zd = h.global();
    let start = h.sandbox.now().timestamp() - 3600;
    let org = zd.create_org(json!({"name": "Fresh"})).await;

    let before = export(&zd, &format!("start_time={start}")).await;
    assert_eq!(before.body["count"], json!(0));
    assert_eq!(
        before.body["end_time"],
        json!(start),
        "an empty page ends at its start"
    );
    assert_eq!(before.body["end_of_stream"], json!(true));

    h.sandbox.advance_clock(Duration::from_secs(61));
    let after = export(&zd, &format!("start_time={start}")).await;
    assert_eq!(after.body["organizations"], json!([org.clone()]));
    assert_eq!(
        after.body["end_time"],
        json!(unix(org["updated_at"].as_str().expect("updated_at")))
    );

    // Changing it again holds it back again: the export shows records as they are now.
    let changed = zd
        .put(
            &format!("/api/v2/organizations/{}", org["id"]),
            json!({"organization": {"notes": "changed"}}),
        )
        .await;
    assert_eq!(changed.status, 200);
    assert_eq!(
        export(&zd, &format!("start_time={start}")).await.body["count"],
        json!(0)
    );
    h.sandbox.advance_clock(Duration::from_secs(61));
    let later = export(&zd, &format!("start_time={start}")).await;
    assert_eq!(later.body["organizations"][0]["notes"], json!("changed"));
}

#[tokio::test]
async fn pages_follow_end_time_and_never_split_a_second() {
    let fixture = changed_at(&[
        "2025-03-01T10:00:00Z",
        "2025-03-01T10:00:01Z",
        "2025-03-01T10:00:01.500Z",
        "2025-03-01T10:00:01Z",
        "2025-03-01T10:00:02Z",
        "2025-03-01T10:00:03Z",
    ]);
    let h = Harness::with_config(unlimited_exports(fixture)).await;
    let zd = h.global();
    let t0 = unix("2025-03-01T10:00:00Z");
    // Before every change: nothing is left out, and a second's changes go by id (D, C, B).
    let all = export(&zd, &format!("start_time={}", t0 - 100)).await;
    assert_eq!(names(&all), ["A", "D", "C", "B", "E", "F"]);
    assert_eq!(all.body["end_of_stream"], json!(true));

    // Two a page, but the second 10:00:01 stays whole: the page runs over to four.
    let first = export(&zd, &format!("start_time={t0}&per_page=2")).await;
    assert_eq!(names(&first), ["A", "D", "C", "B"]);
    assert_eq!(first.body["count"], json!(4));
    assert_eq!(first.body["end_time"], json!(t0 + 1));
    assert_eq!(first.body["end_of_stream"], json!(false));
    let next = first.body["next_page"].as_str().expect("next_page");
    assert_eq!(
        next,
        zd.url(&format!("{EXPORT}?start_time={}&per_page=2", t0 + 1))
    );

    // The next page starts at end_time inclusive: that second again. Being all of one
    // second, it ends after it, so the third page moves on.
    let second = zd.get(next).await;
    assert_eq!(names(&second), ["D", "C", "B"]);
    assert_eq!(second.body["end_time"], json!(t0 + 2));
    assert_eq!(second.body["end_of_stream"], json!(false));

    let third = zd
        .get(second.body["next_page"].as_str().expect("next"))
        .await;
    assert_eq!(names(&third), ["E", "F"]);
    assert_eq!(third.body["end_time"], json!(t0 + 3));
    assert_eq!(third.body["end_of_stream"], json!(true));

    // A caught-up client polling again sees the last second again, and nothing else.
    let again = zd
        .get(third.body["next_page"].as_str().expect("next"))
        .await;
    assert_eq!(names(&again), ["F"]);
    assert_eq!(again.body["end_of_stream"], json!(true));
}

#[tokio::test]
async fn start_time_must_be_a_past_unix_time_in_seconds() {
    let h = Harness::with_config(unlimited_exports(Fixture::default())).await;
    let zd = h.global();
    let future = h.sandbox.now().timestamp() + 3600;
    start_times_are_checked(&h, EXPORT).await;
    // The future is the sandbox clock's: once it has passed that time, the start is fine.
    h.sandbox.advance_clock(Duration::from_secs(3600));
    let now = export(&zd, &format!("start_time={future}")).await;
    assert_eq!(now.body["count"], json!(0));

    // The path with .json serves it too.
    assert_eq!(
        zd.get(&format!("{EXPORT}.json?start_time=0")).await.status,
        200
    );
}

#[tokio::test]
async fn the_clock_admin_route_reads_and_advances_the_sandbox_clock() {
    let h = Harness::with_config(unlimited_exports(Fixture::default())).await;
    let url = format!("{}/_sandbox/clock", h.sandbox.base_url());
    let reading = |body: &Value| -> DateTime<Utc> {
        body["now"]
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .expect("now")
            .with_timezone(&Utc)
    };
    let before = reading(&h.admin("clock").await);
    assert!((Utc::now() - before).num_seconds().abs() < 5, "{before}");

    let advanced: Value = h
        .http
        .post(&url)
        .json(&json!({"advance_secs": 86_400}))
        .send()
        .await
        .expect("reply")
        .json()
        .await
        .expect("json");
    let after = reading(&advanced);
    assert!(
        (after - before).num_seconds() >= 86_400,
        "{before} → {after}"
    );
    assert!(h.sandbox.now() >= after);
    assert!(reading(&h.admin("clock").await) >= after);

    // Records written now, singly or by a job, carry the clock's time.
    let zd = h.global();
    let org = zd.create_org(json!({"name": "Tomorrow"})).await;
    let job = zd
        .run_job(
            "POST",
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "Tomorrow Too"}]}),
        )
        .await;
    let made = zd
        .get(&format!(
            "/api/v2/organizations/{}",
            job["results"][0]["id"]
        ))
        .await;
    for record in [&org, &made.body["organization"]] {
        let created = unix(record["created_at"].as_str().expect("created_at"));
        assert!(created >= after.timestamp(), "{record}");
    }

    for bad in [
        json!({"advance_secs": -5}),
        json!({"seconds": 5}),
        json!("soon"),
    ] {
        let reply = h.http.post(&url).json(&bad).send().await.expect("reply");
        assert_eq!(reply.status(), 400, "{bad}");
    }
}
