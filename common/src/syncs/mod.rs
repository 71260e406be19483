//! One description per sync (SPEC §7–§10). A [`SyncSpec`] says everything that makes one sync
//! what it is: its artifacts, how its compare inputs and rules come from the run's artifacts and
//! settings, which gathered records it owns, and what it may write. The compare stage, the sync
//! stage and `explain` are drivers over it, so a rule changed here changes all three alike.
//!
//! | sync | spec | records | desired side | Zendesk side |
//! |---|---|---|---|---|
//! | `global`, `usgov` | [`CustomerOrgs`] | organizations | `{instance}_accounts.json` | `zendesk_{instance}.json` |
//! | `partners` | [`PartnerOrgs`] | organizations | `partner/salesforce_accounts.json` | `partner/zendesk_orgs.json` |
//! | `users` | [`UsGovUsers`] | users | `users/salesforce_contacts.json` | `users/zendesk_users.json` |
//!
//! What differs between organizations and users (keys, names, updates, marks, bulk items) is
//! the record kind's ([`RecordKind`], [`RecordWrites`]), shared by every sync of that kind.
//! [`for_sync!`] is the one place a run's [`SyncKind`] becomes its spec.

mod customer_orgs;
mod lookups;
mod partners;
mod records;
mod spec;
mod us_gov_users;

pub use customer_orgs::CustomerOrgs;
pub(crate) use lookups::user_in_org;
pub use partners::PartnerOrgs;
pub use records::{AsForeign, Gathered, GatheredRecord, RecordWrites, Unwritable};
pub use spec::{CompareInput, CreateOf, DesiredOf, KeyOf, Managed, MarkOf, SyncSpec, UpdateOf};
pub use us_gov_users::UsGovUsers;

use crate::model::{ForeignRecord, OrgDiff, RawDesiredOrg, RawZendeskOrg, SalesforceId, SyncKind};
use crate::rules::compare::{CompareRules, Orgs, compare};

/// The spec of `sync`, bound to `$spec` for `$body`: the one place a [`SyncKind`] becomes its
/// description. `$body` is generic code over [`SyncSpec`] (it may `.await`).
macro_rules! for_sync {
    ($sync:expr, $spec:ident => $body:expr) => {
        match $sync {
            $crate::model::SyncKind::Global => {
                let $spec = $crate::syncs::CustomerOrgs($crate::model::Instance::Global);
                $body
            }
            $crate::model::SyncKind::Usgov => {
                let $spec = $crate::syncs::CustomerOrgs($crate::model::Instance::Usgov);
                $body
            }
            $crate::model::SyncKind::Partners => {
                let $spec = $crate::syncs::PartnerOrgs;
                $body
            }
            $crate::model::SyncKind::Users => {
                let $spec = $crate::syncs::UsGovUsers;
                $body
            }
        }
    };
}
pub(crate) use for_sync;

/// The compare of an org sync (`Global`, `Usgov`) or the partner sync over the gathered orgs
/// of its instance and the instance's other records, with `rules`: ownership as its spec says.
pub fn compare_orgs(
    sync: SyncKind,
    desired: &[RawDesiredOrg],
    orgs: &[RawZendeskOrg],
    foreign: &[ForeignRecord],
    rules: &CompareRules<SalesforceId>,
) -> OrgDiff {
    let (owned, foreign) = for_sync!(sync, spec => spec.split(orgs, foreign));
    compare::<Orgs>(desired, owned, &foreign, rules)
}
