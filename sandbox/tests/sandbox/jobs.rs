use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zdsync_sandbox::ZendeskInstance;

use crate::support::{Harness, empty, fast_config, with_global_orgs};

#[tokio::test]
async fn create_many_queues_a_job_whose_results_report_each_record() {
    let h = Harness::start(with_global_orgs(1)).await;
    let zd = h.global();
    let reply = zd
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [
                {"name": "Fresh", "organization_fields": {"salesforce_id": "0014M00001sDiGEQA0"}},
                {"name": "Org 000 "},
                {"name": "Odd Level", "organization_fields": {"support_level": "platinum"}},
            ]}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let queued = &reply.body["job_status"];
    assert_eq!(queued["status"], json!("queued"));
    assert_eq!(queued["total"], json!(3));
    assert_eq!(queued["results"], Value::Null);
    assert_eq!(queued["job_type"], json!("OrganizationBulkCreateJob"));
    assert!(
        queued["url"]
            .as_str()
            .expect("url")
            .ends_with(queued["id"].as_str().expect("id"))
    );
    let header = reply
        .header("zendesk-ratelimit-inflight-jobs")
        .expect("inflight header");
    assert!(
        header.starts_with("total=30; remaining=29; resets="),
        "{header}"
    );
    // Nothing is applied before the job runs.
    assert_eq!(
        h.sandbox
            .zendesk(ZendeskInstance::Global)
            .organizations()
            .len(),
        1
    );

    let done = zd.wait_for_job(queued).await;
    assert!(
        done["message"]
            .as_str()
            .expect("message")
            .starts_with("Completed at ")
    );
    assert_eq!(done["progress"], json!(3));
    let results = done["results"].as_array().expect("results");
    assert_eq!(results[0]["index"], json!(0));
    assert!(results[0]["id"].as_u64().is_some());
    assert_eq!(
        results[1],
        json!({"index": 1, "error": "DuplicateValue", "details": "Name: Org 000 has already been taken"})
    );
    assert_eq!(results[2]["index"], json!(2));
    assert_eq!(results[2]["error"], json!("InvalidValue"));
    assert_eq!(
        h.sandbox
            .zendesk(ZendeskInstance::Global)
            .organizations()
            .len(),
        2
    );
}

#[tokio::test]
async fn concurrent_jobs_are_validated_when_they_run() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let body = json!({"organizations": [{"name": "Racing Org"}]});
    let first = zd
        .post("/api/v2/organizations/create_many", body.clone())
        .await;
    let second = zd.post("/api/v2/organizations/create_many", body).await;
    let a = zd.wait_for_job(&first.body["job_status"]).await;
    let b = zd.wait_for_job(&second.body["job_status"]).await;
    let errors: Vec<&Value> = [&a, &b]
        .iter()
        .map(|job| &job["results"][0]["error"])
        .collect();
    assert_eq!(errors.iter().filter(|e| e.is_null()).count(), 1, "{a} {b}");
    assert_eq!(
        errors.iter().filter(|e| **e == "DuplicateValue").count(),
        1,
        "{a} {b}"
    );
}

