//! What the syncs need of each kind of record beyond compare's [`RecordKind`]: how a gathered
//! artifact is read for ownership (whole, or as ids and keys), and how records of the kind are
//! written — the bulk jobs, their items, what may be sent, and how a create Zendesk calls taken
//! is recognised as one of the sync's own. Organizations serve the two org syncs and the
//! partner sync; users serve the US Gov user sync.

use std::fmt::Display;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::lookups;
use crate::error::StageError;
use crate::model::instance::field;
use crate::model::{
    DesiredOrg, DesiredUser, ForeignRecord, Instance, OrgKey, OrgMark, OrgUpdate, RawZendeskOrg,
    RawZendeskOrgs, SalesforceId, SoldTo, UserMark, UserUpdate, ZendeskOrg, ZendeskOrgKeys,
    ZendeskUser, ZendeskUsers,
};
use crate::rules::account_mapping::MAX_NAME_CHARS;
use crate::rules::compare::{Orgs, RecordKind, Users};
use crate::snapshot::Source;
use crate::zendesk::{BulkKind, ZendeskClient};

/// A gathered Zendesk record, in whichever view an artifact is read: what ownership and the
/// keys in use need of it.
pub trait GatheredRecord {
    type Key: Display;
    fn id(&self) -> u64;
    /// Its key; `None` for an unmanaged record.
    fn key(&self) -> Option<Self::Key>;
    /// A partner organization (the partner sync's, and no other sync's).
    fn is_partner(&self) -> bool {
        false
    }
}

/// A gathered record as compare sees one it must not write: its id, name and key reserved.
pub trait AsForeign {
    fn foreign(&self) -> ForeignRecord;
}

/// A gathered artifact of Zendesk records: the instance, the records the sync may own, and the
/// instance's other records (agents, protected users), which no sync writes.
pub trait Gathered {
    type Record: GatheredRecord;
    fn instance(&self) -> Instance;
    fn records(&self) -> &[Self::Record];
    fn others(&self) -> &[ForeignRecord];
}

/// Every view of a gathered organization: its id, its managed Salesforce id, and whether it is
/// a partner org.
macro_rules! gathered_org {
    ($($view:ty => $partner:expr),* $(,)?) => {$(
        impl GatheredRecord for $view {
            type Key = SalesforceId;
            fn id(&self) -> u64 {
                self.id
            }
            fn key(&self) -> Option<SalesforceId> {
                self.managed_id()
            }
            fn is_partner(&self) -> bool {
                let partner: fn(&$view) -> bool = $partner;
                partner(self)
            }
        }
    )*};
}

gathered_org! {
    RawZendeskOrg => |org| org.partner,
    OrgKey => |org| org.partner,
    // An org as the API answers it (a taken create's look-up).
    ZendeskOrg => ZendeskOrg::is_partner,
}

impl AsForeign for RawZendeskOrg {
    fn foreign(&self) -> ForeignRecord {
        RawZendeskOrg::foreign(self)
    }
}

impl GatheredRecord for ZendeskUser {
    type Key = String;
    fn id(&self) -> u64 {
        self.id
    }
    fn key(&self) -> Option<String> {
        self.email_key()
    }
}

impl AsForeign for ZendeskUser {
    fn foreign(&self) -> ForeignRecord {
        ForeignRecord {
            id: self.id,
            name: self.name.clone(),
            key: self.email_key(),
        }
    }
}

/// Every gathered artifact: its instance, its records (in the field `$records`) and `others`.
macro_rules! gathered {
    ($($artifact:ty => $records:ident: $record:ty),* $(,)?) => {$(
        impl Gathered for $artifact {
            type Record = $record;
            fn instance(&self) -> Instance {
                self.instance
            }
            fn records(&self) -> &[$record] {
                &self.$records
            }
            fn others(&self) -> &[ForeignRecord] {
                &self.others
            }
        }
    )*};
}

gathered! {
    RawZendeskOrgs => orgs: RawZendeskOrg,
    ZendeskOrgKeys => orgs: OrgKey,
    ZendeskUsers => users: ZendeskUser,
}

/// Something in an item of a compare set that the sync will not send, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritable {
    /// The path inside the item (`organization_fields.ignore_deletion`, `name`).
    pub path: String,
    pub message: String,
}

