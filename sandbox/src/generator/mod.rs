//! Deterministic fixture generator: a realistic mix of Salesforce accounts and contacts and
//! the Zendesk state a sync would find, including every awkward case SPEC §3–§10 handles.
//!
//! The same options always give a byte-identical fixture: all randomness comes from one
//! ChaCha stream seeded with `seed`, every date derives from `as_of`, and nothing iterates
//! a hash map.

mod desired;
mod ids;
mod names;
mod plans;
mod records;

use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::fixture::{Fixture, GeneratedInfo, ZendeskFixture, ZendeskFixtures};
use crate::instance::ZendeskInstance;
use crate::salesforce::SalesforceFixture;
use crate::zendesk::default_fields::SUPPORT_LEVELS;
use ids::IdFactory;
use names::NameBook;
use plans::{Plans, Tier};
use records::{Account, AccountType, Charge, Contact, Subscription};

#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorOptions {
    /// Salesforce accounts to make. The special cases come first, so even a small number
    /// covers the most important ones; the rest are ordinary customers.
    pub accounts: usize,
    pub seed: u64,
    /// The run date all subscription dates are placed around.
    pub as_of: NaiveDate,
    /// Share of ordinary accounts whose Zendesk organization exists already (a quarter of
    /// those differ from Salesforce). 0 makes a first run: every ordinary org is to be created.
    pub existing_orgs: f64,
}

impl GeneratorOptions {
    pub fn new(accounts: usize, seed: u64, as_of: NaiveDate) -> Self {
        GeneratorOptions {
            accounts,
            seed,
            as_of,
            existing_orgs: DEFAULT_EXISTING_ORGS,
        }
    }

    /// A world Zendesk has not seen yet: only the hand-made cases have organizations.
    pub fn first_run(mut self) -> Self {
        self.existing_orgs = 0.0;
        self
    }
}

pub const DEFAULT_EXISTING_ORGS: f64 = 0.7;

/// What an ordinary account (after the hand-made cases) is, by share: GitLab's book is mostly
/// Global customers, with about 1 % US Government and a few partners.
const USGOV_SHARE: f64 = 0.01;
const PARTNER_SHARE: f64 = 0.015;
/// Scenario notes kept per scenario: enough for tests to pick from, small at any size.
const NOTES_KEPT: usize = 50;

impl Fixture {
    pub fn generate(options: &GeneratorOptions) -> Fixture {
        Generator::new(options).run(options.accounts)
    }
}

/// The special accounts, most important first.
#[derive(Clone, Copy, Debug)]
enum Special {
    FederalException,
    UsgovOnly,
    UsgovFedramp,
    PartnerOpen,
    PartnerSelect,
    PartnerAlliance,
    PartnerNew,
    PartnerLapsed,
    PartnerTechnology,
    PartnerReturning,
    ExpiredRecently,
    ExpiredLapsed,
    ExpiredLongAgo,
    NoSubscriptions,
    SharedNameFirst,
    SharedNameSecond,
    ConflictingOrgs,
    SoldToUserWithoutOrg,
    SoldToUserInOtherOrg,
    UnmappedCharge,
    Prospect,
}

const SPECIALS: [Special; 21] = [
    Special::FederalException,
    Special::UsgovOnly,
    Special::UsgovFedramp,
    Special::PartnerOpen,
    Special::PartnerSelect,
    Special::PartnerAlliance,
    Special::PartnerNew,
    Special::PartnerLapsed,
    Special::PartnerTechnology,
    Special::PartnerReturning,
    Special::ExpiredRecently,
    Special::ExpiredLapsed,
    Special::ExpiredLongAgo,
    Special::NoSubscriptions,
    Special::SharedNameFirst,
    Special::SharedNameSecond,
    Special::ConflictingOrgs,
    Special::SoldToUserWithoutOrg,
    Special::SoldToUserInOtherOrg,
    Special::UnmappedCharge,
    Special::Prospect,
];

/// Ids in the same ranges the sandbox uses for records it creates.
fn organization_id(instance: ZendeskInstance, n: u64) -> u64 {
    instance_base(instance) + 1_000_001 + n
}

fn user_id(instance: ZendeskInstance, n: u64) -> u64 {
    instance_base(instance) + 5_000_001 + n
}

fn instance_base(instance: ZendeskInstance) -> u64 {
    match instance {
        ZendeskInstance::Global => 360_000_000_000,
        ZendeskInstance::Usgov => 370_000_000_000,
    }
}

const SEGMENTS: [Option<&str>; 6] = [
    Some("SMB"),
    Some("Mid-Market"),
    Some("Large"),
    Some("PubSec"),
    Some("Large"),
    None,
];
const GEOS: [Option<&str>; 6] = [
    Some("AMER"),
    Some("EMEA"),
    Some("APJ"),
    Some("AMER"),
    Some("LATAM"),
    None,
];
const REGIONS: [Option<&str>; 5] = [
    Some("AMER"),
    Some("EMEA"),
    Some("APJ"),
    Some("Americas"),
    None,
];
const RISKS: [Option<&str>; 6] = [
    Some("Low"),
    Some("Medium"),
    Some("High"),
    Some("Low"),
    None,
    None,
];

