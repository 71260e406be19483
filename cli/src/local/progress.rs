//! What a local run prints while it goes: one line per state, with the stage's counts, and —
//! on a terminal — a live bar per running stage from its progress reports (a bar where the
//! total is known, a spinner with the count where it is not), cleared when the stage ends.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use zdsync::progress::{ProgressSink, ProgressUpdate};

use crate::asl::{Event, Observer};

/// Writes progress lines to stderr (stdout stays free for the summary), and hands the stages a
/// sink that draws their bars above those lines.
pub struct Progress {
    quiet: bool,
    bars: Arc<StageBars>,
    stages: Arc<dyn ProgressSink>,
}

impl Progress {
    /// Lines unless `quiet`; bars only on a terminal: indicatif's stderr target hides itself
    /// when stderr is not one, so piped or captured output is the lines alone.
    pub fn new(quiet: bool) -> Progress {
        let multi = if quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        } else {
            terminal().clone()
        };
        let bars = Arc::new(StageBars::new(multi));
        Progress {
            quiet,
            stages: bars.clone(),
            bars,
        }
    }

    /// The same lines, the stages' progress going to `sink` instead of the bars (tests record
    /// it).
    pub fn reporting_to(self, sink: Arc<dyn ProgressSink>) -> Progress {
        Progress {
            stages: sink,
            ..self
        }
    }

    /// What the in-process stages report their progress to.
    pub fn stage_sink(&self) -> Arc<dyn ProgressSink> {
        Arc::clone(&self.stages)
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        // The bars step aside while the line is written, then are drawn again below it.
        self.bars.multi.suspend(|| {
            let _ = writeln!(std::io::stderr(), "{text}");
        });
    }
}

/// The bars on stderr, one set per process, so that log lines ([`LogWriter`]) step around them
/// as the state lines do.
fn terminal() -> &'static MultiProgress {
    static TERMINAL: OnceLock<MultiProgress> = OnceLock::new();
    TERMINAL.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Stderr for the command's log lines, written with the bars suspended: a warning (a retry
/// under `--faults`) then prints above the bars instead of through them.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        terminal().suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// One bar per running stage, by its label.
struct StageBars {
    multi: MultiProgress,
    /// Decided once: a hidden target draws nothing, so no bar is made.
    visible: bool,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl StageBars {
    fn new(multi: MultiProgress) -> StageBars {
        StageBars {
            visible: !multi.is_hidden(),
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    #[cfg(test)]
    fn running(&self) -> usize {
        self.bars.lock().expect("bars lock").len()
    }
}

impl ProgressSink for StageBars {
    fn report(&self, update: &ProgressUpdate) {
        if !self.visible {
            return;
        }
        let mut bars = self.bars.lock().expect("bars lock");
        let bar = bars.entry(update.label.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::no_length());
            bar.set_style(style(None));
            bar.set_prefix(update.label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.length() != update.total {
            match update.total {
                Some(total) => bar.set_length(total),
                None => bar.unset_length(),
            }
            bar.set_style(style(update.total));
        }
        bar.set_message(update.what.as_str());
        bar.set_position(update.done);
    }

    fn ended(&self, label: &str) {
        let Some(bar) = self.bars.lock().expect("bars lock").remove(label) else {
            return;
        };
        bar.finish_and_clear();
        self.multi.remove(&bar);
    }
}

/// A bar with the count of the total when there is one, a spinner with the count when not;
/// indented and aligned like the state lines.
fn style(total: Option<u64>) -> ProgressStyle {
    let template = match total {
        Some(_) => "  {spinner} {prefix:<32} {wide_bar} {human_pos}/{human_len} {msg}",
        None => "  {spinner} {prefix:<32} {human_pos} {msg}",
    };
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .progress_chars("█▉▊▋▌▍▎▏ ")
}

impl Observer for Progress {
    fn on_event(&self, event: &Event) {
        match event {
            Event::Entered { path } => self.line(&format!("  ▶ {path}")),
            Event::Succeeded {
                path,
                replayed: true,
                ..
            } => self.line(&format!("  ↺ {path:<32} (succeeded before; not run again)")),
            Event::Succeeded {
                path,
                elapsed,
                result,
                ..
            } => self.line(&format!(
                "  ✓ {path:<32} {:>6.1}s  {}",
                elapsed.as_secs_f64(),
                counts(result)
            )),
            Event::Failed { path, error, cause } => {
                self.line(&format!("  ✗ {path:<32} {error}: {cause}"))
            }
            Event::Aborted { path, error, .. } => self.line(&format!(
                "  ■ {path:<32} {error}: stopped while it ran; a redrive runs it again"
            )),
            Event::Retrying {
                path,
                error,
                attempt,
                delay,
            } => self.line(&format!(
                "  ↻ {path:<32} {error}; retry {attempt} in {:.1}s",
                delay.as_secs_f64()
            )),
        }
    }
}

/// `key=value` for a stage's own counts (empty for states without any). The summary's
/// per-stage roll-up (`stage.count` keys) is left to the report that follows.
fn counts(result: &Value) -> String {
    result
        .get("counts")
        .and_then(Value::as_object)
        .map(|counts| {
            counts
                .iter()
                .filter(|(k, _)| !k.contains('.'))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zdsync::progress::Counted;

    fn update(label: &str, done: u64, total: Option<u64>) -> ProgressUpdate {
        ProgressUpdate {
            label: label.into(),
            what: Counted::RecordsPaged,
            done,
            total,
        }
    }

    #[test]
    fn quiet_runs_draw_no_bars() {
        let progress = Progress::new(true);
        progress
            .stage_sink()
            .report(&update("gather-accounts", 5, Some(10)));
        assert_eq!(progress.bars.running(), 0);
    }

    #[test]
    fn bars_are_drawn_on_stderr_only_when_it_is_a_terminal() {
        // indicatif's stderr target hides itself when stderr is piped or captured (CI, the
        // tests that read the state lines); on a terminal it draws.
        let bars = StageBars::new(terminal().clone());
        assert_eq!(
            bars.visible,
            std::io::IsTerminal::is_terminal(&std::io::stderr())
        );
    }

    #[test]
    fn a_bar_per_running_stage_goes_when_its_stage_ends() {
        // A drawn target that writes nowhere visible: the bars' bookkeeping, not the terminal.
        let bars = StageBars {
            visible: true,
            ..StageBars::new(MultiProgress::with_draw_target(ProgressDrawTarget::hidden()))
        };
        bars.report(&update("gather-orgs global", 100, None));
        bars.report(&update("gather-orgs usgov", 100, None));
        bars.report(&update("gather-orgs global", 200, Some(300)));
        assert_eq!(bars.running(), 2);
        let global = bars.bars.lock().unwrap()["gather-orgs global"].clone();
        assert_eq!((global.position(), global.length()), (200, Some(300)));
        bars.ended("gather-orgs global");
        assert_eq!(bars.running(), 1);
        assert!(global.is_finished());
        bars.ended("gather-orgs global"); // twice (a dropped stage): harmless
        assert_eq!(bars.running(), 1);
    }
}
