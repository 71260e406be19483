//! Loopback emulator of the APIs zdsync talks to: Salesforce, two independent Zendesk
//! instances ("global" and "usgov") and a Slack incoming webhook, all on one port.
//!
//! Every client test and the local end-to-end run point their real HTTP clients at a
//! [`Sandbox`]; it behaves the way `shared/reference/apis.md` says the real services behave
//! (error envelopes, cursor pagination, background jobs, rate and job limits), can inject
//! faults deterministically, counts requests and dumps its whole state for assertions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zdsync_sandbox::SandboxError> {
//! use zdsync_sandbox::{Fixture, GeneratorOptions, Sandbox, SandboxConfig, ZendeskInstance};
//! let fixture = Fixture::generate(&GeneratorOptions::new(200, 7, "2026-11-23".parse().unwrap()));
//! let sandbox = Sandbox::start(SandboxConfig::new(fixture)).await?;
//! let orgs_url = format!("{}/api/v2/organizations", sandbox.zendesk_url(ZendeskInstance::Global));
//! # let _ = orgs_url; Ok(()) }
//! ```

mod app;
mod clock;
mod config;
mod connection;
mod counters;
mod error;
mod faults;
mod fixture;
mod generator;
mod gitlab;
mod instance;
pub mod salesforce;
mod server;
mod slack;
mod zendesk;

pub use config::SandboxConfig;
pub use counters::{Counters, FaultTally};
pub use error::{FixtureError, SandboxError};
pub use faults::{CrashSwitch, Faults, ZendeskEndpoint};
pub use fixture::{
    FieldDefinition, FieldType, Fixture, GeneratedInfo, SlackFailure, SlackFixture,
    ZendeskCredentials, ZendeskFixture, ZendeskFixtures,
};
pub use generator::{DEFAULT_EXISTING_ORGS, GeneratorOptions};
pub use gitlab::GitlabFile;
pub use instance::ZendeskInstance;
pub use server::{Sandbox, serve_until_ctrl_c};
pub use slack::SlackMessage;
pub use zendesk::ZendeskHandle;
