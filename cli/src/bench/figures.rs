//! The figures of a benchmark run, from what the stages' stats say they read, wrote and called
//! and what their processes measured: pure functions of those, and the Markdown table.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use zdsync::stages::StageStats;

use super::neighbour::Neighbour;

/// One function invocation, measured.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Invocation {
    pub(super) stage: String,
    /// Process start to the response.
    pub(super) wall_s: f64,
    /// Process start to its first `GET …/invocation/next`: the cold start.
    pub(super) init_ms: f64,
    /// Peak resident set of the process, from `wait4`.
    pub(super) peak_rss_mb: f64,
    pub(super) error: Option<String>,
}

/// One stage of one run: its invocations and what its stats say it read and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct StageFigures {
    pub(super) stage: String,
    pub(super) invocations: usize,
    pub(super) wall_s: f64,
    pub(super) init_ms: f64,
    pub(super) peak_rss_mb: f64,
    pub(super) artifacts_in_mb: f64,
    pub(super) artifacts_out_mb: f64,
    pub(super) http_in_mb: f64,
    pub(super) http_out_mb: f64,
    pub(super) requests: u64,
    /// serde_json parse-to-Value + serialise of the stage's bytes, measured here.
    pub(super) floor_s: f64,
    /// wall / floor.
    pub(super) floor_ratio: f64,
    /// Records the stage's counts say it created (syncs).
    pub(super) created: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    pub(super) accounts: usize,
    pub(super) run_id: String,
    pub(super) status: String,
    pub(super) wall_s: f64,
    pub(super) generate_s: f64,
    pub(super) world_mb: f64,
    pub(super) stages: Vec<StageFigures>,
    pub(super) zendesk_writes: u64,
    /// Requests per route the sandbox answered in this run (`global POST /api/v2/users/create_many`).
    pub(super) requests_by_route: BTreeMap<String, u64>,
    /// Global orgs created, and the Global requests of the sold-to step (user creates,
    /// searches, memberships) per created org.
    pub(super) global_creates: u64,
    pub(super) sold_to_requests_per_new_org: f64,
    /// Per service, the most requests any 60 seconds of the run held (the sync's and the
    /// neighbour's together).
    pub(super) busiest_minute: BTreeMap<String, u64>,
    /// The other app's requests during the run, and its 429s.
    pub(super) neighbour: Option<Neighbour>,
}

/// Per stage: its invocations' time and memory, its stats' bytes, and its JSON floor, for the
/// run's stats files in `data_dir`.
pub(super) fn figures(
    data_dir: &Path,
    run_id: &str,
    invocations: &[Invocation],
) -> anyhow::Result<Vec<StageFigures>> {
    let stats_dir = data_dir.join("runs").join(run_id).join("stages");
    let mut stats: BTreeMap<String, StageStats> = BTreeMap::new();
    for entry in std::fs::read_dir(&stats_dir)? {
        let path = entry?.path();
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        stats.insert(name, serde_json::from_slice(&std::fs::read(&path)?)?);
    }
    let mut floors: BTreeMap<String, f64> = BTreeMap::new();
    let mut bytes: BTreeMap<String, u64> = BTreeMap::new();
    for stage in stats.values() {
        for key in stage
            .artifacts
            .read
            .keys()
            .chain(stage.artifacts.written.keys())
        {
            if floors.contains_key(key) {
                continue;
            }
            let body = std::fs::read(data_dir.join(key))?;
            bytes.insert(key.clone(), body.len() as u64);
            // A blob's floor is its JSON's; the pointer to it costs next to nothing.
            let json = if key.starts_with(zdsync::store::blob::BLOBS_PREFIX) {
                zdsync::store::blob::decompress(&body)?
            } else {
                body
            };
            floors.insert(key.clone(), json_floor(&json));
        }
    }
    Ok(stage_figures(
        &stats,
        &Floors::new(floors, &bytes),
        invocations,
    ))
}

/// What serde_json takes on the run's artifacts: each one's time, and a rate per byte for the
/// HTTP bodies (not kept), taken over all artifacts.
pub(super) struct Floors {
    by_artifact: BTreeMap<String, f64>,
    per_byte: f64,
}

