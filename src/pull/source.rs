//! The one interface every provider connector implements (Google, Graph,
//! Okta), so runs, the scheduler and `connection test` are written once.
//! A connector translates: provider pages in, normalized snapshots out; no
//! reconciliation rule lives behind this trait.

use std::collections::BTreeMap;
use std::future::Future;

use crate::reconcile::mapping::Mapping;
use crate::reconcile::model::GroupSnapshot;
use crate::reconcile::model::Snapshot;

use super::PullError;
use super::normalize::Normalized;

/// Where a user listing reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The first page of a full listing.
    Start,
    /// The first page of an incremental listing, from the cursor a previous
    /// run's last page returned (Graph's deltaLink, Okta's lastUpdated mark).
    Since(String),
    /// A later page: the `next` of the page before, followed as given.
    Next(String),
}

/// One page of users.
#[derive(Debug, Default)]
pub struct UserPage {
    /// The directory's id for each user and its snapshot.
    pub users: Vec<(String, Snapshot)>,
    /// Directory ids the provider says are gone (Graph delta's `@removed`).
    pub removed: Vec<String>,
    /// The next page, if there is one.
    pub next: Option<String>,
    /// On the last page only: where the next incremental run starts (None
    /// when the provider or the connection's scope has no incremental form).
    pub cursor: Option<String>,
    /// The provider's values this page's users lost at dirsync's caps.
    pub dropped: Dropped,
}

impl UserPage {
    /// Add a user as `normalize` made it, with what it dropped; an item
    /// that is no user (its id was past the cap) adds only its drops.
    pub fn push(&mut self, normalized: Normalized) {
        let id = normalized.user.as_ref().map(|(id, _)| id.as_str());
        self.dropped.add(id, normalized.dropped);
        self.users.extend(normalized.user);
    }
}

/// Provider values of a page past dirsync's caps, dropped by `normalize`:
/// by the directory's id for the user they belonged to, so a run counts
/// those of the users it takes in (not those its scope or selection leaves
/// out), and those of items that are no user at all, whose id itself was
/// past its cap (a run counts those whatever its scope: it cannot tell).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    by_user: BTreeMap<String, u64>,
    unidentified: u64,
}

impl Dropped {
    /// `values` dropped from `user` (None: an item that is no user).
    pub fn add(&mut self, user: Option<&str>, values: u64) {
        match (user, values) {
            (_, 0) => {}
            (Some(id), n) => *self.by_user.entry(id.to_owned()).or_default() += n,
            (None, n) => self.unidentified += n,
        }
    }

    /// The values dropped from `user` in this page, once: the same user
    /// twice in a page (a later word) gives its count to the first ask.
    pub fn take(&mut self, user: &str) -> u64 {
        self.by_user.remove(user).unwrap_or(0)
    }

    /// The values dropped from items that are no user.
    pub fn unidentified(&self) -> u64 {
        self.unidentified
    }
}

#[derive(Debug, Default)]
pub struct GroupPage {
    /// The directory's id for each group and its snapshot.
    pub groups: Vec<(String, GroupSnapshot)>,
    pub next: Option<String>,
}

#[derive(Debug, Default)]
pub struct MemberPage {
    /// The directory ids of the group's direct user members (nested groups,
    /// contacts and devices are left out).
    pub users: Vec<String>,
    pub next: Option<String>,
}

/// What `connection test` proved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// The handshake the connector performed, in the provider's terms.
    pub authenticated: String,
    /// How many users the one small read returned (at most a handful).
    pub users_read: usize,
}

/// A directory source. Every method is one provider round trip (plus its
/// retries and any token refresh), so a run holds at most one page in memory.
pub trait Source {
    /// Authenticate and read one small page of users; the error names the
    /// provider's own reason (bad secret, missing permission, unknown admin…).
    fn check(&mut self) -> impl Future<Output = Result<Check, PullError>> + Send;

    /// A page of the users in the connection's scope.
    fn users(&mut self, at: &Position) -> impl Future<Output = Result<UserPage, PullError>> + Send;

    /// A page of groups (`next` None: the first page).
    fn groups(
        &mut self,
        next: Option<&str>,
    ) -> impl Future<Output = Result<GroupPage, PullError>> + Send;

    /// A page of one group's direct user members (`next` None: the first page).
    fn members(
        &mut self,
        group_id: &str,
        next: Option<&str>,
    ) -> impl Future<Output = Result<MemberPage, PullError>> + Send;

    /// Whether `user` reads one user of this connection's scope: the
    /// provider applies no part of the scope (no group, no Google org unit),
    /// so a user the provider has is in it. A run that names its users (the
    /// import wizard's selection) then reads just them; otherwise it lists
    /// the scope and keeps the named ones. A source that cannot read one
    /// user says no.
    fn reads_one(&self) -> bool {
        false
    }

    /// One user by the id or email an operator names, read directly (not
    /// listed), with what a listing asks the provider for (`ask_for`):
    /// Graph `GET /users/{id | userPrincipalName}`, Google `users.get`, Okta
    /// `GET /api/v1/users/{id | login}`. `Ok(None)`: the provider does not
    /// have it (its 404). Only asked when `reads_one` says yes.
    fn user(
        &mut self,
        _key: &str,
    ) -> impl Future<Output = Result<Option<Normalized>, PullError>> + Send {
        std::future::ready(Err(PullError::Config(
            "this source reads users only by listing them".into(),
        )))
    }

    /// What the directory's attribute mapping reads, for a provider that
    /// serves only what it is asked for (Graph's `$select`, Google's
    /// `projection=custom` with its `customFieldMask`); Okta serves the
    /// whole profile anyway and ignores this.
    fn ask_for(&mut self, _asked: &Asked) {}
}

/// What an attribute mapping needs the provider to serve beyond a user's
/// standard fields (issue 14: ask for what the rules read and nothing more).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asked {
    /// The top-level user properties the rules read
    /// (`Mapping::top_level_properties`).
    pub properties: Vec<String>,
    /// Google's custom schemas the rules read (`Mapping::custom_schemas`),
    /// named exactly as the mask names them.
    pub custom_schemas: Vec<String>,
}

impl Asked {
    pub fn of(mapping: &Mapping) -> Asked {
        Asked {
            properties: mapping.top_level_properties(),
            custom_schemas: mapping.custom_schemas(),
        }
    }

    /// What either of two mappings reads (a preview compares two), each
    /// name once.
    pub fn and(mut self, other: Asked) -> Asked {
        for p in other.properties {
            if !self.properties.iter().any(|q| q.eq_ignore_ascii_case(&p)) {
                self.properties.push(p);
            }
        }
        for s in other.custom_schemas {
            if !self.custom_schemas.contains(&s) {
                self.custom_schemas.push(s);
            }
        }
        self
    }
}

/// What part of the directory a connection imports. `group` (Graph, Google,
/// Okta) and `org_unit` (Google) are asked of the provider by the connector;
/// `department` is applied to the normalized snapshots by the run, the same
/// way for every provider. A user that leaves the scope is missing.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    /// The provider's id for the group (Google also takes its email).
    pub group: Option<String>,
    /// A Google organizational unit path, e.g. `/Engineering`.
    pub org_unit: Option<String>,
    pub department: Option<String>,
}
