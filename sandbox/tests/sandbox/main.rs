//! The sandbox over real HTTP, as zdsync's clients will use it. One test binary (with
//! modules) keeps link time down on small machines.

mod faults;
mod fixture_docs;
mod generator;
mod incremental;
mod incremental_users;
mod jobs;
mod openapi;
mod organizations;
mod rate_limits;
mod salesforce_admin;
mod search;
mod slack;
mod snapshot;
mod support;
mod users;
