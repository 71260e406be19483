//! How a gather read its source (SPEC §12): in full, or only the changes since its snapshot.
//! Stage outputs, stage stats and `summary.json` carry it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatherKind {
    Full,
    Delta,
}

/// One gather's way of reading one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatherNote {
    /// The snapshot's source (`zendesk_global_orgs`, …).
    pub source: String,
    pub mode: GatherKind,
    /// Why it was full (`the first run of the day`, `asked for`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Records read from the source: every one (full) or the changed ones (delta).
    pub read: usize,
    /// How far the snapshot's changes reach now.
    pub watermark: DateTime<Utc>,
    /// A dry run: the snapshot was read, not advanced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The gather stage's requests to its source (every service but the artifact store), and
    /// the bytes of their answers: filled in by the summary from the stage's stats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<GatherCalls>,
}

/// What a gather stage's reading cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatherCalls {
    pub requests: u64,
    pub bytes_received: u64,
}

impl fmt::Display for GatherNote {
    /// `zendesk_global_orgs: delta, 12 changes read, watermark 2026-12-06T10:58:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let watermark = self.watermark.format("%Y-%m-%dT%H:%M:%SZ");
        match self.mode {
            GatherKind::Full => write!(
                f,
                "{}: full ({}), {} records read, watermark {watermark}",
                self.source,
                self.reason.as_deref().unwrap_or("asked for"),
                self.read
            )?,
            GatherKind::Delta => write!(
                f,
                "{}: delta, {} changes read, watermark {watermark}",
                self.source, self.read
            )?,
        }
        if let Some(calls) = self.calls {
            write!(
                f,
                "; the stage's {} request{}, {:.1} MB received",
                calls.requests,
                if calls.requests == 1 { "" } else { "s" },
                calls.bytes_received as f64 / 1e6
            )?;
        }
        if self.dry_run {
            f.write_str(" (dry run: the snapshot was not advanced)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_as_a_line() {
        let mut note = GatherNote {
            source: "zendesk_global_orgs".into(),
            mode: GatherKind::Delta,
            reason: None,
            read: 12,
            watermark: "2026-12-06T10:58:00Z".parse().unwrap(),
            dry_run: false,
            calls: None,
        };
        assert_eq!(
            note.to_string(),
            "zendesk_global_orgs: delta, 12 changes read, watermark 2026-12-06T10:58:00Z"
        );
        note.mode = GatherKind::Full;
        note.reason = Some("the first run of the day".into());
        note.dry_run = true;
        assert_eq!(
            note.to_string(),
            "zendesk_global_orgs: full (the first run of the day), 12 records read, watermark 2026-12-06T10:58:00Z (dry run: the snapshot was not advanced)"
        );
        note.dry_run = false;
        note.calls = Some(GatherCalls {
            requests: 3,
            bytes_received: 1_250_000,
        });
        assert!(
            note.to_string()
                .ends_with("; the stage's 3 requests, 1.2 MB received"),
            "{note}"
        );
    }
}