#[tokio::test]
async fn update_many_batch_and_bulk_forms() {
    let h = Harness::start(with_global_orgs(3)).await;
    let zd = h.global();
    let ids: Vec<u64> = h
        .sandbox
        .zendesk(ZendeskInstance::Global)
        .organizations()
        .iter()
        .map(|o| o["id"].as_u64().expect("id"))
        .collect();
    zd.put(
        &format!("/api/v2/organizations/{}", ids[2]),
        json!({"organization": {"external_id": "ext-2"}}),
    )
    .await;

    let batch = zd
        .run_job(
            "PUT",
            "/api/v2/organizations/update_many",
            json!({"organizations": [
                {"id": ids[0], "organization_fields": {"mark_for_deletion": true}},
                {"external_id": "EXT-2", "notes": "by external id"},
                {"id": 12345, "notes": "nobody"},
                {"id": ids[1], "name": "Org 000"},
            ]}),
        )
        .await;
    let results = batch["results"].as_array().expect("results");
    assert_eq!(
        results[0],
        json!({"id": ids[0], "action": "update", "success": true, "status": "Updated"})
    );
    assert_eq!(results[1]["id"], json!(ids[2]));
    assert_eq!(results[1]["success"], json!(true));
    assert_eq!(results[2]["success"], json!(false));
    assert_eq!(results[2]["status"], json!("Failed"));
    assert_eq!(results[2]["error"], json!("RecordNotFound"));
    assert_eq!(results[3]["id"], json!(ids[1]));
    assert_eq!(results[3]["error"], json!("DuplicateValue"));

    let bulk = zd
        .run_job(
            "PUT",
            &format!(
                "/api/v2/organizations/update_many?ids={},{}",
                ids[0], ids[1]
            ),
            json!({"organization": {"notes": "Priority"}}),
        )
        .await;
    assert_eq!(bulk["results"].as_array().map(Vec::len), Some(2));
    let handle = h.sandbox.zendesk(ZendeskInstance::Global);
    let first = handle.organization(ids[0]).expect("exists");
    assert_eq!(first["notes"], json!("Priority"));
    assert_eq!(
        first["organization_fields"]["mark_for_deletion"],
        json!(true)
    );
    assert_eq!(
        handle.organization(ids[2]).expect("exists")["notes"],
        json!("by external id")
    );
}

#[tokio::test]
async fn show_many_job_statuses_skips_unknown_ids() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let job = zd
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "A"}]}),
        )
        .await
        .body["job_status"]
        .clone();
    let id = job["id"].as_str().expect("id");
    let many = zd
        .get(&format!(
            "/api/v2/job_statuses/show_many?ids={id},ffffffffffffffffffffffffffffffff"
        ))
        .await;
    assert_eq!(many.status, 200);
    assert_eq!(many.body["job_statuses"].as_array().map(Vec::len), Some(1));
    let unknown = zd
        .get("/api/v2/job_statuses/ffffffffffffffffffffffffffffffff")
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );
}

#[tokio::test]
async fn job_statuses_expire_after_their_ttl() {
    let mut config = fast_config(empty());
    config.job_ttl = Duration::from_millis(800);
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let job = zd
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "A"}]}),
        )
        .await
        .body["job_status"]
        .clone();
    zd.wait_for_job(&job).await;
    tokio::time::sleep(Duration::from_millis(850)).await;
    let expired = zd
        .get(&format!(
            "/api/v2/job_statuses/{}",
            job["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(expired.status, 404);
}

#[tokio::test]
async fn more_than_30_jobs_in_flight_is_too_many() {
    let mut config = fast_config(empty());
    config.job_delay = Duration::from_secs(10);
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let mut ids = Vec::new();
    for n in 0..30 {
        let reply = zd
            .post(
                "/api/v2/organizations/create_many",
                json!({"organizations": [{"name": format!("Org {n}")}]}),
            )
            .await;
        assert_eq!(reply.status, 200, "job {n}: {:?}", reply.body);
        let remaining = format!("remaining={};", 29 - n);
        assert!(
            reply
                .header("zendesk-ratelimit-inflight-jobs")
                .expect("header")
                .contains(&remaining)
        );
        ids.push(reply.body["job_status"]["id"].clone());
    }
    let refused = zd
        .put(
            "/api/v2/users/update_many",
            json!({"users": [{"id": 1, "name": "x"}]}),
        )
        .await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["error"], json!("TooManyJobs"));
    assert_eq!(
        refused.body["description"],
        json!(
            "Too many UserBulkUpdateJobV2 jobs are currently queued or running. Try again later."
        )
    );
    assert_eq!(refused.body["current_job_ids"], Value::Array(ids));
    assert!(
        refused.header("retry-after").is_none(),
        "the docs give TooManyJobs no Retry-After"
    );
    assert!(
        refused
            .header("zendesk-ratelimit-inflight-jobs")
            .expect("header")
            .contains("remaining=0;")
    );
    // The other instance has its own queue.
    let usgov = h
        .usgov()
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "U"}]}),
        )
        .await;
    assert_eq!(usgov.status, 200);
}

