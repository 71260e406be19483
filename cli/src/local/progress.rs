//! What a local run prints while it goes: one line per state, with the stage's counts.

use std::io::Write;
use std::sync::Mutex;

use serde_json::Value;

use crate::asl::{Event, Observer};

/// Writes progress lines to stderr (stdout stays free for the summary).
pub struct Progress {
    quiet: bool,
    out: Mutex<()>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            out: Mutex::new(()),
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let _lock = self.out.lock();
        let _ = writeln!(std::io::stderr(), "{text}");
    }
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
