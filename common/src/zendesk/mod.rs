//! Zendesk: the client the gather stages read organizations and users with, and the sync
//! stages write them with.
//!
//! - [`ZendeskClient`] authenticates with an API token, pages through cursor lists, and
//!   sends bulk writes as background jobs paced to Zendesk's job limit (see `jobs.rs` for the
//!   pacing rules), reporting one [`ItemOutcome`] per record.
//! - Throttling is honoured (`Retry-After` exactly), outages are retried with backoff and
//!   jitter, and [`ZendeskError`] says which failures are worth retrying later.

mod client;
mod config;
mod error;
mod jobs;
mod outcomes;
mod pacing;
mod transport;

pub use crate::retry::RetryPolicy;
pub use client::{BulkKind, BulkWrite, ExportStart, ZendeskClient, membership_items};
pub use config::{DEFAULT_MAX_INFLIGHT_JOBS, MAX_JOB_ITEMS, MAX_PAGE_SIZE, ZendeskConfig};
pub use error::{ValidationDetail, ZendeskError};
pub use jobs::{AcceptedJob, BulkOptions, JobWatcher, LostAnswers};
pub use outcomes::{BulkUsers, ItemError, ItemOutcome};
pub use pacing::{ASSUMED_LIMIT, Pacer, RateLimitInfo, spacing, with_share};
pub use transport::RequestCounts;
