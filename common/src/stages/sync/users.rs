//! Writing US Gov end-users (SPEC §8, §9): creates with Create Many Users (one Create User each
//! when bulk import is off), updates and marks with Update Many Users.

use serde_json::{Value, json};

use super::{Managed, Unwritable, Writes, existing_user, unwritable};
use crate::error::StageError;
use crate::model::instance::field;
use crate::model::{
    DesiredUser, Instance, SyncKind, SyncResult, UserMark, UserUpdate, ZendeskUser, ZendeskUsers,
    email_key,
};
use crate::stages::StageContext;
use crate::store::RunKeys;
use crate::zendesk::{BulkKind, ZendeskClient};

/// The user fields the user sync writes; no other key ever leaves it.
const OWNED_USER_FIELDS: &[&str] = &[field::NOT_IN_SFDC];

pub(in crate::stages) struct UserWrites;

impl Writes for UserWrites {
    type Create = DesiredUser;
    type Update = UserUpdate;
    type Mark = UserMark;

    type Gathered = ZendeskUsers;

    const CREATE: BulkKind = BulkKind::CreateUsers;
    const UPDATE: BulkKind = BulkKind::UpdateUsers;

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

    fn create_item(u: &DesiredUser) -> Value {
        json!({
            "name": u.name,
            "email": u.email,
            "role": "end-user",
            "organization_id": u.organization_id,
            "user_fields": u.user_fields,
        })
    }

    async fn taken_by(
        client: &ZendeskClient,
        _: SyncKind,
        user: &DesiredUser,
    ) -> Result<Result<u64, String>, StageError> {
        existing_user(client, &user.email, user.organization_id).await
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
}
