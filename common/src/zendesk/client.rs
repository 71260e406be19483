//! The Zendesk client the gather and sync stages use: cursor-paged reads, the searches and
//! single writes of the sold-to contact handling, and paced bulk writes.
//!
//! Records are returned as raw JSON maps, so attributes and custom fields this code does not
//! know survive a read (and a gathered artifact is a faithful snapshot).

use std::collections::HashSet;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Map, Value, json};
use url::Url;

use super::config::ZendeskConfig;
use super::error::ZendeskError;
use super::jobs::{
    AcceptedJob, BulkEndpoint, BulkOptions, BulkRun, CREATE_MEMBERSHIPS, CREATE_ORGANIZATIONS,
    CREATE_USERS, Chunk, Jobs, LostAnswers, OnForbidden, UPDATE_ORGANIZATIONS, UPDATE_USERS,
};
use super::outcomes::{BulkUsers, ItemError, ItemOutcome, Outcomes};
use super::transport::{RequestCounts, Transport};
use crate::progress;

/// Users created at once when bulk import is off: Zendesk documents no per-second limit for
/// Create User, but the account's per-minute limit is shared with agents and integrations.
const SINGLE_CREATE_CONCURRENCY: usize = 3;

/// Ids Show Many takes at once.
const SHOW_MANY_IDS: usize = 100;

type Record = Map<String, Value>;

/// Where an incremental export starts: a time (the first export after a full read) or the
/// cursor the last one ended at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportStart {
    Time(i64),
    Cursor(String),
}

/// The paging fields of a cursor-based export's page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CursorPage {
    after_cursor: String,
    after_url: Option<String>,
    end_of_stream: bool,
}

impl CursorPage {
    fn of(body: &Value) -> Result<CursorPage, ZendeskError> {
        let invalid = |what: &str| ZendeskError::InvalidResponse {
            message: format!("a cursor export page has no {what}"),
        };
        Ok(CursorPage {
            after_cursor: body
                .get("after_cursor")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("after_cursor"))?
                .to_owned(),
            after_url: body
                .get("after_url")
                .and_then(Value::as_str)
                .map(str::to_owned),
            end_of_stream: body
                .get("end_of_stream")
                .and_then(Value::as_bool)
                .ok_or_else(|| invalid("end_of_stream"))?,
        })
    }
}

/// The paging fields of an incremental export's page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExportPage {
    end_time: i64,
    end_of_stream: bool,
    next_page: Option<String>,
}

impl ExportPage {
    fn of(body: &Value) -> Result<ExportPage, ZendeskError> {
        let invalid = |what: &str| ZendeskError::InvalidResponse {
            message: format!("an incremental export page has no {what}"),
        };
        Ok(ExportPage {
            end_time: body
                .get("end_time")
                .and_then(Value::as_i64)
                .ok_or_else(|| invalid("numeric end_time"))?,
            end_of_stream: body
                .get("end_of_stream")
                .and_then(Value::as_bool)
                .ok_or_else(|| invalid("end_of_stream"))?,
            next_page: body
                .get("next_page")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// The bulk writes a sync sends, each one Zendesk endpoint of background jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkKind {
    CreateOrganizations,
    UpdateOrganizations,
    CreateUsers,
    UpdateUsers,
    CreateMemberships,
}

impl BulkKind {
    fn endpoint(self) -> &'static BulkEndpoint {
        match self {
            BulkKind::CreateOrganizations => &CREATE_ORGANIZATIONS,
            BulkKind::UpdateOrganizations => &UPDATE_ORGANIZATIONS,
            BulkKind::CreateUsers => &CREATE_USERS,
            BulkKind::UpdateUsers => &UPDATE_USERS,
            BulkKind::CreateMemberships => &CREATE_MEMBERSHIPS,
        }
    }
}

/// The items of Create Many Memberships for `(user_id, organization_id)` pairs.
pub fn membership_items(pairs: &[(u64, u64)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(user_id, organization_id)| {
            json!({"user_id": user_id, "organization_id": organization_id})
        })
        .collect()
}

/// What a bulk write did, as far as it went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkWrite {
    /// One outcome per item whose job finished, in index order.
    pub outcomes: Vec<ItemOutcome>,
    /// Jobs accepted whose outcome is not known yet (running at the deadline, or working
    /// past the job timeout): ask Zendesk again later.
    pub open: Vec<AcceptedJob>,
    /// Items never sent (the deadline came first), in index order.
    pub unsubmitted: Vec<usize>,
    pub lost: LostAnswers,
    pub fell_back_to_single_creates: bool,
}

/// Whether a paged read is the stage's progress (a gather's list) or a lookup on the way (the
/// sync's searches and org user lists, whose pages are not what the sync counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paging {
    Reported,
    Quiet,
}

