//! Gather organizations (SPEC §4), per instance: every org, managed or not, as Zendesk has it.

use super::{RunInput, Stage, StageContext, StageOutput, artifacts, write};
use crate::error::StageError;
use crate::model::{ZendeskOrg, ZendeskOrgs};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let instance = input.instance(Stage::GatherOrgs)?;
    let raw = ctx.zendesk(instance)?.list_organizations().await?;
    let orgs = raw
        .into_iter()
        .map(ZendeskOrg::from_api)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            StageError::Retryable(format!(
                "Zendesk {instance} returned an unusable organization: {e}"
            ))
        })?;
    let managed = orgs.iter().filter(|o| o.managed_id().is_some()).count();
    let partners = orgs.iter().filter(|o| o.is_partner()).count();
    let gathered = ZendeskOrgs { instance, orgs };
    let key = write(ctx, &keys, &artifacts::zendesk_orgs(instance), &gathered).await?;
    Ok(StageOutput::new(Stage::GatherOrgs, Some(instance))
        .count("orgs", gathered.orgs.len())
        .count("managed", managed)
        .count("unmanaged", gathered.orgs.len() - managed)
        .count("partners", partners)
        .with_artifact(key))
}
