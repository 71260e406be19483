//! Sync (SPEC §8), for one sync: creates, then updates, then marks — each as paced bulk jobs —
//! with the deletion guard over the marks. One runner serves all four syncs; what differs
//! between organizations and users (the artifacts, the fields a sync may write, the endpoints,
//! what follows a create) is a [`Writes`].
//!
//! Everything is read and cross-checked before the first write: a compare artifact that does not
//! fit the gathered records (an id that is not there, a field the sync does not own, a set of
//! another sync) fails the stage with `InvalidArtifact` and Zendesk is not touched. The result
//! is written even when the stage then fails, so every per-record outcome is on record.

mod orgs;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    RunInput, Stage, StageContext, StageOutput, artifacts, expect_same, mismatch, read, read_opt,
    write,
};
use crate::error::StageError;
use crate::model::{
    ChangeSet, GuardDecision, HeldBack, Instance, Pending, RecordError, RecordOutcome, SyncAction,
    SyncKind, SyncProgress, SyncResult, email_key,
};
use crate::progress::Counted;
use crate::rules::account_mapping::MAX_NAME_CHARS;
use crate::store::RunKeys;
use crate::zendesk::{ItemError, ItemOutcome, MAX_JOB_ITEMS, ZendeskClient, ZendeskError};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let sync = input.sync(Stage::Sync)?;
    match sync {
        SyncKind::Global | SyncKind::Usgov | SyncKind::Partners => {
            run_sync::<orgs::OrgWrites>(ctx, &keys, sync, &input).await
        }
        SyncKind::Users => run_sync::<users::UserWrites>(ctx, &keys, sync, &input).await,
    }
}

/// The records a sync may write, from its gathered artifact.
pub(super) struct Managed {
    /// Zendesk id → key of every record the sync owns and may update or mark.
    owned: BTreeMap<u64, String>,
    /// Every key in use on the instance (owned or not): a create of one would duplicate it.
    keys: BTreeSet<String>,
}

/// How one kind of record is checked and written.
pub(super) trait Writes {
    type Create: DeserializeOwned + Send + Sync;
    type Update: DeserializeOwned + Send + Sync;
    type Mark: DeserializeOwned + Send + Sync;
    /// The gathered artifact of the sync's Zendesk records.
    type Gathered: DeserializeOwned + Send;

    fn instance_of(gathered: &Self::Gathered) -> Instance;
    /// The records of `gathered` the sync owns, and every key in use.
    fn managed(sync: SyncKind, gathered: &Self::Gathered) -> Managed;

    fn create_key(create: &Self::Create) -> String;
    fn update_target(update: &Self::Update) -> (u64, String);
    fn mark_target(mark: &Self::Mark) -> (u64, String);
    /// What in a create or an update the sync must not send: a field it does not own, or a
    /// value Zendesk cannot take (a name over 255 characters, a 10 MB text) — its path in the
    /// item and why.
    fn unwritable_create(sync: SyncKind, create: &Self::Create) -> Option<Unwritable>;
    fn unwritable_update(sync: SyncKind, update: &Self::Update) -> Option<Unwritable>;

    /// Creates the records of one slice of the plan (and whatever follows a create, such as the
    /// sold-to contacts of a new Global org), recording each outcome in `result`.
    fn create(
        ctx: &StageContext,
        sync: SyncKind,
        creates: &[Self::Create],
        result: &mut SyncResult,
    ) -> impl Future<Output = Result<(), StageError>> + Send;

    /// What follows a sync that is done for this run (the Global sync's one Slack digest).
    fn finish(
        ctx: &StageContext,
        run: &RunKeys,
        sync: SyncKind,
        result: &mut SyncResult,
    ) -> impl Future<Output = ()> + Send;