/// One Zendesk instance's API, as one API user. Cheap to share: every method takes `&self`,
/// and concurrent bulk calls share the client's job allowance.
pub struct ZendeskClient {
    config: ZendeskConfig,
    transport: Transport,
    jobs: Jobs,
}

/// Shows the configuration (token redacted) and the calls made so far.
impl std::fmt::Debug for ZendeskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZendeskClient")
            .field("config", &self.config)
            .field("requests", &self.request_counts())
            .finish_non_exhaustive()
    }
}

impl ZendeskClient {
    /// A client for `config`; nothing is sent until the first call.
    pub fn new(config: ZendeskConfig) -> Result<Self, ZendeskError> {
        let base = config.validate()?;
        let transport = Transport::new(&config, &base)?;
        let jobs = Jobs::new(&config);
        Ok(Self {
            config,
            transport,
            jobs,
        })
    }

    /// The calls this client has made so far, by kind.
    pub fn request_counts(&self) -> RequestCounts {
        self.transport.counts()
    }

    /// Which Zendesk this client calls (`https://acme.zendesk.com`): a snapshot of another is
    /// no picture of this one.
    pub fn origin(&self) -> String {
        self.transport.origin()
    }

    /// This client's share of the account's rate limit now, in requests a minute.
    pub fn share_per_minute(&self) -> f64 {
        self.transport.share_per_minute()
    }

    /// Every organization; each page reports the stage's progress.
    pub async fn list_organizations(&self) -> Result<Vec<Record>, ZendeskError> {
        self.list_all("organizations", "organizations", &[], Paging::Reported)
            .await
    }

    /// Every organization, handed to `on_page` a page at a time (a gather of a big instance
    /// need not hold every org's record at once).
    pub async fn for_each_organization_page<E: From<ZendeskError>>(
        &self,
        on_page: impl FnMut(Vec<Record>) -> Result<(), E>,
    ) -> Result<(), E> {
        let page_size = self.config.page_size.to_string();
        let url = self
            .transport
            .url("organizations", &[("page[size]", &page_size)])?;
        self.for_each_page(url, "organizations", Paging::Reported, on_page)
            .await
    }

    /// The organizations created or changed at or after `since` (unix seconds), from the
    /// Incremental Organization Export (apis.md A10), handed to `on_page` a page at a time.
    /// Answers how far the export reached: its last `end_time`, where the next export starts.
    ///
    /// Zendesk leaves out what changed in the minute before the request, and a page may repeat
    /// an item of the page before (the next page starts at the previous `end_time`, inclusive):
    /// callers apply items by id. The endpoint has its own limit (10 a minute); its 429s are
    /// waited out like any other.
    pub async fn for_each_organization_change<E: From<ZendeskError>>(
        &self,
        since: i64,
        mut on_page: impl FnMut(Vec<Record>) -> Result<(), E>,
    ) -> Result<i64, E> {
        let start = since.to_string();
        let mut url = self
            .transport
            .url("incremental/organizations", &[("start_time", &start)])?;
        let mut visited = HashSet::new();
        let mut reached = since;
        loop {
            if !visited.insert(url.to_string()) {
                return Err(ZendeskError::InvalidResponse {
                    message: "the incremental organization export came back to a page already read"
                        .into(),
                }
                .into());
            }
            let mut body = self.transport.get(url.clone()).await?.body;
            let page = page_records(&mut body, "organizations")?;
            let export = ExportPage::of(&body)?;
            reached = reached.max(export.end_time);
            on_page(page)?;
            if export.end_of_stream {
                return Ok(reached);
            }
            url = match export.next_page {
                Some(next) => self.transport.link(&next)?,
                None => self.transport.url(
                    "incremental/organizations",
                    &[("start_time", &export.end_time.to_string())],
                )?,
            };
        }
    }