#[tokio::test]
async fn batches_over_100_are_refused() {
    let h = Harness::start(empty()).await;
    let items: Vec<Value> = (0..101)
        .map(|n| json!({"name": format!("Org {n}")}))
        .collect();
    let reply = h
        .global()
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": items}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], json!("TooManyValues"));
    let missing = h
        .global()
        .post("/api/v2/organizations/create_many", json!({"orgs": []}))
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"], json!("ParameterMissing"));
}

/// The status of each job, in the order of `ids`.
async fn statuses_of(zd: &crate::support::Zendesk<'_>, ids: &[String]) -> Vec<String> {
    let reply = zd
        .get(&format!(
            "/api/v2/job_statuses/show_many?ids={}",
            ids.join(",")
        ))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let statuses = reply.body["job_statuses"].as_array().expect("statuses");
    assert_eq!(statuses.len(), ids.len());
    statuses
        .iter()
        .zip(ids)
        .map(|(status, id)| {
            assert_eq!(status["id"], json!(id));
            status["status"].as_str().expect("status").to_owned()
        })
        .collect()
}

#[tokio::test]
async fn one_worker_works_the_jobs_one_at_a_time_in_submission_order() {
    let mut config = fast_config(empty());
    config.job_delay = Duration::from_millis(200);
    config.job_workers = 1;
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let submitted = Instant::now();
    let mut ids = Vec::new();
    for n in 0..5 {
        let reply = zd
            .post(
                "/api/v2/organizations/create_many",
                json!({"organizations": [{"name": format!("Worked {n}")}]}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.body["job_status"]["status"], json!("queued"));
        ids.push(
            reply.body["job_status"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let mut queued_behind_a_worker = false;
    loop {
        let statuses = statuses_of(&zd, &ids).await;
        // Completed jobs are a prefix of the submission order, the one working (if any)
        // comes right after them, and everything later is still queued.
        let done = statuses.iter().take_while(|s| *s == "completed").count();
        let rest = &statuses[done..];
        let working = rest.iter().filter(|s| *s == "working").count();
        assert!(working <= 1, "{statuses:?}");
        if working == 1 {
            assert_eq!(rest[0], "working", "{statuses:?}");
        }
        assert!(
            rest.iter().skip(working).all(|s| s == "queued"),
            "{statuses:?}"
        );
        if working == 1 && rest.len() >= 3 {
            // Jobs that have long served their own queued time still wait for the worker.
            queued_behind_a_worker = true;
        }
        if done == ids.len() {
            break;
        }
        assert!(
            submitted.elapsed() < Duration::from_secs(10),
            "jobs never finished: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = submitted.elapsed();
    // Each job works for 100 ms after the one before it: the last ends ~600 ms in.
    assert!(
        elapsed >= Duration::from_millis(500),
        "five jobs done in {elapsed:?}"
    );
    assert!(queued_behind_a_worker);
    let names: Vec<Value> = h
        .sandbox
        .zendesk(ZendeskInstance::Global)
        .organizations()
        .iter()
        .map(|o| o["name"].clone())
        .collect();
    assert_eq!(names.len(), 5);
}

#[tokio::test]
async fn jobs_waiting_for_a_worker_count_as_in_flight() {
    let mut config = fast_config(empty());
    config.job_delay = Duration::from_secs(10);
    config.job_workers = 1;
    config.max_inflight_jobs = 3;
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let mut ids = Vec::new();
    for n in 0..3 {
        let reply = zd
            .post(
                "/api/v2/organizations/create_many",
                json!({"organizations": [{"name": format!("Org {n}")}]}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let header = reply
            .header("zendesk-ratelimit-inflight-jobs")
            .expect("header");
        // The first job can finish 10 s after it was submitted, and no sooner.
        assert_eq!(header, format!("total=3; remaining={}; resets=10", 2 - n));
        ids.push(reply.body["job_status"]["id"].clone());
    }
    let refused = zd
        .post(
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "One too many"}]}),
        )
        .await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body["error"], json!("TooManyJobs"));
    assert_eq!(refused.body["current_job_ids"], Value::Array(ids));
}
