//! The Processor (SPEC §5.3): accounts → the desired Global and US Gov organization objects.
//!
//! Steps run in the SPEC's order, each a small function: skip, keep mapped charges, split by
//! instance, compute entitlements from active charges, override (Global), post-rules, drop.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Number, Value};

use super::dates::RunDates;
use super::overrides::Overrides;
use super::plans::{ChargeRoute, Plans, Tier};
use crate::model::instance::{USGOV_FEDRAMP_FLAG, field};
use crate::model::{
    Account, Charge, DesiredOrg, DesiredOrgs, ExpiredOverride, Instance, OrgKey, ProcessReport,
    SalesforceAccounts, SalesforceId, SkipReason, SkippedAccount, SupportLevel,
};

/// Everything the processor reads.
pub struct ProcessInput<'a> {
    pub accounts: &'a SalesforceAccounts,
    /// The Salesforce ids of the Global partner organizations ([`partner_ids`]).
    pub partner_ids: &'a HashSet<SalesforceId>,
    pub plans: &'a Plans,
    pub overrides: &'a Overrides,
    pub dates: RunDates,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessOutput {
    pub global: DesiredOrgs,
    pub usgov: DesiredOrgs,
    pub report: ProcessReport,
}

/// What the charges of one instance grant (step 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Entitlement {
    /// The flags set by active charges (may include the internal `usgov_fedramp`).
    pub flags: BTreeSet<String>,
    pub support_level: SupportLevel,
    pub expiration_date: chrono::NaiveDate,
    pub seats: Option<f64>,
}

/// The Salesforce ids of the Global partner organizations: their accounts are the partner
/// sync's (step 1).
pub fn partner_ids<'a>(global_orgs: impl IntoIterator<Item = &'a OrgKey>) -> HashSet<SalesforceId> {
    global_orgs
        .into_iter()
        .filter(|org| org.partner)
        .filter_map(OrgKey::managed_id)
        .collect()
}

pub fn process(input: &ProcessInput) -> ProcessOutput {
    let mut global = Vec::new();
    let mut usgov = Vec::new();
    let report = process_each(input, |instance, object| match instance {
        Instance::Global => global.push(object),
        Instance::Usgov => usgov.push(object),
    });
    let desired = |instance, orgs| DesiredOrgs {
        instance,
        as_of: input.dates.as_of,
        orgs,
        held_salesforce_ids: held_ids(input.accounts),
    };
    ProcessOutput {
        global: desired(Instance::Global, global),
        usgov: desired(Instance::Usgov, usgov),
        report,
    }
}

/// The ids of the records the gather rejected whose id itself was valid: their orgs are held.
pub fn held_ids(accounts: &SalesforceAccounts) -> Vec<SalesforceId> {
    accounts
        .rejected
        .iter()
        .filter_map(|r| r.valid_id())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The processor, handing each desired object to `emit` as soon as it is made, in Salesforce
/// id order per instance (so the stage can encode each one and drop it); returns the report.
pub fn process_each(
    input: &ProcessInput,
    mut emit: impl FnMut(Instance, DesiredOrg),
) -> ProcessReport {
    let mut report = ProcessReport {
        accounts: input.accounts.accounts.len(),
        ..ProcessReport::default()
    };
    report
        .skipped_accounts
        .extend(input.accounts.rejected.iter().map(|r| SkippedAccount {
            salesforce_id: r.salesforce_id.clone(),
            name: r.name.clone(),
            reason: SkipReason::Rejected,
            instance: None,
            details: Some(r.reason.clone()),
        }));
    let mut in_id_order: Vec<&Account> = input.accounts.accounts.iter().collect();
    in_id_order.sort_by(|a, b| a.salesforce_id.cmp(&b.salesforce_id));
    let mut with_global_object: HashSet<SalesforceId> = HashSet::new();
    for account in in_id_order {
        let trace = trace_account(account, input);
        for (instance, object) in record_trace(account, trace, &mut report) {
            match instance {
                Instance::Global => {
                    report.global_objects += 1;
                    if input.overrides.get(&object.salesforce_id).is_some() {
                        with_global_object.insert(object.salesforce_id.clone());
                    }
                }
                Instance::Usgov => report.usgov_objects += 1,
            }
            emit(instance, object);
        }
    }
    report_unused_and_expired_overrides(input, &with_global_object, &mut report);
    report
}

/// What the processor decided for one account, step by step: the run's objects and report are
/// folded from it, and `explain` shows it, so both tell the same story.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountTrace<'a> {
    /// Steps 1–2: why the account gets no object at all.
    pub skipped: Option<SkipReason>,
    /// Steps 2–4: every charge, once the account got that far.
    pub charges: Vec<ChargeTrace<'a>>,
    /// Steps 4–7, per instance that has mapped charges.
    pub instances: Vec<InstanceTrace>,
}

