//! `zdsync explain`: why one account — or one US Gov user — ended up as it did in a run, told from
//! the run's artifacts by the very functions that ran: the processor's own step trace
//! ([`trace_account`]), each sync's spec (its compare input and rules, built exactly as the
//! compare stage builds them), the compare's record kinds, and the change sets and sync results
//! the run wrote. Nothing here re-states a rule or builds a compare input of its own.

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
    ChangeSet, DesiredOrg, Instance, OrgKey, PartnerAccounts, RawDesiredOrg, RawDesiredOrgs,
    RawZendeskOrgs, SalesforceAccounts, SalesforceContacts, SalesforceId, SyncKind, SyncResult,
    ZendeskUsers, email_key,
};
use crate::rules::compare::RecordKind;
use crate::rules::processor::{partner_ids, trace_account};
use crate::rules::{ProcessInput, RunDates};
use crate::stages::artifacts;
use crate::stages::process::{load_overrides, load_plans};
use crate::store::{ArtifactStore, RunKeys, read_json_opt};
use crate::syncs::{
    CompareInput, CustomerOrgs, DesiredOf, KeyOf, PartnerOrgs, SyncSpec, UsGovUsers,
};
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

    /// The story of `key` in one sync: the spec's compare input (as the compare stage built
    /// it), the object wanted for `key` (`desired`), why it is held, and what the run decided
    /// and did.
    async fn sync_story<'a, S: SyncSpec>(
        &self,
        spec: S,
        key: &KeyOf<S>,
        desired: Option<&'a DesiredOf<S>>,
        input: CompareInput<'a, S::Kind>,
        held_why: Option<String>,
    ) -> Result<SyncStory, StageError> {
        let sync = spec.sync();
        let view = CompareView::<S::Kind> {
            sync,
            desired,
            input,
            held_why,
            sets: self.change_sets::<S::Kind>(sync).await?,
            result: self.sync_result(sync).await?,
        };
        Ok(story::sync_story(key, &view))
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
        let spec = CustomerOrgs(instance);
        let desired_name = spec.desired_artifact();
        let run_desired = sources.read::<RawDesiredOrgs>(&desired_name).await?;
        let orgs = match instance {
            Instance::Global => global_orgs.clone(),
            Instance::Usgov => {
                sources
                    .read::<RawZendeskOrgs>(&spec.records_artifact())
                    .await?
            }
        };
        let Some(orgs) = orgs else {
            out.notes.push(missing(&spec.records_artifact()));
            continue;
        };
        let desired = desired_by_instance
            .iter()
            .find(|(i, _)| *i == instance)
            .and_then(|(_, object)| object.as_ref());
        let desired_text = desired.map(RawDesiredOrg::from);
        if let (Some(run_desired), Some(process)) = (&run_desired, out.process.as_mut()) {
            let ran = run_object(run_desired, id)?;
            if ran.as_ref() != desired {
                out.notes.push(format!(
                    "{desired_name} of this run holds a different {instance} object than the processor gives now: plans.yaml or the overrides changed since the run; the object above is today's, the decisions below are the run's"
                ));
            }
            if let Some(story) = process
                .instances
                .iter_mut()
                .find(|s| s.instance == instance)
            {
                story.same_as_run = Some(ran.as_ref() == desired);
            }
        }
        // Without the run's desired objects, its compare is told with none held.
        let run_desired = run_desired.unwrap_or_else(|| RawDesiredOrgs::empty(instance));
        let input = spec.compare_input(&run_desired, &orgs, &sources.settings.sync);
        let held_why = input
            .rules
            .held
            .contains(id)
            .then(|| "its Salesforce record could not be read (rejected at gather): its org is left exactly as it is".to_owned());
        let story = sources
            .sync_story(spec, id, desired_text.as_ref(), input, held_why)
            .await?;
        if story.says_something() {
            out.syncs.push(story);
        }
    }
    Ok(())
}

/// The run's desired object of account `id`, as the processor wrote it.
fn run_object(run: &RawDesiredOrgs, id: &SalesforceId) -> Result<Option<DesiredOrg>, StageError> {
    let Ok(i) = run.orgs.binary_search_by(|o| o.salesforce_id.cmp(id)) else {
        return Ok(None);
    };
    let object = serde_json::to_value(&run.orgs[i])
        .and_then(serde_json::from_value)
        .map_err(|e| {
            StageError::InvalidConfig(format!("{id} in the run's desired objects: {e}"))
        })?;
    Ok(Some(object))
}

async fn explain_partner(
    sources: &Sources<'_>,
    id: &SalesforceId,
    out: &mut Explanation,
) -> Result<(), StageError> {
    let spec = PartnerOrgs;
    let Some(partners) = sources
        .read::<PartnerAccounts>(&spec.desired_artifact())
        .await?
    else {
        return Ok(());
    };
    let Some(orgs) = sources
        .read::<RawZendeskOrgs>(&spec.records_artifact())
        .await?
    else {
        out.notes.push(missing(&spec.records_artifact()));
        return Ok(());
    };
    let account = partners.accounts.iter().find(|a| &a.salesforce_id == id);
    let rejected = partners
        .rejected
        .iter()
        .find(|r| r.valid_id().as_ref() == Some(id));
    let input = spec.compare_input(&partners, &orgs, &sources.settings.sync);
    let desired = wanted(&input, id);
    let held_why = rejected.map(|r| {
        format!(
            "its partner record was rejected ({}): its org is left exactly as it is",
            r.reason
        )
    });
    let story = sources
        .sync_story(spec, id, desired.as_ref(), input, held_why)
        .await?;
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
    let spec = UsGovUsers;
    let Some(contacts) = sources
        .read::<SalesforceContacts>(&spec.desired_artifact())
        .await?
    else {
        out.notes.push(missing(&spec.desired_artifact()));
        return Ok(());
    };
    let Some(users) = sources
        .read::<ZendeskUsers>(&spec.records_artifact())
        .await?
    else {
        out.notes.push(missing(&spec.records_artifact()));
        return Ok(());
    };
    let protected = sources.settings.sync.user_protection().is_protected(email);
    let contact = story::contact_story(&contacts, email, protected);
    let input = spec.compare_input(&contacts, &users, &sources.settings.sync);
    let email = email.to_owned();
    let desired = wanted(&input, &email);
    let story = sources
        .sync_story(spec, &email, desired.as_ref(), input, contact.held_why())
        .await?;
    out.syncs.push(story);
    out.contact = Some(contact);
    Ok(())
}

/// The desired object of `key` among a compare input's.
fn wanted<K: RecordKind>(input: &CompareInput<'_, K>, key: &K::Key) -> Option<K::Desired> {
    input
        .desired
        .iter()
        .find(|d| K::desired_key(d) == key)
        .cloned()
}

#[cfg(test)]
mod tests;
