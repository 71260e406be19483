//! Gather users (SPEC §9, seed 000): every user of the US Gov instance; the sync owns the
//! end-users whose email is not protected, and keeps everyone else only by id, name and email
//! → `users/zendesk_users.json`.

use super::artifacts;
use super::context::StageContext;
use super::input::{RunInput, StageOutput};
use super::io::{write, zendesk_records};
use super::table::Stage;
use crate::error::StageError;
use crate::model::{SyncKind, ZendeskUser};
use crate::rules::users::owned_users;

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    if input.sync.is_some_and(|s| s != SyncKind::Users) {
        return Err(StageError::InvalidConfig(format!(
            "stage input: the gather-users stage serves the users sync, not {}",
            input.sync.map_or("", |s| s.as_str())
        )));
    }
    let instance = SyncKind::Users.instance();
    // Every role, not `role=end-user`: agents' and admins' emails must be known so that no
    // contact is created over them.
    let raw = ctx.zendesk(instance)?.list_users(None).await?;
    let users = zendesk_records(instance, "a user", raw, ZendeskUser::from_api)?;
    let total = users.len();
    let gathered = owned_users(instance, users, &ctx.settings.sync.user_protection());
    let key = write(ctx, &keys, artifacts::USERS, &gathered).await?;
    Ok(StageOutput::new(Stage::GatherUsers, Some(instance))
        .count("users", total)
        .count("end_users", gathered.users.len())
        .count("protected", gathered.protected)
        .count("not_end_users", gathered.not_end_users)
        .with_artifact(key))
}
