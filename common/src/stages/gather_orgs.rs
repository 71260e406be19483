//! Gather organizations (SPEC §4), for one sync:
//! - an org sync (`{"instance": …}`): every org of the instance, managed or not →
//!   `zendesk_{instance}.json`;
//! - the partner sync (`{"sync": "partners"}`), after the Global org sync: Global's partner orgs,
//!   the others only by id, name and Salesforce id → `partner/zendesk_orgs.json`;
//! - the user sync (`{"sync": "users"}`), after the US Gov org sync, so orgs created by it have
//!   their ids: every US Gov org → `users/zendesk_orgs.json`.

use super::{RunInput, Stage, StageContext, StageOutput, artifacts, write, zendesk_records};
use crate::error::StageError;
use crate::model::{ForeignRecord, SyncKind, ZendeskOrg, ZendeskOrgs};

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    let sync = input.sync(Stage::GatherOrgs)?;
    let instance = sync.instance();
    let raw = ctx.zendesk(instance)?.list_organizations().await?;
    let orgs = zendesk_records(instance, "an organization", raw, ZendeskOrg::from_api)?;
    let total = orgs.len();
    let managed = orgs.iter().filter(|o| o.managed_id().is_some()).count();
    let partners = orgs.iter().filter(|o| o.is_partner()).count();
    let (name, gathered) = match sync {
        SyncKind::Global | SyncKind::Usgov => (
            artifacts::zendesk_orgs(instance),
            ZendeskOrgs {
                instance,
                orgs,
                others: Vec::new(),
            },
        ),
        SyncKind::Partners => {
            let (partner_orgs, others): (Vec<ZendeskOrg>, Vec<ZendeskOrg>) =
                orgs.into_iter().partition(|org| sync.owns_org(org));
            (
                artifacts::PARTNER_ORGS.to_owned(),
                ZendeskOrgs {
                    instance,
                    orgs: partner_orgs,
                    others: others.iter().map(ForeignRecord::of_org).collect(),
                },
            )
        }
        SyncKind::Users => (
            artifacts::USER_ORGS.to_owned(),
            ZendeskOrgs {
                instance,
                orgs,
                others: Vec::new(),
            },
        ),
    };
    let key = write(ctx, &keys, &name, &gathered).await?;
    Ok(StageOutput::new(Stage::GatherOrgs, Some(instance))
        .count("orgs", total)
        .count("managed", managed)
        .count("unmanaged", total - managed)
        .count("partners", partners)
        .with_artifact(key))
}
