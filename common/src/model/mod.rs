//! Serde types of every artifact a run reads or writes (SPEC §2).

pub mod salesforce_id;

pub use salesforce_id::{SalesforceId, SalesforceIdError};
