//! Sync (SPEC §8), for one sync: creates, then updates, then marks — each as paced bulk jobs —
//! with the deletion guard over the marks. One runner serves all four syncs; what differs
//! between them (the artifacts, the records a sync owns, the fields it may write, the endpoints,
//! what follows a create) is the sync's spec ([`SyncSpec`]).
//!
//! Everything is read and cross-checked before the first write: a compare artifact that does not
//! fit the gathered records (an id that is not there, a field the sync does not own, a set of
//! another sync) fails the stage with `InvalidArtifact` and Zendesk is not touched. The result
//! is written even when the stage then fails, so every per-record outcome is on record.
//!
//! The work goes in windows (`max_inflight_jobs` × 100 items, see `window.rs`); the place —
//! the windows done, the window under way and its accepted jobs — is saved as it moves, so
//! another invocation, a retry or a redrive goes on from it. Before any write the runner checks
//! that the plan is not stale and, in a redriven execution, that no other execution runs.

mod digest;
mod sold_tos;
mod window;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::artifacts;
use super::context::StageContext;
use super::input::{ExecutionContext, RunInput, StageOutput};
use super::io::{expect_same, mismatch, read, read_opt, write};
use super::snapshots;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{
    ChangeSet, GuardDecision, HeldBack, Pending, RecordError, SyncAction, SyncKind, SyncProgress,
    SyncResult, WindowStep,
};
use crate::progress::Counted;
use crate::rules::compare::RecordKind;
use crate::store::RunKeys;
use crate::syncs::{
    CreateOf, Gathered, KeyOf, MarkOf, RecordWrites, SyncSpec, Unwritable, UpdateOf, for_sync,
};
use crate::zendesk::{ItemError, MAX_JOB_ITEMS, ZendeskClient};

use window::{Ledger, WindowEnd};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let sync = input.sync(Stage::Sync)?;
    for_sync!(sync, spec => run_sync(ctx, &keys, spec, &input).await)
}

/// The compare sets of one sync, checked against each other and the gathered records.
pub(super) struct SyncPlan<S: SyncSpec> {
    creates: Vec<CreateOf<S>>,
    /// Creates and renames compare held back: reported, never sent.
    held_back: Vec<HeldBack>,
    updates: Vec<UpdateOf<S>>,
    marks: Vec<MarkOf<S>>,
    /// Managed records the sync owns: the deletion guard's base.
    managed: usize,
    /// A digest of the plan's content: a saved place is resumed only on its own plan.
    digest: String,
}

/// A sync at work in one invocation: its spec, clients and plan, its time, its attempt, and the
/// result and place it moves.
pub(super) struct SyncRun<'a, S: SyncSpec> {
    ctx: &'a StageContext,
    keys: &'a RunKeys,
    client: &'a ZendeskClient,
    spec: S,
    plan: &'a SyncPlan<S>,
    /// The execution's redrive count: which attempt settles what.
    attempt: u32,
    /// No job is sent and none waited for after this.
    deadline: Instant,
    result: SyncResult,
    ledger: Ledger,
}

impl<S: SyncSpec> SyncRun<'_, S> {
    fn sync(&self) -> SyncKind {
        self.spec.sync()
    }

    fn progress(&mut self) -> &mut SyncProgress {
        self.result
            .progress
            .as_mut()
            .expect("a sync at work has its place")
    }

    /// Saves the result (the place in it): after each step of a window, so a crash redoes at
    /// most one window.
    async fn save(&self) -> Result<String, StageError> {
        write(
            self.ctx,
            self.keys,
            &artifacts::sync_result(self.sync()),
            &self.result,
        )
        .await
    }

    fn past_deadline(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Works on the window of `action` at `start` — its writes, then, for a spec that attaches
    /// sold-tos, the new records' users — and answers how it ended and its length (a resumed
    /// window keeps the length it began with).
    async fn window(
        &mut self,
        action: SyncAction,
        start: usize,
        len: usize,
    ) -> Result<(WindowEnd, usize), StageError> {
        let window = self.ledger.begin(&self.plan.digest, action, start, len);
        let len = window.len;
        if window.step == WindowStep::Write {
            if self.write_step(&window).await? == WindowEnd::Open {
                return Ok((WindowEnd::Open, len));
            }
            if action != SyncAction::Create || !self.spec.attaches_sold_tos() {
                return Ok((WindowEnd::Settled, len));
            }
            self.ledger.update(|w| {
                w.step = WindowStep::SoldToUsers;
                w.jobs.clear();
            });
            self.ledger.save().await;
        }
        Ok((sold_tos::associate(self, start, len).await?, len))
    }
}

