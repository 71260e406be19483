//! Serde types of every artifact a run reads or writes (SPEC §2).
//!
//! | artifact | type |
//! |---|---|
//! | `salesforce_accounts.json` | [`SalesforceAccounts`] |
//! | `zendesk_{instance}.json`, `partner/zendesk_orgs.json`, `users/zendesk_orgs.json` | [`ZendeskOrgs`] |
//! | `{instance}_accounts.json` | [`DesiredOrgs`] |
//! | `process_report.json` | [`ProcessReport`] |
//! | `{instance}_creates.json`, `partner/creates.json` | [`ChangeSet<DesiredOrg>`] |
//! | `{instance}_updates.json`, `partner/updates.json` | [`ChangeSet<OrgUpdate>`] |
//! | `{instance}_not_in_sync.json`, `partner/not_in_sync.json` | [`ChangeSet<OrgMark>`] |
//! | `{instance}_sync_result.json`, `partner/sync_result.json`, `users/sync_result.json` | [`SyncResult`] |
//! | `partner/salesforce_accounts.json` | [`PartnerAccounts`] |
//! | `users/zendesk_users.json` | [`ZendeskUsers`] |
//! | `users/salesforce_contacts.json` | [`SalesforceContacts`] |
//! | `users/creates.json`, `users/updates.json`, `users/not_in_sync.json` | [`ChangeSet`] of [`DesiredUser`], [`UserUpdate`], [`UserMark`] |
//! | `summary.json` | [`RunSummary`] |
//! | `report.md` | Markdown, not JSON: [`crate::stages::report::render_report`] of the artifacts above |
//! | `latest_run.json` (top level, outside `runs/`) | [`LatestRun`] |

pub mod account;
mod api_name;
pub mod desired;
pub mod diff;
pub mod gather;
pub mod instance;
pub mod org;
pub mod partner;
pub mod raw_org;
pub mod report;
pub mod result;
pub mod salesforce_id;
pub mod summary;
pub mod sync_kind;
pub mod user;

pub use account::{
    Account, Charge, Region, RejectedRecord, SalesforceAccounts, SalesforceAccountsHead,
    SalesforceAccountsTail, SoldTo, Subscription,
};
pub use api_name::ApiName;
pub use desired::{DesiredOrg, DesiredOrgs, DesiredOrgsHead, DesiredOrgsTail};
pub use diff::{
    ChangeSet, Conflict, ConflictingRecord, Diff, HeldBack, HoldReason, MarkForDeletion, OrgDiff,
    OrgMark, OrgUpdate, UserDiff,
};
pub use gather::{GatherCalls, GatherKind, GatherNote};
pub use instance::{Instance, SupportLevel};
pub use org::{ForeignRecord, ZendeskOrg, ZendeskOrgs, ZendeskOrgsHead, ZendeskOrgsTail};
pub use partner::{PartnerAccount, PartnerAccounts, PartnerType};
pub use raw_org::{
    FieldsText, OrgFacts, OrgKey, RawDesiredOrg, RawDesiredOrgs, RawZendeskOrg, RawZendeskOrgs,
    ZendeskOrgKeys,
};
pub use report::{ExpiredOverride, OverrideReport, ProcessReport, SkipReason, SkippedAccount};
pub use result::{
    AssociatedUser, AttemptCounts, GuardDecision, NewOrgWithoutContacts, Pending, RecordError,
    RecordOutcome, SyncAction, SyncProgress, SyncResult, SyncWindow, WindowJob, WindowStep,
};
pub use salesforce_id::{SalesforceId, SalesforceIdError};
pub use summary::{LatestRun, RunFailure, RunStatus, RunSummary, SalesforceApi, StageSummary};
pub use sync_kind::SyncKind;
pub use user::{
    AmbiguousEmail, Contact, DesiredUser, HeldContact, NotInSfdc, SalesforceContacts, UserMark,
    UserUpdate, ZendeskUser, ZendeskUsers, email_key,
};
