//! zdsync core: the artifact model, the sync rules, and (as they land) the API clients, the
//! artifact store and the stages. See `docs/ARCHITECTURE.md`.

pub mod artifacts;
pub mod calls;
pub mod config;
pub mod error;
pub mod explain;
pub mod http;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod retry;
pub mod rules;
pub mod salesforce;
pub mod slack;
pub mod snapshot;
pub mod stages;
pub mod store;
pub mod syncs;
pub mod zendesk;

#[cfg(feature = "lambda")]
pub mod lambda;
