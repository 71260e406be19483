//! Running one stage: its input parsed, its Zendesk share set, its calls counted and its
//! progress scoped, and its stats written as it ends, succeeded or failed.

use serde::Serialize;
use serde_json::Value;

use super::context::StageContext;
use super::input::parse_input;
use super::stats::StageStats;
use super::table::Stage;
use super::{
    compare, gather_accounts, gather_contacts, gather_orgs, gather_users, guard, process,
    summarize, sync,
};
use crate::error::StageError;
use crate::store::RunKeys;

/// Runs one stage with its JSON input and returns its JSON output. Every stage of a run but the
/// guard and the summary also leaves `stages/{stage}[-{sync}].json`: its counts, its API calls
/// (with retries) and its time, or its error — what the summary reports of it.
pub async fn run(stage: Stage, ctx: &StageContext, input: Value) -> Result<Value, StageError> {
    run_measured(stage, ctx, input).await.0
}

/// [`run`], also answering the stats it wrote (none for the guard and the summary) and the
/// sync they are of — what the Lambda handler turns into metrics.
pub async fn run_measured(
    stage: Stage,
    ctx: &StageContext,
    input: Value,
) -> (
    Result<Value, StageError>,
    Option<(Option<String>, StageStats)>,
) {
    let started = std::time::Instant::now();
    let stats_name = StageStats::artifact_name(stage, &input);
    let which = StageStats::sync_of(stage, &input);
    let label = crate::progress::stage_label(stage.function_name(), which.as_deref());
    // On the heap: the stages' futures are large, and each scope around them would otherwise
    // add another copy to the stack of whoever polls them.
    // A stage the state machine runs beside another calling the same Zendesk instance from
    // another process takes its part of the instance's share (`zendesk_share`).
    let share = match zendesk_share(stage, &input) {
        Ok(share) => share,
        Err(e) => return (Err(e), None),
    };
    let stage_run = Box::pin(crate::zendesk::with_share(
        share,
        dispatch(stage, ctx, input),
    ));
    let reporting = crate::progress::in_stage(ctx.progress.clone(), label, stage_run);
    let (result, io) = crate::calls::in_stage(reporting).await;
    let mut measured = None;
    if let Some((run_id, name)) = stats_name {
        let mut stats = StageStats {
            stage: stage.function_name().to_owned(),
            seconds: started.elapsed().as_secs_f64(),
            counts: output_field(&result, "counts"),
            gathers: output_field(&result, "gathers"),
            calls: io.calls,
            artifacts: io.artifacts,
            error: result.as_ref().err().map(|e| e.name().to_owned()),
        };
        let written = match RunKeys::new(&run_id).and_then(|keys| keys.key(&name)) {
            Ok(key) => {
                // A sync continued over several invocations: its stats are their sum.
                if stats.counts.get("invocations").is_some_and(|&n| n > 1)
                    && let Ok(Some(earlier)) =
                        crate::store::read_json_opt::<StageStats>(ctx.store.as_ref(), &key).await
                {
                    stats.add_earlier(&earlier);
                }
                crate::store::write_json(ctx.store.as_ref(), &key, &stats)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, %stage, "the stage's stats could not be written");
        }
        measured = Some((which, stats));
    }
    (result, measured)
}

/// The part of each Zendesk client's share a stage may use: its input's `zendesk_share`
/// (0 < share ≤ 1), else all of it.
fn zendesk_share(stage: Stage, input: &Value) -> Result<f64, StageError> {
    match input.get("zendesk_share") {
        None | Some(Value::Null) => Ok(1.0),
        Some(value) => value
            .as_f64()
            .filter(|share| *share > 0.0 && *share <= 1.0)
            .ok_or_else(|| {
                StageError::InvalidConfig(format!(
                    "the {stage} stage's input is invalid at zendesk_share: {value} is not a fraction above 0 and at most 1"
                ))
            }),
    }
}

async fn dispatch(stage: Stage, ctx: &StageContext, input: Value) -> Result<Value, StageError> {
    let output = match stage {
        Stage::Guard => {
            return guard::run(ctx, parse_input(stage, input)?)
                .await
                .map(to_value);
        }
        Stage::GatherAccounts => gather_accounts::run(ctx, parse_input(stage, input)?).await?,
        Stage::GatherOrgs => gather_orgs::run(ctx, parse_input(stage, input)?).await?,
        Stage::Process => process::run(ctx, parse_input(stage, input)?).await?,
        Stage::Compare => compare::run(ctx, parse_input(stage, input)?).await?,
        Stage::Sync => sync::run(ctx, parse_input(stage, input)?).await?,
        Stage::GatherUsers => gather_users::run(ctx, parse_input(stage, input)?).await?,
        Stage::GatherContacts => gather_contacts::run(ctx, parse_input(stage, input)?).await?,
        Stage::Summarize => summarize::run(ctx, summarize::input(ctx, input).await?).await?,
    };
    Ok(to_value(output))
}

fn to_value<T: Serialize>(value: T) -> Value {
    serde_json::to_value(value).expect("stage outputs are plain data")
}

/// A field of a stage's output, or its default when the stage failed or did not say.
fn output_field<T: serde::de::DeserializeOwned + Default, E>(
    result: &Result<Value, E>,
    field: &str,
) -> T {
    result
        .as_ref()
        .ok()
        .and_then(|output| output.get(field))
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default()
}
