//! Writing US Gov end-users (SPEC §8, §9): creates with Create Many Users (one Create User each
//! when bulk import is off), updates and marks with Update Many Users.

use serde_json::{Value, json};

use super::{Managed, Unwritable, Writes, existing_user, record_error, taken, unwritable};
use crate::error::StageError;
use crate::model::instance::field;
use crate::model::{
    DesiredUser, Instance, RecordOutcome, SyncAction, SyncKind, SyncResult, UserMark, UserUpdate,
    ZendeskUser, ZendeskUsers, email_key,
};
use crate::stages::StageContext;
use crate::store::RunKeys;
use crate::zendesk::{ItemOutcome, ZendeskClient, ZendeskError};

/// The user fields the user sync writes; no other key ever leaves it.
const OWNED_USER_FIELDS: &[&str] = &[field::NOT_IN_SFDC];

pub(in crate::stages) struct UserWrites;

impl Writes for UserWrites {
    type Create = DesiredUser;
    type Update = UserUpdate;
    type Mark = UserMark;

    type Gathered = ZendeskUsers;

    fn instance_of(gathered: &ZendeskUsers) -> Instance {
        gathered.instance
    }

    fn managed(_: SyncKind, gathered: &ZendeskUsers) -> Managed {
        let owned = gathered
            .users
            .iter()
            .filter_map(|user| user.email_key().map(|email| (user.id, email)))
            .collect();
        let in_use = gathered
            .users
            .iter()
            .filter_map(ZendeskUser::email_key)
            .chain(
                gathered
                    .others
                    .iter()
                    .filter_map(|o| o.key.as_deref().and_then(email_key)),
            )
            .collect();
        Managed {
            owned,
            keys: in_use,
        }
    }

    fn create_key(create: &DesiredUser) -> String {
        create.email.clone()
    }

    fn update_target(update: &UserUpdate) -> (u64, String) {
        (update.id, update.email.clone())
    }

    fn mark_target(mark: &UserMark) -> (u64, String) {
        (mark.id, mark.email.clone())
    }

    fn unwritable_create(_: SyncKind, create: &DesiredUser) -> Option<Unwritable> {
        unwritable(
            Some(&create.name),
            "user_fields",
            &create.user_fields,
            OWNED_USER_FIELDS,
        )
    }

    fn unwritable_update(_: SyncKind, update: &UserUpdate) -> Option<Unwritable> {
        unwritable(
            update.name.as_deref(),
            "user_fields",
            &update.user_fields,
            OWNED_USER_FIELDS,
        )
    }

    async fn finish(_: &StageContext, _: &RunKeys, _: SyncKind, _: &mut SyncResult) {}

    async fn create(
        ctx: &StageContext,
        sync: SyncKind,
        creates: &[DesiredUser],
        result: &mut SyncResult,
    ) -> Result<(), StageError> {
        let client = ctx.zendesk(sync.instance())?;
        let items = creates
            .iter()
            .map(|u| {
                json!({
                    "name": u.name,
                    "email": u.email,
                    "role": "end-user",
                    "organization_id": u.organization_id,
                    "user_fields": u.user_fields,
                })
            })
            .collect();
        let bulk = client.create_users(items).await?;
        if bulk.fell_back_to_single_creates {
            result.warn(&format!(
                "{sync}: bulk user import is disabled; users were created one by one"
            ));
        }
        for outcome in bulk.outcomes {
            let user = &creates[outcome.index];
            let (id, already) = match outcome.result {
                Ok(id) => (id, false),
                Err(e) if taken(&e) => {
                    match existing_user(client, &user.email, user.organization_id).await? {
                        Ok(id) => (Some(id), true),
                        Err(why) => {
                            let mut error = record_error(&user.email, SyncAction::Create, e);
                            error.details = Some(format!(
                                "{}; {why}",
                                error.details.as_deref().unwrap_or("the email is taken")
                            ));
                            result.errors.push(error);
                            continue;
                        }
                    }
                }
                Err(e) => {
                    result
                        .errors
                        .push(record_error(&user.email, SyncAction::Create, e));
                    continue;
                }
            };
            result.created.push(RecordOutcome {
                already,
                ..RecordOutcome::new(user.email.clone(), id)
            });
        }
        Ok(())
    }

    fn update_item(update: &UserUpdate) -> Value {
        let mut item = json!({"id": update.id});
        if let Some(name) = &update.name {
            item["name"] = json!(name);
        }
        // SPEC §9: the US Gov user sync moves a user to the org of their contact's account.
        if let Some(organization_id) = update.organization_id {
            item["organization_id"] = json!(organization_id);
        }
        if !update.user_fields.is_empty() {
            item["user_fields"] = Value::Object(update.user_fields.clone());
        }
        item
    }

    fn mark_item(mark: &UserMark) -> Value {
        json!({"id": mark.id, "user_fields": {field::NOT_IN_SFDC: true}})
    }

    async fn update_many(
        client: &ZendeskClient,
        items: Vec<Value>,
    ) -> Result<Vec<ItemOutcome>, ZendeskError> {
        client.update_users(items).await
    }
}
