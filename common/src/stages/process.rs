//! Process (SPEC §5): accounts → desired Global and US Gov objects, with `plans.yaml`, the
//! overrides and `process_report.json`.

use super::artifacts;
use super::context::StageContext;
use super::input::{RunInput, StageOutput};
use super::io::{mismatch, read, write};
use super::table::Stage;
use crate::config::SyncSettings;
use crate::error::StageError;
use crate::model::{
    DesiredOrgsHead, DesiredOrgsTail, Instance, SalesforceAccounts, ZendeskOrgKeys,
};
use crate::rules::processor::{held_ids, partner_ids, process_each};
use crate::rules::{Overrides, Plans, ProcessInput, RunDates};
use crate::store::{ArtifactStore, StoreError, StreamedArtifact, write_encoded};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let global_name = artifacts::zendesk_orgs(Instance::Global);
    // Only which ids partner orgs carry: the orgs' fields are not built. Read before the
    // accounts, so that the Global orgs' bytes (290 MB at 200 000 accounts) are let go before
    // the accounts are parsed, not held beside them.
    let global_orgs: ZendeskOrgKeys = read(ctx, &keys, &global_name).await?;
    if global_orgs.instance != Instance::Global {
        return Err(mismatch(
            &keys.key(&global_name)?,
            "instance",
            format!("expected global, found {}", global_orgs.instance),
        ));
    }
    let accounts: SalesforceAccounts = read(ctx, &keys, artifacts::SALESFORCE_ACCOUNTS).await?;
    if accounts.as_of != input.as_of {
        return Err(mismatch(
            &keys.key(artifacts::SALESFORCE_ACCOUNTS)?,
            "as_of",
            format!(
                "the artifact is for {} but this run is for {}",
                accounts.as_of, input.as_of
            ),
        ));
    }
    let plans = load_plans(&ctx.settings.sync)?;
    let overrides = load_overrides(&ctx.settings.sync, ctx.store.as_ref(), &ctx.http).await?;

    let input_rules = ProcessInput {
        accounts: &accounts,
        partner_ids: &partner_ids(&global_orgs.orgs),
        plans: &plans,
        overrides: &overrides,
        dates: RunDates::new(input.as_of),
    };
    // Each object is encoded the moment it is made and dropped: at 200 000 accounts holding
    // them all as maps was the stage's largest allocation.
    let begin = |instance| {
        let head = DesiredOrgsHead {
            instance,
            as_of: input.as_of,
        };
        StreamedArtifact::begin(&head, "orgs").expect("an instance and a date encode")
    };
    let (mut global, mut usgov) = (begin(Instance::Global), begin(Instance::Usgov));
    let mut unencodable = None;
    let report = process_each(&input_rules, |instance, object| {
        let encoder = match instance {
            Instance::Global => &mut global,
            Instance::Usgov => &mut usgov,
        };
        if let Err(e) = encoder.push(&object) {
            unencodable.get_or_insert_with(|| format!("{}: {e}", object.salesforce_id));
        }
    });
    let held = held_ids(&accounts);
    // The inputs are done with: free them before the outputs are written.
    drop(accounts);
    drop(global_orgs);
    if let Some(message) = unencodable {
        return Err(StoreError::Unencodable {
            key: keys.key(&artifacts::desired_orgs(Instance::Global))?,
            message,
        }
        .into());
    }
    if !report.unmapped_charges.is_empty() {
        tracing::warn!(charges = ?report.unmapped_charges, "charge names not in plans.yaml");
    }
    let output = StageOutput::new(Stage::Process, None)
        .count("accounts", report.accounts)
        .count("global_objects", global.items())
        .count("usgov_objects", usgov.items())
        .count("skipped_accounts", report.skipped_accounts.len())
        .count("unmapped_charge_names", report.unmapped_charges.len())
        .count("overrides_applied", report.overrides.applied.len())
        .count("overrides_expired", report.overrides.expired.len());
    let mut written = Vec::new();
    for (instance, encoder) in [(Instance::Global, global), (Instance::Usgov, usgov)] {
        let key = keys.key(&artifacts::desired_orgs(instance))?;
        let tail = DesiredOrgsTail {
            held_salesforce_ids: &held,
        };
        let body = encoder.finish(&tail).expect("Salesforce ids encode");
        write_encoded(ctx.store.as_ref(), &key, body).await?;
        written.push(key);
    }
    written.push(write(ctx, &keys, artifacts::PROCESS_REPORT, &report).await?);
    Ok(written
        .into_iter()
        .fold(output, |output, key| output.with_artifact(key)))
}

