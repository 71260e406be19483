//! How far a long stage has got: the port the stages report their progress through.
//!
//! A stage runs with a [`ProgressSink`] from its [`crate::stages::StageContext`]; the clients
//! report into the scope of the stage running on the task ([`in_stage`], as [`crate::calls`]
//! counts calls), so one shared client reports to whichever stage is using it. Reports come per
//! page read and per bulk job finished, never per record: the hot paths stay cheap.
//!
//! In Lambda the sink is [`LogProgress`], a log line at most once a minute per stage; `zdsync
//! run` shows live bars instead.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a progress update counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counted {
    /// Records read from a paged list or query.
    RecordsPaged,
    /// Records of the sync's plan applied (creates, updates and marks).
    RecordsWritten,
}

impl Counted {
    pub fn as_str(self) -> &'static str {
        match self {
            Counted::RecordsPaged => "records paged",
            Counted::RecordsWritten => "records written",
        }
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One report of a stage's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressUpdate {
    /// The stage and the sync it works for: `sync global`, `gather-orgs usgov`,
    /// `gather-accounts` (see [`stage_label`]).
    pub label: String,
    pub what: Counted,
    pub done: u64,
    /// `None` when the API does not say how many there are (Zendesk's cursor pages).
    pub total: Option<u64>,
}

/// Where a stage's progress goes.
pub trait ProgressSink: Send + Sync {
    fn report(&self, update: &ProgressUpdate);

    /// The stage of `label` ended (succeeded, failed or was dropped): nothing more comes for it
    /// until it runs again.
    fn ended(&self, _label: &str) {}
}

/// How often [`LogProgress`] logs a stage's progress.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Whether a stage last logged at `last_logged` logs again at `now`: once [`LOG_EVERY`] has
/// passed, so a long stage says where it is once a minute and a short one never.
pub fn log_due(last_logged: Instant, now: Instant) -> bool {
    now.saturating_duration_since(last_logged) >= LOG_EVERY
}

/// The default sink (Lambda's): an info line per stage at most once a minute, the first a
/// minute after the stage's first report.
#[derive(Default)]
pub struct LogProgress {
    last_logged: Mutex<HashMap<String, Instant>>,
}

impl ProgressSink for LogProgress {
    fn report(&self, update: &ProgressUpdate) {
        let now = Instant::now();
        let mut last_logged = self.last_logged.lock().expect("progress log lock");
        let Some(last) = last_logged.get_mut(&update.label) else {
            last_logged.insert(update.label.clone(), now);
            return;
        };
        if !log_due(*last, now) {
            return;
        }
        *last = now;
        drop(last_logged);
        let total = update.total.map_or("?".to_owned(), |t| t.to_string());
        tracing::info!(
            stage = %update.label,
            what = %update.what,
            done = update.done,
            total = %total,
            "progress of {}: {} {}/{total}",
            update.label,
            update.what,
            update.done
        );
    }

    fn ended(&self, label: &str) {
        // A warm Lambda runs the stage again later: that invocation starts its own minute.
        self.last_logged
            .lock()
            .expect("progress log lock")
            .remove(label);
    }
}

/// A progress update's label: the stage, and the sync or instance when the stage serves
/// several (`sync global`, `gather-accounts partners`, `process`).
pub fn stage_label(stage: &str, which: Option<&str>) -> String {
    match which {
        Some(which) => format!("{stage} {which}"),
        None => stage.to_owned(),
    }
}

/// The stage running on this task, and the tallies of its reads and writes.
struct Scope {
    sink: Arc<dyn ProgressSink>,
    label: String,
    /// Records of the stage's paged reads that have ended (the contact gather reads one query
    /// per chunk of accounts: its count goes on from the chunks before).
    paged: Cell<u64>,
    writes: Cell<Option<Writes>>,
}

/// Records of a sync's plan written so far, while one slice of it is being applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Writes {
    done: u64,
    /// The most the slice can bring `done` to: jobs that follow a create (sold-to contacts)
    /// finish inside the slice too, but are not records of the plan.
    limit: u64,
    total: u64,
}

impl Writes {
    /// The tally after a job of `items` finished.
    fn after_job(self, items: u64) -> Writes {
        Writes {
            done: (self.done + items).min(self.limit),
            ..self
        }
    }
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `stage` reporting to `sink` under `label`; the sink hears that it ended however it
/// ends (dropped too: a crashed invocation's bar must not stay).
pub async fn in_stage<F: Future>(
    sink: Arc<dyn ProgressSink>,
    label: String,
    stage: F,
) -> F::Output {
    struct Ended(Arc<dyn ProgressSink>, String);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.ended(&self.1);
        }
    }
    let _ended = Ended(Arc::clone(&sink), label.clone());
    let scope = Scope {
        sink,
        label,
        paged: Cell::new(0),
        writes: Cell::new(None),
    };
    SCOPE.scope(scope, stage).await
}