/// How one charge was read.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargeTrace<'a> {
    pub charge: &'a Charge,
    /// `None`: no tier of `plans.yaml` lists the name.
    pub tier: Option<&'a Tier>,
    /// Step 3 (mapped charges only).
    pub route: Option<ChargeRoute>,
    /// Ends on or after the run's `expired_end_date`.
    pub active: bool,
}

/// Steps 4–7 for one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceTrace {
    pub instance: Instance,
    pub entitlement: Entitlement,
    pub override_use: OverrideUse,
    /// Step 6, in the order applied.
    pub post_rules: Vec<PostRule>,
    /// The object; `None` when step 7 dropped it.
    pub object: Option<DesiredOrg>,
    /// Step 7: why it was dropped.
    pub dropped: Option<String>,
}

/// Step 5 for one instance's object.
#[derive(Debug, Clone, PartialEq)]
pub enum OverrideUse {
    /// No override names the account.
    None,
    /// Applied: these keys were replaced.
    Applied {
        reason: String,
        expires: Option<chrono::NaiveDate>,
        keys: Vec<String>,
    },
    /// Named the account but expired before `as_of`: ignored (and reported).
    Expired {
        reason: String,
        expires: chrono::NaiveDate,
    },
    /// Overrides apply to Global objects only.
    NotForInstance,
}

/// A post-rule of step 6 that set something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostRule {
    /// `account_type` from the support level: `former_customer` when expired.
    AccountType(&'static str),
    /// An expired object's ARR is 0.
    ExpiredArrIsZero,
    /// `sub_ss_enterprise` ⇒ `sub_ss_ase` (Global).
    EnterpriseImpliesAse,
    /// The internal `usgov_fedramp` flag ⇒ `sub_gitlab_dedicated` and `sub_usgov_24x7` (US Gov).
    FedrampImpliesDedicatedAnd24x7,
    /// US Gov's schedule field follows `sub_usgov_24x7`.
    RoundTheClockSchedule(bool),
}

impl PostRule {
    pub fn describe(self) -> String {
        match self {
            PostRule::AccountType(kind) => {
                format!("account_type = {kind} (from the support level)")
            }
            PostRule::ExpiredArrIsZero => "ARR = 0 (the support level is expired)".into(),
            PostRule::EnterpriseImpliesAse => "sub_ss_enterprise ⇒ sub_ss_ase = true".into(),
            PostRule::FedrampImpliesDedicatedAnd24x7 => {
                "FedRAMP (usgov_fedramp) ⇒ sub_gitlab_dedicated = true, sub_usgov_24x7 = true"
                    .into()
            }
            PostRule::RoundTheClockSchedule(on) => {
                format!("24x7 schedule = {on} (follows sub_usgov_24x7)")
            }
        }
    }
}

/// Steps 1–7 for one account, without touching the report: zero, one or two objects and why.
pub fn trace_account<'a>(account: &'a Account, input: &ProcessInput<'a>) -> AccountTrace<'a> {
    let mut trace = AccountTrace {
        skipped: None,
        charges: Vec::new(),
        instances: Vec::new(),
    };
    // Step 1.
    if input.partner_ids.contains(&account.salesforce_id) {
        trace.skipped = Some(SkipReason::Partner);
        return trace;
    }
    if account.subs.is_empty() {
        trace.skipped = Some(SkipReason::NoSubscriptions);
        return trace;
    }
    // Steps 2 and 3.
    trace.charges = account
        .charges
        .iter()
        .map(|charge| {
            let tier = input.plans.tier_of(&charge.name);
            ChargeTrace {
                charge,
                tier,
                route: tier.map(|_| input.plans.route(&charge.name, account.exception)),
                active: charge.effective_end >= input.dates.expired_end_date,
            }
        })
        .collect();
    if trace.charges.iter().all(|c| c.tier.is_none()) {
        trace.skipped = Some(SkipReason::NoMappedCharges);
        return trace;
    }
    for instance in [Instance::Global, Instance::Usgov] {
        let charges: Vec<(&Charge, &Tier)> = trace
            .charges
            .iter()
            .filter(|c| c.route.is_some_and(|r| r.instance() == instance))
            .filter_map(|c| c.tier.map(|tier| (c.charge, tier)))
            .collect();
        if charges.is_empty() {
            continue;
        }
        trace
            .instances
            .push(trace_instance(account, instance, &charges, input));
    }
    trace
}

