//! A window of a sync's plan: up to `max_inflight_jobs` × 100 items of one action, written as
//! bulk jobs, then (Global creates) the sold-to users of the new orgs.
//!
//! The window's place is `{sync}_sync_window.json` ([`SyncWindow`]): which items are settled
//! (their outcome is in the result) and the jobs Zendesk accepted whose outcome is not yet in
//! it. A job is recorded the moment Zendesk accepts it, before the next one is sent, so a redo
//! — the next invocation after the deadline, a retry, a redrive after a crash — asks Zendesk
//! what those jobs did (their statuses are kept for a day) instead of sending them again; only
//! a job Zendesk no longer knows is sent again, and its creates that landed answer "taken" and
//! are looked up one by one. Nothing is sent and nothing waited for past the invocation's
//! deadline: what runs then stays open in the place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{SyncRun, record_error};
use crate::error::StageError;
use crate::model::{RecordOutcome, SyncAction, SyncKind, SyncWindow, WindowJob, WindowStep};
use crate::stages::artifacts;
use crate::stages::context::StageContext;
use crate::store::{ArtifactStore, RunKeys};
use crate::syncs::{RecordWrites, SyncSpec};
use crate::zendesk::{AcceptedJob, BulkOptions, BulkWrite, JobWatcher};

/// How a window's step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::stages) enum WindowEnd {
    /// Every item has its outcome in the result.
    Settled,
    /// The deadline came first: the place (and its open jobs) is saved for the next go.
    Open,
}

/// The saved place of the window under way.
pub(super) struct Ledger {
    store: Arc<dyn ArtifactStore>,
    key: String,
    window: Mutex<Option<SyncWindow>>,
}