impl Floors {
    pub(super) fn new(by_artifact: BTreeMap<String, f64>, bytes: &BTreeMap<String, u64>) -> Floors {
        let seconds: f64 = by_artifact.values().sum();
        let total: u64 = bytes.values().sum();
        Floors {
            by_artifact,
            per_byte: if total > 0 {
                seconds / total as f64
            } else {
                0.0
            },
        }
    }
}

/// wall ÷ floor: how many times its JSON floor a stage took (0 without a floor).
pub(super) fn floor_ratio(wall_s: f64, floor_s: f64) -> f64 {
    if floor_s > 0.0 { wall_s / floor_s } else { 0.0 }
}

/// Per stage of `stats`: its invocations' time (summed) and memory (the peak), the bytes its
/// stats say it read and wrote, its requests, and its floor.
pub(super) fn stage_figures(
    stats: &BTreeMap<String, StageStats>,
    floors: &Floors,
    invocations: &[Invocation],
) -> Vec<StageFigures> {
    let mut by_stage: BTreeMap<&str, Vec<&Invocation>> = BTreeMap::new();
    for invocation in invocations {
        by_stage
            .entry(invocation.stage.as_str())
            .or_default()
            .push(invocation);
    }
    let mut out = Vec::new();
    for (name, stage) in stats {
        let runs = by_stage.get(name.as_str()).cloned().unwrap_or_default();
        let http = stage
            .calls
            .0
            .iter()
            .filter(|(service, _)| service.as_str() != zdsync::calls::STORE);
        let (http_in, http_out, requests) = http.fold((0, 0, 0), |(i, o, r), (_, c)| {
            (i + c.bytes_received, o + c.bytes_sent, r + c.requests)
        });
        let artifacts_in: u64 = stage.artifacts.read.values().sum();
        let artifacts_out: u64 = stage.artifacts.written.values().sum();
        let floor_s = stage
            .artifacts
            .read
            .keys()
            .chain(stage.artifacts.written.keys())
            .map(|k| floors.by_artifact.get(k).copied().unwrap_or(0.0))
            .sum::<f64>()
            + (http_in + http_out) as f64 * floors.per_byte;
        let wall_s: f64 = runs.iter().map(|r| r.wall_s).sum();
        out.push(StageFigures {
            stage: name.clone(),
            invocations: runs.len(),
            wall_s,
            init_ms: runs.iter().map(|r| r.init_ms).fold(0.0, f64::max),
            peak_rss_mb: runs.iter().map(|r| r.peak_rss_mb).fold(0.0, f64::max),
            artifacts_in_mb: mb(artifacts_in),
            artifacts_out_mb: mb(artifacts_out),
            http_in_mb: mb(http_in),
            http_out_mb: mb(http_out),
            requests,
            floor_s,
            floor_ratio: floor_ratio(wall_s, floor_s),
            created: stage.counts.get("created").copied().unwrap_or(0),
        });
    }
    out
}

/// How a stage grew from one world size to the next: the factor of the data, and of its time
/// and peak memory (for "linear or less").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Growth {
    pub stage: String,
    pub from_accounts: usize,
    pub to_accounts: usize,
    pub data: f64,
    pub wall: f64,
    pub peak_rss: f64,
}

/// For each stage, its growth between consecutive sizes of `results` (first runs only, in the
/// order given).
pub fn growth(results: &[RunFigures]) -> Vec<Growth> {
    let firsts: Vec<&RunFigures> = results
        .iter()
        .filter(|r| r.run_id.ends_with("-1"))
        .collect();
    let mut out = Vec::new();
    for pair in firsts.windows(2) {
        let (small, big) = (pair[0], pair[1]);
        for stage in &big.stages {
            let Some(before) = small.stages.iter().find(|s| s.stage == stage.stage) else {
                continue;
            };
            let factor = |a: f64, b: f64| if a > 0.0 { b / a } else { 0.0 };
            out.push(Growth {
                stage: stage.stage.clone(),
                from_accounts: small.accounts,
                to_accounts: big.accounts,
                data: factor(small.accounts as f64, big.accounts as f64),
                wall: factor(before.wall_s, stage.wall_s),
                peak_rss: factor(before.peak_rss_mb, stage.peak_rss_mb),
            });
        }
    }
    out
}