async fn run_sync<S: SyncSpec>(
    ctx: &StageContext,
    keys: &RunKeys,
    spec: S,
    input: &RunInput,
) -> Result<StageOutput, StageError> {
    let sync = spec.sync();
    let invocation_started = Instant::now();
    let plan = SyncPlan::load(ctx, keys, spec).await?;
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
    let tripped = decision.is_tripped();
    let attempt = input.execution.as_ref().map_or(0, |e| e.redrive_count);
    let earlier: Option<SyncResult> = read_opt(ctx, keys, &artifacts::sync_result(sync)).await?;
    let mut result = match resume(earlier, &plan, sync, tripped) {
        Resumed::Finished(result) => {
            // Done with this decision already (an answer lost after the sync finished, a
            // retry): the result as it is, with no call to Zendesk and no second digest.
            tracing::info!(%sync, "the sync finished earlier in this run; answering its result");
            let key = keys.key(&artifacts::sync_result(sync))?;
            return conclude(ctx, keys, sync, &result, key, &decision, 0);
        }
        Resumed::Place(result) => result,
    };
    result.deletion_guard = Some(decision.clone());
    result.attempt = attempt;

    let now = Utc::now();
    let age = plan_age(ctx, keys, sync, now).await?;
    if let Some(age) = age.filter(|age| stale(*age, ctx.settings.sync.plan_max_age_secs)) {
        return Err(StageError::PlanStale {
            sync,
            age_secs: age.as_secs(),
            max_secs: ctx.settings.sync.plan_max_age_secs,
            // The guard trips on these marks without an operator's allowance: the new
            // execution needs one too (its own count may differ; the message says where).
            allowance: match ctx.settings.sync.deletion_guard().decide(
                plan.marks.len(),
                plan.managed,
                None,
            ) {
                GuardDecision::Tripped { marks, .. } => format!(
                    ", with {{\"allow_deletions\": {{\"{sync}\": {marks}}}}} if the marks in {} are right",
                    keys.key(&artifacts::not_in_sync(sync))?
                ),
                _ => String::new(),
            },
        });
    }
    if let Some(execution) = input.execution.as_ref().filter(|e| e.is_redriven()) {
        refuse_beside_other_executions(ctx, sync, execution, input.state_machine_arn.as_deref())
            .await?;
    }

    let progress = result.progress.as_mut().expect("an unfinished result");
    progress.invocations += 1;
    let invocations = progress.invocations;
    let budget = Budget::new(
        invocation_started,
        Duration::from_secs(ctx.settings.sync.invocation_budget_secs),
        input.execution.as_ref(),
        ctx.settings.sync.execution_budget_secs,
    );
    let ledger = Ledger::load(ctx, keys, sync).await?;
    let mut run = SyncRun {
        ctx,
        keys,
        client,
        spec,
        plan: &plan,
        attempt,
        deadline: budget.job_deadline(),
        result,
        ledger,
    };
    let stopped = apply(&mut run, &decision, &budget).await;
    let mut result = run.result;
    match &stopped {
        Ok(Stop::Done) => result.progress = None,
        Ok(Stop::NextRun) => {
            let done = result.progress.take().map(|p| p.done).unwrap_or_default();
            result.left_for_next_run = plan.left_after(&done, tripped);
            tracing::warn!(%sync, left = ?result.left_for_next_run, "the execution's time is spent: the rest is left for the next run");
        }
        // Unfinished: the place stays in the result for the next invocation or a redrive.
        Ok(Stop::Continue) | Err(_) => {}
    }
    // The plan is done with: its memory goes before the fold reads the snapshot.
    drop(plan);
    if result.progress.is_none() {
        fold_writes(ctx, spec, &result).await;
    }
    if result.progress.is_none() && !result.notified {
        if spec.sends_digest() {
            digest::send(ctx, keys, spec.instance(), &mut result).await;
        }
        result.notified = true;
    }
    let key = write(ctx, keys, &artifacts::sync_result(sync), &result).await?;
    let stopped = stopped?;
    if stopped == Stop::Continue {
        tracing::info!(%sync, invocations, "the invocation's time is spent: the state machine continues this sync");
        let mut output = outcome_counts(sync, &result, invocations).with_artifact(key);
        output.more = Some(true);
        return Ok(output);
    }
    conclude(ctx, keys, sync, &result, key, &decision, invocations)
}

