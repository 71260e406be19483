//! The cursor-based Incremental User Export (`/api/v2/incremental/users/cursor`). Its rate
//! limit, shared with the organization export, is in `rate_limits.rs`.

use std::time::Duration;

use serde_json::{Value, json};
use zdsync_sandbox::Fixture;

use crate::support::{
    Harness, Reply, Zendesk, invalid_value, names_in, start_times_are_checked, unix,
    unlimited_exports,
};

const EXPORT: &str = "/api/v2/incremental/users/cursor";

/// The export's rate limit has its own tests; here it would only count requests.
async fn export(zd: &Zendesk<'_>, query: &str) -> Reply {
    let reply = zd.get(&format!("{EXPORT}?{query}")).await;
    assert_eq!(reply.status, 200, "{query}: {:?}", reply.body);
    reply
}

/// The page after `page`, by its `after_url`.
async fn follow(zd: &Zendesk<'_>, page: &Reply) -> Reply {
    let reply = zd
        .get(page.body["after_url"].as_str().expect("after_url"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply
}

fn after_cursor(reply: &Reply) -> &str {
    reply.body["after_cursor"].as_str().expect("after_cursor")
}

fn names(reply: &Reply) -> Vec<&str> {
    names_in(reply, "users")
}

/// Users changed at these times (RFC 3339), named `A`, `B`, … in that order, their roles taking
/// turns; ids are given in reverse so the order within a second is visibly by id.
fn changed_at(times: &[&str]) -> Fixture {
    let roles = ["end-user", "agent", "admin"];
    let mut fixture = Fixture::default();
    fixture.zendesk.global.users = times
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let name = ((b'A' + i as u8) as char).to_string();
            json!({"id": 900 - i as u64, "name": name, "role": roles[i % roles.len()],
                "email": format!("{}@x.example", name.to_lowercase()),
                "created_at": "2024-01-01T00:00:00Z", "updated_at": at})
        })
        .collect();
    fixture
}

#[tokio::test]
async fn pages_follow_the_after_cursor_and_never_repeat_an_item() {
    let fixture = changed_at(&[
        "2025-03-01T09:59:59Z",
        "2025-03-01T10:00:00Z",
        "2025-03-01T10:00:01Z",
        "2025-03-01T10:00:01Z",
        "2025-03-01T10:00:01Z",
        "2025-03-01T10:00:02Z",
    ]);
    let h = Harness::with_config(unlimited_exports(fixture)).await;
    let zd = h.global();
    let t0 = unix("2025-03-01T10:00:00Z");

    // Every role, a second's changes by id (E, D, C), nothing before start_time.
    let all = export(&zd, &format!("start_time={t0}")).await;
    assert_eq!(names(&all), ["B", "E", "D", "C", "F"]);
    assert_eq!(all.body["end_of_stream"], json!(true));
    assert_eq!(all.body["before_cursor"], Value::Null);
    assert_eq!(all.body["before_url"], Value::Null);
    // Rendered as the user endpoints render them.
    let shown = zd.get("/api/v2/users/899").await;
    assert_eq!(all.body["users"][0], shown.body["user"]);

    // Two a page: the second 10:00:01 is split between pages, and the cursor carries on
    // exactly where the page stopped.
    let first = export(&zd, &format!("start_time={t0}&per_page=2")).await;
    assert_eq!(names(&first), ["B", "E"]);
    assert_eq!(first.body["end_of_stream"], json!(false));
    assert_eq!(
        first.body["after_url"],
        json!(zd.url(&format!(
            "{EXPORT}?cursor={}&per_page=2",
            after_cursor(&first)
        )))
    );
    let second = follow(&zd, &first).await;
    assert_eq!(names(&second), ["D", "C"]);
    assert_eq!(second.body["end_of_stream"], json!(false));
    let third = follow(&zd, &second).await;
    assert_eq!(names(&third), ["F"]);
    assert_eq!(third.body["end_of_stream"], json!(true));

    // The end of the stream still gives a cursor; polling with it finds nothing new and
    // keeps the place.
    let again = follow(&zd, &third).await;
    assert!(names(&again).is_empty());
    assert_eq!(again.body["end_of_stream"], json!(true));
    assert_eq!(after_cursor(&again), after_cursor(&third));
    // A cursor is the same place on every request: asked again, the same page.
    let repeated = export(&zd, &format!("cursor={}&per_page=2", after_cursor(&first))).await;
    assert_eq!(repeated.body, second.body);
}

