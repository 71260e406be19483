//! Gather users (SPEC §9, seed 000): every user of the US Gov instance; the sync owns the
//! end-users whose email is not protected, and keeps everyone else only by id, name and email
//! → `users/zendesk_users.json`. The users are read through their snapshot (`snapshots.rs`):
//! only the changes since the last gather (the Incremental User Export), or every user when the
//! reconcile policy says so.

use super::artifacts;
use super::context::StageContext;
use super::input::{RunInput, StageOutput};
use super::io::write;
use super::snapshots;
use super::table::Stage;
use crate::error::StageError;
use crate::model::{SyncKind, ZendeskUser};
use crate::rules::users::owned_users;
use crate::snapshot::Source;
use crate::store::StoreError;

pub async fn run(ctx: &StageContext, input: RunInput) -> Result<StageOutput, StageError> {
    let keys = input.keys()?;
    if input.sync.is_some_and(|s| s != SyncKind::Users) {
        return Err(StageError::InvalidConfig(format!(
            "stage input: the gather-users stage serves the users sync, not {}",
            input.sync.map_or("", |s| s.as_str())
        )));
    }
    let instance = SyncKind::Users.instance();
    let feed = snapshots::ZendeskFeed {
        ctx,
        source: Source::ZendeskUsers(instance),
    };
    let (snapshot, note) = snapshots::current(ctx, &feed, input.gather_request()).await?;
    let users: Vec<ZendeskUser> = snapshot
        .records
        .values()
        .map(|record| {
            record.parse().map_err(|e| {
                StageError::from(StoreError::InvalidArtifact {
                    key: Source::ZendeskUsers(instance).key(),
                    path: "records".into(),
                    message: e.to_string(),
                })
            })
        })
        .collect::<Result<_, _>>()?;
    drop(snapshot);
    let total = users.len();
    let gathered = owned_users(instance, users, &ctx.settings.sync.user_protection());
    let key = write(ctx, &keys, artifacts::USERS, &gathered).await?;
    Ok(StageOutput::new(Stage::GatherUsers, Some(instance))
        .count("users", total)
        .count("end_users", gathered.users.len())
        .count("protected", gathered.protected)
        .count("not_end_users", gathered.not_end_users)
        .with_gather(note)
        .with_artifact(key))
}
