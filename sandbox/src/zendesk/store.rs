//! The records of one instance and the fixture loading that fills them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::default_fields;
use super::fields::{FieldSet, IgnoredFields};
use super::index::SearchIndex;
use super::job_book::Job;
use super::records::membership::Membership;
use super::records::organization::Organization;
use super::records::user::User;
use crate::clock::Clock;
use crate::error::FixtureError;
use crate::fixture::ZendeskFixture;
use crate::instance::ZendeskInstance;

pub(crate) struct InstanceData {
    pub instance: ZendeskInstance,
    pub base_url: String,
    pub organization_fields: FieldSet,
    pub user_fields: FieldSet,
    pub organizations: BTreeMap<u64, Organization>,
    /// Trimmed, lower-cased name → the orgs with it (one, unless a fixture says otherwise):
    /// names are unique, and every create and rename checks it.
    pub organization_names: HashMap<String, BTreeSet<u64>>,
    pub users: BTreeMap<u64, User>,
    pub memberships: BTreeMap<u64, Membership>,
    /// User id → the ids of their memberships: a world of 200 000 orgs asks "which orgs is
    /// this user in" for every user write and search hit, too often to scan for.
    pub memberships_by_user: HashMap<u64, BTreeSet<u64>>,
    pub jobs: BTreeMap<String, Job>,
    /// Jobs not yet working, in the order they were submitted: the workers take them from
    /// the front.
    pub job_queue: VecDeque<String>,
    /// The number the next job is submitted under (its place in submission order).
    pub next_job_number: u64,
    pub bulk_user_import: bool,
    /// What the search endpoints see: the records as they were `search_index_delay` ago.
    pub index: SearchIndex,
    pub ignored: IgnoredFields,
    pub ids: IdSequences,
    pub job_ids: ChaCha8Rng,
    /// The sandbox clock every record timestamp is taken from.
    pub clock: Clock,
}

/// Separate id ranges per instance and record kind, so an org id used as a user id (or a
/// Global id sent to US Gov) finds nothing instead of the wrong record.
pub(crate) struct IdSequences {
    next_organization: u64,
    next_user: u64,
    next_membership: u64,
}

impl IdSequences {
    fn new(instance: ZendeskInstance) -> Self {
        let base = match instance {
            ZendeskInstance::Global => 360_000_000_000,
            ZendeskInstance::Usgov => 370_000_000_000,
        };
        IdSequences {
            next_organization: base + 1_000_001,
            next_user: base + 5_000_001,
            next_membership: base + 9_000_001,
        }
    }

    pub(crate) fn organization(&mut self) -> u64 {
        take(&mut self.next_organization)
    }

    pub(crate) fn user(&mut self) -> u64 {
        take(&mut self.next_user)
    }

    pub(crate) fn membership(&mut self) -> u64 {
        take(&mut self.next_membership)
    }

    /// Keeps generated ids clear of ids a fixture chose.
    pub(crate) fn reserve_organization(&mut self, id: u64) {
        self.next_organization = self.next_organization.max(id + 1);
    }

    pub(crate) fn reserve_user(&mut self, id: u64) {
        self.next_user = self.next_user.max(id + 1);
    }

    pub(crate) fn reserve_membership(&mut self, id: u64) {
        self.next_membership = self.next_membership.max(id + 1);
    }
}

fn take(next: &mut u64) -> u64 {
    let id = *next;
    *next += 1;
    id
}

impl InstanceData {
    /// An instance without records, for the records' unit tests.
    #[cfg(test)]
    pub(crate) fn empty(instance: ZendeskInstance) -> InstanceData {
        InstanceData::from_fixture(
            instance,
            &format!("http://h/zendesk/{instance}"),
            &ZendeskFixture::default(),
            1,
            Clock::new(),
        )
        .expect("empty fixture loads")
    }

