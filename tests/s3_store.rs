//! The S3 artifact store against a real S3-compatible server (s3s-fs, in process, checking
//! SigV4 signatures), through the real `aws-sdk-s3` client; and the same behaviour checks run
//! against the directory store, so the two backends stay interchangeable.

use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use zdsync::store::{
    ArtifactStore, DirStore, RunKeys, S3Location, S3Store, StoreError, StoreUrl, read_json,
    read_json_opt, write_json,
};

const ACCESS_KEY: &str = "zdsync-e2e-access";
const SECRET_KEY: &str = "zdsync-e2e-secret-0123456789";
const REGION: &str = "us-east-1";
const BUCKET: &str = "zdsync-artifacts";

/// An s3s-fs server on 127.0.0.1, serving a temporary directory, stopped on drop.
struct S3Server {
    endpoint: String,
    accept_loop: JoinHandle<()>,
    _root: tempfile::TempDir,
}

impl S3Server {
    async fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let service = {
            let mut builder =
                s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(root.path()).unwrap());
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // `localhost`, not the IP: S3's endpoint rules fall back to path-style addressing for
        // IP hosts on their own, so only a host name shows whether the store forces it.
        let endpoint = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        // The same serving loop as s3s-fs's own binary, minus graceful shutdown: the server
        // lives exactly as long as the test.
        let accept_loop = tokio::spawn(async move {
            let http = ConnectionBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        let server = S3Server {
            endpoint,
            accept_loop,
            _root: root,
        };
        server
            .client()
            .await
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        server
    }

    /// AWS configuration as a deployment would load it, with the test's key pair and the
    /// server as the endpoint.
    async fn sdk_config(&self) -> SdkConfig {
        sdk_config(Some(&self.endpoint), ACCESS_KEY, SECRET_KEY).await
    }

    /// A plain SDK client, for looking at the bucket behind the store's back.
    async fn client(&self) -> Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
            .force_path_style(true)
            .build();
        Client::from_conf(config)
    }

