//! The US Gov user sync (SPEC §9): every contact of a US Gov account becomes an end-user in its
//! account's organization, keyed by lower-cased email. The sync owns the instance's end-users
//! (agents, admins and protected users are gathered as others, never written) and writes the
//! `not_in_sfdc` user field only.

use std::borrow::Cow;

use super::records::GatheredRecord;
use super::spec::SyncSpec;
use crate::artifacts;
use crate::config::SyncSettings;
use crate::model::instance::field;
use crate::model::{DesiredUser, SalesforceContacts, SyncKind, ZendeskUsers};
use crate::rules::compare::{CompareRules, Users};
use crate::rules::users::{desired_users, held_emails};

/// The US Gov user sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsGovUsers;

impl SyncSpec for UsGovUsers {
    type Kind = Users;
    type Desired = SalesforceContacts;
    type Records = ZendeskUsers;
    type RecordKeys = ZendeskUsers;

    fn sync(self) -> SyncKind {
        SyncKind::Users
    }

    fn desired_artifact(self) -> String {
        artifacts::CONTACTS.to_owned()
    }

    fn records_artifact(self) -> String {
        artifacts::USERS.to_owned()
    }

    fn outputs(self) -> &'static str {
        "users/"
    }

    /// The contacts, and the organizations and users their desired users are keyed to.
    fn plan_sources(self) -> Vec<String> {
        vec![
            artifacts::USER_ORGS.to_owned(),
            artifacts::USERS.to_owned(),
            artifacts::CONTACTS.to_owned(),
        ]
    }

    fn desired(self, contacts: &SalesforceContacts) -> Cow<'_, [DesiredUser]> {
        Cow::Owned(desired_users(contacts))
    }

    /// The users of contacts whose email is ambiguous or whose record could not be read are left
    /// exactly as they are. No user is protected by id: protected users are never gathered as
    /// the sync's.
    fn rules(self, contacts: &SalesforceContacts, _: &SyncSettings) -> CompareRules<String> {
        CompareRules::default().with_held(held_emails(contacts))
    }

    fn desired_counts(self, contacts: &SalesforceContacts) -> Vec<(&'static str, usize)> {
        vec![("ambiguous_emails", contacts.ambiguous_emails.len())]
    }

    /// Every end-user gathered as the sync's.
    fn owns<R: GatheredRecord>(self, _: &R) -> bool {
        true
    }

    fn owned_fields(self) -> Vec<&'static str> {
        vec![field::NOT_IN_SFDC]
    }
}