/// Steps 4–7 for one instance's charges (never empty).
fn trace_instance(
    account: &Account,
    instance: Instance,
    charges: &[(&Charge, &Tier)],
    input: &ProcessInput,
) -> InstanceTrace {
    // Step 4.
    let entitlement = entitlement(charges, input.dates.expired_end_date);
    let mut fields = base_fields(account, instance, &entitlement);
    // Step 5.
    let override_use = match input.overrides.get(&account.salesforce_id) {
        None => OverrideUse::None,
        Some(_) if instance != Instance::Global => OverrideUse::NotForInstance,
        Some(o) => match o.expires {
            Some(expires) if !o.is_active(input.dates.as_of) => OverrideUse::Expired {
                reason: o.reason.clone(),
                expires,
            },
            expires => {
                apply_override(&mut fields, &o.fields);
                OverrideUse::Applied {
                    reason: o.reason.clone(),
                    expires,
                    keys: o.fields.keys().cloned().collect(),
                }
            }
        },
    };
    // Step 6.
    let post_rules = apply_post_rules(&mut fields, instance, account.arr, &entitlement);
    // Step 7.
    let expiration = expiration_date(&fields);
    let dropped = expiration
        .is_none_or(|date| date < input.dates.three_years_out)
        .then(|| {
            format!(
                "expiration_date {} is before {}",
                expiration.map_or("(none)".to_owned(), |d| d.to_string()),
                input.dates.three_years_out
            )
        });
    let object = dropped.is_none().then(|| DesiredOrg {
        salesforce_id: account.salesforce_id.clone(),
        name: account.name.clone(),
        organization_fields: fields,
        sold_tos: match instance {
            Instance::Global => account.sold_tos.clone(),
            Instance::Usgov => Vec::new(),
        },
    });
    InstanceTrace {
        instance,
        entitlement,
        override_use,
        post_rules,
        object,
        dropped,
    }
}

/// Folds one account's trace into the run's report; returns its objects.
fn record_trace(
    account: &Account,
    trace: AccountTrace,
    report: &mut ProcessReport,
) -> Vec<(Instance, DesiredOrg)> {
    let skip = |reason, instance, details: Option<String>| SkippedAccount {
        salesforce_id: Some(account.salesforce_id.to_string()),
        name: Some(account.name.clone()),
        reason,
        instance,
        details,
    };
    for charge in trace.charges.iter().filter(|c| c.tier.is_none()) {
        *report
            .unmapped_charges
            .entry(charge.charge.name.clone())
            .or_default() += 1;
    }
    if let Some(reason) = trace.skipped {
        report.skipped_accounts.push(skip(reason, None, None));
        return Vec::new();
    }
    let mut objects = Vec::new();
    for instance in trace.instances {
        match instance.object {
            None => report.skipped_accounts.push(skip(
                SkipReason::ExpiredOverThreeYears,
                Some(instance.instance),
                instance.dropped,
            )),
            Some(object) => {
                if matches!(instance.override_use, OverrideUse::Applied { .. }) {
                    report.overrides.applied.push(account.salesforce_id.clone());
                }
                objects.push((instance.instance, object));
            }
        }
    }
    objects
}

/// Step 4: flags, level, expiry and seats of one instance's charges. A charge is active when it
/// ends on or after `expired_end_date` (15 days of grace). `charges` is never empty.
pub fn entitlement(
    charges: &[(&Charge, &Tier)],
    expired_end_date: chrono::NaiveDate,
) -> Entitlement {
    let active: Vec<&(&Charge, &Tier)> = charges
        .iter()
        .filter(|(charge, _)| charge.effective_end >= expired_end_date)
        .collect();
    Entitlement {
        flags: active
            .iter()
            .filter_map(|(_, tier)| tier.flag.clone())
            .collect(),
        support_level: active
            .iter()
            .map(|(_, tier)| tier.support_level)
            .max_by_key(|level| level.rank())
            .unwrap_or(SupportLevel::Expired),
        expiration_date: charges
            .iter()
            .map(|(charge, _)| charge.effective_end)
            .max()
            .expect("an instance only gets an object when it has charges"),
        seats: active
            .iter()
            .filter(|(_, tier)| tier.seats)
            .filter_map(|(charge, _)| charge.quantity)
            .reduce(f64::max),
    }
}

