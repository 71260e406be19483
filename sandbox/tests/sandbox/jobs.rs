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

/// Every job status of the list, following `links.next` with pages of `size`.
async fn list_all_jobs(zd: &crate::support::Zendesk<'_>, size: usize) -> Vec<Value> {
    let mut url = format!("/api/v2/job_statuses?page[size]={size}");
    let mut all = Vec::new();
    loop {
        let reply = zd.get(&url).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let page = reply.body["job_statuses"].as_array().expect("statuses");
        assert!(page.len() <= size);
        all.extend(page.iter().cloned());
        if reply.body["meta"]["has_more"] == json!(false) {
            return all;
        }
        url = reply.body["links"]["next"]
            .as_str()
            .expect("next link")
            .to_owned();
    }
}

fn job_ids(statuses: &[Value]) -> Vec<String> {
    statuses
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn the_job_status_list_shows_every_job_type_newest_first() {
    let h = Harness::start(empty()).await;
    let zd = h.global();
    let a = zd.create_org(json!({"name": "A"})).await;
    let b = zd.create_org(json!({"name": "B"})).await;
    let user = zd
        .create_user(json!({"name": "Pat", "email": "pat@x.example"}))
        .await;
    let jobs = [
        (
            "POST",
            "/api/v2/organizations/create_many".to_owned(),
            json!({"organizations": [{"name": "C"}, {"name": "D"}]}),
            "OrganizationBulkCreateJob",
            2,
        ),
        (
            "PUT",
            format!(
                "/api/v2/organizations/update_many?ids={},{}",
                a["id"], b["id"]
            ),
            json!({"organization": {"notes": "bulk"}}),
            "OrganizationBulkUpdateJob",
            2,
        ),
        (
            "POST",
            "/api/v2/users/create_many".to_owned(),
            json!({"users": [
                {"name": "U1", "email": "u1@x.example"},
                {"name": "U2", "email": "u2@x.example"},
                {"name": "U3", "email": "u3@x.example"},
            ]}),
            "UserBulkCreateJobV2",
            3,
        ),
        (
            "PUT",
            "/api/v2/users/update_many".to_owned(),
            json!({"users": [{"id": user["id"], "notes": "n"}]}),
            "UserBulkUpdateJobV2",
            1,
        ),
        (
            "POST",
            "/api/v2/organization_memberships/create_many".to_owned(),
            json!({"organization_memberships": [
                {"user_id": user["id"], "organization_id": a["id"]},
                {"user_id": user["id"], "organization_id": b["id"]},
            ]}),
            "OrganizationMembershipBulkCreateJob",
            2,
        ),
    ];
    let mut submitted = Vec::new();
    for (method, path, body, _, _) in &jobs {
        let done = zd.run_job(method, path, body.clone()).await;
        submitted.push(done["id"].as_str().expect("id").to_owned());
    }

    let reply = zd.get("/api/v2/job_statuses.json").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let listed = reply.body["job_statuses"].as_array().expect("statuses");
    assert_eq!(reply.body["meta"]["has_more"], json!(false));
    assert!(reply.body["meta"]["after_cursor"].is_string());
    // Completed one after the other: the most recently completed (the last) comes first.
    let mut newest_first = submitted.clone();
    newest_first.reverse();
    assert_eq!(job_ids(listed), newest_first);
    for (status, (_, _, _, job_type, total)) in listed.iter().rev().zip(&jobs) {
        assert_eq!(status["job_type"], json!(job_type), "{status}");
        assert_eq!(status["total"], json!(total), "{status}");
        assert_eq!(status["progress"], json!(total), "{status}");
        assert_eq!(status["status"], json!("completed"));
        assert_eq!(status["results"].as_array().map(Vec::len), Some(*total));
        // Each item is the very object the other job endpoints render.
        let id = status["id"].as_str().expect("id");
        let shown = zd.get(&format!("/api/v2/job_statuses/{id}")).await;
        assert_eq!(&shown.body["job_status"], status);
    }

    // Pages of two walk the same list; prev goes back.
    assert_eq!(job_ids(&list_all_jobs(&zd, 2).await), newest_first);
    let first = zd.get("/api/v2/job_statuses?page[size]=2").await;
    assert_eq!(first.body["meta"]["has_more"], json!(true));
    let next = first.body["links"]["next"].as_str().expect("next");
    assert!(next.contains("page%5Bsize%5D=2"), "{next}");
    let second = zd.get(next).await;
    assert_eq!(
        job_ids(second.body["job_statuses"].as_array().expect("page")),
        newest_first[2..4]
    );
    let back = zd
        .get(second.body["links"]["prev"].as_str().expect("prev"))
        .await;
    assert_eq!(
        job_ids(back.body["job_statuses"].as_array().expect("page")),
        newest_first[..2]
    );

    let too_big = zd.get("/api/v2/job_statuses?page[size]=101").await;
    assert_eq!(too_big.status, 400);
    assert_eq!(too_big.body["error"], json!("InvalidPaginationParameter"));
    // A cursor of another list is no cursor here.
    let orgs = zd.get("/api/v2/organizations?page[size]=1").await;
    let foreign_cursor = zd
        .get(&format!(
            "/api/v2/job_statuses?page[after]={}",
            orgs.body["meta"]["after_cursor"].as_str().expect("cursor")
        ))
        .await;
    assert_eq!(foreign_cursor.status, 400);
    // The other instance has its own jobs.
    let usgov = h.usgov().get("/api/v2/job_statuses").await;
    assert_eq!(usgov.body["job_statuses"], json!([]));
    assert_eq!(usgov.body["meta"]["after_cursor"], Value::Null);
}

#[tokio::test]
async fn jobs_in_flight_head_the_list() {
    let mut config = fast_config(empty());
    config.job_delay = Duration::from_millis(300);
    config.job_workers = 1;
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let create = |name: &str| json!({"organizations": [{"name": name}]});
    let first = zd
        .run_job("POST", "/api/v2/organizations/create_many", create("One"))
        .await;
    let second = zd
        .run_job("POST", "/api/v2/organizations/create_many", create("Two"))
        .await;
    let mut in_flight = Vec::new();
    for name in ["Three", "Four"] {
        let reply = zd
            .post("/api/v2/organizations/create_many", create(name))
            .await;
        in_flight.push(reply.body["job_status"].clone());
    }
    let listed = list_all_jobs(&zd, 100).await;
    let ids = job_ids(&listed);
    assert_eq!(
        ids,
        vec![
            in_flight[1]["id"].as_str().expect("id"),
            in_flight[0]["id"].as_str().expect("id"),
            second["id"].as_str().expect("id"),
            first["id"].as_str().expect("id"),
        ]
    );
    let states: Vec<&Value> = listed.iter().map(|s| &s["status"]).collect();
    assert_eq!(states[0], "queued");
    assert_ne!(states[1], "completed");
    assert_eq!(states[2..], [&json!("completed"), &json!("completed")]);
    assert_eq!(listed[0]["results"], Value::Null);
    assert_eq!(listed[0]["total"], json!(1));
    assert_eq!(listed[0]["progress"], json!(0));

    for job in &in_flight {
        zd.wait_for_job(job).await;
    }
    let after = list_all_jobs(&zd, 3).await;
    assert_eq!(job_ids(&after), ids, "completed in submission order");
    assert!(after.iter().all(|s| s["status"] == "completed"));
}

#[tokio::test]
async fn the_job_status_list_forgets_expired_jobs() {
    let mut config = fast_config(empty());
    config.job_ttl = Duration::from_millis(700);
    let h = Harness::with_config(config).await;
    let zd = h.global();
    let old = zd
        .run_job(
            "POST",
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "Old"}]}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new = zd
        .run_job(
            "POST",
            "/api/v2/organizations/create_many",
            json!({"organizations": [{"name": "New"}]}),
        )
        .await;
    assert_eq!(list_all_jobs(&zd, 1).await.len(), 2);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let listed = list_all_jobs(&zd, 1).await;
    assert_eq!(job_ids(&listed), job_ids(&[new]));
    let gone = zd
        .get(&format!(
            "/api/v2/job_statuses/{}",
            old["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(gone.status, 404);
}