    pub(crate) fn from_fixture(
        instance: ZendeskInstance,
        base_url: &str,
        fixture: &ZendeskFixture,
        job_seed: u64,
        clock: Clock,
    ) -> Result<Self, FixtureError> {
        let field_error = |reason: String| FixtureError::Fields {
            instance: instance.to_string(),
            reason,
        };
        let organization_fields = FieldSet::new(
            fixture
                .organization_fields
                .clone()
                .unwrap_or_else(|| default_fields::organization_fields(instance)),
        )
        .map_err(field_error)?;
        let user_fields = FieldSet::new(
            fixture
                .user_fields
                .clone()
                .unwrap_or_else(default_fields::user_fields),
        )
        .map_err(field_error)?;
        let mut data = InstanceData {
            instance,
            base_url: base_url.to_owned(),
            organization_fields,
            user_fields,
            organizations: BTreeMap::new(),
            organization_names: HashMap::new(),
            users: BTreeMap::new(),
            memberships: BTreeMap::new(),
            memberships_by_user: HashMap::new(),
            jobs: BTreeMap::new(),
            job_queue: VecDeque::new(),
            next_job_number: 0,
            bulk_user_import: fixture.bulk_user_import,
            index: SearchIndex::default(),
            ignored: IgnoredFields::default(),
            ids: IdSequences::new(instance),
            job_ids: ChaCha8Rng::seed_from_u64(job_seed),
            clock,
        };
        data.load(fixture)?;
        Ok(data)
    }

    fn load(&mut self, fixture: &ZendeskFixture) -> Result<(), FixtureError> {
        let instance = self.instance.to_string();
        let record_error = |collection, index, reason| FixtureError::Record {
            instance: instance.clone(),
            collection,
            index,
            reason,
        };
        for (index, record) in fixture.organizations.iter().enumerate() {
            self.seed_organization(record)
                .map_err(|e| record_error("organizations", index, e.to_string()))?;
        }
        for (index, record) in fixture.users.iter().enumerate() {
            self.seed_user(record)
                .map_err(|e| record_error("users", index, e.to_string()))?;
        }
        for (index, record) in fixture.organization_memberships.iter().enumerate() {
            self.seed_membership(record)
                .map_err(|e| record_error("organization_memberships", index, e.to_string()))?;
        }
        Ok(())
    }

    /// The sandbox's current time: what a write stamps on the records it changes.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn ignored_fields(&self) -> BTreeMap<String, u64> {
        self.ignored.snapshot()
    }

    /// The records and settings as a fixture loads them back (credentials aside, which the
    /// instance keeps outside its data). Users carry no `organization_id`: their memberships
    /// are all listed, with ids, in `organization_memberships`, so seeding makes each
    /// exactly once.
    pub(crate) fn snapshot(&self) -> ZendeskFixture {
        ZendeskFixture {
            credentials: None,
            organization_fields: Some(self.organization_fields.definitions().to_vec()),
            user_fields: Some(self.user_fields.definitions().to_vec()),
            organizations: self
                .organizations
                .values()
                .map(|org| org.fixture_record())
                .collect(),
            users: self
                .users
                .values()
                .map(|user| user.fixture_record())
                .collect(),
            organization_memberships: self
                .memberships
                .keys()
                .map(|id| self.membership_fixture_record(*id))
                .collect(),
            bulk_user_import: self.bulk_user_import,
        }
    }

    /// Jobs still queued or working; a snapshot leaves their effects out.
    pub(crate) fn jobs_in_flight(&self) -> usize {
        self.in_flight_job_ids().len()
    }

    pub(crate) fn dump(&self) -> Value {
        json!({
            "organizations": self.organizations_json(),
            "users": self.users_json(),
            "organization_memberships": self.memberships_json(),
            "jobs": self.jobs_json(),
            "bulk_user_import": self.bulk_user_import,
            "ignored_fields": self.ignored_fields(),
            "organization_fields": self.organization_fields.definitions(),
            "user_fields": self.user_fields.definitions(),
        })
    }
}