/// serde_json's time to parse `body` into a `Value` and serialise it back: the least any
/// stage that reads or writes these bytes as JSON could spend on them. Best of three.
pub(super) fn json_floor(body: &[u8]) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let text = serde_json::to_vec(&value).unwrap_or_default();
            std::hint::black_box(text);
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// The Global routes of the sold-to step: creating users, looking up taken emails, adding
/// memberships (single or in bulk). Their jobs' polls share `job_statuses` with the org jobs
/// and are not counted.
pub(super) fn is_sold_to_route(route: &str) -> bool {
    route.starts_with("global ")
        && (route.ends_with("/api/v2/users/create_many")
            || route.ends_with("/api/v2/users/search")
            || route.ends_with(" /api/v2/users")
            || route.contains("/organization_memberships"))
}

pub(super) fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

pub fn markdown(results: &[RunFigures]) -> String {
    let mut text = String::new();
    for run in results {
        text.push_str(&format!(
            "\n### {} accounts — {} ({}) in {:.1} s, {} Zendesk writes; world {:.0} MB, generated in {:.1} s\n\n{} new Global orgs; sold-to step {:.3} requests per new org\n\n",
            run.accounts, run.run_id, run.status, run.wall_s, run.zendesk_writes, run.world_mb, run.generate_s,
            run.global_creates, run.sold_to_requests_per_new_org
        ));
        let busiest: Vec<String> = run
            .busiest_minute
            .iter()
            .filter(|(service, _)| matches!(service.as_str(), "global" | "usgov" | "salesforce"))
            .map(|(service, n)| format!("{service} {n}"))
            .collect();
        text.push_str(&format!(
            "Busiest 60 s: {}\n\n",
            if busiest.is_empty() {
                "–".to_owned()
            } else {
                busiest.join(", ")
            }
        ));
        if let Some(n) = run.neighbour {
            text.push_str(&format!(
                "Another app at {} requests a minute during the run: {} requests, {} answered 429\n\n",
                n.requests_per_minute, n.requests, n.throttled
            ));
        }
        text.push_str("| stage | inv. | wall s | init ms | peak RSS MB | artifacts in / out MB | HTTP in / out MB | requests | floor s | × floor |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for s in &run.stages {
            text.push_str(&format!(
                "| {} | {} | {:.2} | {:.0} | {:.0} | {:.1} / {:.1} | {:.1} / {:.1} | {} | {:.2} | {:.2} |\n",
                s.stage,
                s.invocations,
                s.wall_s,
                s.init_ms,
                s.peak_rss_mb,
                s.artifacts_in_mb,
                s.artifacts_out_mb,
                s.http_in_mb,
                s.http_out_mb,
                s.requests,
                s.floor_s,
                s.floor_ratio
            ));
        }
    }
    let grown = growth(results);
    if !grown.is_empty() {
        text.push_str("\n### Growth\n\n| stage | accounts | × data | × wall | × peak RSS |\n|---|---|---|---|---|\n");
        for g in &grown {
            text.push_str(&format!(
                "| {} | {} → {} | {:.1} | {:.1} | {:.1} |\n",
                g.stage, g.from_accounts, g.to_accounts, g.data, g.wall, g.peak_rss
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use zdsync::calls::{ArtifactIo, CallStats, ServiceCalls};

    use super::*;

    fn invocation(stage: &str, wall_s: f64, peak_rss_mb: f64) -> Invocation {
        Invocation {
            stage: stage.into(),
            wall_s,
            init_ms: 12.0,
            peak_rss_mb,
            error: None,
        }
    }

    fn stats(read: &[(&str, u64)], http_in: u64, requests: u64) -> StageStats {
        let mut calls = CallStats::default();
        calls.0.insert(
            "zendesk_global".into(),
            ServiceCalls {
                requests,
                bytes_received: http_in,
                ..ServiceCalls::default()
            },
        );
        StageStats {
            calls,
            artifacts: ArtifactIo {
                read: read.iter().map(|(k, b)| (k.to_string(), *b)).collect(),
                ..ArtifactIo::default()
            },
            ..StageStats::default()
        }
    }

    #[test]
    fn the_floor_ratio_is_wall_over_floor_and_zero_without_a_floor() {
        assert_eq!(floor_ratio(3.0, 1.5), 2.0);
        assert_eq!(floor_ratio(3.0, 0.0), 0.0);
    }

    #[test]
    fn a_stage_adds_its_invocations_and_its_floor_counts_its_http_bytes_at_the_artifacts_rate() {
        let stats = BTreeMap::from([(
            "sync-global".to_owned(),
            stats(&[("runs/r/a.json", 1_000)], 500, 7),
        )]);
        // 1 000 artifact bytes take 2 s: 0.002 s a byte, so 500 HTTP bytes add 1 s.
        let floors = Floors::new(
            BTreeMap::from([("runs/r/a.json".to_owned(), 2.0)]),
            &BTreeMap::from([("runs/r/a.json".to_owned(), 1_000)]),
        );
        let figures = stage_figures(
            &stats,
            &floors,
            &[
                invocation("sync-global", 4.0, 100.0),
                invocation("sync-global", 5.0, 300.0),
                invocation("process", 1.0, 900.0),
            ],
        );
        assert_eq!(figures.len(), 1);
        let sync = &figures[0];
        assert_eq!(
            (sync.invocations, sync.wall_s, sync.peak_rss_mb),
            (2, 9.0, 300.0)
        );
        assert_eq!((sync.floor_s, sync.floor_ratio), (3.0, 3.0));
        assert_eq!(sync.requests, 7);
    }

    fn run(accounts: usize, wall_s: f64, peak_rss_mb: f64) -> RunFigures {
        RunFigures {
            accounts,
            run_id: format!("bench-{accounts}-1"),
            status: "Succeeded".into(),
            wall_s,
            generate_s: 0.1,
            world_mb: 1.0,
            stages: vec![StageFigures {
                stage: "process".into(),
                invocations: 1,
                wall_s,
                init_ms: 10.0,
                peak_rss_mb,
                artifacts_in_mb: 1.0,
                artifacts_out_mb: 2.0,
                http_in_mb: 0.0,
                http_out_mb: 0.0,
                requests: 0,
                floor_s: 1.0,
                floor_ratio: 0.5,
                created: 0,
            }],
            zendesk_writes: 0,
            requests_by_route: BTreeMap::new(),
            global_creates: 0,
            sold_to_requests_per_new_org: 0.0,
            busiest_minute: BTreeMap::from([("global".to_owned(), 340)]),
            neighbour: None,
        }
    }

    #[test]
    fn growth_is_each_stages_factor_between_consecutive_sizes() {
        let results = [run(10_000, 1.0, 100.0), run(50_000, 4.5, 250.0)];
        assert_eq!(
            growth(&results),
            vec![Growth {
                stage: "process".into(),
                from_accounts: 10_000,
                to_accounts: 50_000,
                data: 5.0,
                wall: 4.5,
                peak_rss: 2.5,
            }]
        );
        assert!(growth(&results[..1]).is_empty());
    }

    #[test]
    fn the_table_has_a_row_per_stage_the_busiest_minute_and_the_growth() {
        let text = markdown(&[run(10_000, 1.0, 100.0), run(50_000, 4.5, 250.0)]);
        assert!(
            text.contains(
                "| process | 1 | 1.00 | 10 | 100 | 1.0 / 2.0 | 0.0 / 0.0 | 0 | 1.00 | 0.50 |"
            ),
            "{text}"
        );
        assert!(text.contains("Busiest 60 s: global 340"), "{text}");
        assert!(
            text.contains("| process | 10000 → 50000 | 5.0 | 4.5 | 2.5 |"),
            "{text}"
        );
    }
}
