//! `zdsync explain`: why one account — or one US Gov user — ended up as it did in a run, told from
//! the run's artifacts by the very functions that ran: the processor's own step trace
//! ([`trace_account`]), the partner and user rules, the compare's record kinds and the change
//! sets and sync results the run wrote. Nothing here re-states a rule.

mod render;
mod story;

use chrono::NaiveDate;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use render::render;
pub use story::{
    ChargeStory, ContactStory, Decision, Gathered, InstanceStory, Outcome, PartnerStory,
    ProcessStory, RecordMatch, RecordRole, SyncStory,
};

use crate::config::Settings;
use crate::error::StageError;
use crate::model::{
    ChangeSet, DesiredOrgs, Instance, OrgKey, PartnerAccounts, RawDesiredOrg, RawZendeskOrgs,
    SalesforceAccounts, SalesforceContacts, SalesforceId, SyncKind, SyncResult, ZendeskUsers,
    email_key,
};
use crate::rules::compare::{Orgs, RecordKind, Users, owned_and_foreign};
use crate::rules::partners::partner_object;
use crate::rules::processor::{partner_ids, trace_account};
use crate::rules::users::{desired_users, held_emails};
use crate::rules::{CompareRules, ProcessInput, RunDates};
use crate::stages::artifacts;
use crate::stages::process::{load_overrides, load_plans};
use crate::store::{ArtifactStore, RunKeys, read_json_opt};
use story::{ChangeSets, CompareView};

/// What is explained: an account (customer or partner) by its Salesforce id, or a US Gov user
/// by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Account(SalesforceId),
    Email(String),
}

impl Subject {
    /// A 15- or 18-character Salesforce id, or an email (compared as the user sync does:
    /// trimmed, lower-cased).
    pub fn parse(text: &str) -> Result<Subject, String> {
        let text = text.trim();
        if text.contains('@') {
            let valid = text.split('@').count() == 2
                && !text.starts_with('@')
                && !text.ends_with('@')
                && !text.chars().any(char::is_whitespace);
            return match email_key(text) {
                Some(email) if valid => Ok(Subject::Email(email)),
                _ => Err(format!("{text:?} is not an email address")),
            };
        }
        SalesforceId::parse(text)
            .map(Subject::Account)
            .map_err(|e| format!("{text:?} is neither a Salesforce account id nor an email: {e}"))
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Account(id) => write!(f, "{id}"),
            Subject::Email(email) => f.write_str(email),
        }
    }
}

/// The whole story of one subject in one run (`--json` prints this).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub run_id: String,
    pub as_of: Option<NaiveDate>,
    pub subject: String,
    /// The customer account as the account gather mapped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Gathered>,
    /// What the processor did with it, step by step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessStory>,
    /// The account as the partner gather saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<PartnerStory>,
    /// The email among the Salesforce contacts of US Gov accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactStory>,
    /// Per sync that has anything to say: the Zendesk records, compare's decision, the sync's.
    pub syncs: Vec<SyncStory>,
    /// Whatever limits the story (a missing artifact, settings changed since the run).
    pub notes: Vec<String>,
}

/// Where explain reads: the run's artifacts, and the settings whose `plans.yaml` and overrides
/// the process stage loads (explain loads them the same way).
pub struct Sources<'a> {
    pub store: &'a dyn ArtifactStore,
    pub run: &'a RunKeys,
    pub settings: &'a Settings,
    pub http: &'a reqwest::Client,
}

impl Sources<'_> {
    async fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StageError> {
        let key = self.run.key(name)?;
        Ok(read_json_opt(self.store, &key).await?)
    }

    /// What the sync did, as its result artifact says (none when it did not run).
    async fn sync_result(&self, sync: SyncKind) -> Result<Option<SyncResult>, StageError> {
        self.read(&artifacts::sync_result(sync)).await
    }

    async fn change_sets<K: RecordKind>(
        &self,
        sync: SyncKind,
    ) -> Result<Option<ChangeSets<K>>, StageError>
    where
        K::Desired: DeserializeOwned,
        K::Update: DeserializeOwned,
        K::Mark: DeserializeOwned,
    {
        let creates: Option<ChangeSet<K::Desired>> = self.read(&artifacts::creates(sync)).await?;
        let updates: Option<ChangeSet<K::Update>> = self.read(&artifacts::updates(sync)).await?;
        let marks: Option<ChangeSet<K::Mark>> = self.read(&artifacts::not_in_sync(sync)).await?;
        Ok(match (creates, updates, marks) {
            (Some(creates), Some(updates), Some(marks)) => Some(ChangeSets {
                creates,
                updates,
                marks,
            }),
            _ => None,
        })
    }
}

