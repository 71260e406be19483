//! A running sandbox plus a real HTTP client, and small helpers over Zendesk replies.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use zdsync_sandbox::{Fixture, Sandbox, SandboxConfig, ZendeskInstance};

pub struct Harness {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
}

/// Jobs finish quickly so tests that wait for them stay fast.
pub fn fast_config(fixture: Fixture) -> SandboxConfig {
    let mut config = SandboxConfig::new(fixture);
    config.job_delay = Duration::from_millis(40);
    config
}

impl Harness {
    pub async fn start(fixture: Fixture) -> Harness {
        Harness::with_config(fast_config(fixture)).await
    }

    pub async fn with_config(config: SandboxConfig) -> Harness {
        let sandbox = Sandbox::start(config).await.expect("sandbox starts");
        Harness {
            sandbox,
            http: reqwest::Client::new(),
        }
    }

    /// An admin route's JSON answer (`state`, `counters`, `faults`).
    pub async fn admin(&self, route: &str) -> Value {
        self.http
            .get(format!("{}/_sandbox/{route}", self.sandbox.base_url()))
            .send()
            .await
            .expect("reply")
            .json()
            .await
            .expect("json")
    }

    pub fn global(&self) -> Zendesk<'_> {
        self.zendesk(ZendeskInstance::Global)
    }

    pub fn usgov(&self) -> Zendesk<'_> {
        self.zendesk(ZendeskInstance::Usgov)
    }

    pub fn zendesk(&self, instance: ZendeskInstance) -> Zendesk<'_> {
        Zendesk {
            harness: self,
            instance,
        }
    }
}

/// A Zendesk client for one instance, authenticated with its API token.
pub struct Zendesk<'a> {
    harness: &'a Harness,
    pub instance: ZendeskInstance,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Zendesk<'_> {
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.harness.sandbox.zendesk_url(self.instance))
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let credentials = self.harness.sandbox.zendesk_credentials(self.instance);
        self.harness
            .http
            .request(method, self.url(path))
            .basic_auth(
                format!("{}/token", credentials.email),
                Some(credentials.token),
            )
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        send(self.request(reqwest::Method::POST, path).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        send(self.request(reqwest::Method::PUT, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// Creates an organization and returns it.
    pub async fn create_org(&self, attributes: Value) -> Value {
        let reply = self
            .post("/api/v2/organizations", json!({"organization": attributes}))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["organization"].clone()
    }

    pub async fn create_user(&self, attributes: Value) -> Value {
        let reply = self
            .post("/api/v2/users", json!({"user": attributes}))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["user"].clone()
    }

    /// Polls a job until it completes and returns its final status.
    pub async fn wait_for_job(&self, job: &Value) -> Value {
        let id = job["id"].as_str().expect("job id");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = self.get(&format!("/api/v2/job_statuses/{id}")).await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            let status = reply.body["job_status"].clone();
            if status["status"] == json!("completed") {
                return status;
            }
            assert!(Instant::now() < deadline, "job {id} never completed");
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }

    /// Queues a job (POST or PUT), checks the 200 job status and waits for the result.
    pub async fn run_job(&self, method: &str, path: &str, body: Value) -> Value {
        let reply = match method {
            "POST" => self.post(path, body).await,
            _ => self.put(path, body).await,
        };
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        self.wait_for_job(&reply.body["job_status"]).await
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request reaches the sandbox");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

/// A fixture with no records and default fields.
pub fn empty() -> Fixture {
    Fixture::default()
}

/// A fixture whose Global instance holds `n` organizations named `Org 000`, `Org 001`, …
pub fn with_global_orgs(n: usize) -> Fixture {
    let mut fixture = Fixture::default();
    fixture.zendesk.global.organizations = (0..n)
        .map(|i| json!({"name": format!("Org {i:03}")}))
        .collect();
    fixture
}

/// A sandbox of `fixture` whose incremental exports are not rate limited (their own limit's
/// tests set it).
pub fn unlimited_exports(fixture: Fixture) -> SandboxConfig {
    let mut config = fast_config(fixture);
    config.incremental_rate_limit_per_minute = 0;
    config
}

/// A 400 `InvalidValue` answer's description.
pub fn invalid_value(reply: &Reply) -> String {
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert_eq!(
        reply.body["error"],
        serde_json::json!("InvalidValue"),
        "{:?}",
        reply.body
    );
    reply.body["description"]
        .as_str()
        .expect("description")
        .to_owned()
}

/// The `start_time` and `per_page` rules both incremental exports share: a past unix time in
/// whole seconds (by the sandbox clock), a positive page size; and both instances serve `export`.
pub async fn start_times_are_checked(h: &Harness, export: &str) {
    let zd = h.global();
    let missing = invalid_value(&zd.get(export).await);
    assert!(missing.contains("start_time"), "{missing}");
    for bad in ["abc", "1.5", "-1", ""] {
        invalid_value(&zd.get(&format!("{export}?start_time={bad}")).await);
    }
    let future = h.sandbox.now().timestamp() + 3600;
    let description = invalid_value(&zd.get(&format!("{export}?start_time={future}")).await);
    assert_eq!(description, "start_time cannot be in the future");
    let zero = zd.get(&format!("{export}?start_time=0&per_page=0")).await;
    assert_eq!(zero.status, 400);
    assert_eq!(
        zero.body["error"],
        serde_json::json!("InvalidPaginationParameter")
    );
    assert_eq!(
        h.usgov()
            .get(&format!("{export}?start_time=0"))
            .await
            .status,
        200
    );
}

/// The names of the records under `key` of an answer, in order.
pub fn names_in<'a>(reply: &'a Reply, key: &str) -> Vec<&'a str> {
    reply.body[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {:?}", reply.body))
        .iter()
        .map(|record| record["name"].as_str().expect("name"))
        .collect()
}

/// An RFC 3339 time in unix seconds.
pub fn unix(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("time")
        .timestamp()
}
