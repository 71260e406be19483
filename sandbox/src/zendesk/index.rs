//! The search index, which catches up with writes only after `search_index_delay`.
//!
//! Zendesk answers searches from an index that lags behind writes: a record created moments
//! ago is not found, and one changed moments ago is found as it was. With a delay `d` the
//! search endpoints answer from the world as it was `d` ago; every other read sees the
//! records as they are.
//!
//! Only records written within the last `d` cost anything: for each, the states it had
//! before those writes (none for a record that did not exist yet), dropped as soon as the
//! index has caught up with them. With no delay nothing is kept and search sees every write
//! at once.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::records::organization::Organization;
use super::records::user::User;

/// A user as search renders and matches them: the record and the organization of their
/// default membership.
#[derive(Clone, Debug)]
pub(crate) struct IndexedUser {
    pub user: User,
    pub organization_id: Option<u64>,
}

pub(crate) struct SearchIndex {
    delay: TimeDelta,
    /// Whether writes are noted: not without a delay, nor while a fixture loads (the world a
    /// sandbox starts with is indexed).
    recording: bool,
    pub organizations: Lagging<Organization>,
    pub users: Lagging<IndexedUser>,
}

impl Default for SearchIndex {
    /// An index that keeps up with every write.
    fn default() -> Self {
        SearchIndex::new(Duration::ZERO)
    }
}

impl SearchIndex {
    pub(crate) fn new(delay: Duration) -> Self {
        SearchIndex {
            delay: TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX),
            recording: !delay.is_zero(),
            organizations: Lagging::default(),
            users: Lagging::default(),
        }
    }

    /// Stops noting writes (returns whether it was on), for writes that describe the world
    /// rather than change it; [`SearchIndex::resume`] turns it back.
    pub(crate) fn pause(&mut self) -> bool {
        std::mem::replace(&mut self.recording, false)
    }

    pub(crate) fn resume(&mut self, recording: bool) {
        self.recording = recording;
    }

    /// Whether a write at `at` to record `id` still needs its earlier state noted: the
    /// index lags, and no earlier part of the same write (same `at`) noted it already.
    pub(crate) fn needs<T>(&self, lagging: &Lagging<T>, id: u64, at: DateTime<Utc>) -> bool {
        self.recording && !lagging.noted_at(id, at)
    }

    /// Notes that organization `id` changed at `at`, `before` being what it was.
    pub(crate) fn note_organization(
        &mut self,
        id: u64,
        at: DateTime<Utc>,
        before: impl FnOnce() -> Option<Organization>,
    ) {
        if self.needs(&self.organizations, id, at) {
            self.organizations.push(id, at, before());
            self.catch_up(at);
        }
    }

    /// Notes that user `id` changed at `at`, `before` being what they were. (Building
    /// `before` needs the whole instance, so callers ask [`SearchIndex::needs`] first.)
    pub(crate) fn note_user(&mut self, id: u64, at: DateTime<Utc>, before: Option<IndexedUser>) {
        if self.needs(&self.users, id, at) {
            self.users.push(id, at, before);
            self.catch_up(at);
        }
    }

    /// Forgets the earlier states of writes older than the delay: the index has them now.
    pub(crate) fn catch_up(&mut self, now: DateTime<Utc>) {
        if self.organizations.is_empty() && self.users.is_empty() {
            return;
        }
        let cutoff = now
            .checked_sub_signed(self.delay)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.organizations.catch_up(cutoff);
        self.users.catch_up(cutoff);
    }
}

/// What the index holds for one record.
pub(crate) enum Indexed<'a, T> {
    /// The record as it is now (or nothing, if there is none).
    Current,
    /// An earlier state: as the record was before writes the index has not caught up with
    /// (`None`: it did not exist yet).
    Earlier(Option<&'a T>),
}

/// When a record was written and what it was before (`None`: it did not exist).
type EarlierState<T> = (DateTime<Utc>, Option<T>);

