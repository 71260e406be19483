//! The records of an instance, each with its own rules and nothing of the store or the HTTP
//! handlers that use them.

pub(crate) mod membership;
pub(crate) mod organization;
pub(crate) mod user;
