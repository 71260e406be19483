//! The user sync's rules (SPEC §9, seed 000): which Zendesk users the sync owns, Salesforce
//! contacts → the end-users they should be, and which emails are left alone.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::account_mapping::{lookup_text, record_fields, text};
use crate::model::instance::field;
use crate::model::{
    AmbiguousEmail, Contact, DesiredUser, ForeignRecord, HeldContact, Instance, RejectedRecord,
    SalesforceContacts, SalesforceId, ZendeskUser, ZendeskUsers, email_key,
};

/// Users the sync never touches: staff (their email domain is protected) and listed emails.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    domains: BTreeSet<String>,
    emails: BTreeSet<String>,
}

impl Protection {
    pub fn new<'a>(
        domains: impl IntoIterator<Item = &'a String>,
        emails: impl IntoIterator<Item = &'a String>,
    ) -> Protection {
        let normal = |s: &String| s.trim().trim_start_matches('@').to_lowercase();
        Protection {
            domains: domains
                .into_iter()
                .map(normal)
                .filter(|d| !d.is_empty())
                .collect(),
            emails: emails.into_iter().filter_map(|e| email_key(e)).collect(),
        }
    }

    /// `email` is a lower-cased key. A domain protects exactly that domain (`gitlab.com`, not
    /// `gitlab.com.example`).
    pub fn is_protected(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
        self.emails.contains(email) || self.domains.contains(domain)
    }
}

/// SPEC §9: the user sync owns the end-users of the instance whose email is not protected.
/// Everyone else (agents, admins, protected users) is kept only as a [`ForeignRecord`], so no
/// contact is ever created over them.
pub fn owned_users(
    instance: Instance,
    users: Vec<ZendeskUser>,
    protection: &Protection,
) -> ZendeskUsers {
    let mut gathered = ZendeskUsers {
        instance,
        users: Vec::new(),
        others: Vec::new(),
        protected: 0,
        not_end_users: 0,
    };
    for user in users {
        let protected = user
            .email_key()
            .is_some_and(|email| protection.is_protected(&email));
        if protected {
            gathered.protected += 1;
        } else if !user.is_end_user() {
            gathered.not_end_users += 1;
        } else {
            gathered.users.push(user);
            continue;
        }
        gathered.others.push(ForeignRecord {
            id: user.id,
            name: user.name.clone(),
            key: user.email_key(),
        });
    }
    gathered
}

/// One record of the contact query, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub name: Option<String>,
    /// Lower-cased; `None` when Salesforce sent none (the contact is dropped).
    pub email: Option<String>,
    pub account: SalesforceId,
}

/// A record of the contact query that could not be read, with what can still be read of it:
/// enough, where there is enough, to find the user it stands for and leave that user alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedContact {
    /// As reported in the artifact's `rejected`.
    pub record: RejectedRecord,
    pub email: ContactEmail,
    /// The account id, when it is there and valid.
    pub account: Option<SalesforceId>,
}

/// What a rejected contact record's `Email` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactEmail {
    /// Lower-cased.
    Email(String),
    /// Missing or blank: like a readable contact without email, it stands for no user.
    Missing,
    /// Not text, or the record is not an object at all.
    Unreadable,
}

/// Reads one record of the contact query (`Name`, `Email`, `Account.Account_ID_18__c`).
pub fn map_contact(record: &Value) -> Result<ContactRecord, RejectedContact> {
    let fields = record_fields(record).map_err(|record| RejectedContact {
        record,
        email: ContactEmail::Unreadable,
        account: None,
    })?;
    contact_fields(fields).map_err(|reason| {
        let account_text = lookup_text(fields, "Account", "Account_ID_18__c")
            .ok()
            .flatten();
        RejectedContact {
            account: account_text
                .as_deref()
                .and_then(|id| SalesforceId::parse(id.trim()).ok()),
            email: match text(fields, "Email") {
                Ok(email) => email
                    .and_then(email_key)
                    .map_or(ContactEmail::Missing, ContactEmail::Email),
                Err(_) => ContactEmail::Unreadable,
            },
            record: RejectedRecord {
                salesforce_id: account_text,
                name: text(fields, "Name").ok().flatten().map(str::to_owned),
                reason,
            },
        }
    })
}