impl Ledger {
    pub(super) async fn load(
        ctx: &StageContext,
        keys: &RunKeys,
        sync: SyncKind,
    ) -> Result<Ledger, StageError> {
        let key = keys.key(&artifacts::sync_window(sync))?;
        let window: Option<Option<SyncWindow>> =
            crate::store::read_json_opt(ctx.store.as_ref(), &key).await?;
        Ok(Ledger {
            store: Arc::clone(&ctx.store),
            key,
            window: Mutex::new(window.flatten()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SyncWindow>> {
        self.window
            .lock()
            .expect("the window lock is never poisoned")
    }

    /// The window of `action` starting at `start`: the saved one when it is of this plan and
    /// place (with its own length), else a new one of `len` items.
    pub(super) fn begin(
        &self,
        plan: &str,
        action: SyncAction,
        start: usize,
        len: usize,
    ) -> SyncWindow {
        let mut saved = self.lock();
        let window = match saved.take() {
            Some(w) if w.plan == plan && w.action == action && w.start == start && w.len > 0 => {
                tracing::info!(
                    ?action,
                    start,
                    len = w.len,
                    jobs = w.jobs.len(),
                    "resuming a window from its saved place"
                );
                w
            }
            _ => SyncWindow {
                plan: plan.to_owned(),
                action,
                start,
                len,
                step: WindowStep::Write,
                settled: Vec::new(),
                jobs: Vec::new(),
            },
        };
        *saved = Some(window.clone());
        window
    }

    fn snapshot(&self) -> SyncWindow {
        self.lock().clone().expect("a window is under way")
    }

    pub(super) fn update(&self, change: impl FnOnce(&mut SyncWindow)) {
        if let Some(window) = self.lock().as_mut() {
            change(window);
        }
    }

    /// Writes the place. A failed write is a warning, not the stage's end: the place only
    /// spares a redo its look-ups.
    pub(super) async fn save(&self) {
        let window = self.lock().clone();
        if let Err(e) = crate::store::write_json(self.store.as_ref(), &self.key, &window).await {
            tracing::warn!(error = %e, key = %self.key, "the window's place could not be saved");
        }
    }

    /// No window under way (the last one is settled and in the result).
    pub(super) async fn clear(&self) {
        let had = self.lock().take().is_some();
        if had {
            self.save().await;
        }
    }
}

/// Records each job of a step in the window's place the moment Zendesk accepts it.
struct StepWatcher<'a> {
    ledger: &'a Ledger,
    step: WindowStep,
    attempt: u32,
}

#[async_trait]
impl JobWatcher for StepWatcher<'_> {
    async fn accepted(&self, job: &AcceptedJob) {
        self.ledger.update(|w| {
            // A job sent again (its first vanished) supersedes the one it replaces.
            let items = job.items();
            w.jobs.retain(|known| {
                known.job.id != job.id
                    && (known.step != self.step
                        || known.job.items().end <= items.start
                        || items.end <= known.job.items().start)
            });
            w.jobs.push(WindowJob {
                step: self.step,
                job: job.clone(),
                attempt: self.attempt,
            });
        });
        self.ledger.save().await;
    }
}

impl<S: SyncSpec> SyncRun<'_, S> {
    /// The window's own writes: its jobs (adopted where accepted before), each outcome into the
    /// result, creates refused as taken looked up.
    pub(super) async fn write_step(
        &mut self,
        window: &SyncWindow,
    ) -> Result<WindowEnd, StageError> {
        let (action, start) = (window.action, window.start);
        let (keys, items): (Vec<String>, Vec<serde_json::Value>) = (0..window.len)
            .map(|offset| self.plan.item(action, start + offset))
            .unzip();
        let kind = match action {
            SyncAction::Create => S::Kind::CREATE,
            _ => S::Kind::UPDATE,
        };
        let write = self
            .bulk(
                window,
                WindowStep::Write,
                kind,
                items,
                window.settled.clone(),
            )
            .await?;
        if write.fell_back_to_single_creates {
            self.result.warn(&format!(
                "{}: bulk user import is disabled; users were created one by one",
                self.sync()
            ));
        }
        let attempts = self.job_attempts(WindowStep::Write);
        let attempt_of = |offset: usize| {
            attempts
                .iter()
                .find(|(job, _)| job.items().contains(&offset))
                .map_or(self.attempt, |(_, attempt)| *attempt)
        };
        let mut done = Vec::new();
        let mut errors = Vec::new();
        let mut settled = Vec::new();
        let mut taken = Vec::new();
        for outcome in &write.outcomes {
            let offset = outcome.index;
            let key = &keys[offset];
            let attempt = attempt_of(offset);
            match outcome.result.clone() {
                Ok(id) => {
                    done.push(RecordOutcome {
                        // Accepted by an earlier attempt, learned from its job's status.
                        already: action == SyncAction::Create && attempt < self.attempt,
                        attempt,
                        ..RecordOutcome::new(key.clone(), id)
                    });
                    settled.push(offset);
                }
                Err(e) if action == SyncAction::Create && e.is_taken() => taken.push((offset, e)),
                Err(e) => {
                    errors.push(record_error(key, action, e, attempt));
                    settled.push(offset);
                }
            }
        }
        // Taken: a create that landed before (a redrive, a lost answer) counts as done when the
        // record holding the name is this sync's with the same key.
        for (offset, e) in taken {
            if self.past_deadline() {
                break;
            }
            let create = &self.plan.creates[start + offset];
            let key = &keys[offset];
            let spec = self.spec;
            match S::Kind::taken_by(self.client, create, |org| spec.owns(org)).await? {
                Ok(id) => done.push(RecordOutcome {
                    already: true,
                    attempt: self.attempt,
                    ..RecordOutcome::new(key.clone(), Some(id))
                }),
                Err(why) => {
                    let mut error = record_error(key, action, e, self.attempt);
                    error.details = Some(format!(
                        "{}; {why}",
                        error
                            .details
                            .as_deref()
                            .unwrap_or("the name or email is taken")
                    ));
                    errors.push(error);
                }
            }
            settled.push(offset);
        }
        self.result.settle(action, done, errors);
        let open = self.open_jobs(&write, WindowStep::Write);
        self.ledger.update(|w| {
            w.settled.extend(settled);
            w.settled.sort_unstable();
            w.settled.dedup();
            w.jobs = open;
        });
        self.save().await?;
        self.ledger.save().await;
        let complete = self.ledger.snapshot().settled.len() == window.len;
        Ok(if complete {
            WindowEnd::Settled
        } else {
            WindowEnd::Open
        })
    }

    /// One bulk write of a window's step: the step's jobs accepted before are adopted, each new
    /// one recorded as Zendesk accepts it, nothing sent or waited for past the deadline.
    pub(super) async fn bulk(
        &mut self,
        window: &SyncWindow,
        step: WindowStep,
        kind: crate::zendesk::BulkKind,
        items: Vec<serde_json::Value>,
        skip: Vec<usize>,
    ) -> Result<BulkWrite, StageError> {
        let adopt = window
            .jobs
            .iter()
            .filter(|j| j.step == step)
            .map(|j| j.job.clone())
            .collect();
        let watcher = StepWatcher {
            ledger: &self.ledger,
            step,
            attempt: self.attempt,
        };
        let options = BulkOptions {
            adopt,
            watcher: Some(&watcher),
            deadline: Some(self.deadline),
            skip,
        };
        let write = self.client.write_many(kind, items, options).await?;
        self.result.lost_answers.add(&write.lost);
        Ok(write)
    }

    /// The step's jobs known to the place, with the attempt that sent each.
    fn job_attempts(&self, step: WindowStep) -> Vec<(AcceptedJob, u32)> {
        self.ledger
            .snapshot()
            .jobs
            .into_iter()
            .filter(|j| j.step == step)
            .map(|j| (j.job, j.attempt))
            .collect()
    }

    /// The jobs of a bulk write still open, as the place keeps them (with the attempt that
    /// sent each).
    pub(super) fn open_jobs(&self, write: &BulkWrite, step: WindowStep) -> Vec<WindowJob> {
        let attempts: HashMap<String, u32> = self
            .job_attempts(step)
            .into_iter()
            .map(|(job, attempt)| (job.id, attempt))
            .collect();
        write
            .open
            .iter()
            .map(|job| WindowJob {
                step,
                job: job.clone(),
                attempt: attempts.get(&job.id).copied().unwrap_or(self.attempt),
            })
            .collect()
    }

    /// Records the step's open jobs in the place (nothing else of the step is kept).
    pub(super) async fn keep_open(&self, jobs: Vec<WindowJob>) {
        self.ledger.update(|w| w.jobs = jobs);
        self.ledger.save().await;
    }

    pub(super) fn window_snapshot(&self) -> SyncWindow {
        self.ledger.snapshot()
    }
}