/// The earlier states of the records of one kind written within the delay.
pub(crate) struct Lagging<T> {
    /// Record id → its earlier states, oldest first.
    history: HashMap<u64, VecDeque<EarlierState<T>>>,
    /// Every noted write in time order, so catching up never scans the records.
    writes: VecDeque<(DateTime<Utc>, u64)>,
}

impl<T> Default for Lagging<T> {
    fn default() -> Self {
        Lagging {
            history: HashMap::new(),
            writes: VecDeque::new(),
        }
    }
}

impl<T> Lagging<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.history.is_empty()
    }

    /// Whether the index holds an earlier state of record `id`.
    pub(crate) fn is_lagging(&self, id: u64) -> bool {
        !self.history.is_empty() && self.history.contains_key(&id)
    }

    /// The records the index holds earlier states of, in no particular order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.history.keys().copied()
    }

    /// What the index holds for record `id`, as of the last [`SearchIndex::catch_up`].
    pub(crate) fn get(&self, id: u64) -> Indexed<'_, T> {
        match self.history.get(&id).and_then(VecDeque::front) {
            Some((_, before)) => Indexed::Earlier(before.as_ref()),
            None => Indexed::Current,
        }
    }

    fn noted_at(&self, id: u64, at: DateTime<Utc>) -> bool {
        self.history
            .get(&id)
            .and_then(VecDeque::back)
            .is_some_and(|(noted, _)| *noted == at)
    }

    fn push(&mut self, id: u64, at: DateTime<Utc>, before: Option<T>) {
        self.history.entry(id).or_default().push_back((at, before));
        self.writes.push_back((at, id));
    }

    fn catch_up(&mut self, cutoff: DateTime<Utc>) {
        while let Some(&(at, id)) = self.writes.front() {
            if at > cutoff {
                break;
            }
            self.writes.pop_front();
            if let Some(states) = self.history.get_mut(&id) {
                while states.front().is_some_and(|(noted, _)| *noted <= cutoff) {
                    states.pop_front();
                }
                if states.is_empty() {
                    self.history.remove(&id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::milliseconds(ms)
    }

    fn state(lagging: &Lagging<&'static str>, id: u64) -> Option<Option<&'static str>> {
        match lagging.get(id) {
            Indexed::Current => None,
            Indexed::Earlier(before) => Some(before.copied()),
        }
    }

    #[test]
    fn the_index_holds_the_state_before_the_writes_it_has_not_caught_up_with() {
        let mut lagging = Lagging::default();
        lagging.push(1, at(0), None);
        lagging.push(1, at(50), Some("created"));
        lagging.push(2, at(60), Some("old"));
        // At 0 + delay the creation is indexed, the rename is not.
        lagging.catch_up(at(10));
        assert_eq!(state(&lagging, 1), Some(Some("created")));
        assert_eq!(state(&lagging, 2), Some(Some("old")));
        assert_eq!(state(&lagging, 3), None);
        lagging.catch_up(at(55));
        assert_eq!(state(&lagging, 1), None);
        assert!(!lagging.is_lagging(1) && lagging.is_lagging(2));
        lagging.catch_up(at(60));
        assert!(lagging.is_empty() && lagging.writes.is_empty());
    }

    #[test]
    fn one_write_is_noted_once_and_nothing_without_a_delay() {
        let mut index = SearchIndex::new(Duration::from_secs(1));
        let org = || {
            let mut org = Organization::blank(at(0));
            org.name = "Before".into();
            Some(org)
        };
        index.note_organization(7, at(5), org);
        index.note_organization(7, at(5), || panic!("already noted"));
        index.note_organization(7, at(6), || None);
        assert_eq!(index.organizations.history[&7].len(), 2);
        let paused = index.pause();
        index.note_organization(8, at(7), || None);
        index.resume(paused);
        assert!(!index.organizations.is_lagging(8));

        let mut instant = SearchIndex::default();
        instant.note_organization(7, at(5), || panic!("no delay, nothing kept"));
        assert!(instant.organizations.is_empty());
    }
}
