//! Whether a gather reads its source in full or only what changed since its snapshot (SPEC §12).
//!
//! A delta gather costs what changed; a full one costs the whole world but also corrects what no
//! change feed shows (formula and lookup fields that read other records, records deleted in
//! Zendesk). So a gather is full when there is nothing trustworthy to start from, when the feed
//! can no longer answer for the time since the snapshot, once a UTC day (or every
//! `sync.full_every_hours`), and when asked.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How far back the change feeds answer for: Salesforce keeps deleted records about 15 days
/// (`queryAll`, `…/deleted/`), so an older watermark cannot be brought up to date by deltas.
pub const FEED_REACH_DAYS: i64 = 15;

/// What a snapshot says about its age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotAge {
    /// How far the changes it includes reach.
    pub watermark: DateTime<Utc>,
    /// When the full read it descends from started.
    pub full_at: DateTime<Utc>,
}

/// What a gather found in the state store before it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Snapshot(SnapshotAge),
    Nothing,
    /// There is one, but it cannot be read (corrupt, another version, another source).
    Unreadable,
    /// A sync's writes could not be folded into it.
    Incomplete,
}

/// Why a gather reads its source in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullReason {
    /// The execution input asked for it (`{"full": true}`, `zdsync run --full`).
    Requested,
    /// No snapshot yet.
    NoSnapshot,
    /// The snapshot could not be read.
    Unreadable,
    /// A sync's writes are missing from the snapshot.
    Incomplete,
    /// The watermark is older than the change feeds answer for.
    OutOfReach,
    /// The first run of the UTC day.
    Daily,
    /// `sync.full_every_hours` have passed since the last full read.
    Periodic,
    /// The change feed answered that it is not there for this API user (403, 404): the
    /// export is for admins.
    FeedUnavailable,
    /// The feed named so many changed records that reading them by id would cost more than
    /// reading everything (a bulk update, an automation touching every record).
    ManyChanges,
}

impl fmt::Display for FullReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FullReason::Requested => "asked for",
            FullReason::NoSnapshot => "no snapshot yet",
            FullReason::Unreadable => "the snapshot could not be read",
            FullReason::Incomplete => "a sync's writes are missing from the snapshot",
            FullReason::OutOfReach => "the snapshot is older than the change feed answers for",
            FullReason::Daily => "the first run of the day",
            FullReason::Periodic => "full_every_hours have passed",
            FullReason::FeedUnavailable => "the change feed is not available to the API user",
            FullReason::ManyChanges => "so many records changed that a full read costs less",
        })
    }
}

/// A gather's way of reading its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatherMode {
    Full(FullReason),
    /// Only what changed since the snapshot's watermark, applied onto the snapshot.
    Delta {
        since: DateTime<Utc>,
    },
}

/// The policy's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconcile {
    /// The execution asked for a full gather.
    pub requested: bool,
    /// When the execution started, when the gather knows: a full read it asked for is made
    /// once per source, so a snapshot whose full read started after it (the first gather's of
    /// this execution — the partner and user syncs' gathers come after the org syncs') is
    /// brought up to date rather than read again.
    pub run_started: Option<DateTime<Utc>>,
    /// `sync.full_every_hours`: a full read this often instead of once a UTC day.
    pub every_hours: Option<u32>,
}