#[tokio::test]
async fn a_stored_cursor_brings_the_changes_made_after_the_stream_ended() {
    let fixture = changed_at(&["2025-03-01T10:00:00Z", "2025-03-01T11:00:00Z"]);
    let h = Harness::with_config(unlimited_exports(fixture)).await;
    let zd = h.global();
    let caught_up = export(&zd, "start_time=0").await;
    assert_eq!(names(&caught_up), ["A", "B"]);
    assert_eq!(caught_up.body["end_of_stream"], json!(true));
    let stored = after_cursor(&caught_up).to_owned();

    let edited = zd
        .put("/api/v2/users/900", json!({"user": {"notes": "changed"}}))
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    zd.create_user(json!({"name": "New", "email": "new@x.example"}))
        .await;
    // Within the minute both changes are held back; the place is kept.
    let held = export(&zd, &format!("cursor={stored}")).await;
    assert!(names(&held).is_empty());
    assert_eq!(held.body["end_of_stream"], json!(true));
    assert_eq!(after_cursor(&held), stored);

    h.sandbox.advance_clock(Duration::from_secs(61));
    let later = export(&zd, &format!("cursor={stored}")).await;
    assert_eq!(names(&later), ["A", "New"]);
    assert_eq!(later.body["users"][0]["notes"], json!("changed"));
    assert_eq!(later.body["end_of_stream"], json!(true));
    let after_that = follow(&zd, &later).await;
    assert!(names(&after_that).is_empty());
}

#[tokio::test]
async fn a_user_changed_within_the_last_minute_is_held_back() {
    let h = Harness::with_config(unlimited_exports(changed_at(&["2025-03-01T10:00:00Z"]))).await;
    let zd = h.global();
    let start = h.sandbox.now().timestamp() - 3600;
    zd.create_user(json!({"name": "Fresh", "role": "agent"}))
        .await;

    // The held-back user does not keep the stream open, and an empty page keeps its start.
    let empty = export(&zd, &format!("start_time={start}")).await;
    assert!(names(&empty).is_empty());
    assert_eq!(empty.body["end_of_stream"], json!(true));
    let old = export(&zd, "start_time=0").await;
    assert_eq!(names(&old), ["A"]);
    assert_eq!(old.body["end_of_stream"], json!(true));

    h.sandbox.advance_clock(Duration::from_secs(30));
    assert!(names(&follow(&zd, &empty).await).is_empty());
    h.sandbox.advance_clock(Duration::from_secs(31));
    assert_eq!(names(&follow(&zd, &empty).await), ["Fresh"]);
    assert_eq!(names(&follow(&zd, &old).await), ["Fresh"]);
}

#[tokio::test]
async fn bad_cursors_and_start_times_are_invalid_value() {
    let h = Harness::with_config(unlimited_exports(changed_at(&["2025-03-01T10:00:00Z"]))).await;
    let zd = h.global();
    start_times_are_checked(&h, EXPORT).await;

    // Not cursors this export gave: garbage, nothing, Zendesk's own sample (another text
    // layout), and a list's pagination cursor.
    let listed = zd.get("/api/v2/users?page[size]=1").await;
    let list_cursor = listed.body["meta"]["after_cursor"]
        .as_str()
        .expect("cursor");
    for bad in ["abc", "", "MTU3NjYxMzUzOS4wfHw0Njd8", list_cursor] {
        let description = invalid_value(&zd.get(&format!("{EXPORT}?cursor={bad}")).await);
        assert!(description.contains("cursor"), "{description}");
    }
    // A cursor wins over a start_time sent with it.
    let first = export(&zd, "start_time=0").await;
    let with_both = export(
        &zd,
        &format!("cursor={}&start_time=abc", after_cursor(&first)),
    )
    .await;
    assert!(names(&with_both).is_empty());

    // The path with .json serves it too.
    let suffixed = zd.get(&format!("{EXPORT}.json?start_time=0")).await;
    assert_eq!(names(&suffixed), ["A"]);
}