/// The longest text the sync sends in a field (a Zendesk text field holds far less in
/// practice; this only stops a corrupt artifact).
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// How records of a kind are written: creates with one bulk job, updates and marks with
/// another; the items those jobs carry; what in a create or an update may be sent.
pub trait RecordWrites:
    RecordKind<
        Key: Send + Sync,
        Desired: DeserializeOwned + Serialize + Send + Sync,
        Zendesk: AsForeign + GatheredRecord,
        Update: DeserializeOwned + Serialize + Send + Sync,
        Mark: DeserializeOwned + Serialize + Send + Sync,
    >
{
    /// A create as the sync reads and sends it (the desired object, its fields as a map).
    type Create: DeserializeOwned + Serialize + Send + Sync;
    /// The bulk write that creates records, and the one that updates and marks them.
    const CREATE: BulkKind;
    const UPDATE: BulkKind;
    /// The object of fields a sync owns some of (`organization_fields`, `user_fields`).
    const FIELDS: &'static str;

    fn create_key(create: &Self::Create) -> &Self::Key;
    fn create_name(create: &Self::Create) -> &str;
    /// The Salesforce account a new record stands for (a user's: their contact's account).
    fn create_account(create: &Self::Create) -> &SalesforceId;
    fn create_fields(create: &Self::Create) -> &Map<String, Value>;
    /// The snapshot of `instance` its records are gathered from, which its writes are folded
    /// into (SPEC §12); `None` when its records are gathered in full every run.
    fn snapshot(instance: Instance) -> Option<Source> {
        let _ = instance;
        None
    }
    /// Whom to attach to a new record (Global orgs' sold-to contacts); never sent as a field.
    fn sold_tos(create: &Self::Create) -> &[SoldTo] {
        let _ = create;
        &[]
    }
    fn update_name(update: &Self::Update) -> Option<&str>;
    fn update_fields(update: &Self::Update) -> &Map<String, Value>;

    /// The Create Many item of a create.
    fn create_item(create: &Self::Create) -> Value;
    /// The Update Many item of an update and of a mark (`{"id": …, …}`).
    fn update_item(update: &Self::Update) -> Value;
    fn mark_item(mark: &Self::Mark) -> Value;

    /// A create Zendesk refused as taken: the id of the record holding its name or email when
    /// that record is the sync's own (`owns`) with the same key — a create that landed before (a
    /// redrive, a lost answer) — else why it is not.
    fn taken_by(
        client: &ZendeskClient,
        create: &Self::Create,
        owns: impl Fn(&ZendeskOrg) -> bool + Send + Sync,
    ) -> impl Future<Output = Result<Result<u64, String>, StageError>> + Send;

    /// What in a create the sync must not send, given the fields it owns.
    fn unwritable_create(create: &Self::Create, owned: &[&str]) -> Option<Unwritable> {
        unwritable(
            Some(Self::create_name(create)),
            Self::FIELDS,
            Self::create_fields(create),
            owned,
        )
    }

    /// What in an update the sync must not send, given the fields it owns.
    fn unwritable_update(update: &Self::Update, owned: &[&str]) -> Option<Unwritable> {
        unwritable(
            Self::update_name(update),
            Self::FIELDS,
            Self::update_fields(update),
            owned,
        )
    }
}

/// A name, and the fields of `fields`: owned (SPEC §6: never an agent's or the deletion job's
/// field) and of a size Zendesk takes.
fn unwritable(
    name: Option<&str>,
    fields_key: &str,
    fields: &Map<String, Value>,
    owned: &[&str],
) -> Option<Unwritable> {
    if let Some(name) = name {
        let length = name.chars().count();
        if length > MAX_NAME_CHARS {
            return Some(Unwritable {
                path: "name".into(),
                message: format!(
                    "the name is {length} characters long; Zendesk takes at most {MAX_NAME_CHARS}"
                ),
            });
        }
    }
    for (field, value) in fields {
        if !owned.contains(&field.as_str()) {
            return Some(Unwritable {
                path: format!("{fields_key}.{field}"),
                message: "the sync never writes this field".into(),
            });
        }
        if value
            .as_str()
            .is_some_and(|text| text.len() > MAX_TEXT_BYTES)
        {
            return Some(Unwritable {
                path: format!("{fields_key}.{field}"),
                message: format!("a text of more than {MAX_TEXT_BYTES} bytes"),
            });
        }
    }
    None
}

/// The Update Many item of a change: the record's id, its new name, and the other attributes
/// that changed, in this order.
fn changed<const N: usize>(
    id: u64,
    name: Option<&str>,
    attributes: [(&str, Option<Value>); N],
) -> Value {
    let mut item = json!({"id": id});
    if let Some(name) = name {
        item["name"] = json!(name);
    }
    for (key, value) in attributes {
        if let Some(value) = value {
            item[key] = value;
        }
    }
    item
}

