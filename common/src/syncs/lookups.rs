//! The look-ups a sync makes when Zendesk refuses a create as taken: is the holder the sync's own
//! record with the same key — a create that landed before (a redrive, a lost answer) — and if
//! not, who holds it. Also used by the Global sync's sold-to step.

use serde_json::Value;

use crate::error::StageError;
use crate::model::{SalesforceId, ZendeskOrg, email_key};
use crate::zendesk::ZendeskClient;

/// The org holding `name`, if it is one the sync owns (`owns`) of the account `salesforce_id`.
pub(crate) async fn own_org_holding_name(
    client: &ZendeskClient,
    name: &str,
    salesforce_id: &SalesforceId,
    owns: impl Fn(&ZendeskOrg) -> bool,
) -> Result<Result<u64, String>, StageError> {
    let found = client.search_organizations_by_name(name.trim()).await?;
    let same = found.into_iter().find_map(|raw| {
        let org = ZendeskOrg::from_api(raw).ok()?;
        (org.managed_id().as_ref() == Some(salesforce_id) && owns(&org)).then_some(org.id)
    });
    Ok(same.ok_or_else(|| {
        "no organization of this account holds the name (another does, or search has not seen it yet)".to_owned()
    }))
}

/// A user create refused because the email is taken: when the user already is in the org it was
/// to be created in, this is a re-run of a create that landed (a redrive, a lost answer) and
/// counts as done. The org's user list is read before the search, because a user created
/// moments ago is in the list at once but may not be in the search index yet.
pub(crate) async fn existing_user(
    client: &ZendeskClient,
    email: &str,
    organization_id: u64,
) -> Result<Result<u64, String>, StageError> {
    if let Some(id) = user_in_org(client, email, organization_id).await? {
        return Ok(Ok(id));
    }
    Ok(Err(match client.search_user_by_email(email).await? {
        Some(found) => format!(
            "it belongs to Zendesk user {} ({}) in organization {}, who is not this sync's to change",
            found.get("id").and_then(Value::as_u64).unwrap_or_default(),
            found.get("role").and_then(Value::as_str).unwrap_or("?"),
            found
                .get("organization_id")
                .and_then(Value::as_u64)
                .map_or("none".to_owned(), |id| id.to_string())
        ),
        None => "no user with it is found yet".to_owned(),
    }))
}

/// The id of the user with `email` among the users of `organization_id`, if any: the list
/// shows a user created moments ago, which search may not have indexed yet.
pub(crate) async fn user_in_org(
    client: &ZendeskClient,
    email: &str,
    organization_id: u64,
) -> Result<Option<u64>, StageError> {
    let wanted = email_key(email);
    let in_org = client.list_organization_users(organization_id).await?;
    Ok(in_org
        .iter()
        .find(|raw| raw.get("email").and_then(Value::as_str).and_then(email_key) == wanted)
        .and_then(|found| found.get("id").and_then(Value::as_u64)))
}
