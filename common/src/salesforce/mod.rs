//! Salesforce: the REST client the gather stages read accounts, partners and contacts with,
//! and the SOQL they send.
//!
//! - [`SalesforceClient`] pages through query results, completes truncated child relationships
//!   before moving the parent cursor on, and retries outages with backoff; its session
//!   (`session.rs`: one of three OAuth grants, refreshed exactly once when refused) is apart.
//! - [`soql`] builds the sync's three queries from validated ids and dates only, and cuts the
//!   contact query's id list so no request URL crosses Salesforce's 16 KiB limit.
//! - [`SalesforceError`] says which failures are worth retrying.

mod client;
mod config;
mod error;
mod session;
pub mod soql;

pub use client::{QueryPage, QueryPages, SalesforceClient};
pub use config::{
    DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, MIN_BATCH_SIZE, RetryPolicy, SalesforceConfig,
    SalesforceCredentials,
};
pub use error::SalesforceError;
pub use soql::QueryEndpoint;