/// The organization fields of §6 before overrides and post-rules, in the instance's key order.
fn base_fields(account: &Account, instance: Instance, ent: &Entitlement) -> Map<String, Value> {
    let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
    let mut fields = Map::new();
    let mut set = |key: &str, value: Value| {
        fields.insert(key.to_owned(), value);
    };
    set(field::SALESFORCE_ID, account.salesforce_id.as_str().into());
    set(field::SFDC_SHORT_ID, account.salesforce_id.short().into());
    set(field::ACCOUNT_OWNER, text(&account.account_owner));
    set(
        field::TECHNICAL_ACCOUNT_MANAGER,
        text(&account.technical_account_manager),
    );
    set(
        field::SOLUTIONS_ARCHITECT,
        text(&account.solutions_architect),
    );
    set(instance.arr_key(), number(account.arr));
    set(instance.segment_key(), account.sales_segment.clone().into());
    if let Some(key) = instance.region_key() {
        set(
            key,
            account.region.map_or(Value::Null, |r| r.as_str().into()),
        );
    }
    set(field::RESTRICTED_ACCOUNT, account.restricted.into());
    set(field::ORG_IN_ESCALATED_STATE, account.escalated.into());
    set(field::SUPPORT_HOLD, account.support_hold.into());
    set(field::ACCOUNT_TYPE, Value::Null); // post-rule
    set(field::SUPPORT_LEVEL, ent.support_level.as_str().into());
    set(
        field::EXPIRATION_DATE,
        ent.expiration_date.format("%Y-%m-%d").to_string().into(),
    );
    let seats = match instance {
        Instance::Global => number(ent.seats),
        // US Gov's field is an integer.
        Instance::Usgov => ent
            .seats
            .map_or(Value::Null, |s| Value::from(s.round() as i64)),
    };
    set(instance.seats_key(), seats);
    if let Some(key) = instance.schedule_key() {
        set(key, false.into()); // post-rule
    }
    for flag in instance.flags() {
        set(flag, ent.flags.contains(*flag).into());
    }
    set(field::MARK_FOR_DELETION, false.into());
    fields
}

/// Step 5: an override's values replace the computed ones.
fn apply_override(fields: &mut Map<String, Value>, overridden: &Map<String, Value>) {
    for (key, value) in overridden {
        fields.insert(key.clone(), value.clone());
    }
}

/// Step 6, after the override so an overridden level drives type and ARR. Returns the rules
/// that set something, in order.
fn apply_post_rules(
    fields: &mut Map<String, Value>,
    instance: Instance,
    arr: Option<f64>,
    ent: &Entitlement,
) -> Vec<PostRule> {
    let expired = fields.get(field::SUPPORT_LEVEL).and_then(Value::as_str)
        == Some(SupportLevel::Expired.as_str());
    let account_type = if expired {
        "former_customer"
    } else {
        "customer"
    };
    let mut fired = vec![PostRule::AccountType(account_type)];
    fields.insert(field::ACCOUNT_TYPE.into(), account_type.into());
    fields.insert(
        instance.arr_key().into(),
        if expired { Value::from(0) } else { number(arr) },
    );
    if expired {
        fired.push(PostRule::ExpiredArrIsZero);
    }
    let is_set = |fields: &Map<String, Value>, key: &str| {
        fields.get(key).and_then(Value::as_bool) == Some(true)
    };
    match instance {
        Instance::Global => {
            if is_set(fields, "sub_ss_enterprise") {
                fields.insert("sub_ss_ase".into(), true.into());
                fired.push(PostRule::EnterpriseImpliesAse);
            }
        }
        Instance::Usgov => {
            if ent.flags.contains(USGOV_FEDRAMP_FLAG) {
                fields.insert("sub_gitlab_dedicated".into(), true.into());
                fields.insert("sub_usgov_24x7".into(), true.into());
                fired.push(PostRule::FedrampImpliesDedicatedAnd24x7);
            }
            let round_the_clock = is_set(fields, "sub_usgov_24x7");
            if let Some(key) = instance.schedule_key() {
                fields.insert(key.into(), round_the_clock.into());
                fired.push(PostRule::RoundTheClockSchedule(round_the_clock));
            }
        }
    }
    fired
}

fn expiration_date(fields: &Map<String, Value>) -> Option<chrono::NaiveDate> {
    fields
        .get(field::EXPIRATION_DATE)
        .and_then(Value::as_str)
        .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

fn number(value: Option<f64>) -> Value {
    value
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Expired overrides are reported so someone removes them; active ones that matched no Global
/// object are reported because they may name the wrong account.
fn report_unused_and_expired_overrides(
    input: &ProcessInput,
    with_object: &HashSet<SalesforceId>,
    report: &mut ProcessReport,
) {
    let mut expired = Vec::new();
    let mut unused = Vec::new();
    for o in input.overrides.iter() {
        match o.expires {
            Some(expires) if !o.is_active(input.dates.as_of) => expired.push(ExpiredOverride {
                salesforce_id: o.salesforce_id.clone(),
                expires,
                reason: o.reason.clone(),
            }),
            _ if !with_object.contains(&o.salesforce_id) => unused.push(o.salesforce_id.clone()),
            _ => {}
        }
    }
    expired.sort_by(|a, b| a.salesforce_id.cmp(&b.salesforce_id));
    unused.sort();
    report.overrides.applied.sort();
    report.overrides.expired = expired;
    report.overrides.unused = unused;
}

#[cfg(test)]
mod tests;