    /// The Update Many item of an update and of a mark (`{"id": …, …}`).
    fn update_item(update: &Self::Update) -> Value;
    fn mark_item(mark: &Self::Mark) -> Value;
    /// Update Many Organizations or Users, paced; one outcome per item.
    fn update_many(
        client: &ZendeskClient,
        items: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<ItemOutcome>, ZendeskError>> + Send;
}

/// The compare sets of one sync, checked against each other and the gathered records.
struct SyncPlan<W: Writes> {
    creates: Vec<W::Create>,
    /// Creates and renames compare held back: reported, never sent.
    held_back: Vec<HeldBack>,
    updates: Vec<W::Update>,
    marks: Vec<W::Mark>,
    /// Managed records the sync owns: the deletion guard's base.
    managed: usize,
}

async fn run_sync<W: Writes>(
    ctx: &StageContext,
    keys: &RunKeys,
    sync: SyncKind,
    input: &RunInput,
) -> Result<StageOutput, StageError> {
    let invocation_started = Instant::now();
    let plan = SyncPlan::<W>::load(ctx, keys, sync).await?;
    let client = ctx.zendesk(sync.instance())?;
    // The operator's allowance: in the execution input, or recorded for a redrive of this run.
    let recorded: BTreeMap<SyncKind, usize> = read_opt(ctx, keys, artifacts::ALLOW_DELETIONS)
        .await?
        .unwrap_or_default();
    let allowance = input
        .allow_deletions
        .get(&sync)
        .copied()
        .max(recorded.get(&sync).copied());
    let decision =
        ctx.settings
            .sync
            .deletion_guard()
            .decide(plan.marks.len(), plan.managed, allowance);
    // An earlier invocation of this run that stopped at its budget (or crashed after saving)
    // left its result and place: go on from there.
    let earlier: Option<SyncResult> = read_opt(ctx, keys, &artifacts::sync_result(sync)).await?;
    let mut result = earlier
        .filter(|r| {
            r.progress
                .as_ref()
                .is_some_and(|p| p.planned == plan.sizes())
        })
        .unwrap_or_else(|| SyncResult {
            sync: Some(sync),
            held_back: plan.held_back.clone(),
            progress: Some(SyncProgress {
                planned: plan.sizes(),
                ..SyncProgress::default()
            }),
            ..SyncResult::default()
        });
    result.deletion_guard = Some(decision.clone());
    let progress = result.progress.as_mut().expect("an unfinished result");
    progress.invocations += 1;
    let invocations = progress.invocations;
    let budget = Budget {
        invocation_started,
        invocation: Duration::from_secs(ctx.settings.sync.invocation_budget_secs),
        execution_deadline: input.execution_started.map(|started| {
            started + chrono::Duration::seconds(ctx.settings.sync.execution_budget_secs as i64)
        }),
    };
    let stopped = apply::<W>(
        ctx,
        keys,
        client,
        sync,
        &plan,
        &decision,
        &budget,
        &mut result,
    )
    .await;
    match &stopped {
        Ok(Stop::Done) => result.progress = None,
        Ok(Stop::NextRun) => {
            let done = result.progress.take().map(|p| p.done).unwrap_or_default();
            result.left_for_next_run = plan.left_after(&done, decision.is_tripped());
            tracing::warn!(%sync, left = ?result.left_for_next_run, "the execution's time is spent: the rest is left for the next run");
        }
        // Unfinished: the place stays in the result for the next invocation or a redrive.
        Ok(Stop::Continue) | Err(_) => {}
    }
    if result.progress.is_none() {
        W::finish(ctx, keys, sync, &mut result).await;
    }
    let key = write(ctx, keys, &artifacts::sync_result(sync), &result).await?;
    let stopped = stopped?;
    let output = result.counts().into_iter().fold(
        StageOutput::new(Stage::Sync, Some(sync.instance())),
        |output, (name, n)| output.count(name, n),
    );
    let mut output = output
        .count("invocations", invocations)
        .with_artifact(key.clone());
    if stopped == Stop::Continue {
        tracing::info!(%sync, invocations, "the invocation's time is spent: the state machine continues this sync");
        output.more = Some(true);
        return Ok(output);
    }
    output.more = Some(false);

    if let GuardDecision::Tripped {
        marks,
        limit,
        managed,
    } = decision
    {
        return Err(StageError::DeletionGuardTripped {
            sync,
            records: sync.records().to_owned(),
            marks,
            limit,
            managed,
            not_in_sync: keys.key(&artifacts::not_in_sync(sync))?,
        });
    }
    let max = ctx.settings.sync.max_record_errors;
    if result.errors.len() > max {
        return Err(StageError::TooManyRecordErrors {
            count: result.errors.len(),
            max,
            result_key: key,
        });
    }
    Ok(output)
}

/// Why [`apply`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Everything of the plan is applied.
    Done,
    /// The invocation's budget is spent: another invocation goes on.
    Continue,
    /// The execution's budget is spent: the rest is for the next run.
    NextRun,
}

