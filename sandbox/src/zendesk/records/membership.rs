//! An organization membership (apis.md A6): a user in an organization, one of them their
//! default.

use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub(crate) struct Membership {
    pub id: u64,
    pub user_id: u64,
    pub organization_id: u64,
    pub default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