/// Folds what the sync wrote into its records' snapshot, once it is done for this run (before
/// its result says so: a crash in between folds again). A failure to read them back is not the
/// sync's: the writes are made, and the next gathers find them in the change feed a minute
/// later; the snapshot is marked so that the next gather reads in full rather than trust it.
async fn fold_writes<S: SyncSpec>(ctx: &StageContext, spec: S, result: &SyncResult) {
    let Some(source) = <S::Kind as RecordWrites>::snapshot(spec.instance()) else {
        return;
    };
    let mut ids: Vec<u64> = [&result.created, &result.updated, &result.marked]
        .into_iter()
        .flatten()
        .filter_map(|outcome| outcome.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if let Err(e) = snapshots::fold_writes(ctx, source, ids).await {
        tracing::warn!(sync = %spec.sync(), "the sync's writes could not be folded into its snapshot ({e}); the next gather reads in full");
        snapshots::distrust(ctx, source).await;
    }
}

/// The stage's answer for a sync done for this run: its counts, or the error its result calls
/// for (a tripped guard, too many record errors).
fn conclude(
    ctx: &StageContext,
    keys: &RunKeys,
    sync: SyncKind,
    result: &SyncResult,
    key: String,
    decision: &GuardDecision,
    invocations: usize,
) -> Result<StageOutput, StageError> {
    if let GuardDecision::Tripped {
        marks,
        limit,
        managed,
    } = *decision
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
    let errors = result.error_records();
    if errors > max {
        return Err(StageError::TooManyRecordErrors {
            count: errors,
            max,
            result_key: key,
        });
    }
    let mut output = outcome_counts(sync, result, invocations).with_artifact(key);
    output.more = Some(false);
    Ok(output)
}

fn outcome_counts(sync: SyncKind, result: &SyncResult, invocations: usize) -> StageOutput {
    let output = result.counts().into_iter().fold(
        StageOutput::new(Stage::Sync, Some(sync.instance())),
        |output, (name, n)| output.count(name, n),
    );
    if invocations == 0 {
        output
    } else {
        output.count("invocations", invocations)
    }
}

/// Where a sync starts from.
enum Resumed {
    /// Done already with this decision: answer the result as it is.
    Finished(SyncResult),
    /// Work to do, from this result's place.
    Place(SyncResult),
}

/// The saved result of this run, if it was made for this plan: its place (or, finished, what
/// this decision still leaves — the marks a tripped guard held, now allowed); any other result
/// is started over (creates already done are found taken, so this is safe).
fn resume<S: SyncSpec>(
    earlier: Option<SyncResult>,
    plan: &SyncPlan<S>,
    sync: SyncKind,
    tripped: bool,
) -> Resumed {
    let fresh = || SyncResult {
        sync: Some(sync),
        held_back: plan.held_back.clone(),
        plan: plan.digest.clone(),
        progress: Some(SyncProgress {
            planned: plan.sizes(),
            ..SyncProgress::default()
        }),
        ..SyncResult::default()
    };
    let Some(mut earlier) = earlier.filter(|r| r.plan == plan.digest) else {
        return Resumed::Place(fresh());
    };
    if earlier.progress.is_some() {
        return Resumed::Place(earlier);
    }
    if !earlier.left_for_next_run.is_empty() {
        // The execution's time ran out: the next run does the rest, not this one.
        return Resumed::Finished(earlier);
    }
    let held_marks = earlier
        .deletion_guard
        .as_ref()
        .is_some_and(GuardDecision::is_tripped);
    let done = Pending {
        creates: plan.creates.len(),
        updates: plan.updates.len(),
        marks: if held_marks { 0 } else { plan.marks.len() },
    };
    if plan.left_after(&done, tripped).is_empty() {
        return Resumed::Finished(earlier);
    }
    earlier.progress = Some(SyncProgress {
        done,
        planned: plan.sizes(),
        ..SyncProgress::default()
    });
    Resumed::Place(earlier)
}

/// How old the plan is: now less the time its oldest gathered artifact was written. `None`
/// when no gathered artifact says (a store without times).
async fn plan_age(
    ctx: &StageContext,
    keys: &RunKeys,
    sync: SyncKind,
    now: DateTime<Utc>,
) -> Result<Option<Duration>, StageError> {
    let mut oldest: Option<DateTime<Utc>> = None;
    for name in artifacts::plan_sources(sync) {
        if let Some(at) = ctx.store.modified(&keys.key(&name)?).await? {
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
        }
    }
    Ok(oldest.map(|at| (now - at).to_std().unwrap_or(Duration::ZERO)))
}

/// SPEC §8: a plan older than the schedule's interval is never applied.
fn stale(age: Duration, max_secs: u64) -> bool {
    age > Duration::from_secs(max_secs)
}

/// A redriven execution does not pass the overlap guard again (that state succeeded hours
/// ago), so its sync looks for itself: with another execution of the state machine running,
/// two syncs would write at once.
async fn refuse_beside_other_executions(
    ctx: &StageContext,
    sync: SyncKind,
    execution: &ExecutionContext,
    state_machine_arn: Option<&str>,
) -> Result<(), StageError> {
    let lister = ctx.executions.as_ref().ok_or_else(|| {
        StageError::InvalidConfig("the sync stage has no execution lister".into())
    })?;
    let (Some(me), Some(machine)) = (execution.id.as_deref(), state_machine_arn) else {
        return Err(StageError::InvalidConfig(
            "a redriven sync needs its execution's id and state machine (execution.Id, state_machine_arn in its input)".into(),
        ));
    };
    let running = lister.running(machine).await?;
    match running.iter().find(|other| other.execution_arn != me) {
        Some(other) => Err(StageError::AnotherExecutionRunning {
            sync,
            other: other.execution_arn.clone(),
        }),
        None => Ok(()),
    }
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

/// The waits shorter budgets still allow, so an invocation always gets something done: a job
/// sent and a few polls of it.
const MIN_JOB_WAIT: Duration = Duration::from_secs(1);

/// The time a sync may still spend.
struct Budget {
    invocation_started: Instant,
    invocation: Duration,
    /// The attempt's end: its start (the redrive's, for a redriven execution) plus the
    /// execution budget.
    execution_deadline: Option<DateTime<Utc>>,
}

impl Budget {
    fn new(
        invocation_started: Instant,
        invocation: Duration,
        execution: Option<&ExecutionContext>,
        execution_budget_secs: u64,
    ) -> Budget {
        Budget {
            invocation_started,
            invocation,
            execution_deadline: execution.map(|e| {
                e.attempt_started() + chrono::Duration::seconds(execution_budget_secs as i64)
            }),
        }
    }

    /// No job is sent or waited for after this: nine tenths of the invocation's budget (the
    /// rest, and at least [`SAVE_RESERVE`], saves the place), and never less than
    /// [`MIN_JOB_WAIT`].
    fn job_deadline(&self) -> Instant {
        self.invocation_started + job_time(self.invocation)
    }

    /// Whether to start a window of work expected to take `window` (the longest so far).
    fn next(&self, window: Duration, first_of_invocation: bool) -> Step {
        let execution_left = self
            .execution_deadline
            .map(|deadline| (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        next_step(
            self.invocation_started.elapsed(),
            window,
            self.invocation,
            execution_left,
            first_of_invocation,
        )
    }
}

/// The part of an invocation's budget jobs may use: all but a tenth, and never less than
/// [`SAVE_RESERVE`] left for saving the place and the result (a short budget's tenth is too
/// little for that on a busy machine).
fn job_time(invocation: Duration) -> Duration {
    invocation
        .saturating_sub((invocation / 10).max(SAVE_RESERVE))
        .max(MIN_JOB_WAIT)
}

/// The least time an invocation keeps after its jobs, to save its place and result.
const SAVE_RESERVE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Go,
    Stop(Stop),
}

/// The budget rule: a window starts only when it is expected to end inside the execution's
/// budget (else the rest is for the next run) and inside the invocation's (else another
/// invocation goes on). The first window of an invocation always starts when the execution has
/// room, so every invocation makes progress; jobs stop at the invocation's deadline whatever
/// the window.
fn next_step(
    elapsed: Duration,
    window: Duration,
    invocation: Duration,
    execution_left: Option<Duration>,
    first_of_invocation: bool,
) -> Step {
    if let Some(left) = execution_left
        && (left.is_zero() || window > left)
    {
        return Step::Stop(Stop::NextRun);
    }
    if !first_of_invocation && elapsed + window > invocation {
        return Step::Stop(Stop::Continue);
    }
    Step::Go
}

/// Applies the plan from the result's place on, one window (a full set of jobs) at a time,
/// creates first, then updates, then marks (none when the guard tripped), until it is done or
/// the budget says stop. The place is saved with every step of a window.
async fn apply<S: SyncSpec>(
    run: &mut SyncRun<'_, S>,
    decision: &GuardDecision,
    budget: &Budget,
) -> Result<Stop, StageError> {
    let window_items = run.ctx.settings.sync.max_inflight_jobs * MAX_JOB_ITEMS;
    let mut first = true;
    let sync = run.sync();
    let tripped = decision.is_tripped();
    let total = run.plan.left_after(&Pending::default(), tripped).total() as u64;
    if tripped && !run.plan.marks.is_empty() {
        tracing::warn!(%sync, decision = %decision.describe(sync.records()), "deletion guard tripped: nothing is marked");
    }
    loop {
        let progress = run.progress().clone();
        let left = run.plan.left_after(&progress.done, tripped);
        if left.is_empty() {
            run.ledger.clear().await;
            return Ok(Stop::Done);
        }
        let expected = Duration::from_secs_f64(progress.slice_seconds);
        if let Step::Stop(stop) = budget.next(expected, first) {
            return Ok(stop);
        }
        first = false;
        let started = Instant::now();
        let done = progress.done;
        let (action, start, len) = if left.creates > 0 {
            (SyncAction::Create, done.creates, left.creates)
        } else if left.updates > 0 {
            (SyncAction::Update, done.updates, left.updates)
        } else {
            (SyncAction::Mark, done.marks, left.marks)
        };
        let len = len.min(window_items);
        let written = done.total() as u64;
        let (end, len) =
            crate::progress::writing(written, len as u64, total, run.window(action, start, len))
                .await?;
        if end == WindowEnd::Open {
            // The deadline came inside the window: its place (and accepted jobs) are saved.
            return Ok(match budget.next(Duration::ZERO, true) {
                Step::Stop(Stop::NextRun) => Stop::NextRun,
                _ => Stop::Continue,
            });
        }
        let progress = run.progress();
        match action {
            SyncAction::Create => progress.done.creates += len,
            SyncAction::Update => progress.done.updates += len,
            _ => progress.done.marks += len,
        }
        progress.slice_seconds = progress.slice_seconds.max(started.elapsed().as_secs_f64());
        let done = progress.done.total() as u64;
        crate::progress::report(Counted::RecordsWritten, done, Some(total));
        run.save().await?;
        run.ledger.clear().await;
    }
}

impl<S: SyncSpec> SyncPlan<S> {
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

    /// The record key of item `index` of `action` and its bulk item.
    fn item(&self, action: SyncAction, index: usize) -> (String, Value) {
        match action {
            SyncAction::Create => {
                let create = &self.creates[index];
                (
                    S::Kind::create_key(create).to_string(),
                    S::Kind::create_item(create),
                )
            }
            SyncAction::Update => {
                let update = &self.updates[index];
                (
                    S::Kind::update_key(update).to_string(),
                    S::Kind::update_item(update),
                )
            }
            _ => {
                let mark = &self.marks[index];
                (
                    S::Kind::mark_key(mark).to_string(),
                    S::Kind::mark_item(mark),
                )
            }
        }
    }

    async fn load(ctx: &StageContext, keys: &RunKeys, spec: S) -> Result<SyncPlan<S>, StageError> {
        let sync = spec.sync();
        let creates: ChangeSet<CreateOf<S>> =
            read_set(ctx, keys, &artifacts::creates(sync), sync).await?;
        let updates: ChangeSet<UpdateOf<S>> =
            read_set(ctx, keys, &artifacts::updates(sync), sync).await?;
        let marks: ChangeSet<MarkOf<S>> =
            read_set(ctx, keys, &artifacts::not_in_sync(sync), sync).await?;
        let artifact = spec.records_artifact();
        let gathered: S::RecordKeys = read(ctx, keys, &artifact).await?;
        expect_same(
            keys,
            &artifact,
            "instance",
            spec.instance(),
            gathered.instance(),
        )?;
        let managed = spec.managed(&gathered);
        let owned_fields = spec.owned_fields();

        let key = keys.key(&artifacts::creates(sync))?;
        for (i, create) in creates.items.iter().enumerate() {
            let create_key = S::Kind::create_key(create).to_string();
            if managed.keys.contains(&create_key) {
                return Err(mismatch(
                    &key,
                    &format!("items[{i}]"),
                    format!(
                        "{create_key} already has a Zendesk record in {artifact}; creating it again would duplicate it"
                    ),
                ));
            }
            if let Some(bad) = S::Kind::unwritable_create(create, &owned_fields) {
                return Err(unwritable_at(bad, &key, i));
            }
        }
        let key = keys.key(&artifacts::updates(sync))?;
        // An update or mark must name a record this sync owns, with the same key.
        let owned = |set: &str, i: usize, id: u64, record_key: &KeyOf<S>| {
            check_target(
                set,
                i,
                id,
                &record_key.to_string(),
                &managed.owned,
                &artifact,
            )
        };
        for (i, update) in updates.items.iter().enumerate() {
            owned(
                &key,
                i,
                S::Kind::update_id(update),
                S::Kind::update_key(update),
            )?;
            if let Some(bad) = S::Kind::unwritable_update(update, &owned_fields) {
                return Err(unwritable_at(bad, &key, i));
            }
        }
        let key = keys.key(&artifacts::not_in_sync(sync))?;
        for (i, mark) in marks.items.iter().enumerate() {
            owned(&key, i, S::Kind::mark_id(mark), S::Kind::mark_key(mark))?;
        }
        let digest = plan_digest(&creates.items, &updates.items, &marks.items);
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
            digest,
        })
    }
}

/// A digest of the plan's writes (SHA-256 of their JSON, in order): two plans with the same
/// sizes but other records never share a place.
fn plan_digest<C: Serialize, U: Serialize, M: Serialize>(
    creates: &[C],
    updates: &[U],
    marks: &[M],
) -> String {
    use sha2::Digest;
    struct Hashing(sha2::Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Streamed into the hash: a first run's creates are hundreds of megabytes as values.
    let mut hashing = Hashing(sha2::Sha256::new());
    let _ = write!(hashing, "creates:");
    serde_json::to_writer(&mut hashing, creates).expect("plan items serialize");
    let _ = write!(hashing, "updates:");
    serde_json::to_writer(&mut hashing, updates).expect("plan items serialize");
    let _ = write!(hashing, "marks:");
    serde_json::to_writer(&mut hashing, marks).expect("plan items serialize");
    let digest = hashing.0.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
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
    owned: &BTreeMap<u64, String>,
    artifact: &str,
) -> Result<(), StageError> {
    match owned.get(&id) {
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

/// A compare set's item the sync will not send, as the artifact error naming where.
fn unwritable_at(bad: Unwritable, key: &str, index: usize) -> StageError {
    mismatch(key, &format!("items[{index}].{}", bad.path), bad.message)
}

fn record_error(key: &str, action: SyncAction, e: ItemError, attempt: u32) -> RecordError {
    RecordError {
        key: key.to_owned(),
        action,
        error: e.error,
        details: e.details,
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syncs::CustomerOrgs;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_window_starts_only_when_it_fits_the_invocation_and_the_execution() {
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
        // Past its own budget before the first window (a slow start): one window still runs.
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
        // A zero budget: exactly one window per invocation.
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

    #[test]
    fn jobs_stop_inside_the_invocations_budget_and_always_get_a_moment() {
        assert_eq!(job_time(10 * MIN), 9 * MIN);
        assert_eq!(job_time(Duration::from_secs(30)), Duration::from_secs(27));
        assert_eq!(job_time(Duration::ZERO), MIN_JOB_WAIT);
    }

    #[test]
    fn a_redriven_attempt_counts_its_budget_from_the_redrive() {
        let start: DateTime<Utc> = "2026-12-05T02:00:00Z".parse().unwrap();
        let redrive: DateTime<Utc> = "2026-12-05T09:30:00Z".parse().unwrap();
        let first = ExecutionContext {
            id: None,
            start_time: start,
            redrive_count: 0,
            redrive_time: None,
        };
        let budget = Budget::new(Instant::now(), MIN, Some(&first), 2700);
        assert_eq!(
            budget.execution_deadline,
            Some("2026-12-05T02:45:00Z".parse().unwrap())
        );
        let redriven = ExecutionContext {
            redrive_count: 1,
            redrive_time: Some(redrive),
            ..first
        };
        let budget = Budget::new(Instant::now(), MIN, Some(&redriven), 2700);
        assert_eq!(
            budget.execution_deadline,
            Some("2026-12-05T10:15:00Z".parse().unwrap())
        );
    }

    #[test]
    fn a_plan_older_than_its_maximum_age_is_stale() {
        assert!(!stale(Duration::from_secs(3600), 3600));
        assert!(stale(Duration::from_secs(3601), 3600));
    }

    fn plan(names: &[&str], marks: usize) -> SyncPlan<CustomerOrgs> {
        let creates: Vec<crate::model::DesiredOrg> = names
            .iter()
            .map(|name| {
                serde_json::from_value(serde_json::json!({
                    "salesforce_id": "0011U00000V0tkDQAR",
                    "name": name,
                    "organization_fields": {}
                }))
                .unwrap()
            })
            .collect();
        let marks: Vec<crate::model::OrgMark> = (0..marks as u64)
            .map(|id| {
                serde_json::from_value(serde_json::json!({
                    "id": id, "salesforce_id": "0011U00000V0tkDQAR", "name": "x",
                    "organization_fields": {"mark_for_deletion": true}
                }))
                .unwrap()
            })
            .collect();
        let digest = plan_digest(&creates, &[] as &[crate::model::OrgUpdate], &marks);
        SyncPlan {
            creates,
            held_back: Vec::new(),
            updates: Vec::new(),
            marks,
            managed: 10,
            digest,
        }
    }

    fn place(plan: &SyncPlan<CustomerOrgs>, done: Pending) -> SyncResult {
        SyncResult {
            sync: Some(SyncKind::Global),
            plan: plan.digest.clone(),
            progress: Some(SyncProgress {
                done,
                planned: plan.sizes(),
                ..SyncProgress::default()
            }),
            ..SyncResult::default()
        }
    }

    #[test]
    fn a_place_is_resumed_only_on_its_own_plan() {
        let ours = plan(&["Acme", "Globex"], 0);
        let half = Pending {
            creates: 1,
            ..Pending::default()
        };
        let Resumed::Place(resumed) =
            resume(Some(place(&ours, half)), &ours, SyncKind::Global, false)
        else {
            panic!("work is left");
        };
        assert_eq!(resumed.progress.unwrap().done, half);
        // Another plan of the same sizes: started over, whatever the place says.
        let other = plan(&["Acme", "Initech"], 0);
        assert_eq!(other.sizes(), ours.sizes());
        let Resumed::Place(fresh) =
            resume(Some(place(&ours, half)), &other, SyncKind::Global, false)
        else {
            panic!("work is left");
        };
        assert_eq!(fresh.progress.unwrap().done, Pending::default());
        assert_eq!(fresh.plan, other.digest);
    }

    #[test]
    fn a_finished_sync_is_answered_as_it_is_unless_an_allowance_now_lets_its_marks_through() {
        let ours = plan(&["Acme"], 3);
        let mut finished = place(&ours, Pending::default());
        finished.progress = None;
        finished.deletion_guard = Some(GuardDecision::Tripped {
            marks: 3,
            limit: 2.0,
            managed: 10,
        });
        // Still tripped: nothing left, answered at once.
        assert!(matches!(
            resume(Some(finished.clone()), &ours, SyncKind::Global, true),
            Resumed::Finished(_)
        ));
        // Allowed now: the marks alone are left.
        let Resumed::Place(place) = resume(Some(finished.clone()), &ours, SyncKind::Global, false)
        else {
            panic!("the marks are left");
        };
        assert_eq!(
            place.progress.unwrap().done,
            Pending {
                creates: 1,
                updates: 0,
                marks: 0
            }
        );
        // Finished with its marks applied: answered at once.
        finished.deletion_guard = Some(GuardDecision::Allowed {
            marks: 3,
            limit: 25.0,
        });
        assert!(matches!(
            resume(Some(finished), &ours, SyncKind::Global, false),
            Resumed::Finished(_)
        ));
    }

    #[test]
    fn the_plan_digest_follows_the_content_not_the_sizes() {
        let a = plan_digest(&["x"], &["u"], &[1]);
        assert_eq!(a, plan_digest(&["x"], &["u"], &[1]));
        assert_ne!(
            a,
            plan_digest(&["y"], &["u"], &[1]),
            "same sizes, other record"
        );
        assert_ne!(
            plan_digest(&["x", "u"], &[] as &[&str], &[1]),
            plan_digest(&["x"], &["u"], &[1]),
            "the same items in other sets"
        );
        assert_eq!(a.len(), 64);
    }
}
