//! Gather accounts (SPEC §3): the account query, page by page, mapped to accounts.

use super::{RunInput, Stage, StageContext, StageOutput, artifacts, write};
use crate::error::StageError;
use crate::rules::RunDates;
use crate::rules::account_mapping::{collect_accounts, map_account};
use crate::rules::deletion_guard::too_many_rejected;
use crate::salesforce::soql::accounts_query;

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let dates = RunDates::new(input.as_of);
    let soql = accounts_query(dates.three_years_out);

    // Map each page as it arrives: the raw records (with their child rows) are far larger than
    // the accounts and need not all be held at once.
    let mut pages = ctx.salesforce()?.query_pages(&soql);
    let mut mapped = Vec::new();
    while let Some(page) = pages.next_page().await? {
        mapped.extend(page.records.iter().map(map_account));
    }
    let records = mapped.len();
    if records == 0 {
        // Zero accounts means a broken query or permissions, never "every customer left":
        // going on would mark every org for deletion.
        return Err(StageError::EmptySource(
            "the Salesforce account query returned no accounts; nothing was written".into(),
        ));
    }
    let gathered = collect_accounts(mapped, input.as_of);
    let key = write(ctx, &keys, artifacts::SALESFORCE_ACCOUNTS, &gathered).await?;
    for rejected in &gathered.rejected {
        tracing::warn!(salesforce_id = ?rejected.salesforce_id, reason = %rejected.reason, "account rejected");
    }

    let max_ratio = ctx.settings.sync.max_rejected_ratio;
    if too_many_rejected(gathered.rejected.len(), records, max_ratio) {
        // The artifact is written first so an admin can read every reason.
        return Err(StageError::TooManyRecordErrors {
            count: gathered.rejected.len(),
            max: (max_ratio * records as f64).floor() as usize,
            result_key: key,
        });
    }
    Ok(StageOutput::new(Stage::GatherAccounts, None)
        .count("records", records)
        .count("accounts", gathered.accounts.len())
        .count("rejected", gathered.rejected.len())
        .with_artifact(key))
}