/// Explains `subject` from the run's artifacts. A missing artifact shortens the story (and is
/// noted); a corrupt one is an error naming it.
pub async fn explain(sources: &Sources<'_>, subject: &Subject) -> Result<Explanation, StageError> {
    let mut explanation = Explanation {
        run_id: sources.run.run_id().to_owned(),
        as_of: None,
        subject: subject.to_string(),
        account: None,
        process: None,
        partner: None,
        contact: None,
        syncs: Vec::new(),
        notes: Vec::new(),
    };
    match subject {
        Subject::Account(id) => {
            explain_account(sources, id, &mut explanation).await?;
            explain_partner(sources, id, &mut explanation).await?;
        }
        Subject::Email(email) => explain_user(sources, email, &mut explanation).await?,
    }
    Ok(explanation)
}

fn missing(name: &str) -> String {
    format!("{name} is not in this run: the story stops before it")
}

async fn explain_account(
    sources: &Sources<'_>,
    id: &SalesforceId,
    out: &mut Explanation,
) -> Result<(), StageError> {
    let Some(accounts) = sources
        .read::<SalesforceAccounts>(artifacts::SALESFORCE_ACCOUNTS)
        .await?
    else {
        out.notes.push(missing(artifacts::SALESFORCE_ACCOUNTS));
        return Ok(());
    };
    out.as_of = Some(accounts.as_of);
    let global_name = artifacts::zendesk_orgs(Instance::Global);
    let global_orgs = sources.read::<RawZendeskOrgs>(&global_name).await?;
    let account = accounts.accounts.iter().find(|a| &a.salesforce_id == id);
    let rejected = accounts
        .rejected
        .iter()
        .find(|r| r.valid_id().as_ref() == Some(id));
    out.account = Some(story::gathered(account, rejected));

    let mut desired_by_instance = Vec::new();
    if let Some(account) = account {
        match &global_orgs {
            None => out.notes.push(missing(&global_name)),
            Some(global_orgs) => {
                let plans = load_plans(&sources.settings.sync)?;
                let overrides =
                    load_overrides(&sources.settings.sync, sources.store, sources.http).await?;
                let keys: Vec<OrgKey> = global_orgs
                    .orgs
                    .iter()
                    .map(|org| OrgKey {
                        id: org.id,
                        salesforce_id: org.salesforce_id.clone(),
                        partner: org.partner,
                    })
                    .collect();
                let partners = partner_ids(&keys);
                let input = ProcessInput {
                    accounts: &accounts,
                    partner_ids: &partners,
                    plans: &plans,
                    overrides: &overrides,
                    dates: RunDates::new(accounts.as_of),
                };
                let trace = trace_account(account, &input);
                let process = story::process_story(&trace, &input.dates);
                for instance in &trace.instances {
                    desired_by_instance.push((instance.instance, instance.object.clone()));
                }
                out.process = Some(process);
            }
        }
    }

    for instance in Instance::ALL {
        let sync = SyncKind::orgs(instance);
        let desired_name = artifacts::desired_orgs(instance);
        let run_desired = sources.read::<DesiredOrgs>(&desired_name).await?;
        let orgs = match instance {
            Instance::Global => global_orgs.clone(),
            Instance::Usgov => {
                sources
                    .read::<RawZendeskOrgs>(&artifacts::zendesk_orgs(instance))
                    .await?
            }
        };
        let Some(orgs) = orgs else {
            out.notes.push(missing(&artifacts::zendesk_orgs(instance)));
            continue;
        };
        let desired = desired_by_instance
            .iter()
            .find(|(i, _)| *i == instance)
            .and_then(|(_, object)| object.as_ref());
        let desired_text = desired.map(RawDesiredOrg::from);
        if let (Some(run_desired), Some(process)) = (&run_desired, out.process.as_mut()) {
            let ran = run_desired
                .orgs
                .binary_search_by(|o| o.salesforce_id.cmp(id))
                .ok()
                .map(|i| &run_desired.orgs[i]);
            if ran != desired {
                out.notes.push(format!(
                    "{desired_name} of this run holds a different {instance} object than the processor gives now: plans.yaml or the overrides changed since the run; the object above is today's, the decisions below are the run's"
                ));
            }
            if let Some(story) = process
                .instances
                .iter_mut()
                .find(|s| s.instance == instance)
            {
                story.same_as_run = Some(ran == desired);
            }
        }
        let held_ids = run_desired
            .as_ref()
            .map(|d| d.held_salesforce_ids.clone())
            .unwrap_or_default();
        let rules = CompareRules::default()
            .with_protected(sources.settings.sync.protected_salesforce_ids())
            .with_held(held_ids);
        let (owned, foreign) = owned_and_foreign(sync, &orgs.orgs, &orgs.others);
        let held_why = rules
            .held
            .contains(id)
            .then(|| "its Salesforce record could not be read (rejected at gather): its org is left exactly as it is".to_owned());
        let view = CompareView::<Orgs> {
            sync,
            desired: desired_text.as_ref(),
            owned,
            foreign: &foreign,
            rules: &rules,
            held_why,
            sets: sources.change_sets::<Orgs>(sync).await?,
            result: sources.sync_result(sync).await?,
        };
        let story = story::sync_story(id, &view);
        if story.says_something() {
            out.syncs.push(story);
        }
    }
    Ok(())
}