fn contact_fields(record: &Map<String, Value>) -> Result<ContactRecord, String> {
    let account = lookup_text(record, "Account", "Account_ID_18__c")?
        .ok_or("Account.Account_ID_18__c is missing")?;
    let account = SalesforceId::parse(account.trim())
        .map_err(|e| format!("Account.Account_ID_18__c: {e}"))?;
    Ok(ContactRecord {
        name: text(record, "Name")?
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        email: text(record, "Email")?.and_then(email_key),
        account,
    })
}

/// The contacts artifact from every record of the contact queries (SPEC §9, §10):
/// - contacts without an email are dropped and counted, protected emails likewise;
/// - an email held by two or more contacts (case-insensitive) is ambiguous: no contact of it
///   is kept, and its user is neither created, moved nor marked;
/// - a record that cannot be read is rejected, and the users it may stand for are held
///   ([`unreadable_holds`]; `org_users`: US Gov org id → its owned users' emails);
/// - each remaining contact goes to the US Gov org of its account (`orgs`: Salesforce id →
///   the ids of the US Gov orgs carrying it); an account with several orgs holds its contacts.
///
/// An email is in at most one of `contacts`, `ambiguous_emails` and `held`.
pub fn collect_contacts(
    mapped: Vec<Result<ContactRecord, RejectedContact>>,
    orgs: &BTreeMap<SalesforceId, Vec<u64>>,
    org_users: &BTreeMap<u64, Vec<String>>,
    protection: &Protection,
) -> SalesforceContacts {
    let mut contacts = SalesforceContacts::default();
    let mut by_email: BTreeMap<String, Vec<ContactRecord>> = BTreeMap::new();
    // The users held for records that could not be read: the first reason for each.
    let mut unreadable: BTreeMap<String, HeldContact> = BTreeMap::new();
    for result in mapped {
        let record = match result {
            Ok(record) => record,
            Err(rejected) => {
                for held in unreadable_holds(&rejected, orgs, org_users) {
                    if !protection.is_protected(&held.email) {
                        unreadable.entry(held.email.clone()).or_insert(held);
                    }
                }
                contacts.rejected.push(rejected.record);
                continue;
            }
        };
        match &record.email {
            None => contacts.without_email += 1,
            Some(email) if protection.is_protected(email) => contacts.protected += 1,
            Some(email) => by_email.entry(email.clone()).or_default().push(record),
        }
    }
    for (email, mut records) in by_email {
        if records.len() > 1 {
            unreadable.remove(&email);
            contacts.ambiguous_emails.push(AmbiguousEmail {
                email,
                salesforce_ids: records.into_iter().map(|r| r.account).collect(),
            });
            continue;
        }
        // A record that could not be read may be a second contact of this email (which would
        // make it ambiguous) or of this user: the user is left alone.
        if let Some(held) = unreadable.remove(&email) {
            contacts.held.push(held);
            continue;
        }
        let record = records.pop().expect("every email has a contact");
        let held = |reason: String| HeldContact {
            email: email.clone(),
            salesforce_id: Some(record.account.clone()),
            reason,
        };
        match orgs.get(&record.account).map(Vec::as_slice) {
            Some([organization_id]) => contacts.contacts.push(Contact {
                name: record.name.clone().unwrap_or_else(|| email.clone()),
                email: email.clone(),
                salesforce_id: record.account.clone(),
                organization_id: *organization_id,
            }),
            Some(several) if several.len() > 1 => contacts.held.push(held(format!(
                "account {} is on {} US Gov organizations ({})",
                record.account,
                several.len(),
                several
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            _ => contacts.held.push(held(format!(
                "account {} has no US Gov organization",
                record.account
            ))),
        }
    }
    contacts.held.extend(unreadable.into_values());
    contacts.held.sort_by(|a, b| a.email.cmp(&b.email));
    contacts
}

/// SPEC §10: a user is never marked because its contact record could not be read. The users a
/// rejected record may stand for, each held with the reason:
/// - its email can be read: the user of that email;
/// - its email cannot be read but its account id can: every user of the account's US Gov
///   organizations (`org_users`), since any of them may be the contact's;
/// - neither, or the email is blank (a contact without email stands for no user), or the
///   account has no US Gov organization: nothing ties the record to a user — none is held,
///   and the record is reported as rejected.
pub fn unreadable_holds(
    rejected: &RejectedContact,
    orgs: &BTreeMap<SalesforceId, Vec<u64>>,
    org_users: &BTreeMap<u64, Vec<String>>,
) -> Vec<HeldContact> {
    let reason = &rejected.record.reason;
    match (&rejected.email, &rejected.account) {
        (ContactEmail::Email(email), account) => vec![HeldContact {
            email: email.clone(),
            salesforce_id: account.clone(),
            reason: format!(
                "a contact record with this email could not be read ({reason}); its user is \
                 left as it is"
            ),
        }],
        (ContactEmail::Unreadable, Some(account)) => orgs
            .get(account)
            .into_iter()
            .flatten()
            .flat_map(|org| {
                org_users.get(org).into_iter().flatten().map(move |email| HeldContact {
                    email: email.clone(),
                    salesforce_id: Some(account.clone()),
                    reason: format!(
                        "a contact record of account {account} could not be read ({reason}) and \
                         its email is unreadable: every user of its US Gov organization {org} \
                         is left as it is"
                    ),
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a rejected record of `mapped` holds the users of its account's US Gov orgs: only
/// then does the contact gather read the gathered users ([`users_by_org`]).
pub fn needs_org_users(
    mapped: &[Result<ContactRecord, RejectedContact>],
    orgs: &BTreeMap<SalesforceId, Vec<u64>>,
) -> bool {
    mapped.iter().any(|result| {
        matches!(result, Err(RejectedContact {
            email: ContactEmail::Unreadable,
            account: Some(account),
            ..
        }) if orgs.contains_key(account))
    })
}

/// US Gov org id → the emails (keys) of the owned users whose organization it is.
pub fn users_by_org(users: &[ZendeskUser]) -> BTreeMap<u64, Vec<String>> {
    let mut by_org: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for user in users {
        if let (Some(org), Some(email)) = (user.organization_id, user.email_key()) {
            by_org.entry(org).or_default().push(email);
        }
    }
    by_org
}

/// The end-user each contact should be: in the org of its account, not flagged `not_in_sfdc`.
pub fn desired_users(contacts: &SalesforceContacts) -> Vec<DesiredUser> {
    contacts
        .contacts
        .iter()
        .map(|c| {
            let mut user_fields = Map::new();
            user_fields.insert(field::NOT_IN_SFDC.into(), false.into());
            DesiredUser {
                name: c.name.clone(),
                email: c.email.clone(),
                organization_id: c.organization_id,
                salesforce_id: c.salesforce_id.clone(),
                user_fields,
            }
        })
        .collect()
}

/// Emails whose users are left exactly as they are: ambiguous or held — among the held, the
/// users of contact records that could not be read (a user is never marked for a data
/// glitch). The user sync's compare and `explain` both take their held keys from here.
pub fn held_emails(contacts: &SalesforceContacts) -> BTreeSet<String> {
    contacts
        .ambiguous_emails
        .iter()
        .map(|a| a.email.clone())
        .chain(contacts.held.iter().map(|h| h.email.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACME: &str = "0011U00000V0tkDQAR";
    const BETA: &str = "001D000000IRFmaIAH";
    const TWIN: &str = "0013l00002PMMqSAAX";

    fn id(s: &str) -> SalesforceId {
        SalesforceId::parse(s).unwrap()
    }

    fn record(name: &str, email: Value, account: &str) -> Value {
        json!({"attributes": {"type": "Contact"}, "Name": name, "Email": email,
               "Account": {"attributes": {"type": "Account"}, "Account_ID_18__c": account}})
    }

    fn protection() -> Protection {
        Protection::new(
            &["gitlab.com".to_owned()],
            &["Ops@Partner.example".to_owned()],
        )
    }

    fn orgs() -> BTreeMap<SalesforceId, Vec<u64>> {
        BTreeMap::from([
            (id(ACME), vec![10]),
            (id(BETA), vec![20]),
            (id(TWIN), vec![30, 31]),
        ])
    }

    /// The owned users of each US Gov org, by email.
    fn org_users() -> BTreeMap<u64, Vec<String>> {
        BTreeMap::from([
            (
                10,
                vec!["ana@acme.example".into(), "bo@acme.example".into()],
            ),
            (20, vec!["cy@beta.example".into()]),
            (30, vec!["di@twin.example".into()]),
            (31, vec!["ed@twin.example".into()]),
        ])
    }

    fn collect(records: &[Value]) -> SalesforceContacts {
        collect_contacts(
            records.iter().map(map_contact).collect(),
            &orgs(),
            &org_users(),
            &protection(),
        )
    }

    fn held(contacts: &SalesforceContacts) -> Vec<&str> {
        contacts.held.iter().map(|h| h.email.as_str()).collect()
    }

    #[test]
    fn contacts_go_to_the_org_of_their_account_keyed_on_the_lower_cased_email() {
        let contacts = collect(&[record(" Ana Silva ", json!("Ana.Silva@Acme.example"), ACME)]);
        assert_eq!(
            contacts.contacts,
            vec![Contact {
                name: "Ana Silva".into(),
                email: "ana.silva@acme.example".into(),
                salesforce_id: id(ACME),
                organization_id: 10
            }]
        );
        let desired = desired_users(&contacts);
        assert_eq!(
            desired[0].user_fields,
            json!({"not_in_sfdc": false}).as_object().cloned().unwrap()
        );
    }

    #[test]
    fn an_email_on_two_contacts_in_any_case_is_ambiguous_and_held() {
        let contacts = collect(&[
            record("Pat Lee", json!("Pat.Lee@shared.example"), ACME),
            record("Pat Lee", json!("pat.lee@shared.example"), BETA),
            record("Solo", json!("solo@acme.example"), ACME),
        ]);
        assert_eq!(contacts.contacts.len(), 1);
        assert_eq!(contacts.ambiguous_emails.len(), 1);
        assert_eq!(contacts.ambiguous_emails[0].email, "pat.lee@shared.example");
        assert_eq!(
            contacts.ambiguous_emails[0].salesforce_ids,
            vec![id(ACME), id(BETA)]
        );
        assert!(held_emails(&contacts).contains("pat.lee@shared.example"));
    }

    #[test]
    fn contacts_without_email_or_with_a_protected_one_are_dropped_and_counted() {
        let contacts = collect(&[
            record("No Mail", json!(null), ACME),
            record("Blank", json!("  "), ACME),
            record("Staff", json!("someone@GitLab.com"), ACME),
            record("Listed", json!("ops@partner.example"), ACME),
            record("Lookalike", json!("x@gitlab.com.example"), ACME),
        ]);
        assert_eq!(contacts.without_email, 2);
        assert_eq!(contacts.protected, 2);
        assert_eq!(
            contacts.contacts.len(),
            1,
            "only the exact domain is protected"
        );
    }

    #[test]
    fn an_account_on_two_orgs_holds_its_contacts_and_bad_records_are_rejected() {
        let contacts = collect(&[
            record("Twin", json!("twin@twin.example"), TWIN),
            record("Bad", json!("bad@x.example"), "not-an-id"),
            json!(["not", "a", "record"]),
        ]);
        assert!(contacts.contacts.is_empty());
        assert_eq!(held(&contacts), vec!["bad@x.example", "twin@twin.example"]);
        assert!(contacts.held[1].reason.contains("2 US Gov organizations"));
        assert_eq!(contacts.rejected.len(), 2);
        assert!(
            contacts.rejected[0]
                .reason
                .contains("Account.Account_ID_18__c")
        );
    }

    #[test]
    fn a_contact_record_that_cannot_be_read_holds_its_email_when_the_email_can_be_read() {
        let contacts = collect(&[
            // The account id is not an id; the email reads fine.
            record("Lost", json!("Lost@Acme.example"), "0011U00000V0tkDQAA"),
            // The name is not text: the record is rejected, its email (also a readable
            // contact's) is held, and that contact is not used.
            record("Pat", json!("pat@acme.example"), ACME),
            json!({"Name": 7, "Email": "PAT@acme.example",
                   "Account": {"Account_ID_18__c": ACME}}),
            // A protected email is nobody the sync owns: nothing to hold.
            json!({"Name": 7, "Email": "staff@gitlab.com", "Account": {"Account_ID_18__c": ACME}}),
            record("Kept", json!("kept@acme.example"), ACME),
        ]);
        assert_eq!(contacts.rejected.len(), 3);
        assert_eq!(
            held(&contacts),
            vec!["lost@acme.example", "pat@acme.example"]
        );
        assert!(
            contacts.held[0].reason.contains("could not be read")
                && contacts.held[0].reason.contains("Account.Account_ID_18__c"),
            "{}",
            contacts.held[0].reason
        );
        assert_eq!(
            contacts.held[0].salesforce_id, None,
            "its account id is not valid"
        );
        assert_eq!(contacts.held[1].salesforce_id, Some(id(ACME)));
        let emails: Vec<&str> = contacts.contacts.iter().map(|c| c.email.as_str()).collect();
        assert_eq!(emails, vec!["kept@acme.example"]);
        let kept = held_emails(&contacts);
        assert!(kept.contains("lost@acme.example") && kept.contains("pat@acme.example"));
    }

    #[test]
    fn an_unreadable_email_holds_every_user_of_the_us_gov_orgs_of_its_account() {
        let records = [
            json!({"Name": "Who", "Email": ["who@acme.example"], "Account": {"Account_ID_18__c": ACME}}),
            json!({"Name": "Twin", "Email": 42, "Account": {"Account_ID_18__c": TWIN}}),
        ];
        let mapped: Vec<_> = records.iter().map(map_contact).collect();
        assert!(needs_org_users(&mapped, &orgs()));
        let contacts = collect_contacts(mapped, &orgs(), &org_users(), &protection());
        assert_eq!(
            held(&contacts),
            vec![
                "ana@acme.example",
                "bo@acme.example",
                "di@twin.example",
                "ed@twin.example"
            ],
            "Acme's org 10, and both of Twin's orgs; not Beta's user"
        );
        assert!(
            contacts.held[0]
                .reason
                .contains("every user of its US Gov organization 10"),
            "{}",
            contacts.held[0].reason
        );
        // So the user sync's compare neither updates nor marks them.
        let users: Vec<ZendeskUser> = [
            (1, "ana@acme.example"),
            (2, "bo@acme.example"),
            (3, "cy@beta.example"),
        ]
        .into_iter()
        .map(|(n, email)| user(n, email, "end-user"))
        .collect();
        let rules = crate::rules::CompareRules::default().with_held(held_emails(&contacts));
        let diff = crate::rules::compare_users(&desired_users(&contacts), &users, &[], &rules);
        let marked: Vec<u64> = diff.not_in_sync.iter().map(|m| m.id).collect();
        assert_eq!(marked, vec![3], "only the user no record stands for");
    }

    #[test]
    fn a_record_of_which_nothing_ties_it_to_a_user_is_only_rejected() {
        let records = [
            // Neither the email nor the account id can be read.
            json!({"Name": "Nobody", "Email": 42, "Account": {"Account_ID_18__c": "not-an-id"}}),
            // Not a record at all.
            json!("garbage"),
            // No email: a contact without one stands for no user.
            json!({"Name": 7, "Email": null, "Account": {"Account_ID_18__c": ACME}}),
            // The email cannot be read and the account has no US Gov org.
            json!({"Name": "Far", "Email": 42, "Account": {"Account_ID_18__c": "001000000000001AAA"}}),
        ];
        let mapped: Vec<_> = records.iter().map(map_contact).collect();
        assert!(!needs_org_users(&mapped, &orgs()));
        let contacts = collect_contacts(mapped, &orgs(), &org_users(), &protection());
        assert_eq!(contacts.rejected.len(), 4);
        assert!(contacts.held.is_empty(), "{:#?}", contacts.held);
    }

    #[test]
    fn users_by_org_keys_each_org_on_its_users_emails() {
        let mut moved = user(3, "Cy@Beta.example", "end-user");
        moved.organization_id = Some(20);
        let mut orgless = user(4, "x@y.example", "end-user");
        orgless.organization_id = None;
        let mut ana = user(1, "ana@acme.example", "end-user");
        ana.organization_id = Some(10);
        assert_eq!(
            users_by_org(&[ana, moved, orgless]),
            BTreeMap::from([
                (10, vec!["ana@acme.example".to_owned()]),
                (20, vec!["cy@beta.example".to_owned()])
            ])
        );
    }

    fn user(id: u64, email: &str, role: &str) -> ZendeskUser {
        ZendeskUser::from_api(
            json!({"id": id, "name": format!("User {id}"), "email": email, "role": role})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_sync_owns_unprotected_end_users_and_keeps_the_others_foreign() {
        let gathered = owned_users(
            Instance::Usgov,
            vec![
                user(1, "customer@acme.example", "end-user"),
                user(2, "agent@acme.example", "agent"),
                user(3, "staff@gitlab.com", "end-user"),
                user(4, "admin@gitlab.com", "admin"),
            ],
            &protection(),
        );
        assert_eq!(
            gathered.users.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!((gathered.protected, gathered.not_end_users), (2, 1));
        let foreign: Vec<_> = gathered
            .others
            .iter()
            .map(|o| o.key.as_deref().unwrap())
            .collect();
        assert_eq!(
            foreign,
            vec!["agent@acme.example", "staff@gitlab.com", "admin@gitlab.com"]
        );
    }
}