    /// The store under test, built the way a test or local run points it at a server.
    async fn store(&self, prefix: &str) -> S3Store {
        S3Store::with_endpoint(
            &sdk_config(None, ACCESS_KEY, SECRET_KEY).await,
            S3Location::new(BUCKET, prefix).unwrap(),
            &self.endpoint,
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn sdk_config(endpoint: Option<&str>, access_key: &str, secret_key: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "zdsync-e2e",
        ));
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Org {
    id: u64,
    salesforce_id: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct OrgsArtifact {
    orgs: Vec<Org>,
}

#[tokio::test]
async fn objects_round_trip_under_the_prefix_as_json() {
    let server = S3Server::start().await;
    let store = server.store("prod").await;
    assert_eq!(store.describe(), "s3://zdsync-artifacts/prod");
    let run = RunKeys::new("exec-1").unwrap();
    let key = run.key("zendesk_global.json").unwrap();
    let artifact = OrgsArtifact {
        orgs: vec![Org {
            id: 1,
            salesforce_id: Some("0016100001AbCdEAAV".into()),
        }],
    };

    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(
        read_json_opt::<OrgsArtifact>(&store, &key)
            .await
            .unwrap()
            .is_none()
    );
    write_json(&store, &key, &artifact).await.unwrap();
    assert_eq!(
        read_json::<OrgsArtifact>(&store, &key).await.unwrap(),
        artifact
    );

    let client = server.client().await;
    let object = client
        .head_object()
        .bucket(BUCKET)
        .key("prod/runs/exec-1/zendesk_global.json")
        .send()
        .await
        .unwrap();
    assert_eq!(object.content_type(), Some("application/json"));

    let blob = Bytes::from_static(b"\x00\x01 not json");
    store
        .put("runs/exec-1/raw.bin", blob.clone())
        .await
        .unwrap();
    assert_eq!(store.get("runs/exec-1/raw.bin").await.unwrap(), Some(blob));
}

/// A big artifact on S3: a pointer under its key, one gzip blob under `blobs/` beside `runs/`
/// (inside the store's prefix), shared by an equal artifact of another run, renewed in place
/// by a server-side copy, and a clear error when it is gone.
#[tokio::test]
async fn big_artifacts_are_blobs_behind_pointers_on_s3() {
    let server = S3Server::start().await;
    let store = server.store("prod").await;
    let orgs = |n: u64| OrgsArtifact {
        orgs: (0..n)
            .map(|id| Org {
                id,
                salesforce_id: Some(format!("0016100001{id:08}")),
            })
            .collect(),
    };
    let big = orgs(4_000);
    assert!(serde_json::to_vec(&big).unwrap().len() >= zdsync::store::blob::BLOB_MIN_BYTES);
    write_json(&store, "runs/exec-1/zendesk_global.json", &big)
        .await
        .unwrap();
    write_json(&store, "runs/exec-2/zendesk_global.json", &big)
        .await
        .unwrap();
    assert_eq!(
        read_json::<OrgsArtifact>(&store, "runs/exec-2/zendesk_global.json")
            .await
            .unwrap(),
        big
    );
    let blobs = store.list("blobs/").await.unwrap();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let pointer = store
        .get("runs/exec-1/zendesk_global.json")
        .await
        .unwrap()
        .unwrap();
    assert!(pointer.len() < 400, "{}", pointer.len());
    let target = zdsync::store::blob::pointer_target("k", &pointer)
        .unwrap()
        .unwrap();
    assert_eq!(target.key, blobs[0]);
    let client = server.client().await;
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(format!("prod/{}", blobs[0]))
        .send()
        .await
        .unwrap();
    assert!(head.content_length().unwrap() < target.bytes as i64 / 3);

    // Renewing a blob copies it onto itself: same bytes, still readable.
    assert!(store.touch(&blobs[0]).await.unwrap());
    assert!(!store.touch("blobs/none.json.gz").await.unwrap());
    assert_eq!(
        read_json::<OrgsArtifact>(&store, "runs/exec-1/zendesk_global.json")
            .await
            .unwrap(),
        big
    );

    client
        .delete_object()
        .bucket(BUCKET)
        .key(format!("prod/{}", blobs[0]))
        .send()
        .await
        .unwrap();
    let err = read_json::<OrgsArtifact>(&store, "runs/exec-1/zendesk_global.json")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArtifact { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "its blob {} is missing from s3://zdsync-artifacts/prod",
            blobs[0]
        )),
        "{err}"
    );
}

#[tokio::test]
async fn listing_follows_continuation_tokens() {
    let server = S3Server::start().await;
    let store = server.store("").await.with_page_size(3);
    let mut expected: Vec<String> = (0..11)
        .map(|i| format!("runs/r1/part-{i:02}.json"))
        .collect();
    for key in &expected {
        store.put(key, Bytes::from_static(b"{}")).await.unwrap();
    }
    store
        .put("runs/r2/summary.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();

    // The server must really cut pages at max-keys, or this test would not exercise paging.
    let truncated = server
        .client()
        .await
        .list_objects_v2()
        .bucket(BUCKET)
        .max_keys(3)
        .send()
        .await
        .unwrap();
    assert_eq!(truncated.is_truncated(), Some(true));
    assert!(truncated.next_continuation_token().is_some());

    assert_eq!(store.list("runs/r1/").await.unwrap(), expected);
    expected.push("runs/r2/summary.json".into());
    assert_eq!(store.list("").await.unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_more_than_a_thousand_keys_takes_several_default_pages() {
    let server = S3Server::start().await;
    let store = Arc::new(server.store("bulk").await);
    let mut writes = JoinSet::new();
    let mut expected = Vec::new();
    for i in 0..1005 {
        let key = format!("runs/big/k{i:04}.json");
        expected.push(key.clone());
        let store = store.clone();
        writes.spawn(async move { store.put(&key, Bytes::from_static(b"1")).await });
        // Bounded concurrency: enough to be quick, not so much that connections pile up.
        if writes.len() >= 32 {
            writes.join_next().await.unwrap().unwrap().unwrap();
        }
    }
    while let Some(write) = writes.join_next().await {
        write.unwrap().unwrap();
    }
    let listed = store.list("runs/big/").await.unwrap();
    assert_eq!(listed.len(), 1005);
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn stores_with_different_prefixes_do_not_see_each_other() {
    let server = S3Server::start().await;
    let team = server.store("team").await;
    // A sibling prefix that `team` is a string prefix of: must still be separate.
    let team_b = server.store("team-b").await;
    let whole_bucket = server.store("").await;

    team.put("runs/r1/a.json", Bytes::from_static(b"\"team\""))
        .await
        .unwrap();
    team_b
        .put("runs/r1/a.json", Bytes::from_static(b"\"team-b\""))
        .await
        .unwrap();
    team_b
        .put("runs/r1/b.json", Bytes::from_static(b"\"team-b\""))
        .await
        .unwrap();

    assert_eq!(team.list("").await.unwrap(), ["runs/r1/a.json"]);
    assert_eq!(
        team_b.list("runs/").await.unwrap(),
        ["runs/r1/a.json", "runs/r1/b.json"]
    );
    assert_eq!(team.get("runs/r1/b.json").await.unwrap(), None);
    assert_eq!(
        team.get("runs/r1/a.json").await.unwrap(),
        Some(Bytes::from_static(b"\"team\""))
    );
    assert_eq!(
        whole_bucket.list("").await.unwrap(),
        [
            "team-b/runs/r1/a.json",
            "team-b/runs/r1/b.json",
            "team/runs/r1/a.json"
        ]
    );
}

#[tokio::test]
async fn corrupt_s3_content_is_an_invalid_artifact_naming_key_and_path() {
    let server = S3Server::start().await;
    let store = server.store("prod").await;
    // Written by something other than the store, as a broken or hand-edited upload would be.
    server
        .client()
        .await
        .put_object()
        .bucket(BUCKET)
        .key("prod/runs/r1/zendesk_usgov.json")
        .body(ByteStream::from_static(
            br#"{"orgs":[{"id":1,"salesforce_id":null},{"id":2,"salesforce_id":7}]}"#,
        ))
        .send()
        .await
        .unwrap();
    match read_json::<OrgsArtifact>(&store, "runs/r1/zendesk_usgov.json").await {
        Err(err @ StoreError::InvalidArtifact { .. }) => {
            assert!(!err.is_retryable());
            let StoreError::InvalidArtifact { key, path, message } = err else {
                unreachable!()
            };
            assert_eq!(key, "runs/r1/zendesk_usgov.json");
            assert_eq!(path, "orgs[1].salesforce_id");
            assert!(message.contains("invalid type: integer `7`"), "{message}");
        }
        other => panic!("expected InvalidArtifact, got {other:?}"),
    }
    assert!(matches!(
        read_json::<OrgsArtifact>(&store, "runs/r1/zendesk_global.json").await,
        Err(StoreError::Missing { key }) if key == "runs/r1/zendesk_global.json"
    ));
}

/// Drives a store through every behaviour stages rely on and records what it observed, so
/// the two backends can be compared line by line as well as checked against expectations.
async fn observe(store: &dyn ArtifactStore) -> Vec<String> {
    let mut seen = Vec::new();
    let run = RunKeys::new("parity-run").unwrap();
    let accounts = run.key("salesforce_accounts.json").unwrap();

    seen.push(format!(
        "missing get: {:?}",
        store.get(&accounts).await.unwrap()
    ));
    seen.push(format!(
        "list before writes: {:?}",
        store.list("").await.unwrap()
    ));

    store
        .put(&accounts, Bytes::from_static(b"[1]"))
        .await
        .unwrap();
    store
        .put(&accounts, Bytes::from_static(b"[1,2]"))
        .await
        .unwrap();
    seen.push(format!(
        "overwritten: {:?}",
        store.get(&accounts).await.unwrap()
    ));

    for name in [
        "partner/creates.json",
        "users/sync_result.json",
        "summary.json",
    ] {
        write_json(store, &run.key(name).unwrap(), &name)
            .await
            .unwrap();
    }
    write_json(store, "runs/parity-run2/summary.json", &0)
        .await
        .unwrap();
    seen.push(format!(
        "run listing: {:?}",
        store.list(run.prefix()).await.unwrap()
    ));
    seen.push(format!(
        "string prefix: {:?}",
        store.list("runs/parity-run").await.unwrap()
    ));
    seen.push(format!(
        "partial name: {:?}",
        store.list("runs/parity-run/s").await.unwrap()
    ));
    // (Reading a "folder" such as runs/parity-run/partner is not compared: real S3 answers
    // NoSuchKey, like the directory store, but s3s-fs keeps objects as files and fails with
    // a 500 on a directory.)

    let typed: Vec<u8> = read_json(store, &accounts).await.unwrap();
    seen.push(format!("typed read: {typed:?}"));
    store
        .put(&accounts, Bytes::from_static(b"[1,\"two\"]"))
        .await
        .unwrap();
    seen.push(format!(
        "invalid: {}",
        read_json::<Vec<u8>>(store, &accounts).await.unwrap_err()
    ));
    seen.push(format!(
        "missing: {}",
        read_json::<Vec<u8>>(store, &run.key("zendesk_usgov.json").unwrap())
            .await
            .unwrap_err()
    ));
    seen.push(format!(
        "bad key: {}",
        store
            .put("runs/../escape.json", Bytes::new())
            .await
            .unwrap_err()
    ));
    seen.push(format!(
        "bad prefix: {}",
        store.list("/runs").await.unwrap_err()
    ));
    seen
}

#[tokio::test]
async fn s3_and_directory_stores_behave_the_same() {
    let server = S3Server::start().await;
    let s3 = server.store("parity").await;
    let dir = tempfile::tempdir().unwrap();
    let local = DirStore::new(dir.path());

    let from_s3 = observe(&s3).await;
    let from_dir = observe(&local).await;
    assert_eq!(from_s3, from_dir);
    assert_eq!(
        from_dir,
        [
            "missing get: None",
            "list before writes: []",
            "overwritten: Some(b\"[1,2]\")",
            "run listing: [\"runs/parity-run/partner/creates.json\", \"runs/parity-run/salesforce_accounts.json\", \"runs/parity-run/summary.json\", \"runs/parity-run/users/sync_result.json\"]",
            "string prefix: [\"runs/parity-run/partner/creates.json\", \"runs/parity-run/salesforce_accounts.json\", \"runs/parity-run/summary.json\", \"runs/parity-run/users/sync_result.json\", \"runs/parity-run2/summary.json\"]",
            "partial name: [\"runs/parity-run/salesforce_accounts.json\", \"runs/parity-run/summary.json\"]",
            "typed read: [1, 2]",
            "invalid: artifact runs/parity-run/salesforce_accounts.json is invalid at [1]: does not match the expected structure: invalid type: string \"two\", expected u8 at line 1 column 8",
            "missing: artifact runs/parity-run/zendesk_usgov.json is missing",
            "bad key: invalid artifact key \"runs/../escape.json\": has a \"..\" segment; keys may not navigate out of their prefix",
            "bad prefix: invalid artifact key \"/runs\": starts with '/'; keys are relative to the store",
        ]
    );
}

#[tokio::test]
async fn a_store_url_with_an_endpoint_in_the_configuration_uses_path_style() {
    let server = S3Server::start().await;
    // The endpoint comes from the shared configuration (as AWS_ENDPOINT_URL_S3 would provide
    // it), not from the store: only path-style addressing reaches a server on 127.0.0.1.
    let store = StoreUrl::parse("s3://zdsync-artifacts/from-url")
        .unwrap()
        .open_with(&server.sdk_config().await);
    assert_eq!(store.describe(), "s3://zdsync-artifacts/from-url");
    store
        .put("runs/r1/summary.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(store.list("").await.unwrap(), ["runs/r1/summary.json"]);
    let raw = server
        .client()
        .await
        .get_object()
        .bucket(BUCKET)
        .key("from-url/runs/r1/summary.json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.content_type(), Some("application/json"));
}

fn s3_error_parts(err: &StoreError) -> (Option<&str>, Option<u16>, bool) {
    match err {
        StoreError::S3 {
            code,
            status,
            retryable,
            ..
        } => (code.as_deref(), *status, *retryable),
        other => panic!("expected an S3 error, got {other:?}"),
    }
}

#[tokio::test]
async fn permanent_s3_failures_are_not_retryable_and_reveal_no_secret() {
    let server = S3Server::start().await;
    let config = sdk_config(None, ACCESS_KEY, SECRET_KEY).await;
    let no_bucket = S3Store::with_endpoint(
        &config,
        S3Location::new("no-such-bucket", "").unwrap(),
        &server.endpoint,
    );
    let err = no_bucket.list("").await.unwrap_err();
    assert_eq!(
        s3_error_parts(&err),
        (Some("NoSuchBucket"), Some(404), false)
    );
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("S3 ListObjectsV2 s3://no-such-bucket/ failed: NoSuchBucket"),
        "{err}"
    );

    let wrong_secret = S3Store::with_endpoint(
        &sdk_config(None, ACCESS_KEY, "not-the-secret").await,
        S3Location::new(BUCKET, "").unwrap(),
        &server.endpoint,
    );
    let err = wrong_secret
        .put("runs/r1/a.json", Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    let (code, status, retryable) = s3_error_parts(&err);
    assert_eq!(
        (code, status, retryable),
        (Some("SignatureDoesNotMatch"), Some(403), false)
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("not-the-secret"), "{text}");
        assert!(!text.contains(SECRET_KEY), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    // A port that was just free: nothing listens on it.
    let endpoint = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "zdsync-e2e",
        ))
        // One attempt: the SDK's own backoff would only make the test slower.
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let store = S3Store::with_endpoint(&config, S3Location::new(BUCKET, "").unwrap(), &endpoint);
    let err = store.get("runs/r1/a.json").await.unwrap_err();
    assert_eq!(s3_error_parts(&err), (None, None, true));
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("S3 GetObject s3://zdsync-artifacts/runs/r1/a.json failed: "),
        "{err}"
    );
}
