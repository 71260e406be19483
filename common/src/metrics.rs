//! CloudWatch metrics in Embedded Metric Format: one JSON log line per stage invocation, from
//! the stage's own stats (the same counts `summary.json` reports). CloudWatch Logs turns the
//! line into metrics in the `zdsync` namespace; the template's dashboard and alarms read them.

use serde_json::{Map, Value, json};

use crate::stages::StageStats;

/// The metrics namespace of every zdsync stage.
pub const NAMESPACE: &str = "zdsync";

/// The EMF record of one invocation of `stage` (`sync`, `gather-orgs`) for `sync` (`global`,
/// `partners`; none for a stage that serves one), at `timestamp_ms`. Every count of the stage
/// becomes a `Count` metric (`created`, `errors`, `accounts`, …), plus `requests`, `retries`,
/// `throttled`, `duration` (seconds), `failed` (0 or 1) and `guard_tripped` (0 or 1), and for a
/// stage that called Salesforce `salesforce_api_used`, `salesforce_api_limit` and
/// `salesforce_api_used_percent` (the org's daily allowance, everybody's use). The
/// metrics are published per stage and per stage and sync, so an alarm can watch all syncs at
/// once (`Stage=sync`) and a graph one of them.
pub fn emf_record(stage: &str, sync: Option<&str>, stats: &StageStats, timestamp_ms: i64) -> Value {
    let mut values: Vec<(String, f64, &str)> = stats
        .counts
        .iter()
        .map(|(name, n)| (name.clone(), *n as f64, "Count"))
        .collect();
    values.extend([
        (
            "requests".to_owned(),
            stats.calls.requests() as f64,
            "Count",
        ),
        ("retries".to_owned(), stats.calls.retries() as f64, "Count"),
        (
            "throttled".to_owned(),
            stats.calls.0.values().map(|c| c.throttled).sum::<u64>() as f64,
            "Count",
        ),
        ("duration".to_owned(), stats.seconds, "Seconds"),
        (
            "failed".to_owned(),
            f64::from(u8::from(stats.error.is_some())),
            "Count",
        ),
        (
            "guard_tripped".to_owned(),
            f64::from(u8::from(
                stats.error.as_deref() == Some("DeletionGuardTripped"),
            )),
            "Count",
        ),
    ]);
    // A gather that keeps a snapshot: whether it read in full, and how many records it read
    // (every one, or the changes): a quiet hour should read few.
    if !stats.gathers.is_empty() {
        let full = stats
            .gathers
            .iter()
            .filter(|g| g.mode == crate::model::GatherKind::Full)
            .count();
        let read: usize = stats.gathers.iter().map(|g| g.read).sum();
        values.extend([
            ("gathered_in_full".to_owned(), full as f64, "Count"),
            ("records_read".to_owned(), read as f64, "Count"),
        ]);
    }
    // Salesforce's daily API allowance as the stage's last answer reported it (the whole
    // org's use): the template alarms at 80 %.
    if let Some(allowance) = stats.calls.allowance("salesforce") {
        values.extend([
            (
                "salesforce_api_used".to_owned(),
                allowance.used as f64,
                "Count",
            ),
            (
                "salesforce_api_limit".to_owned(),
                allowance.limit as f64,
                "Count",
            ),
            (
                "salesforce_api_used_percent".to_owned(),
                allowance.ratio() * 100.0,
                "Percent",
            ),
        ]);
    }
    let mut dimensions = vec![json!(["Stage"])];
    let mut record = Map::new();
    record.insert("Stage".into(), json!(stage));
    if let Some(sync) = sync {
        dimensions.push(json!(["Stage", "Sync"]));
        record.insert("Sync".into(), json!(sync));
    }
    let definitions: Vec<Value> = values
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    for (name, value, _) in values {
        record.insert(name, json!(value));
    }
    record.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_tripped_sync_reports_its_counts_its_failure_and_the_trip() {
        let stats = StageStats {
            stage: "sync".into(),
            seconds: 12.5,
            counts: BTreeMap::from([("created".into(), 3), ("errors".into(), 0)]),
            error: Some("DeletionGuardTripped".into()),
            ..StageStats::default()
        };
        let record = emf_record("sync", Some("global"), &stats, 1_764_000_000_000);
        assert_eq!(record["Stage"], "sync");
        assert_eq!(record["Sync"], "global");
        assert_eq!(record["created"], 3.0);
        assert_eq!(record["guard_tripped"], 1.0);
        assert_eq!(record["failed"], 1.0);
        assert_eq!(record["duration"], 12.5);
        let directive = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            directive["Dimensions"],
            json!([["Stage"], ["Stage", "Sync"]])
        );
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"created") && names.contains(&"guard_tripped"));
        // Every metric named is a member of the root, as EMF requires.
        assert!(names.iter().all(|n| record.get(n).is_some()));
    }

    /// Every record validates against the format's schema, and each metric it names is a
    /// number at the root (what CloudWatch needs to extract it).
    #[test]
    fn records_follow_the_embedded_metric_format() {
        let schema: Value =
            serde_json::from_str(include_str!("../tests/data/emf.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut calls = crate::calls::CallStats::default();
        calls.0.insert(
            "zendesk-global".into(),
            crate::calls::ServiceCalls {
                requests: 40,
                retries: 2,
                throttled: 1,
                ..Default::default()
            },
        );
        let stats = StageStats {
            stage: "gather-orgs".into(),
            seconds: 0.8,
            counts: BTreeMap::from([("orgs".into(), 120), ("managed".into(), 100)]),
            calls,
            ..StageStats::default()
        };
        for record in [
            emf_record("gather-orgs", Some("partners"), &stats, 1_764_000_000_000),
            emf_record("process", None, &StageStats::default(), 1),
        ] {
            let errors: Vec<String> = validator
                .iter_errors(&record)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?} in {record}");
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
            {
                let name = metric["Name"].as_str().unwrap();
                assert!(record[name].is_number(), "{name} in {record}");
            }
        }
        let record = emf_record("gather-orgs", Some("partners"), &stats, 5);
        assert_eq!(record["requests"], 40.0);
        assert_eq!(record["retries"], 2.0);
        assert_eq!(record["throttled"], 1.0);
        // A record that breaks the format is caught: no Timestamp.
        let mut broken = record.clone();
        broken["_aws"].as_object_mut().unwrap().remove("Timestamp");
        assert!(!validator.is_valid(&broken));
    }

    #[test]
    fn a_stage_of_one_sync_has_only_the_stage_dimension() {
        let record = emf_record("process", None, &StageStats::default(), 0);
        assert_eq!(
            record["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stage"]])
        );
        assert!(record.get("Sync").is_none());
        assert_eq!(record["guard_tripped"], 0.0);
    }
}