/// Reports `done` of `total` for the stage running on this task (nothing outside a stage).
pub fn report(what: Counted, done: u64, total: Option<u64>) {
    let _ = SCOPE.try_with(|scope| {
        scope.sink.report(&ProgressUpdate {
            label: scope.label.clone(),
            what,
            done,
            total,
        })
    });
}

/// A paged read of the stage running on this task is at `read` records of `total` (when the
/// API says how many); `last` after its last page. The stage's earlier reads count in.
pub fn paged(read: u64, total: Option<u64>, last: bool) {
    let _ = SCOPE.try_with(|scope| {
        let before = scope.paged.get();
        scope.sink.report(&ProgressUpdate {
            label: scope.label.clone(),
            what: Counted::RecordsPaged,
            done: before + read,
            total: total.map(|total| before + total),
        });
        if last {
            scope.paged.set(before + read);
        }
    });
}

/// Runs `slice`, a part of a sync's plan of `total` records of which `done` are written and
/// which writes `items` more; each bulk job that finishes inside it moves the count on
/// ([`job_finished`]). The caller reports the exact count once the slice succeeded.
pub async fn writing<F: Future>(done: u64, items: u64, total: u64, slice: F) -> F::Output {
    let tally = Writes {
        done,
        limit: done + items,
        total,
    };
    let earlier = SCOPE.try_with(|scope| scope.writes.replace(Some(tally)));
    let output = slice.await;
    let _ = SCOPE.try_with(|scope| scope.writes.set(earlier.ok().flatten()));
    output
}

/// A bulk job of `items` finished: inside [`writing`], its records count as written.
pub fn job_finished(items: usize) {
    let _ = SCOPE.try_with(|scope| {
        let Some(tally) = scope.writes.get() else {
            return;
        };
        let tally = tally.after_job(items as u64);
        scope.writes.set(Some(tally));
        scope.sink.report(&ProgressUpdate {
            label: scope.label.clone(),
            what: Counted::RecordsWritten,
            done: tally.done,
            total: Some(tally.total),
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_logs_its_progress_at_most_once_a_minute() {
        let start = Instant::now();
        assert!(!log_due(start, start));
        assert!(!log_due(start, start + Duration::from_secs(59)));
        assert!(log_due(start, start + LOG_EVERY));
        assert!(log_due(start, start + Duration::from_secs(3600)));
        // A clock read before the last log (another thread's `now`) is not a minute later.
        assert!(!log_due(start + Duration::from_secs(1), start));
    }

    #[test]
    fn labels_name_the_stage_and_its_sync() {
        assert_eq!(stage_label("sync", Some("global")), "sync global");
        assert_eq!(stage_label("process", None), "process");
    }

    #[test]
    fn jobs_after_a_slice_s_records_do_not_count_as_its_writes() {
        let tally = Writes {
            done: 300,
            limit: 500,
            total: 1000,
        };
        let tally = tally.after_job(100);
        assert_eq!(tally.done, 400);
        let tally = tally.after_job(100).after_job(100);
        assert_eq!(
            tally.done, 500,
            "sold-to users' jobs stop at the slice's end"
        );
        assert_eq!(tally.total, 1000);
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<ProgressUpdate>>, Mutex<Vec<String>>);

    impl ProgressSink for Recorder {
        fn report(&self, update: &ProgressUpdate) {
            self.0.lock().unwrap().push(update.clone());
        }
        fn ended(&self, label: &str) {
            self.1.lock().unwrap().push(label.to_owned());
        }
    }

    #[tokio::test]
    async fn a_stage_s_reads_and_writes_add_up_and_its_end_is_told() {
        let recorder = Arc::new(Recorder::default());
        job_finished(100); // outside any stage: nobody hears it
        in_stage(recorder.clone(), "sync global".into(), async {
            job_finished(100); // outside a slice: not a record of the plan
            writing(0, 150, 150, async {
                job_finished(100);
                job_finished(50);
            })
            .await;
            job_finished(100); // after the slice: not counted either
            // Two reads: the second counts on from the first.
            paged(5, Some(9), false);
            paged(9, Some(9), true);
            paged(4, None, true);
        })
        .await;
        let seen: Vec<(Counted, u64, Option<u64>)> = recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|u| (u.what, u.done, u.total))
            .collect();
        use Counted::*;
        assert_eq!(
            seen,
            [
                (RecordsWritten, 100, Some(150)),
                (RecordsWritten, 150, Some(150)),
                (RecordsPaged, 5, Some(9)),
                (RecordsPaged, 9, Some(9)),
                (RecordsPaged, 13, None),
            ]
        );
        assert_eq!(*recorder.1.lock().unwrap(), ["sync global"]);
    }
}