/// The time a sync may still spend.
struct Budget {
    invocation_started: Instant,
    invocation: Duration,
    execution_deadline: Option<chrono::DateTime<chrono::Utc>>,
}

impl Budget {
    /// Whether to start a slice of work expected to take `slice` (the longest so far).
    fn next(&self, slice: Duration, first_of_invocation: bool) -> Step {
        let execution_left = self.execution_deadline.map(|deadline| {
            (deadline - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        });
        next_step(
            self.invocation_started.elapsed(),
            slice,
            self.invocation,
            execution_left,
            first_of_invocation,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    Stop(Stop),
}

/// The budget rule: a slice starts only when it is expected to end inside the execution's
/// budget (else the rest is for the next run) and inside the invocation's (else another
/// invocation goes on). The first slice of an invocation always starts when the execution has
/// room, so every invocation makes progress.
fn next_step(
    elapsed: Duration,
    slice: Duration,
    invocation: Duration,
    execution_left: Option<Duration>,
    first_of_invocation: bool,
) -> Step {
    if let Some(left) = execution_left
        && (left.is_zero() || slice > left)
    {
        return Step::Stop(Stop::NextRun);
    }
    if !first_of_invocation && elapsed + slice > invocation {
        return Step::Stop(Stop::Continue);
    }
    Step::Go
}

/// How long a sync may go without saving its place: a crash loses at most this much work (which
/// a redrive then repeats, idempotently).
const SAVE_EVERY: Duration = Duration::from_secs(30);

/// Applies the plan from the result's place on, one slice (a full window of jobs) at a time,
/// creates first, then updates, then marks (none when the guard tripped), until it is done or
/// the budget says stop. The place moves with every slice and is saved every [`SAVE_EVERY`].
#[allow(clippy::too_many_arguments)]
async fn apply<W: Writes>(
    ctx: &StageContext,
    keys: &RunKeys,
    client: &ZendeskClient,
    sync: SyncKind,
    plan: &SyncPlan<W>,
    decision: &GuardDecision,
    budget: &Budget,
    result: &mut SyncResult,
) -> Result<Stop, StageError> {
    let slice_items = ctx.settings.sync.max_inflight_jobs * MAX_JOB_ITEMS;
    let mut saved = Instant::now();
    let mut first = true;
    // Records written of the plan (creates, updates and marks the guard lets through), as the
    // stage's progress: moved by each bulk job of a slice, exact at the slice's end.
    let tripped = decision.is_tripped();
    let total = plan.left_after(&Pending::default(), tripped).total() as u64;
    if tripped && !plan.marks.is_empty() {
        tracing::warn!(%sync, decision = %decision.describe(sync.records()), "deletion guard tripped: nothing is marked");
    }
    loop {
        let progress = result.progress.clone().expect("an unfinished result");
        let left = plan.left_after(&progress.done, tripped);
        if left.is_empty() {
            return Ok(Stop::Done);
        }
        let expected = Duration::from_secs_f64(progress.slice_seconds);
        if let Step::Stop(stop) = budget.next(expected, first) {
            return Ok(stop);
        }
        first = false;
        let started = Instant::now();
        let mut done = progress.done;
        let written = done.total() as u64;
        if left.creates > 0 {
            let slice = &plan.creates[done.creates..][..left.creates.min(slice_items)];
            let items = slice.len() as u64;
            crate::progress::writing(written, items, total, W::create(ctx, sync, slice, result))
                .await?;
            done.creates += slice.len();
        } else {
            // Updates, then marks: both are Update Many items.
            let (action, targets): (SyncAction, Vec<_>) = if left.updates > 0 {
                let slice = &plan.updates[done.updates..][..left.updates.min(slice_items)];
                let items = slice
                    .iter()
                    .map(|u| (W::update_target(u), W::update_item(u)));
                (SyncAction::Update, items.collect())
            } else {
                let slice = &plan.marks[done.marks..][..left.marks.min(slice_items)];
                let items = slice.iter().map(|m| (W::mark_target(m), W::mark_item(m)));
                (SyncAction::Mark, items.collect())
            };
            let n = targets.len();
            let applying = update_many::<W>(client, targets, action, result);
            crate::progress::writing(written, n as u64, total, applying).await?;
            match action {
                SyncAction::Update => done.updates += n,
                _ => done.marks += n,
            }
        }
        let progress = result.progress.as_mut().expect("an unfinished result");
        progress.done = done;
        progress.slice_seconds = progress.slice_seconds.max(started.elapsed().as_secs_f64());
        crate::progress::report(Counted::RecordsWritten, done.total() as u64, Some(total));
        if saved.elapsed() >= SAVE_EVERY {
            write(ctx, keys, &artifacts::sync_result(sync), &*result).await?;
            saved = Instant::now();
        }
    }
}

/// Update Many for `((id, key), item)` targets; each outcome lands in the result under
/// `action`.
async fn update_many<W: Writes>(
    client: &ZendeskClient,
    targets: Vec<((u64, String), Value)>,
    action: SyncAction,
    result: &mut SyncResult,
) -> Result<(), StageError> {
    if targets.is_empty() {
        return Ok(());
    }
    let (targets, items): (Vec<(u64, String)>, Vec<Value>) = targets.into_iter().unzip();
    for outcome in W::update_many(client, items).await? {
        let (id, key) = &targets[outcome.index];
        match outcome.result {
            Ok(_) => {
                let done = match action {
                    SyncAction::Mark => &mut result.marked,
                    _ => &mut result.updated,
                };
                done.push(RecordOutcome::new(key.clone(), Some(*id)));
            }
            Err(e) => result.errors.push(record_error(key, action, e)),
        }
    }
    Ok(())
}

impl<W: Writes> SyncPlan<W> {
    fn sizes(&self) -> Pending {
        Pending {
            creates: self.creates.len(),
            updates: self.updates.len(),
            marks: self.marks.len(),
        }
    }

    /// What is still to do after `done`; marks are not when the guard holds them back.
    fn left_after(&self, done: &Pending, guard_tripped: bool) -> Pending {
        Pending {
            creates: self.creates.len().saturating_sub(done.creates),
            updates: self.updates.len().saturating_sub(done.updates),
            marks: if guard_tripped {
                0
            } else {
                self.marks.len().saturating_sub(done.marks)
            },
        }
    }

    async fn load(
        ctx: &StageContext,
        keys: &RunKeys,
        sync: SyncKind,
    ) -> Result<SyncPlan<W>, StageError> {
        let creates: ChangeSet<W::Create> =
            read_set(ctx, keys, &artifacts::creates(sync), sync).await?;
        let updates: ChangeSet<W::Update> =
            read_set(ctx, keys, &artifacts::updates(sync), sync).await?;
        let marks: ChangeSet<W::Mark> =
            read_set(ctx, keys, &artifacts::not_in_sync(sync), sync).await?;
        let artifact = artifacts::zendesk_records(sync);
        let gathered: W::Gathered = read(ctx, keys, &artifact).await?;
        expect_same(
            keys,
            &artifact,
            "instance",
            sync.instance(),
            W::instance_of(&gathered),
        )?;
        let managed = W::managed(sync, &gathered);

        let key = keys.key(&artifacts::creates(sync))?;
        for (i, create) in creates.items.iter().enumerate() {
            let create_key = W::create_key(create);
            if managed.keys.contains(&create_key) {
                return Err(mismatch(
                    &key,
                    &format!("items[{i}]"),
                    format!(
                        "{create_key} already has a Zendesk record in {artifact}; creating it again would duplicate it"
                    ),
                ));
            }
            if let Some(bad) = W::unwritable_create(sync, create) {
                return Err(bad.at(&key, i));
            }
        }
        let key = keys.key(&artifacts::updates(sync))?;
        for (i, update) in updates.items.iter().enumerate() {
            let (id, update_key) = W::update_target(update);
            check_target(&key, i, id, &update_key, &managed, &artifact)?;
            if let Some(bad) = W::unwritable_update(sync, update) {
                return Err(bad.at(&key, i));
            }
        }
        let key = keys.key(&artifacts::not_in_sync(sync))?;
        for (i, mark) in marks.items.iter().enumerate() {
            let (id, mark_key) = W::mark_target(mark);
            check_target(&key, i, id, &mark_key, &managed, &artifact)?;
        }
        Ok(SyncPlan {
            held_back: creates
                .held_back
                .into_iter()
                .chain(updates.held_back)
                .collect(),
            creates: creates.items,
            updates: updates.items,
            marks: marks.items,
            managed: managed.owned.len(),
        })
    }
}

async fn read_set<T: DeserializeOwned>(
    ctx: &StageContext,
    keys: &RunKeys,
    name: &str,
    sync: SyncKind,
) -> Result<ChangeSet<T>, StageError> {
    let set: ChangeSet<T> = read(ctx, keys, name).await?;
    expect_same(keys, name, "sync", sync, set.sync)?;
    Ok(set)
}

/// An update or mark must name a record this sync owns, with the same key.
fn check_target(
    key: &str,
    index: usize,
    id: u64,
    record_key: &str,
    managed: &Managed,
    artifact: &str,
) -> Result<(), StageError> {
    match managed.owned.get(&id) {
        Some(found) if found == record_key => Ok(()),
        Some(found) => Err(mismatch(
            key,
            &format!("items[{index}]"),
            format!("record {id} belongs to {found} in {artifact}, not {record_key}"),
        )),
        None => Err(mismatch(
            key,
            &format!("items[{index}].id"),
            format!("record {id} is not a record this sync owns in {artifact}"),
        )),
    }
}

/// Something in an item of a compare set that the sync will not send, and where.
pub(super) struct Unwritable {
    /// The path inside the item (`organization_fields.ignore_deletion`, `name`).
    path: String,
    message: String,
}

impl Unwritable {
    fn at(self, key: &str, index: usize) -> StageError {
        mismatch(key, &format!("items[{index}].{}", self.path), self.message)
    }
}

/// The longest text the sync sends in a field (a Zendesk text field holds far less in
/// practice; this only stops a corrupt artifact).
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// A name, and the fields of `fields`: owned (SPEC §6: never an agent's or the deletion job's
/// field) and of a size Zendesk takes.
fn unwritable(
    name: Option<&str>,
    fields_key: &str,
    fields: &serde_json::Map<String, Value>,
    owned: &[&str],
) -> Option<Unwritable> {
    if let Some(name) = name {
        let length = name.chars().count();
        if length > MAX_NAME_CHARS {
            return Some(Unwritable {
                path: "name".into(),
                message: format!(
                    "the name is {length} characters long; Zendesk takes at most {MAX_NAME_CHARS}"
                ),
            });
        }
    }
    for (field, value) in fields {
        if !owned.contains(&field.as_str()) {
            return Some(Unwritable {
                path: format!("{fields_key}.{field}"),
                message: "the sync never writes this field".into(),
            });
        }
        if value
            .as_str()
            .is_some_and(|text| text.len() > MAX_TEXT_BYTES)
        {
            return Some(Unwritable {
                path: format!("{fields_key}.{field}"),
                message: format!("a text of more than {MAX_TEXT_BYTES} bytes"),
            });
        }
    }
    None
}

/// Zendesk refused a create because the record's unique value (an org name, a user's email)
/// is taken.
fn taken(e: &ItemError) -> bool {
    let details = e.details.as_deref().unwrap_or_default().to_lowercase();
    e.error.contains("DuplicateValue")
        || details.contains("already been taken")
        || details.contains("already being used")
        || details.contains("duplicatevalue")
}

/// A user create refused because the email is taken: when the user already is in the org it was
/// to be created in,
/// this is a re-run of a create that landed (a redrive, a lost answer) and counts as done.
/// The org's user list is read before the search, because a user created moments ago is in the
/// list at once but may not be in the search index yet.
pub(super) async fn existing_user(
    client: &ZendeskClient,
    email: &str,
    organization_id: u64,
) -> Result<Result<u64, String>, StageError> {
    if let Some(id) = user_in_org(client, email, organization_id).await? {
        return Ok(Ok(id));
    }
    Ok(Err(match client.search_user_by_email(email).await? {
        Some(found) => format!(
            "it belongs to Zendesk user {} ({}) in organization {}, who is not this sync's to change",
            found.get("id").and_then(Value::as_u64).unwrap_or_default(),
            found.get("role").and_then(Value::as_str).unwrap_or("?"),
            found
                .get("organization_id")
                .and_then(Value::as_u64)
                .map_or("none".to_owned(), |id| id.to_string())
        ),
        None => "no user with it is found yet".to_owned(),
    }))
}

/// The id of the user with `email` among the users of `organization_id`, if any: the list
/// shows a user created moments ago, which search may not have indexed yet.
pub(super) async fn user_in_org(
    client: &ZendeskClient,
    email: &str,
    organization_id: u64,
) -> Result<Option<u64>, StageError> {
    let wanted = email_key(email);
    let in_org = client.list_organization_users(organization_id).await?;
    Ok(in_org
        .iter()
        .find(|raw| raw.get("email").and_then(Value::as_str).and_then(email_key) == wanted)
        .and_then(|found| found.get("id").and_then(Value::as_u64)))
}

fn record_error(key: &str, action: SyncAction, e: ItemError) -> RecordError {
    RecordError {
        key: key.to_owned(),
        action,
        error: e.error,
        details: e.details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_slice_starts_only_when_it_fits_the_invocation_and_the_execution() {
        let go = |elapsed, slice, left| next_step(elapsed, slice, 10 * MIN, left, false);
        assert_eq!(go(MIN, MIN, None), Step::Go);
        assert_eq!(go(9 * MIN, MIN, None), Step::Go, "ends at the budget");
        assert_eq!(
            go(9 * MIN + Duration::from_secs(1), MIN, None),
            Step::Stop(Stop::Continue),
            "would end past the invocation's budget: another invocation"
        );
        assert_eq!(
            go(MIN, MIN, Some(30 * MIN)),
            Step::Go,
            "the execution has room"
        );
        assert_eq!(
            go(MIN, 2 * MIN, Some(MIN)),
            Step::Stop(Stop::NextRun),
            "would end past the execution's budget: the next run"
        );
        assert_eq!(
            go(
                9 * MIN + Duration::from_secs(1),
                MIN,
                Some(Duration::from_secs(30))
            ),
            Step::Stop(Stop::NextRun),
            "the execution's end wins over the invocation's"
        );
    }

    #[test]
    fn every_invocation_makes_progress_while_the_execution_has_time() {
        // Past its own budget before the first slice (a slow start): one slice still runs.
        assert_eq!(
            next_step(11 * MIN, MIN, 10 * MIN, Some(20 * MIN), true),
            Step::Go
        );
        // No time left in the execution: not even one.
        assert_eq!(
            next_step(
                Duration::ZERO,
                Duration::ZERO,
                10 * MIN,
                Some(Duration::ZERO),
                true
            ),
            Step::Stop(Stop::NextRun)
        );
        // A zero budget: exactly one slice per invocation.
        assert_eq!(
            next_step(Duration::ZERO, Duration::ZERO, Duration::ZERO, None, true),
            Step::Go
        );
        assert_eq!(
            next_step(
                Duration::from_millis(1),
                Duration::ZERO,
                Duration::ZERO,
                None,
                false
            ),
            Step::Stop(Stop::Continue)
        );
    }
}