async fn explain_partner(
    sources: &Sources<'_>,
    id: &SalesforceId,
    out: &mut Explanation,
) -> Result<(), StageError> {
    let sync = SyncKind::Partners;
    let Some(partners) = sources
        .read::<PartnerAccounts>(artifacts::PARTNER_ACCOUNTS)
        .await?
    else {
        return Ok(());
    };
    let Some(orgs) = sources
        .read::<RawZendeskOrgs>(&artifacts::zendesk_records(sync))
        .await?
    else {
        out.notes.push(missing(&artifacts::zendesk_records(sync)));
        return Ok(());
    };
    let account = partners.accounts.iter().find(|a| &a.salesforce_id == id);
    let rejected = partners
        .rejected
        .iter()
        .find(|r| r.valid_id().as_ref() == Some(id));
    let desired = account.map(|a| RawDesiredOrg::from(&partner_object(a)));
    let rules = CompareRules::default()
        .with_protected(sources.settings.sync.protected_salesforce_ids())
        .with_held(partners.rejected.iter().filter_map(|r| r.valid_id()));
    let (owned, foreign) = owned_and_foreign(sync, &orgs.orgs, &orgs.others);
    let view = CompareView::<Orgs> {
        sync,
        desired: desired.as_ref(),
        owned,
        foreign: &foreign,
        rules: &rules,
        held_why: rejected.map(|r| {
            format!(
                "its partner record was rejected ({}): its org is left exactly as it is",
                r.reason
            )
        }),
        sets: sources.change_sets::<Orgs>(sync).await?,
        result: sources.sync_result(sync).await?,
    };
    let story = story::sync_story(id, &view);
    // A customer account's org appears among the partner sync's foreign records: that alone
    // is not a partner story.
    let partner = story::partner_story(account, rejected);
    if partner.is_some() || story.owns_a_record() {
        out.partner = partner;
        out.syncs.push(story);
    }
    Ok(())
}

async fn explain_user(
    sources: &Sources<'_>,
    email: &str,
    out: &mut Explanation,
) -> Result<(), StageError> {
    let sync = SyncKind::Users;
    let Some(contacts) = sources
        .read::<SalesforceContacts>(artifacts::CONTACTS)
        .await?
    else {
        out.notes.push(missing(artifacts::CONTACTS));
        return Ok(());
    };
    let Some(users) = sources.read::<ZendeskUsers>(artifacts::USERS).await? else {
        out.notes.push(missing(artifacts::USERS));
        return Ok(());
    };
    let protected = sources.settings.sync.user_protection().is_protected(email);
    let contact = story::contact_story(&contacts, email, protected);
    let desired: Vec<_> = desired_users(&contacts)
        .into_iter()
        .filter(|d| d.email == email)
        .collect();
    let rules = CompareRules::default().with_held(held_emails(&contacts));
    let view = CompareView::<Users> {
        sync,
        desired: desired.first(),
        owned: users.users.iter().collect(),
        foreign: &users.others,
        rules: &rules,
        held_why: contact.held_why(),
        sets: sources.change_sets::<Users>(sync).await?,
        result: sources.sync_result(sync).await?,
    };
    out.syncs.push(story::sync_story(&email.to_owned(), &view));
    out.contact = Some(contact);
    Ok(())
}

#[cfg(test)]
mod tests;
