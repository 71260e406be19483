//! Loopback emulator of the Salesforce, Zendesk and Slack APIs (filled in by the "Real I/O" work).
pub mod salesforce;