/// How a gather starting at `now` reads its source.
pub fn gather_mode(found: Found, now: DateTime<Utc>, policy: Reconcile) -> GatherMode {
    let read_in_full_this_run = match (found, policy.run_started) {
        (Found::Snapshot(age), Some(started)) => age.full_at >= started,
        _ => false,
    };
    if policy.requested && !read_in_full_this_run {
        return GatherMode::Full(FullReason::Requested);
    }
    let age = match found {
        Found::Nothing => return GatherMode::Full(FullReason::NoSnapshot),
        Found::Unreadable => return GatherMode::Full(FullReason::Unreadable),
        Found::Incomplete => return GatherMode::Full(FullReason::Incomplete),
        Found::Snapshot(age) => age,
    };
    if now - age.watermark > Duration::days(FEED_REACH_DAYS) {
        return GatherMode::Full(FullReason::OutOfReach);
    }
    let due = match policy.every_hours {
        Some(hours) => {
            (now - age.full_at >= Duration::hours(i64::from(hours))).then_some(FullReason::Periodic)
        }
        None => (age.full_at.date_naive() < now.date_naive()).then_some(FullReason::Daily),
    };
    match due {
        Some(reason) => GatherMode::Full(reason),
        None => GatherMode::Delta {
            since: age.watermark,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn snapshot(watermark: &str, full_at: &str) -> Found {
        Found::Snapshot(SnapshotAge {
            watermark: at(watermark),
            full_at: at(full_at),
        })
    }

    #[test]
    fn a_snapshot_of_today_is_brought_up_to_date_by_its_changes() {
        let found = snapshot("2026-12-06T09:58:00Z", "2026-12-06T00:05:00Z");
        assert_eq!(
            gather_mode(found, at("2026-12-06T11:00:00Z"), Reconcile::default()),
            GatherMode::Delta {
                since: at("2026-12-06T09:58:00Z")
            }
        );
    }

    #[test]
    fn the_first_run_of_a_utc_day_reads_in_full() {
        let found = snapshot("2026-12-05T23:58:00Z", "2026-12-05T00:05:00Z");
        assert_eq!(
            gather_mode(found, at("2026-12-06T00:00:01Z"), Reconcile::default()),
            GatherMode::Full(FullReason::Daily)
        );
    }

    #[test]
    fn full_every_hours_replaces_the_daily_read() {
        let found = snapshot("2026-12-06T05:58:00Z", "2026-12-06T00:05:00Z");
        let every_6 = Reconcile {
            requested: false,
            run_started: None,
            every_hours: Some(6),
        };
        assert_eq!(
            gather_mode(found, at("2026-12-06T06:04:59Z"), every_6),
            GatherMode::Delta {
                since: at("2026-12-06T05:58:00Z")
            }
        );
        assert_eq!(
            gather_mode(found, at("2026-12-06T06:05:00Z"), every_6),
            GatherMode::Full(FullReason::Periodic)
        );
        // Across midnight, within the hours: still a delta.
        let found = snapshot("2026-12-05T23:50:00Z", "2026-12-05T22:00:00Z");
        assert!(matches!(
            gather_mode(found, at("2026-12-06T00:10:00Z"), every_6),
            GatherMode::Delta { .. }
        ));
    }

    #[test]
    fn nothing_to_start_from_or_a_request_reads_in_full() {
        let now = at("2026-12-06T11:00:00Z");
        let fresh = snapshot("2026-12-06T10:58:00Z", "2026-12-06T00:05:00Z");
        let asked = Reconcile {
            requested: true,
            ..Reconcile::default()
        };
        assert_eq!(
            gather_mode(fresh, now, asked),
            GatherMode::Full(FullReason::Requested)
        );
        // The execution started at 10:59: the 00:05 full read is not this execution's.
        let asked_at_10_59 = Reconcile {
            run_started: Some(at("2026-12-06T10:59:00Z")),
            ..asked
        };
        assert_eq!(
            gather_mode(fresh, now, asked_at_10_59),
            GatherMode::Full(FullReason::Requested)
        );
        assert_eq!(
            gather_mode(Found::Nothing, now, Reconcile::default()),
            GatherMode::Full(FullReason::NoSnapshot)
        );
        assert_eq!(
            gather_mode(Found::Unreadable, now, Reconcile::default()),
            GatherMode::Full(FullReason::Unreadable)
        );
    }

    #[test]
    fn a_full_read_asked_for_is_made_once_per_source_in_an_execution() {
        // The org sync's gather read every org at 11:00:10; the partner sync's gather of the
        // same organizations, at 11:02, starts from that picture.
        let now = at("2026-12-06T11:02:00Z");
        let read_this_run = snapshot("2026-12-06T11:01:30Z", "2026-12-06T11:00:10Z");
        let asked = Reconcile {
            requested: true,
            run_started: Some(at("2026-12-06T11:00:00Z")),
            every_hours: None,
        };
        assert_eq!(
            gather_mode(read_this_run, now, asked),
            GatherMode::Delta {
                since: at("2026-12-06T11:01:30Z")
            }
        );
        assert_eq!(
            gather_mode(Found::Incomplete, now, asked),
            GatherMode::Full(FullReason::Requested)
        );
    }

    #[test]
    fn a_watermark_beyond_the_feeds_reach_reads_in_full() {
        // A snapshot whose full read is recent (every 9 999 hours) but whose changes stopped
        // 16 days ago: the deletes of those days are no longer in the feed.
        let found = snapshot("2026-11-20T10:00:00Z", "2026-11-20T09:00:00Z");
        let rarely = Reconcile {
            requested: false,
            run_started: None,
            every_hours: Some(9_999),
        };
        assert_eq!(
            gather_mode(found, at("2026-12-06T11:00:00Z"), rarely),
            GatherMode::Full(FullReason::OutOfReach)
        );
    }
}
