//! The running sandbox: its own accept loop (so a fault can close a connection without an
//! HTTP response) and the handle tests and the CLI hold.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{Request, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::app::{self, Hub};
use crate::clock::Clock;
use crate::config::SandboxConfig;
use crate::connection::ConnectionKiller;
use crate::counters::Counters;
use crate::error::SandboxError;
use crate::faults::{CrashSwitch, FaultInjector, Faults};
use crate::fixture::{
    Fixture, GeneratedInfo, SlackFailure, SlackFixture, ZendeskCredentials, ZendeskFixtures,
};
use crate::instance::ZendeskInstance;
use crate::salesforce::SalesforceState;
use crate::slack::{self, SlackMessage, SlackState};
use crate::zendesk::{InstanceState, ZendeskHandle};

/// A running emulator. Dropping it (or [`Sandbox::shutdown`]) stops the server and its
/// background jobs.
pub struct Sandbox {
    base_url: String,
    hub: Arc<Hub>,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    /// The generator's notes from the starting fixture, handed on by [`Sandbox::snapshot`].
    generated: Option<GeneratedInfo>,
}

impl Sandbox {
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.faults.validate()?;
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| SandboxError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let local = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: config.bind,
            source,
        })?;
        let host = if local.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local.ip()
        };
        let base_url = format!("http://{}", SocketAddr::new(host, local.port()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let clock = Clock::new();
        let instance = |which| {
            InstanceState::new(
                which,
                &base_url,
                config.fixture.zendesk.get(which),
                &config,
                clock.clone(),
                shutdown_rx.clone(),
            )
            .map(Arc::new)
        };
        let hub = Arc::new(Hub {
            global: instance(ZendeskInstance::Global)?,
            usgov: instance(ZendeskInstance::Usgov)?,
            salesforce: Arc::new(SalesforceState::with_clock(
                config.fixture.salesforce.clone(),
                config.salesforce.clone(),
                clock.clone(),
            )),
            slack: Arc::new(SlackState::new(config.fixture.slack.fail_with.clone())),
            counters: Mutex::new(Counters::default()),
            faults: FaultInjector::new(config.faults, config.seed),
            crash: CrashSwitch::default(),
            gitlab_files: Arc::new(config.gitlab_files.clone()),
            clock,
        });
        let server = tokio::spawn(accept_loop(
            listener,
            app::router(Arc::clone(&hub)),
            shutdown_rx,
        ));
        Ok(Sandbox {
            base_url,
            hub,
            shutdown,
            server: Some(server),
            generated: config.fixture.generated.clone(),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The Salesforce login and instance URL; the token URL is `{this}/services/oauth2/token`.
    pub fn salesforce_url(&self) -> String {
        format!("{}/salesforce", self.base_url)
    }

    /// What a client uses as `https://{subdomain}.zendesk.com`; it appends `/api/v2/...`.
    pub fn zendesk_url(&self, instance: ZendeskInstance) -> String {
        format!("{}/zendesk/{instance}", self.base_url)
    }

    pub fn slack_webhook_url(&self) -> String {
        format!("{}/slack{}", self.base_url, slack::WEBHOOK_PATH)
    }

    pub fn zendesk(&self, instance: ZendeskInstance) -> ZendeskHandle {
        ZendeskHandle::new(Arc::clone(self.hub.zendesk(instance)))
    }

    pub fn zendesk_credentials(&self, instance: ZendeskInstance) -> ZendeskCredentials {
        self.zendesk(instance).credentials()
    }

    pub fn salesforce(&self) -> Arc<SalesforceState> {
        Arc::clone(&self.hub.salesforce)
    }

    pub fn counters(&self) -> Counters {
        self.hub.counters()
    }

    pub fn reset_counters(&self) {
        *self.hub.counters.lock().expect("counters lock") = Counters::default();
    }

    /// Everything: Salesforce records, both Zendesk instances (organizations, users,
    /// memberships, jobs, ignored fields), Slack messages, counters and faults.
    pub fn dump_state(&self) -> Value {
        self.hub.dump()
    }

    /// The current world as a fixture [`Sandbox::start`] loads back, so a later process can
    /// carry on from it: Salesforce records, both Zendesk instances (credentials, field
    /// definitions, records with their ids and timestamps, memberships, bulk user import)
    /// and the Slack failure setting. Jobs, counters, faults, ignored-field tallies and
    /// Slack messages are not part of a fixture and are left out; so are the effects of
    /// jobs still in flight, so wait for them first. The starting fixture's `generated`
    /// notes are handed on unchanged.
    ///
    /// Each service is read under its own lock: take it while no client is writing.
    pub fn snapshot(&self) -> Fixture {
        Fixture {
            salesforce: self.hub.salesforce.snapshot(),
            zendesk: ZendeskFixtures {
                global: self.hub.global.snapshot(),
                usgov: self.hub.usgov.snapshot(),
            },
            slack: SlackFixture {
                fail_with: self.hub.slack.failure(),
            },
            generated: self.generated.clone(),
        }
    }

    /// Moves the sandbox clock forward by `by`: every record becomes that much older at once
    /// (the incremental export's last minute, the search index's lag), so a test need not
    /// sleep. The clock never moves back; job delays and rate-limit windows keep real time.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.hub.clock.advance(by);
    }

    /// The sandbox clock's current time: what a write now would stamp on its records.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.hub.clock.now()
    }

    /// The switch that makes a client "crash" after a number of writes (tests of redrive).
    pub fn crash_switch(&self) -> CrashSwitch {
        self.hub.crash.clone()
    }

    /// The alliance partner's account id of a generated world (the partner sync's
    /// `sync.alliance_partner_id`), if the world has one.
    pub fn alliance_account_id(&self) -> Option<&str> {
        self.generated
            .as_ref()
            .map(|g| g.alliance_account_id.as_str())
            .filter(|id| !id.is_empty())
    }

    pub fn faults(&self) -> Faults {
        self.hub.faults.current()
    }

    pub fn set_faults(&self, faults: Faults) -> Result<(), SandboxError> {
        faults.validate()?;
        self.hub.faults.set(faults);
        Ok(())
    }

    pub fn slack_messages(&self) -> Vec<SlackMessage> {
        self.hub.slack.messages()
    }

    /// Makes every webhook post fail with `failure` (or succeed again with `None`).
    pub fn set_slack_failure(&self, failure: Option<SlackFailure>) {
        self.hub.slack.set_failure(failure);
    }

    /// The URLs and credentials a client needs, one per line.
    pub fn describe(&self) -> String {
        let mut lines = vec![
            format!("sandbox      {}", self.base_url),
            format!("salesforce   {}", self.salesforce_url()),
        ];
        for instance in ZendeskInstance::ALL {
            let credentials = self.zendesk_credentials(instance);
            lines.push(format!(
                "zendesk {:<6} {}  (user {}/token, token {})",
                instance.as_str(),
                self.zendesk_url(instance),
                credentials.email,
                credentials.token
            ));
        }
        lines.push(format!("slack        {}", self.slack_webhook_url()));
        lines.push(format!("state        {}/_sandbox/state", self.base_url));
        lines.join("\n")
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts a sandbox, logs where it listens and serves until Ctrl-C.
pub async fn serve_until_ctrl_c(config: SandboxConfig) -> Result<(), SandboxError> {
    let sandbox = Sandbox::start(config).await?;
    tracing::info!("sandbox listening\n{}", sandbox.describe());
    tokio::signal::ctrl_c()
        .await
        .map_err(SandboxError::Signal)?;
    tracing::info!("Ctrl-C received, stopping the sandbox");
    sandbox.shutdown().await;
    Ok(())
}

async fn accept_loop(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, app.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("sandbox accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, app: Router, mut shutdown: watch::Receiver<bool>) {
    let killer = ConnectionKiller::new();
    let tagged = killer.clone();
    let service = tower::ServiceBuilder::new()
        .map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(tagged.clone());
            strip_json_suffix(request)
        })
        .service(app);
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    // Returning drops the connection, and with it the socket, mid-request if need be.
    tokio::select! {
        _ = connection => {}
        _ = killer.notified() => {}
        _ = shutdown.changed() => {}
    }
}

/// Zendesk serves every path with and without `.json`; one suffix is removed before
/// routing, so `.json.json` still finds no route (apis.md A0).
fn strip_json_suffix<B>(mut request: Request<B>) -> Request<B> {
    let uri = request.uri();
    let Some(stripped) = uri
        .path()
        .strip_suffix(".json")
        .filter(|_| uri.path().starts_with("/zendesk/"))
    else {
        return request;
    };
    let rebuilt = match uri.query() {
        Some(query) => format!("{stripped}?{query}"),
        None => stripped.to_owned(),
    };
    if let Ok(new_uri) = rebuilt.parse::<Uri>() {
        *request.uri_mut() = new_uri;
    }
    request
}