    /// The organizations with these ids as Zendesk holds them now (Show Many, 100 a call); ids
    /// of organizations that no longer exist are left out of the answer.
    pub async fn show_organizations(&self, ids: &[u64]) -> Result<Vec<Record>, ZendeskError> {
        self.show_many("organizations/show_many", "organizations", ids)
            .await
    }

    /// The users with these ids as Zendesk holds them now (Show Many, 100 a call).
    pub async fn show_users(&self, ids: &[u64]) -> Result<Vec<Record>, ZendeskError> {
        self.show_many("users/show_many", "users", ids).await
    }

    /// The records under `key` of Show Many at `path` for `ids`, 100 ids a call.
    async fn show_many(
        &self,
        path: &str,
        key: &str,
        ids: &[u64],
    ) -> Result<Vec<Record>, ZendeskError> {
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SHOW_MANY_IDS) {
            let joined = chunk
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let url = self.transport.url(path, &[("ids", &joined)])?;
            records.extend(self.collect_pages(url, key, Paging::Quiet).await?);
        }
        Ok(records)
    }

    /// The users created, changed or deleted (`active: false`) since `start`, from the
    /// cursor-based Incremental User Export (apis.md A10), handed to `on_page` a page at a
    /// time. Answers the last `after_cursor`: where the next export goes on from (Zendesk gives
    /// one at the end of the stream too). Zendesk leaves out the last minute's changes; the
    /// export shares the incremental endpoints' limit (10 a minute).
    pub async fn for_each_user_change<E: From<ZendeskError>>(
        &self,
        start: ExportStart,
        mut on_page: impl FnMut(Vec<Record>) -> Result<(), E>,
    ) -> Result<String, E> {
        let mut url = match &start {
            ExportStart::Time(since) => self.transport.url(
                "incremental/users/cursor",
                &[("start_time", &since.to_string())],
            )?,
            ExportStart::Cursor(cursor) => self
                .transport
                .url("incremental/users/cursor", &[("cursor", cursor)])?,
        };
        let mut visited = HashSet::new();
        loop {
            if !visited.insert(url.to_string()) {
                return Err(ZendeskError::InvalidResponse {
                    message: "the incremental user export came back to a page already read".into(),
                }
                .into());
            }
            let mut body = self.transport.get(url.clone()).await?.body;
            let page = page_records(&mut body, "users")?;
            let export = CursorPage::of(&body)?;
            on_page(page)?;
            if export.end_of_stream {
                return Ok(export.after_cursor);
            }
            url = match export.after_url {
                Some(next) => self.transport.link(&next)?,
                None => self.transport.url(
                    "incremental/users/cursor",
                    &[("cursor", &export.after_cursor)],
                )?,
            };
        }
    }

    /// Every user, every role, handed to `on_page` a page at a time.
    pub async fn for_each_user_page<E: From<ZendeskError>>(
        &self,
        on_page: impl FnMut(Vec<Record>) -> Result<(), E>,
    ) -> Result<(), E> {
        let page_size = self.config.page_size.to_string();
        let url = self.transport.url("users", &[("page[size]", &page_size)])?;
        self.for_each_page(url, "users", Paging::Reported, on_page)
            .await
    }

    /// Every user, or those of one `role` (`end-user`, `agent`, `admin`); each page reports
    /// the stage's progress.
    pub async fn list_users(&self, role: Option<&str>) -> Result<Vec<Record>, ZendeskError> {
        let filter: Vec<(&str, &str)> = role.map(|role| ("role", role)).into_iter().collect();
        self.list_all("users", "users", &filter, Paging::Reported)
            .await
    }

    /// The users of one organization (a list, not a search: it sees a user created moments ago,
    /// which the search index may not yet).
    pub async fn list_organization_users(
        &self,
        organization_id: u64,
    ) -> Result<Vec<Record>, ZendeskError> {
        self.list_all(
            &format!("organizations/{organization_id}/users"),
            "users",
            &[],
            Paging::Quiet,
        )
        .await
    }

    /// Organizations whose name is `name` (Zendesk matches exactly, case-insensitively).
    pub async fn search_organizations_by_name(
        &self,
        name: &str,
    ) -> Result<Vec<Record>, ZendeskError> {
        let url = self
            .transport
            .url("organizations/search", &[("name", name)])?;
        self.collect_pages(url, "organizations", Paging::Quiet)
            .await
    }

    /// The user whose email is `email` (case-insensitive), if any. The search syntax also
    /// matches secondary identities and partial values, so only an exact match of the
    /// primary email counts.
    pub async fn search_user_by_email(&self, email: &str) -> Result<Option<Record>, ZendeskError> {
        let wanted = email.trim();
        let query = format!("email:\"{wanted}\"");
        let url = self.transport.url("users/search", &[("query", &query)])?;
        let users = self.collect_pages(url, "users", Paging::Quiet).await?;
        Ok(users.into_iter().find(|user| {
            user.get("email")
                .and_then(Value::as_str)
                .is_some_and(|found| found.trim().eq_ignore_ascii_case(wanted))
        }))
    }

    /// One user as Zendesk holds it now (a direct read, never stale as search can be), or
    /// `None` when there is no such user.
    pub async fn show_user(&self, id: u64) -> Result<Option<Record>, ZendeskError> {
        let url = self.transport.url(&format!("users/{id}"), &[])?;
        match self.transport.get(url).await {
            Ok(answer) => match answer.body.get("user") {
                Some(Value::Object(user)) => Ok(Some(user.clone())),
                _ => Err(ZendeskError::InvalidResponse {
                    message: format!("Show User answered {} without a user", answer.status),
                }),
            },
            Err(ZendeskError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates one user (`{"name", "email", "organization_id", …}`) and returns it as stored.
    pub async fn create_user(&self, user: Value) -> Result<Record, ZendeskError> {
        let url = self.transport.url("users", &[])?;
        let answer = self.transport.post(url, &json!({ "user": user })).await?;
        match answer.body.get("user") {
            Some(Value::Object(user)) => Ok(user.clone()),
            _ => Err(ZendeskError::InvalidResponse {
                message: format!("Create User answered {} without a user", answer.status),
            }),
        }
    }

    /// Create Many Memberships, paced: adds each `(user_id, organization_id)` without touching
    /// the user's other memberships. One outcome per pair, in order; a user who already is a
    /// member counts as done (a redrive re-adding what an earlier attempt added).
    pub async fn create_organization_memberships(
        &self,
        pairs: &[(u64, u64)],
    ) -> Result<Vec<ItemOutcome>, ZendeskError> {
        let items = membership_items(pairs);
        self.waiting_for_all(BulkKind::CreateMemberships, items)
            .await
            .map(|write| write.outcomes)
    }

    /// Create Many Organizations, paced; one outcome per item, in order.
    pub async fn create_organizations(
        &self,
        items: Vec<Value>,
    ) -> Result<Vec<ItemOutcome>, ZendeskError> {
        self.waiting_for_all(BulkKind::CreateOrganizations, items)
            .await
            .map(|write| write.outcomes)
    }

    /// Update Many Organizations (batch form: each item has its `id`), paced.
    pub async fn update_organizations(
        &self,
        items: Vec<Value>,
    ) -> Result<Vec<ItemOutcome>, ZendeskError> {
        self.waiting_for_all(BulkKind::UpdateOrganizations, items)
            .await
            .map(|write| write.outcomes)
    }

    /// Update Many Users (batch form: each item has its `id`), paced.
    pub async fn update_users(&self, items: Vec<Value>) -> Result<Vec<ItemOutcome>, ZendeskError> {
        self.waiting_for_all(BulkKind::UpdateUsers, items)
            .await
            .map(|write| write.outcomes)
    }

    /// Create Many Users, paced. When the account has bulk user import off (403), each user
    /// not yet submitted is created with its own call instead, and a 422 becomes that item's
    /// error (`DuplicateValue` for a taken email).
    pub async fn create_users(&self, items: Vec<Value>) -> Result<BulkUsers, ZendeskError> {
        let write = self.waiting_for_all(BulkKind::CreateUsers, items).await?;
        Ok(BulkUsers {
            outcomes: write.outcomes,
            fell_back_to_single_creates: write.fell_back_to_single_creates,
        })
    }

    /// A bulk write with one outcome for every item: no deadline, and a job given up on
    /// (working past the job timeout) fails its items with `JobTimedOut`.
    async fn waiting_for_all(
        &self,
        kind: BulkKind,
        items: Vec<Value>,
    ) -> Result<BulkWrite, ZendeskError> {
        let len = items.len();
        let mut write = self.write_many(kind, items, BulkOptions::default()).await?;
        let mut outcomes = Outcomes::new(len);
        for outcome in write.outcomes.drain(..) {
            outcomes.record(outcome.index, outcome.result);
        }
        for job in &write.open {
            outcomes.fail_rest(
                job.items(),
                &ItemError::new(
                    ItemError::JOB_TIMED_OUT,
                    format!("job {}: still working at the job timeout", job.id),
                ),
            );
        }
        write.outcomes = outcomes.into_vec();
        write.open.clear();
        Ok(write)
    }

    /// A bulk write of `kind`, paced, as far as `options` let it go: an outcome for each item
    /// whose job finished, the jobs still open at the deadline (or working past the job
    /// timeout), and the items not sent. Memberships that already exist count as added;
    /// users are created one by one when bulk import is off.
    pub async fn write_many(
        &self,
        kind: BulkKind,
        items: Vec<Value>,
        options: BulkOptions<'_>,
    ) -> Result<BulkWrite, ZendeskError> {
        let deadline = options.deadline;
        let on_forbidden = match kind {
            BulkKind::CreateUsers => OnForbidden::HandBack,
            _ => OnForbidden::Fail,
        };
        let BulkRun {
            mut outcomes,
            refused,
            open,
            mut unsubmitted,
            lost,
        } = self
            .jobs
            .run(
                &self.transport,
                kind.endpoint(),
                items,
                on_forbidden,
                options,
            )
            .await?;
        let fell_back_to_single_creates = !refused.is_empty();
        if fell_back_to_single_creates {
            tracing::warn!(
                "Create Many Users is refused (bulk user import is off); creating users one by one"
            );
            unsubmitted.extend(
                self.create_users_one_by_one(refused, &mut outcomes, deadline)
                    .await?,
            );
        }
        let mut settled = outcomes.settled();
        if kind == BulkKind::CreateMemberships {
            for outcome in &mut settled {
                if let Err(e) = &outcome.result
                    && e.is_already_member()
                {
                    tracing::debug!(index = outcome.index, "already a member");
                    outcome.result = Ok(None);
                }
            }
        }
        unsubmitted.sort_unstable();
        Ok(BulkWrite {
            outcomes: settled,
            open,
            unsubmitted,
            lost,
            fell_back_to_single_creates,
        })
    }

    /// Creates the users of `chunks` one call each; answers the indexes not sent before the
    /// deadline.
    async fn create_users_one_by_one(
        &self,
        chunks: Vec<Chunk>,
        outcomes: &mut Outcomes,
        deadline: Option<Instant>,
    ) -> Result<Vec<usize>, ZendeskError> {
        let users = chunks.into_iter().flat_map(Chunk::into_indexed);
        let created = stream::iter(users)
            .map(|(index, user)| async move {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok((index, None));
                }
                self.create_user_as_item(user)
                    .await
                    .map(|result| (index, Some(result)))
            })
            .buffer_unordered(SINGLE_CREATE_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let mut unsent = Vec::new();
        for (index, result) in created {
            match result {
                Some(result) => outcomes.record(index, result),
                None => unsent.push(index),
            }
        }
        Ok(unsent)
    }

    /// A single create as a bulk item's outcome: a rejected record is the item's error, not
    /// the call's.
    async fn create_user_as_item(
        &self,
        user: Value,
    ) -> Result<Result<Option<u64>, ItemError>, ZendeskError> {
        match self.create_user(user).await {
            Ok(created) => Ok(Ok(created.get("id").and_then(Value::as_u64))),
            Err(ZendeskError::Validation { message, details }) => {
                Ok(Err(ItemError::from_validation(&message, &details)))
            }
            Err(error) => Err(error),
        }
    }

    /// Every record of a cursor-paginated list.
    async fn list_all(
        &self,
        path: &str,
        key: &str,
        filter: &[(&str, &str)],
        paging: Paging,
    ) -> Result<Vec<Record>, ZendeskError> {
        let page_size = self.config.page_size.to_string();
        let mut query = filter.to_vec();
        query.push(("page[size]", &page_size));
        let url = self.transport.url(path, &query)?;
        self.collect_pages(url, key, paging).await
    }

    /// The records under `key` of the page at `first` and every page after it.
    async fn collect_pages(
        &self,
        first: Url,
        key: &str,
        paging: Paging,
    ) -> Result<Vec<Record>, ZendeskError> {
        let mut records = Vec::new();
        self.for_each_page(first, key, paging, |page| {
            records.extend(page);
            Ok::<(), ZendeskError>(())
        })
        .await?;
        Ok(records)
    }

    /// The records under `key` of the page at `first` and every page after it, a page at a
    /// time.
    async fn for_each_page<E: From<ZendeskError>>(
        &self,
        first: Url,
        key: &str,
        paging: Paging,
        mut on_page: impl FnMut(Vec<Record>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut read = 0;
        let mut visited = HashSet::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            if !visited.insert(url.to_string()) {
                return Err(ZendeskError::InvalidResponse {
                    message: format!("pagination of {key} came back to a page already read"),
                }
                .into());
            }
            let mut body = self.transport.get(url.clone()).await?.body;
            let page = page_records(&mut body, key)?;
            read += page.len() as u64;
            next = self.next_page(&body, &url)?;
            // Cursor pages carry no count; offset pages (searches) do.
            let total = body.get("count").and_then(Value::as_u64);
            drop(body);
            on_page(page)?;
            if paging == Paging::Reported {
                progress::paged(read, total, next.is_none());
            }
        }
        Ok(())
    }

    /// Where the page after `body` is. Cursor pages stop on `meta.has_more == false` —
    /// Zendesk may still send `links.next` on the last page (apis.md A1). Offset pages (the
    /// search endpoints) stop when `next_page` is null.
    fn next_page(&self, body: &Value, current: &Url) -> Result<Option<Url>, ZendeskError> {
        let Some(meta) = body.get("meta") else {
            return match body.get("next_page") {
                Some(Value::String(next)) => self.transport.link(next).map(Some),
                _ => Ok(None),
            };
        };
        let has_more = meta
            .get("has_more")
            .and_then(Value::as_bool)
            .ok_or_else(|| ZendeskError::InvalidResponse {
                message: "a cursor page has no meta.has_more".into(),
            })?;
        if !has_more {
            return Ok(None);
        }
        if let Some(next) = body.pointer("/links/next").and_then(Value::as_str) {
            return self.transport.link(next).map(Some);
        }
        match meta.get("after_cursor").and_then(Value::as_str) {
            Some(cursor) => Ok(Some(with_cursor(current, cursor))),
            None => Err(ZendeskError::InvalidResponse {
                message: "a cursor page says has_more but gives no next link or cursor".into(),
            }),
        }
    }
}

/// The records of one page, moved out of its body (the page's other fields stay); each must be
/// a JSON object.
fn page_records(body: &mut Value, key: &str) -> Result<Vec<Record>, ZendeskError> {
    let invalid = |message: String| ZendeskError::InvalidResponse { message };
    let Some(Value::Array(records)) = body.get_mut(key).map(Value::take) else {
        return Err(invalid(format!("a page has no {key} array")));
    };
    records
        .into_iter()
        .map(|record| match record {
            Value::Object(record) => Ok(record),
            other => Err(invalid(format!("a {key} entry is not an object: {other}"))),
        })
        .collect()
}

/// `current` asking for the page after `cursor`.
fn with_cursor(current: &Url, cursor: &str) -> Url {
    let kept: Vec<(String, String)> = current
        .query_pairs()
        .filter(|(key, _)| key != "page[after]" && key != "page[before]")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let mut next = current.clone();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("page[after]", cursor);
    next
}

#[cfg(test)]
mod tests {
    use crate::config::Secret;

    use super::*;

    fn client() -> ZendeskClient {
        ZendeskClient::new(ZendeskConfig::new(
            "https://acme.zendesk.com",
            "sync@acme.example",
            Secret::new("s3cr3t"),
            25,
        ))
        .unwrap()
    }

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_client_and_its_futures_can_cross_threads() {
        let client = client();
        assert_send_sync(&client);
        assert_send(&client.create_organizations(Vec::new()));
        assert_send(&client.create_users(Vec::new()));
        assert_send(&client.list_users(None));
        assert_send(&client.search_user_by_email("a@b.example"));
        assert_send(&client.create_organization_memberships(&[(1, 2)]));
    }

    #[test]
    fn debug_shows_the_config_without_the_token() {
        let shown = format!("{:?}", client());
        assert!(shown.contains("sync@acme.example"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn cursor_fallback_replaces_the_previous_cursor() {
        let current = Url::parse(
            "https://a.example/api/v2/users?role=end-user&page%5Bsize%5D=100&page%5Bafter%5D=old",
        )
        .unwrap();
        let next = with_cursor(&current, "new");
        let pairs: Vec<(String, String)> = next
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let expected = [
            ("role", "end-user"),
            ("page[size]", "100"),
            ("page[after]", "new"),
        ];
        assert_eq!(
            pairs,
            expected.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
    }

    #[test]
    fn pagination_stops_on_has_more_not_on_links() {
        let client = client();
        let current = Url::parse("https://acme.zendesk.com/api/v2/organizations").unwrap();
        let last = json!({"organizations": [], "meta": {"has_more": false, "after_cursor": "x"},
            "links": {"next": "https://acme.zendesk.com/api/v2/organizations?page[after]=x"}});
        assert_eq!(client.next_page(&last, &current).unwrap(), None);
        let more =
            json!({"meta": {"has_more": true, "after_cursor": "c"}, "links": {"next": null}});
        let next = client.next_page(&more, &current).unwrap().unwrap();
        assert!(next.as_str().ends_with("page%5Bafter%5D=c"), "{next}");
        let offset = json!({"users": [], "next_page": "https://acme.zendesk.com/api/v2/users/search?page=2"});
        assert!(client.next_page(&offset, &current).unwrap().is_some());
        let offset_end = json!({"users": [], "next_page": null});
        assert_eq!(client.next_page(&offset_end, &current).unwrap(), None);
    }

    #[test]
    fn an_export_page_says_how_far_it_reached() {
        let page = json!({"organizations": [], "count": 0, "end_time": 1_765_000_000,
            "next_page": "https://acme.zendesk.com/api/v2/incremental/organizations?start_time=1765000000",
            "end_of_stream": true});
        assert_eq!(
            ExportPage::of(&page).unwrap(),
            ExportPage {
                end_time: 1_765_000_000,
                end_of_stream: true,
                next_page: Some(
                    "https://acme.zendesk.com/api/v2/incremental/organizations?start_time=1765000000"
                        .into()
                ),
            }
        );
        let err = ExportPage::of(&json!({"organizations": [], "end_of_stream": true})).unwrap_err();
        assert!(err.to_string().contains("end_time"), "{err}");
    }

    #[test]
    fn links_to_another_host_are_refused() {
        let client = client();
        let current = Url::parse("https://acme.zendesk.com/api/v2/organizations").unwrap();
        let body = json!({"meta": {"has_more": true}, "links": {"next": "https://evil.example/api/v2/organizations"}});
        assert!(matches!(
            client.next_page(&body, &current),
            Err(ZendeskError::InvalidResponse { .. })
        ));
    }
}