/// The plans of the settings (shared with `explain`, so it reads what the run read).
pub fn load_plans(sync: &SyncSettings) -> Result<Plans, StageError> {
    match &sync.plans_file {
        None => Ok(Plans::default_plans()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StageError::InvalidConfig(format!(
                    "setting sync.plans_file: cannot read {path}: {e}"
                ))
            })?;
            Plans::from_yaml(&text, path).map_err(|e| StageError::InvalidConfig(e.to_string()))
        }
    }
}

/// The overrides source (SPEC §5.2): an `http(s)://` URL, `store:KEY` in the artifact store, or
/// a file path. No source means no overrides.
pub async fn load_overrides(
    sync: &SyncSettings,
    store: &dyn ArtifactStore,
    http: &reqwest::Client,
) -> Result<Overrides, StageError> {
    let Some(source) = sync.overrides.as_deref() else {
        return Ok(Overrides::default());
    };
    let text = if source.starts_with("https://") || source.starts_with("http://") {
        fetch(http, source, sync).await?
    } else if let Some(key) = source.strip_prefix("store:") {
        let body = store.get(key).await?.ok_or_else(|| {
            StageError::InvalidConfig(format!(
                "setting sync.overrides: {key} does not exist in {}",
                store.describe()
            ))
        })?;
        String::from_utf8(body.to_vec()).map_err(|_| {
            StageError::InvalidConfig(format!("setting sync.overrides: {key} is not UTF-8 text"))
        })?
    } else {
        std::fs::read_to_string(source).map_err(|e| {
            StageError::InvalidConfig(format!("setting sync.overrides: cannot read {source}: {e}"))
        })?
    };
    Overrides::from_yaml(&text, source).map_err(|e| StageError::InvalidConfig(e.to_string()))
}

/// Fetches the overrides file, with the token in the header the settings name when one is
/// set (a private or internal project serves its files only so). A refusal (401, 403) is a
/// setting to fix, named; the token never appears in a message.
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    sync: &SyncSettings,
) -> Result<String, StageError> {
    let mut request = http.get(url);
    if let Some(token) = &sync.overrides_token {
        let header = sync.overrides_token_header.trim();
        request = if header.eq_ignore_ascii_case("authorization") {
            request.bearer_auth(token.expose())
        } else {
            request.header(header, token.expose())
        };
    }
    let response = request.send().await.map_err(|e| {
        StageError::Retryable(format!(
            "fetching the overrides from {url}: {}",
            crate::http::describe_failure(&e)
        ))
    })?;
    let status = response.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(StageError::Retryable(format!(
            "fetching the overrides from {url}: HTTP {status}"
        )));
    }
    if matches!(status.as_u16(), 401 | 403) {
        let setting = if sync.overrides_token.is_some() {
            "setting sync.overrides_token (secrets.overrides_token_arn in Lambda) is refused"
        } else {
            "setting sync.overrides_token (secrets.overrides_token_arn in Lambda) is not set, and the source needs one"
        };
        return Err(StageError::InvalidConfig(format!(
            "{setting}: {url} answered HTTP {status} (the token goes in the {} header, sync.overrides_token_header)",
            sync.overrides_token_header.trim()
        )));
    }
    if !status.is_success() {
        // GitLab answers 404 for a private or internal project to a reader without a token.
        let hint = if status.as_u16() == 404 && sync.overrides_token.is_none() {
            "; a private or internal project answers 404 without a token: set sync.overrides_token (secrets.overrides_token_arn in Lambda)"
        } else {
            ""
        };
        return Err(StageError::InvalidConfig(format!(
            "setting sync.overrides: {url} answered HTTP {status}{hint}"
        )));
    }
    response.text().await.map_err(|e| {
        StageError::Retryable(format!(
            "reading the overrides from {url}: {}",
            crate::http::describe_failure(&e)
        ))
    })
}