struct Generator {
    rng: ChaCha8Rng,
    /// Chooses what each ordinary account is, apart from `rng`, so the accounts themselves
    /// come from the same stream whatever the mix.
    mix: ChaCha8Rng,
    existing_orgs: f64,
    /// Salesforce id → US Gov organization id.
    usgov_orgs: std::collections::HashMap<String, u64>,
    as_of: NaiveDate,
    seed: u64,
    ids: IdFactory,
    names: NameBook,
    accounts: Vec<Account>,
    contacts: Vec<Contact>,
    global: ZendeskFixture,
    usgov: ZendeskFixture,
    scenarios: BTreeMap<String, Vec<String>>,
    alliance_account_id: String,
    subscriptions_made: u64,
    /// An unmanaged Global organization some users belong to.
    reseller_org: u64,
}

impl Generator {
    fn new(options: &GeneratorOptions) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            mix: ChaCha8Rng::seed_from_u64(options.seed ^ 0x0005_eed0_fa11_acc0),
            existing_orgs: options.existing_orgs,
            usgov_orgs: std::collections::HashMap::new(),
            as_of: options.as_of,
            seed: options.seed,
            ids: IdFactory::default(),
            names: NameBook::default(),
            accounts: Vec::new(),
            contacts: Vec::new(),
            global: ZendeskFixture::default(),
            usgov: ZendeskFixture::default(),
            scenarios: BTreeMap::new(),
            alliance_account_id: String::new(),
            subscriptions_made: 0,
            reseller_org: 0,
        }
    }

    fn run(mut self, accounts: usize) -> Fixture {
        self.unmanaged_organizations();
        for special in SPECIALS.iter().take(accounts) {
            self.special(*special);
        }
        for _ in SPECIALS.len()..accounts {
            let draw: f64 = self.mix.random();
            if draw < USGOV_SHARE {
                self.ordinary_usgov_customer();
            } else if draw < USGOV_SHARE + PARTNER_SHARE {
                self.ordinary_partner();
            } else {
                self.regular_customer();
            }
        }
        self.orphaned_organizations();
        self.protected_users();
        self.usgov_user_cases();
        self.finish(accounts)
    }

    fn finish(self, accounts: usize) -> Fixture {
        let mut objects = BTreeMap::new();
        objects.insert(
            "Account".to_owned(),
            self.accounts.iter().map(Account::to_json).collect(),
        );
        objects.insert(
            "Contact".to_owned(),
            self.contacts.iter().map(Contact::to_json).collect(),
        );
        Fixture {
            salesforce: SalesforceFixture { objects },
            zendesk: ZendeskFixtures {
                global: self.global,
                usgov: self.usgov,
            },
            slack: Default::default(),
            generated: Some(GeneratedInfo {
                seed: self.seed,
                accounts,
                as_of: self.as_of.format("%Y-%m-%d").to_string(),
                alliance_account_id: self.alliance_account_id,
                scenarios: self.scenarios,
            }),
        }
    }

    fn note(&mut self, scenario: &str, what: &str) {
        let noted = self.scenarios.entry(scenario.to_owned()).or_default();
        if noted.len() < NOTES_KEPT {
            noted.push(what.to_owned());
        }
    }

    /// Whether an ordinary account's organization exists already.
    fn has_existing_org(&mut self) -> bool {
        self.rng.random_bool(self.existing_orgs.clamp(0.0, 1.0))
    }

    // ----- Salesforce records ------------------------------------------------------------

    fn person(&mut self) -> String {
        names::person(&mut self.rng)
    }

    fn maybe_person(&mut self, probability: f64) -> Option<String> {
        self.rng.random_bool(probability).then(|| self.person())
    }

    fn choose<T: Copy>(&mut self, options: &[T]) -> T {
        *options.choose(&mut self.rng).expect("non-empty options")
    }

    fn account(&mut self, account_type: AccountType) -> Account {
        let name = self.names.company(&mut self.rng);
        let domain = names::domain(&name);
        let arr = self
            .rng
            .random_bool(0.85)
            .then(|| (self.rng.random_range(1_000..2_000_000) as f64) + 0.5);
        let restricted = match self.rng.random_range(0..20) {
            0 => Some("Restricted Party"),
            1 | 2 => Some("Not Restricted"),
            _ => None,
        };
        let risk = if self.rng.random_bool(0.05) {
            Some("At Risk - Escalated")
        } else {
            self.choose(&RISKS)
        };
        let support_hold = match self.rng.random_range(0..10) {
            0 => Some(true),
            1..=5 => Some(false),
            _ => None,
        };
        let sold_to = self.rng.random_bool(0.85).then(|| {
            let person = self.person();
            let email = names::email(&person, &domain, &mut self.rng);
            (person, email)
        });
        Account {
            id: self.ids.next("001"),
            name,
            account_type,
            arr,
            segment: self.choose(&SEGMENTS),
            owner: self.person(),
            technical_account_manager: self.maybe_person(0.6),
            solutions_architect: self.maybe_person(0.5),
            geo: self.choose(&GEOS),
            region: self.choose(&REGIONS),
            restricted,
            risk,
            support_hold,
            support_instance: None,
            partner_track: None,
            partner_type: None,
            partner_status: None,
            sold_to,
            subscriptions: Vec::new(),
            domain,
        }
    }

    /// One subscription over `[end - 1 year, end]` holding a charge per name.
    fn subscribe(&mut self, account: &mut Account, charge_names: &[&str], end: NaiveDate) {
        let start = end - Months::new(12);
        self.subscriptions_made += 1;
        let status = if end >= self.as_of {
            "Active"
        } else {
            "Expired"
        };
        let sold_to_email = match self.rng.random_range(0..20) {
            0..=13 => account.sold_to.as_ref().map(|(_, email)| email.clone()),
            14..=16 => {
                let person = self.person();
                Some(names::email(&person, &account.domain, &mut self.rng))
            }
            _ => None,
        };
        let charges = charge_names
            .iter()
            .map(|charge_name| Charge {
                id: self.ids.next("a1y"),
                name: format!("C-{:08}", self.rng.random_range(1..100_000_000)),
                charge_name: (*charge_name).to_owned(),
                start,
                end,
                quantity: f64::from(self.rng.random_range(5..2000)),
            })
            .collect();
        account.subscriptions.push(Subscription {
            id: self.ids.next("a1x"),
            name: format!("A-S{:08}", self.subscriptions_made),
            status,
            start,
            end,
            sold_to_email,
            charges,
        });
    }

    fn any_charge(&mut self, tier: &Tier) -> String {
        tier.charges
            .choose(&mut self.rng)
            .expect("tiers have charges")
            .clone()
    }

    fn charge_of(&mut self, tier: &str) -> String {
        let tier = Plans::get().tier(tier);
        self.any_charge(tier)
    }

    /// The end of a one-year term running today.
    fn future_end(&mut self) -> NaiveDate {
        self.as_of + Days::new(self.rng.random_range(20..=360))
    }

    fn contact(
        &mut self,
        account: &Account,
        email: Option<String>,
        inactive: bool,
        roles: &'static str,
    ) -> Contact {
        let name = self.person();
        let email = email.or_else(|| Some(names::email(&name, &account.domain, &mut self.rng)));
        Contact {
            id: self.ids.next("003"),
            name,
            email,
            inactive,
            roles,
            account_id: account.id.clone(),
        }
    }

    // ----- Zendesk records ---------------------------------------------------------------

    fn instance(&mut self, instance: ZendeskInstance) -> &mut ZendeskFixture {
        match instance {
            ZendeskInstance::Global => &mut self.global,
            ZendeskInstance::Usgov => &mut self.usgov,
        }
    }

    /// A timestamp some time before `as_of`, so generated records look lived-in.
    fn past_timestamp(&mut self) -> String {
        let day = self.as_of - Days::new(self.rng.random_range(30..2000));
        format!("{}T12:00:00Z", day.format("%Y-%m-%d"))
    }

    fn add_organization(
        &mut self,
        instance: ZendeskInstance,
        name: &str,
        fields: Map<String, Value>,
    ) -> u64 {
        let id = organization_id(instance, self.instance(instance).organizations.len() as u64);
        let created = self.past_timestamp();
        if instance == ZendeskInstance::Usgov
            && let Some(salesforce_id) = fields.get("salesforce_id").and_then(Value::as_str)
        {
            self.usgov_orgs
                .entry(salesforce_id.to_owned())
                .or_insert(id);
        }
        let mut fields = fields;
        if self.rng.random_bool(0.2) {
            fields.insert(
                "am_project_id".into(),
                json!(self.rng.random_range(1000..99999).to_string()),
            );
            fields.insert("assigned_se".into(), json!(self.person()));
        }
        self.instance(instance).organizations.push(json!({
            "id": id,
            "name": name,
            "created_at": created,
            "updated_at": created,
            "organization_fields": fields,
        }));
        id
    }

    fn add_user(&mut self, instance: ZendeskInstance, user: Value) -> u64 {
        let id = user_id(instance, self.instance(instance).users.len() as u64);
        let created = self.past_timestamp();
        let mut user = user;
        user["id"] = json!(id);
        user["created_at"] = json!(created);
        user["updated_at"] = json!(created);
        self.instance(instance).users.push(user);
        id
    }

    /// The in-sync organization of a customer, or a stale copy of it.
    fn customer_organization(
        &mut self,
        account: &Account,
        instance: ZendeskInstance,
        stale: bool,
    ) -> Option<u64> {
        let mut fields = desired::customer_fields(account, instance, self.as_of)?;
        let mut name = account.name.clone();
        if stale {
            let change = self.stale_change(&mut fields, &mut name, instance);
            self.note(&format!("{instance}_stale_{change}"), &account.id);
        } else {
            self.note(&format!("{instance}_in_sync"), &account.id);
        }
        Some(self.add_organization(instance, &name, fields))
    }

    /// Makes one field differ from what Salesforce says; returns which.
    fn stale_change(
        &mut self,
        fields: &mut Map<String, Value>,
        name: &mut String,
        instance: ZendeskInstance,
    ) -> &'static str {
        let options = [
            "support_level",
            "account_owner",
            "arr",
            "expiration_date",
            "name",
        ];
        match self.choose(&options) {
            "support_level" => {
                let current = fields["support_level"].clone();
                let other = SUPPORT_LEVELS
                    .iter()
                    .find(|l| json!(l) != current)
                    .expect("levels differ");
                fields.insert("support_level".into(), json!(other));
                "support_level"
            }
            "account_owner" => {
                fields.insert("account_owner".into(), json!(self.person()));
                "account_owner"
            }
            "arr" => {
                let key = if instance == ZendeskInstance::Global {
                    "aar"
                } else {
                    "arr"
                };
                fields.insert(key.into(), json!(12345.0));
                "arr"
            }
            "expiration_date" => {
                fields.insert("expiration_date".into(), json!("2020-01-31"));
                "expiration_date"
            }
            _ => {
                name.push_str(" (old name)");
                "name"
            }
        }
    }

    // ----- Scenarios ---------------------------------------------------------------------

    fn unmanaged_organizations(&mut self) {
        self.reseller_org =
            self.add_organization(ZendeskInstance::Global, "Channel Reseller Ltd", Map::new());
        let mut blank = Map::new();
        blank.insert("salesforce_id".into(), json!(""));
        self.add_organization(ZendeskInstance::Global, "GitLab Internal", blank);
        let mut invalid = Map::new();
        invalid.insert("salesforce_id".into(), json!("n/a"));
        self.add_organization(ZendeskInstance::Global, "Legacy Import Org", invalid);
        self.add_organization(ZendeskInstance::Usgov, "US Gov Support Team", Map::new());
        for name in [
            "Channel Reseller Ltd",
            "GitLab Internal",
            "Legacy Import Org",
            "US Gov Support Team",
        ] {
            self.note("unmanaged_orgs", name);
        }
    }

    fn special(&mut self, special: Special) {
        match special {
            Special::FederalException => self.federal_exception(),
            Special::UsgovOnly => self.usgov_customer("usgov_only", &["usgov_24x7"], false),
            Special::UsgovFedramp => self.usgov_customer("usgov_fedramp", &["usgov_fedramp"], true),
            Special::PartnerOpen => self.partner(
                "partner_open",
                Some("Open"),
                "Authorized",
                Some("open_partner"),
                false,
            ),
            Special::PartnerSelect => self.partner(
                "partner_select",
                Some("Select"),
                "Authorized",
                Some("select_partner"),
                true,
            ),
            Special::PartnerAlliance => self.alliance_partner(),
            Special::PartnerNew => {
                self.partner("partner_new", Some("Open"), "Authorized", None, false)
            }
            // No longer an authorized partner ("Former"): its partner org is to be marked.
            Special::PartnerLapsed => self.partner(
                "partner_lapsed",
                Some("Open"),
                "Former",
                Some("open_partner"),
                false,
            ),
            // Authorized, but on a track the partner query does not ask for: never synced.
            Special::PartnerTechnology => self.partner(
                "partner_technology",
                Some("Technology"),
                "Authorized",
                None,
                false,
            ),
            Special::PartnerReturning => self.returning_partner(),
            Special::ExpiredRecently => self.expired_customer("expired_within_15_days", 10, false),
            Special::ExpiredLapsed => self.expired_customer("expired_over_15_days", 40, true),
            Special::ExpiredLongAgo => self.expired_long_ago(),
            Special::NoSubscriptions => {
                let account = self.account(AccountType::Customer);
                self.note("no_subscriptions", &account.id);
                self.accounts.push(account);
            }
            Special::SharedNameFirst | Special::SharedNameSecond => self.shared_name(),
            Special::ConflictingOrgs => self.conflicting_orgs(),
            Special::SoldToUserWithoutOrg => self.sold_to_existing_user(false),
            Special::SoldToUserInOtherOrg => self.sold_to_existing_user(true),
            Special::UnmappedCharge => {
                let mut account = self.account(AccountType::Customer);
                let end = self.future_end();
                let known = self.charge_of("sm_premium");
                self.subscribe(&mut account, &[&known, "Legacy Starter - 1 Year"], end);
                self.note("unmapped_charge", &account.id);
                self.accounts.push(account);
            }
            Special::Prospect => {
                let account = self.account(AccountType::Prospect);
                self.note("prospect", &account.id);
                self.accounts.push(account);
            }
        }
    }

    /// Federal-support: its Self-Managed charge goes to US Gov with the 12x5 one; its
    /// Growth success service still goes to Global.
    fn federal_exception(&mut self) {
        let mut account = self.account(AccountType::Customer);
        account.support_instance = Some("federal-support");
        let end = self.future_end();
        let charges = [
            self.charge_of("sm_ultimate"),
            self.charge_of("usgov_12x5"),
            self.charge_of("ss_growth"),
        ];
        self.subscribe(&mut account, &charges.each_ref().map(String::as_str), end);
        self.note("federal_exception", &account.id);
        self.customer_organization(&account, ZendeskInstance::Usgov, true);
        self.usgov_people(&account, true);
        self.accounts.push(account);
    }

    fn usgov_customer(&mut self, scenario: &str, tiers: &[&str], has_org: bool) {
        let mut account = self.account(AccountType::Customer);
        let end = self.future_end();
        let charges: Vec<String> = tiers.iter().map(|t| self.charge_of(t)).collect();
        let charges: Vec<&str> = charges.iter().map(String::as_str).collect();
        self.subscribe(&mut account, &charges, end);
        self.note(scenario, &account.id);
        if has_org {
            self.customer_organization(&account, ZendeskInstance::Usgov, false);
        }
        self.usgov_people(&account, false);
        self.accounts.push(account);
    }

    /// Contacts of a US Gov account and the usgov end-users that go with them.
    fn usgov_people(&mut self, account: &Account, shares_email: bool) {
        let organization = self.usgov_org_of(&account.id);
        let admin = self.contact(account, None, false, "Gitlab Admin");
        let billing_admin = self.contact(account, None, false, "Gitlab Admin;Billing");
        let inactive = self.contact(account, None, true, "Gitlab Admin");
        let billing_only = self.contact(account, None, false, "Billing");
        let no_email = Contact {
            email: None,
            ..self.contact(account, None, false, "Gitlab Admin")
        };
        self.note(
            "contact_inactive",
            inactive.email.as_deref().unwrap_or_default(),
        );
        self.note(
            "contact_not_admin",
            billing_only.email.as_deref().unwrap_or_default(),
        );
        self.note("contact_without_email", &no_email.id);
        // Two contacts, on two accounts, whose emails differ only in case.
        let shared = "Pat.Lee@shared-contact.example.com";
        let sharing = self.contact(
            account,
            Some(if shares_email {
                shared.to_owned()
            } else {
                shared.to_lowercase()
            }),
            false,
            "Gitlab Admin",
        );
        self.note(
            "contact_email_shared",
            sharing.email.as_deref().unwrap_or_default(),
        );
        if let Some(organization) = organization {
            let in_sync = json!({"name": admin.name, "email": admin.email, "role": "end-user",
                "organization_id": organization, "user_fields": {"not_in_sfdc": false}});
            self.add_user(ZendeskInstance::Usgov, in_sync);
            self.note(
                "usgov_user_in_sync",
                admin.email.as_deref().unwrap_or_default(),
            );
            let stale = json!({"name": format!("{} (old)", billing_admin.name), "email": billing_admin.email,
                "role": "end-user", "organization_id": organization, "user_fields": {"not_in_sfdc": false}});
            self.add_user(ZendeskInstance::Usgov, stale);
            self.note(
                "usgov_user_stale_name",
                billing_admin.email.as_deref().unwrap_or_default(),
            );
            if shares_email {
                let ambiguous = json!({"name": sharing.name, "email": shared.to_lowercase(), "role": "end-user",
                    "organization_id": organization, "user_fields": {"not_in_sfdc": false}});
                self.add_user(ZendeskInstance::Usgov, ambiguous);
            }
        }
        self.contacts.extend([
            admin,
            billing_admin,
            inactive,
            billing_only,
            no_email,
            sharing,
        ]);
    }

    /// The user sync's harder cases, on the US Gov accounts made above (when there are two
    /// with an org): a contact whose user sits in the other org (moved), a marked user whose
    /// contact is back (un-marked), an agent who is also a contact and a contact whose email is
    /// a protected staff user (both left alone).
    fn usgov_user_cases(&mut self) {
        let with_org: Vec<(Account, u64)> = self
            .accounts
            .iter()
            .filter_map(|a| self.usgov_org_of(&a.id).map(|org| (a.clone(), org)))
            .collect();
        let [(home, _), (_, other_org), ..] = with_org.as_slice() else {
            return;
        };
        let (home, other_org) = (home.clone(), *other_org);
        let moved = self.contact(&home, None, false, "Gitlab Admin");
        self.add_user(
            ZendeskInstance::Usgov,
            json!({"name": moved.name, "email": moved.email, "role": "end-user",
                   "organization_id": other_org, "user_fields": {"not_in_sfdc": false}}),
        );
        self.note(
            "usgov_user_wrong_org",
            moved.email.as_deref().unwrap_or_default(),
        );
        let returning = self.contact(&home, None, false, "Billing;Gitlab Admin");
        let home_org = self.usgov_org_of(&home.id);
        self.add_user(
            ZendeskInstance::Usgov,
            json!({"name": returning.name, "email": returning.email, "role": "end-user",
                   "organization_id": home_org, "user_fields": {"not_in_sfdc": true}}),
        );
        self.note(
            "usgov_user_returning",
            returning.email.as_deref().unwrap_or_default(),
        );
        let agent = self.contact(&home, None, false, "Gitlab Admin");
        self.add_user(
            ZendeskInstance::Usgov,
            json!({"name": agent.name, "email": agent.email, "role": "agent"}),
        );
        self.note(
            "usgov_agent_contact",
            agent.email.as_deref().unwrap_or_default(),
        );
        let staff = self.contact(
            &home,
            Some("ops@gitlab.com".to_owned()),
            false,
            "Gitlab Admin",
        );
        self.note("contact_protected", "ops@gitlab.com");
        self.contacts.extend([moved, returning, agent, staff]);
    }

    fn usgov_org_of(&self, salesforce_id: &str) -> Option<u64> {
        self.usgov_orgs.get(salesforce_id).copied()
    }

    fn partner(
        &mut self,
        scenario: &str,
        track: Option<&'static str>,
        status: &'static str,
        org_type: Option<&str>,
        stale: bool,
    ) {
        let mut account = self.account(AccountType::Partner);
        account.partner_track = track;
        account.partner_status = Some(status);
        account.partner_type = Some("Resale");
        account.sold_to = None;
        self.note(scenario, &account.id);
        if let Some(org_type) = org_type {
            let mut fields = desired::partner_fields(&account, org_type);
            if stale {
                fields.insert("account_owner".into(), json!(self.person()));
            }
            self.add_organization(ZendeskInstance::Global, &account.name, fields);
        }
        self.accounts.push(account);
    }

    /// An authorized Select partner whose org was marked for deletion: it is un-marked.
    fn returning_partner(&mut self) {
        let mut account = self.account(AccountType::Partner);
        account.partner_track = Some("Select");
        account.partner_status = Some("Authorized");
        account.partner_type = Some("Resale");
        account.sold_to = None;
        self.note("partner_returning", &account.id);
        let mut fields = desired::partner_fields(&account, "select_partner");
        fields.insert("mark_for_deletion".into(), json!(true));
        self.add_organization(ZendeskInstance::Global, &account.name, fields);
        self.accounts.push(account);
    }

    /// Matched by id alone in the partner query, so its track is empty.
    fn alliance_partner(&mut self) {
        let mut account = self.account(AccountType::Partner);
        account.partner_status = Some("Authorized");
        account.partner_type = Some("Alliance");
        account.sold_to = None;
        self.alliance_account_id = account.id.clone();
        self.note("partner_alliance", &account.id);
        let fields = desired::partner_fields(&account, "alliance_partner");
        self.add_organization(ZendeskInstance::Global, &account.name, fields);
        self.accounts.push(account);
    }

    /// Charges that ended `days_ago`; `stale_org` leaves the org at its pre-expiry values.
    fn expired_customer(&mut self, scenario: &str, days_ago: u64, stale_org: bool) {
        let account_type = if stale_org {
            AccountType::FormerCustomer
        } else {
            AccountType::Customer
        };
        let mut account = self.account(account_type);
        let end = self.as_of - Days::new(days_ago);
        let charge = self.charge_of("sm_premium");
        self.subscribe(&mut account, &[&charge], end);
        self.note(scenario, &account.id);
        if stale_org {
            let mut fields = desired::customer_fields(&account, ZendeskInstance::Global, end)
                .expect("a Global charge");
            fields.insert("support_level".into(), json!("premium"));
            fields.insert("account_type".into(), json!("customer"));
            self.add_organization(ZendeskInstance::Global, &account.name, fields);
        } else {
            self.customer_organization(&account, ZendeskInstance::Global, false);
        }
        self.accounts.push(account);
    }

    /// Charges over three years gone: the account drops out and its org should be marked.
    fn expired_long_ago(&mut self) {
        let mut account = self.account(AccountType::FormerCustomer);
        let end = self.as_of - Months::new(36) - Days::new(30);
        let charge = self.charge_of("dotcom_premium");
        self.subscribe(&mut account, &[&charge], end);
        self.note("expired_over_3_years", &account.id);
        let fields = desired::customer_fields(&account, ZendeskInstance::Global, end)
            .expect("a Global charge");
        self.add_organization(ZendeskInstance::Global, &account.name, fields);
        self.accounts.push(account);
    }

    fn shared_name(&mut self) {
        let mut account = self.account(AccountType::Customer);
        if let Some(first) = self
            .scenarios
            .get("shared_name")
            .and_then(|ids| ids.first())
        {
            let first = first.clone();
            account.name = self
                .accounts
                .iter()
                .find(|a| a.id == first)
                .expect("first exists")
                .name
                .clone();
        }
        let end = self.future_end();
        let charge = self.charge_of("dotcom_ultimate");
        self.subscribe(&mut account, &[&charge], end);
        self.note("shared_name", &account.id);
        self.accounts.push(account);
    }

    fn conflicting_orgs(&mut self) {
        let mut account = self.account(AccountType::Customer);
        let end = self.future_end();
        let charge = self.charge_of("sm_ultimate");
        self.subscribe(&mut account, &[&charge], end);
        self.note("salesforce_id_on_two_orgs", &account.id);
        let fields = desired::customer_fields(&account, ZendeskInstance::Global, self.as_of)
            .expect("Global charge");
        self.add_organization(ZendeskInstance::Global, &account.name, fields.clone());
        self.add_organization(
            ZendeskInstance::Global,
            &format!("{} - duplicate", account.name),
            fields,
        );
        self.accounts.push(account);
    }

    /// A new customer whose sold-to contact already is a Global user: without an
    /// organization (gets a membership) or in another one (left alone).
    fn sold_to_existing_user(&mut self, in_other_org: bool) {
        let mut account = self.account(AccountType::Customer);
        let person = self.person();
        let email = names::email(&person, &account.domain, &mut self.rng);
        account.sold_to = Some((person.clone(), email.clone()));
        let end = self.future_end();
        let charge = self.charge_of("sm_premium");
        self.subscribe(&mut account, &[&charge], end);
        for subscription in &mut account.subscriptions {
            subscription.sold_to_email = Some(email.clone());
        }
        let mut user = json!({"name": person, "email": email, "role": "end-user"});
        let scenario = if in_other_org {
            user["organization_id"] = json!(self.reseller_org);
            "sold_to_user_in_other_org"
        } else {
            "sold_to_user_without_org"
        };
        self.add_user(ZendeskInstance::Global, user);
        self.note(scenario, &account.id);
        self.accounts.push(account);
    }

    fn regular_customer(&mut self) {
        let mut account = self.account(AccountType::Customer);
        let plans = Plans::get();
        let end = match self.rng.random_range(0..20) {
            0 | 1 => self.as_of - Days::new(self.rng.random_range(1..15)),
            2 => self.as_of - Days::new(self.rng.random_range(16..300)),
            _ => self.future_end(),
        };
        let mut charges = Vec::new();
        if self.rng.random_bool(0.1) {
            let addon = *plans
                .addon_tiers()
                .choose(&mut self.rng)
                .expect("addon tiers");
            charges.push(self.any_charge(addon));
        } else {
            let main = *plans
                .main_tiers()
                .choose(&mut self.rng)
                .expect("main tiers");
            charges.push(self.any_charge(main));
            if self.rng.random_bool(0.25) {
                let addon = *plans
                    .addon_tiers()
                    .choose(&mut self.rng)
                    .expect("addon tiers");
                charges.push(self.any_charge(addon));
            }
        }
        let charges: Vec<&str> = charges.iter().map(String::as_str).collect();
        self.subscribe(&mut account, &charges, end);
        // Global customers have GitLab admins too; with no US Gov org, none becomes a user.
        for _ in 0..self.rng.random_range(1..=5) {
            let contact = self.contact(&account, None, false, "Gitlab Admin");
            if self
                .scenarios
                .get("contact_without_usgov_org")
                .is_none_or(|c| c.len() < 5)
            {
                self.note(
                    "contact_without_usgov_org",
                    contact.email.as_deref().unwrap_or_default(),
                );
            }
            self.contacts.push(contact);
        }
        if self.has_existing_org() {
            let stale = self.rng.random_bool(0.25);
            self.customer_organization(&account, ZendeskInstance::Global, stale);
        } else {
            self.note("global_new_customer", &account.id);
            // Some new customers' sold-to contacts have written to support before: they are
            // Global users already, without an organization or in a reseller's.
            if let Some((person, email)) = account.sold_to.clone()
                && self.rng.random_bool(0.15)
            {
                let mut user = json!({"name": person, "email": email, "role": "end-user"});
                if self.rng.random_bool(0.5) {
                    user["organization_id"] = json!(self.reseller_org);
                }
                self.add_user(ZendeskInstance::Global, user);
            }
        }
        self.accounts.push(account);
    }

    /// An ordinary US Government customer: its org (existing, or to be created), 1–5 GitLab
    /// admin contacts, and their US Gov users — in sync, renamed, or not there yet.
    fn ordinary_usgov_customer(&mut self) {
        let mut account = self.account(AccountType::Customer);
        let end = self.future_end();
        let tier = self.choose(&["usgov_24x7", "usgov_12x5", "usgov_fedramp"]);
        let charge = self.charge_of(tier);
        self.subscribe(&mut account, &[&charge], end);
        let org = if self.has_existing_org() {
            let stale = self.rng.random_bool(0.25);
            self.customer_organization(&account, ZendeskInstance::Usgov, stale)
        } else {
            self.note("usgov_new_customer", &account.id);
            None
        };
        for _ in 0..self.rng.random_range(1..=5) {
            let contact = self.contact(&account, None, false, "Gitlab Admin");
            if let (Some(org), Some(email)) = (org, contact.email.clone()) {
                match self.rng.random_range(0..10) {
                    0..=5 => {
                        let user = json!({"name": contact.name, "email": email, "role": "end-user",
                            "organization_id": org, "user_fields": {"not_in_sfdc": false}});
                        self.add_user(ZendeskInstance::Usgov, user);
                    }
                    6 | 7 => {
                        let user = json!({"name": format!("{} (old)", contact.name), "email": email,
                            "role": "end-user", "organization_id": org, "user_fields": {"not_in_sfdc": false}});
                        self.add_user(ZendeskInstance::Usgov, user);
                    }
                    _ => {}
                }
            }
            self.contacts.push(contact);
        }
        self.accounts.push(account);
    }

    /// An ordinary Open or Select partner: its partner org in sync, stale, or not there yet.
    fn ordinary_partner(&mut self) {
        let select = self.rng.random_bool(0.4);
        let (track, org_type) = if select {
            ("Select", "select_partner")
        } else {
            ("Open", "open_partner")
        };
        let org_type = self.has_existing_org().then_some(org_type);
        let stale = self.rng.random_bool(0.25);
        self.partner(
            "partner_ordinary",
            Some(track),
            "Authorized",
            org_type,
            stale,
        );
    }

    /// Managed organizations whose account no longer exists: to be marked, or marked already.
    fn orphaned_organizations(&mut self) {
        for (instance, marked) in [
            (ZendeskInstance::Global, false),
            (ZendeskInstance::Global, false),
            (ZendeskInstance::Global, true),
            (ZendeskInstance::Usgov, false),
        ] {
            let id = self.ids.next("001");
            let mut fields = Map::new();
            fields.insert("salesforce_id".into(), json!(id));
            fields.insert("sfdc_short_id".into(), json!(&id[..15]));
            fields.insert("account_type".into(), json!("customer"));
            fields.insert("support_level".into(), json!("premium"));
            fields.insert("mark_for_deletion".into(), json!(marked));
            let name = self.names.company(&mut self.rng);
            self.add_organization(instance, &name, fields);
            let scenario = if marked {
                "account_gone_already_marked"
            } else {
                "account_gone"
            };
            self.note(&format!("{instance}_{scenario}"), &id);
        }
    }

    /// Users the sync must never touch, and usgov users with no contact.
    fn protected_users(&mut self) {
        let agent =
            json!({"name": "Support Agent", "email": "support.agent@gitlab.com", "role": "agent"});
        self.add_user(ZendeskInstance::Usgov, agent.clone());
        self.add_user(ZendeskInstance::Global, agent);
        let staff = json!({"name": "Ops Staff", "email": "ops@gitlab.com", "role": "end-user"});
        self.add_user(ZendeskInstance::Usgov, staff);
        self.note("protected_users", "support.agent@gitlab.com");
        self.note("protected_users", "ops@gitlab.com");
        let gone = json!({"name": "Former Admin", "email": "former.admin@departed.example.com",
            "role": "end-user", "user_fields": {"not_in_sfdc": false}});
        self.add_user(ZendeskInstance::Usgov, gone);
        self.note(
            "usgov_user_not_in_salesforce",
            "former.admin@departed.example.com",
        );
        let marked = json!({"name": "Marked Admin", "email": "marked.admin@departed.example.com",
            "role": "end-user", "user_fields": {"not_in_sfdc": true}});
        self.add_user(ZendeskInstance::Usgov, marked);
        self.note(
            "usgov_user_already_marked",
            "marked.admin@departed.example.com",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(accounts: usize, seed: u64) -> GeneratorOptions {
        GeneratorOptions::new(
            accounts,
            seed,
            NaiveDate::from_ymd_opt(2026, 11, 23).expect("date"),
        )
    }

    #[test]
    fn same_options_give_identical_bytes() {
        let a = Fixture::generate(&options(60, 3)).to_json_pretty();
        let b = Fixture::generate(&options(60, 3)).to_json_pretty();
        assert_eq!(a, b);
        assert_ne!(a, Fixture::generate(&options(60, 4)).to_json_pretty());
    }

    #[test]
    fn a_big_world_has_the_shares_of_the_book() {
        let n = 20_000;
        let fixture = Fixture::generate(&options(n, 2));
        let accounts = &fixture.salesforce.objects["Account"];
        assert_eq!(accounts.len(), n);
        let names: std::collections::HashSet<&str> =
            accounts.iter().filter_map(|a| a["Name"].as_str()).collect();
        assert_eq!(names.len(), n - 1, "unique but for the shared-name case");
        let partners = accounts
            .iter()
            .filter(|a| a["Type"] == json!("Partner"))
            .count();
        assert!((200..400).contains(&partners), "{partners} partners");
        let usgov_orgs = fixture.zendesk.usgov.organizations.len();
        assert!((100..200).contains(&usgov_orgs), "{usgov_orgs} US Gov orgs");
        let contacts = fixture.salesforce.objects["Contact"].len();
        assert!(
            (50_000..70_000).contains(&contacts),
            "{contacts} contacts: 1–5 an account"
        );
        let global_orgs = fixture.zendesk.global.organizations.len();
        assert!(
            (13_000..15_000).contains(&global_orgs),
            "{global_orgs} Global orgs"
        );
        let noted = fixture.generated.as_ref().unwrap().scenarios["global_new_customer"].len();
        assert_eq!(noted, NOTES_KEPT);

        let first = Fixture::generate(&options(n, 2).first_run());
        let first_orgs = first.zendesk.global.organizations.len();
        assert!(
            first_orgs < 40,
            "a first run finds the hand-made orgs only: {first_orgs}"
        );
    }

    #[test]
    fn makes_the_requested_number_of_accounts() {
        for n in [1, 5, 19, 120] {
            let fixture = Fixture::generate(&options(n, 1));
            assert_eq!(fixture.salesforce.objects["Account"].len(), n);
        }
    }
}