/// Changed fields, if any.
fn fields(changed: &Map<String, Value>) -> Option<Value> {
    (!changed.is_empty()).then(|| Value::Object(changed.clone()))
}

impl RecordWrites for Orgs {
    type Create = DesiredOrg;
    const CREATE: BulkKind = BulkKind::CreateOrganizations;
    const UPDATE: BulkKind = BulkKind::UpdateOrganizations;
    const FIELDS: &'static str = "organization_fields";

    fn snapshot(instance: Instance) -> Option<Source> {
        Some(Source::ZendeskOrgs(instance))
    }

    fn create_key(create: &DesiredOrg) -> &SalesforceId {
        &create.salesforce_id
    }
    fn create_name(create: &DesiredOrg) -> &str {
        &create.name
    }
    fn create_account(create: &DesiredOrg) -> &SalesforceId {
        &create.salesforce_id
    }
    fn create_fields(create: &DesiredOrg) -> &Map<String, Value> {
        &create.organization_fields
    }
    fn sold_tos(create: &DesiredOrg) -> &[SoldTo] {
        &create.sold_tos
    }
    fn update_name(update: &OrgUpdate) -> Option<&str> {
        update.name.as_deref()
    }
    fn update_fields(update: &OrgUpdate) -> &Map<String, Value> {
        &update.organization_fields
    }

    fn create_item(create: &DesiredOrg) -> Value {
        json!({"name": create.name, "organization_fields": create.organization_fields})
    }
    fn update_item(update: &OrgUpdate) -> Value {
        changed(
            update.id,
            update.name.as_deref(),
            [(Self::FIELDS, fields(&update.organization_fields))],
        )
    }
    fn mark_item(mark: &OrgMark) -> Value {
        json!({"id": mark.id, "organization_fields": {field::MARK_FOR_DELETION: true}})
    }

    /// The org holding the name, if it is the sync's org of the same account.
    async fn taken_by(
        client: &ZendeskClient,
        create: &DesiredOrg,
        owns: impl Fn(&ZendeskOrg) -> bool + Send + Sync,
    ) -> Result<Result<u64, String>, StageError> {
        lookups::own_org_holding_name(client, &create.name, &create.salesforce_id, owns).await
    }
}

impl RecordWrites for Users {
    type Create = DesiredUser;
    const CREATE: BulkKind = BulkKind::CreateUsers;
    const UPDATE: BulkKind = BulkKind::UpdateUsers;
    const FIELDS: &'static str = "user_fields";

    fn snapshot(instance: Instance) -> Option<Source> {
        Some(Source::ZendeskUsers(instance))
    }

    fn create_key(create: &DesiredUser) -> &String {
        &create.email
    }
    fn create_name(create: &DesiredUser) -> &str {
        &create.name
    }
    fn create_account(create: &DesiredUser) -> &SalesforceId {
        &create.salesforce_id
    }
    fn create_fields(create: &DesiredUser) -> &Map<String, Value> {
        &create.user_fields
    }
    fn update_name(update: &UserUpdate) -> Option<&str> {
        update.name.as_deref()
    }
    fn update_fields(update: &UserUpdate) -> &Map<String, Value> {
        &update.user_fields
    }

    fn create_item(u: &DesiredUser) -> Value {
        json!({
            "name": u.name,
            "email": u.email,
            "role": "end-user",
            "organization_id": u.organization_id,
            "user_fields": u.user_fields,
        })
    }
    fn update_item(update: &UserUpdate) -> Value {
        changed(
            update.id,
            update.name.as_deref(),
            [
                // SPEC §9: the US Gov user sync moves a user to the org of their contact's account.
                (
                    "organization_id",
                    update.organization_id.map(|id| json!(id)),
                ),
                (Self::FIELDS, fields(&update.user_fields)),
            ],
        )
    }
    fn mark_item(mark: &UserMark) -> Value {
        json!({"id": mark.id, "user_fields": {field::NOT_IN_SFDC: true}})
    }

    /// The user holding the email, if they already are in the org they were to be created in.
    async fn taken_by(
        client: &ZendeskClient,
        user: &DesiredUser,
        _: impl Fn(&ZendeskOrg) -> bool + Send + Sync,
    ) -> Result<Result<u64, String>, StageError> {
        lookups::existing_user(client, &user.email, user.organization_id).await
    }
}
