//! Local stand-ins for the providers' APIs, so tests (and a newcomer,
//! through `dirsync dev fake-directory`) can watch a pull work without any
//! account. Generated from a seed: the same seed, the same directory. A
//! running fake shares one `Shared`: the directory (which tests change while
//! it runs: every change is stamped, for delta and lastUpdated listings, and
//! remembered, for Graph's partial delta items), the access tokens it issued,
//! and the faults it was told to inject. Every user listing of every fake
//! follows the directory's `Order`, so a test can list the same directory in
//! another order and see that nothing depends on the order a provider uses.

pub mod google;
pub mod graph;
pub mod okta;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One generated person (what a provider lists as a user).
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub department: String,
    pub title: String,
    pub employee_number: String,
    /// What an attribute mapping reads (issue 14): Graph's
    /// `onPremisesExtensionAttributes.extensionAttribute3` and directory
    /// extension [`GRAPH_COST_CENTER`], Google's `customSchemas.HR.costCenter`,
    /// Okta's `profile.costCenter`. Empty: not served.
    pub cost_center: String,
    pub active: bool,
    /// Google's organizational unit path (`/` is the root).
    pub org_unit: String,
    /// When it last changed (the directory's clock, epoch milliseconds).
    pub updated_at: i64,
    /// Deleted at this time: gone from listings, reported by delta.
    pub deleted_at: Option<i64>,
}

/// The directory extension the fake Graph serves a user's cost center as
/// (`extension_<appid>_<name>`, the app id without its dashes).
pub const GRAPH_COST_CENTER: &str = "extension_b7d5a2c1e0f94e7d8a3b6c2d1e0f9a8b_costCenter";

impl Person {
    /// As Microsoft Graph lists it (`/v1.0/users`, the fields dirsync
    /// selects). An empty field is `null`: Graph never sends `""` for a
    /// property that has no value.
    pub fn graph(&self) -> Value {
        let text = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
        let display_name = [self.given_name.as_str(), self.family_name.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let mut user = json!({
            "id": self.id,
            "userPrincipalName": text(&self.email),
            "mail": text(&self.email),
            "displayName": text(&display_name),
            "givenName": text(&self.given_name),
            "surname": text(&self.family_name),
            "accountEnabled": self.active,
            "department": text(&self.department),
            "jobTitle": text(&self.title),
            "employeeId": text(&self.employee_number),
            "onPremisesExtensionAttributes": {
                "extensionAttribute1": null,
                "extensionAttribute2": null,
                "extensionAttribute3": text(&self.cost_center),
            },
        });
        // Graph leaves out a directory extension with no value.
        if !self.cost_center.is_empty() {
            user[GRAPH_COST_CENTER] = json!(self.cost_center);
        }
        user
    }

    /// As the Google Directory API lists it (`admin#directory#user`,
    /// docs/pull-apis.md §1B). Google has two ways to be inactive, `suspended`
    /// and `archived`; the fake spreads the directory's inactive users over
    /// both (by the parity of the id's last digit) so connectors meet each.
    pub fn google(&self) -> Value {
        let archived = !self.active && self.id.ends_with(['0', '2', '4', '6', '8', 'a', 'c', 'e']);
        let mut user = json!({
            "kind": "admin#directory#user",
            "id": self.id,
            "etag": format!("\"{}\"", self.updated_at),
            "primaryEmail": self.email,
            "name": {
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": format!("{} {}", self.given_name, self.family_name),
            },
            "isAdmin": false,
            "isDelegatedAdmin": false,
            "suspended": !self.active && !archived,
            "archived": archived,
            "orgUnitPath": self.org_unit,
            "customerId": "C03az79cb",
            "creationTime": timestamp(EPOCH),
            "organizations": [{
                "department": self.department,
                "title": self.title,
                "primary": true,
                "customType": "",
            }],
            "externalIds": [{"type": "organization", "value": self.employee_number}],
            "thumbnailPhotoUrl": format!("https://lh3.googleusercontent.com/a-/{}", self.id),
        });
        if !self.active && !archived {
            user["suspensionReason"] = json!("ADMIN");
        }
        // A second schema no test maps: what a connector must not ask for.
        user["customSchemas"] =
            json!({"Security": {"badge": format!("B-{}", self.employee_number)}});
        if !self.cost_center.is_empty() {
            user["customSchemas"]["HR"] = json!({"costCenter": self.cost_center});
        }
        user
    }

    /// As Okta lists it (`/api/v1/users`, without `_links`, which need the
    /// fake's base). An inactive user is SUSPENDED or DEPROVISIONED by the
    /// parity of its id's last hex digit (generated users: even index
    /// SUSPENDED, odd DEPROVISIONED), so a directory holds both.
    pub fn okta(&self) -> Value {
        let status = if self.active {
            "ACTIVE"
        } else if self
            .id
            .chars()
            .last()
            .and_then(|c| c.to_digit(16))
            .is_some_and(|d| d % 2 == 0)
        {
            "SUSPENDED"
        } else {
            "DEPROVISIONED"
        };
        let created = timestamp(EPOCH.min(self.updated_at));
        json!({
            "id": self.id,
            "status": status,
            "created": created,
            "activated": created,
            "statusChanged": if self.active { Value::Null } else { json!(timestamp(self.updated_at)) },
            "lastLogin": null,
            "lastUpdated": timestamp(self.updated_at),
            "passwordChanged": created,
            "type": {"id": "otyfake0000000000000"},
            "profile": {
                "login": self.email,
                "email": self.email,
                "firstName": self.given_name,
                "lastName": self.family_name,
                "displayName": format!("{} {}", self.given_name, self.family_name),
                "department": self.department,
                "title": self.title,
                "employeeNumber": self.employee_number,
                "costCenter": if self.cost_center.is_empty() { Value::Null } else { json!(self.cost_center) },
                "managerId": null,
            },
            "credentials": {
                "password": {},
                "provider": {"type": "OKTA", "name": "OKTA"},
            },
        })
    }
}

/// One generated group (a team of the org's people; indexes into
/// `Org::users`). Named apart from the mirror's and the app's groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub members: Vec<usize>,
    /// When its name or its members last changed.
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

impl Team {
    pub fn graph(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.name,
            "mailEnabled": false,
            "securityEnabled": true,
            "groupTypes": [],
        })
    }

    /// As the Google Directory API lists it (`admin#directory#group`);
    /// `directMembersCount` is an int64, which Google encodes as a string.
    pub fn google(&self) -> Value {
        json!({
            "kind": "admin#directory#group",
            "id": self.id,
            "etag": format!("\"{}\"", self.updated_at),
            "email": format!("{}@example.com", self.name.to_lowercase().replace(' ', "-")),
            "name": self.name,
            "description": "",
            "directMembersCount": self.members.len().to_string(),
            "adminCreated": true,
        })
    }

    /// As Okta lists it (`/api/v1/groups`, without `_links`).
    pub fn okta(&self) -> Value {
        json!({
            "id": self.id,
            "created": timestamp(EPOCH.min(self.updated_at)),
            "lastUpdated": timestamp(self.updated_at),
            "lastMembershipUpdated": timestamp(self.updated_at),
            "objectClass": ["okta:user_group"],
            "type": "OKTA_GROUP",
            "profile": {"name": self.name, "description": null},
        })
    }
}

/// The order every user listing of the fakes follows (users, delta rounds,
/// searches, a group's members). Real providers promise no order, so a test
/// can flip it between runs to show nothing depends on it. A Graph delta
/// round keeps the order and the users it began with while it pages; Google's
/// and Okta's page tokens are offsets into the listing as it is at each
/// request, so adding or deleting users mid-listing shifts their later pages
/// (as with the real providers, whose listings are not snapshots either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Order {
    /// As the fake holds them: users as they were created, a group's
    /// members as they joined.
    #[default]
    AsCreated,
    /// The other way round: the newest user first.
    Reversed,
    /// A shuffle fixed by the seed: the same seed, the same order, and a
    /// user keeps its place relative to the others when users are added.
    Shuffled(u64),
}

impl Order {
    /// `indexes` (into `Org::users`) in this order.
    pub fn arrange(self, mut indexes: Vec<usize>) -> Vec<usize> {
        match self {
            Order::AsCreated => {}
            Order::Reversed => indexes.reverse(),
            // A key per user rather than a Fisher-Yates pass, so the order
            // of two users does not depend on how many others there are.
            Order::Shuffled(seed) => indexes.sort_by_key(|i| (splitmix(seed ^ *i as u64), *i)),
        }
        indexes
    }
}

/// splitmix64's finalizer: neighbouring inputs, unrelated outputs.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What one user was just before a stamped change: Graph's partial delta
/// items send what differs from the user as it was at the round's start.
#[derive(Debug, Clone, PartialEq)]
struct Revision {
    /// The user's index in `Org::users`.
    index: usize,
    /// The change's stamp.
    at: i64,
    /// None: the change created the user.
    before: Option<Person>,
}

/// A whole generated organisation: what every fake provider serves.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Org {
    pub users: Vec<Person>,
    pub groups: Vec<Team>,
    /// The last stamp handed out (epoch milliseconds, strictly increasing).
    pub clock: i64,
    /// The order user listings follow (a listing or delta round that has
    /// begun keeps the order it began with).
    pub order: Order,
    /// Graph's incremental delta rounds send, for each changed user, only its
    /// id and the selected properties that changed since the round's start
    /// (a cleared one as `null`), as Graph may (§2C: "at least the updated
    /// properties"); false: whole users. A round keeps the mode it began with.
    pub partial_delta: bool,
    /// Stamped changes to users, oldest first (changes made by writing to
    /// `users` directly are not stamped and not remembered).
    history: Vec<Revision>,
}

/// Where generated directories start their clock: 2026-01-01T00:00:00Z.
const EPOCH: i64 = 1_767_225_600_000;

const GIVEN: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const FAMILY: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const DEPARTMENTS: &[&str] = &["Engineering", "Sales", "Finance", "Support", "Legal"];

/// xorshift64*: deterministic, dependency-free, plenty for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

impl Org {
    /// `users` people (about 1 in 20 disabled) in `groups` groups; every
    /// user is in one group, chosen by the seed.
    pub fn generate(users: usize, groups: usize, seed: u64) -> Org {
        let mut rng = Rng(seed.max(1));
        let mut dir = Org {
            clock: EPOCH,
            ..Org::default()
        };
        for n in 0..users {
            let given = rng.pick(GIVEN);
            let family = rng.pick(FAMILY);
            dir.users.push(Person {
                id: format!("{:08x}-0000-4000-8000-{n:012x}", seed as u32),
                given_name: given.to_owned(),
                family_name: family.to_owned(),
                email: format!(
                    "{}.{}.{n}@example.com",
                    given.to_lowercase(),
                    family.to_lowercase()
                ),
                department: rng.pick(DEPARTMENTS).to_owned(),
                title: "Engineer".to_owned(),
                employee_number: format!("E{n:06}"),
                cost_center: format!("CC-{}", 100 + n % 5),
                active: !rng.next().is_multiple_of(20),
                org_unit: if n % 2 == 0 { "/Engineering" } else { "/Sales" }.to_owned(),
                updated_at: EPOCH,
                deleted_at: None,
            });
        }
        for g in 0..groups {
            dir.groups.push(Team {
                id: format!("{:08x}-0000-4000-9000-{g:012x}", seed as u32),
                name: format!("Group {g}"),
                members: Vec::new(),
                updated_at: EPOCH,
                deleted_at: None,
            });
        }
        if groups > 0 {
            for n in 0..users {
                let g = (rng.next() % groups as u64) as usize;
                dir.groups[g].members.push(n);
            }
        }
        dir
    }

    /// A fresh stamp: later than every earlier one, and than the wall clock's
    /// now when that is later (so lastUpdated filters with real times work).
    pub fn tick(&mut self) -> i64 {
        self.clock = (self.clock + 1).max(chrono::Utc::now().timestamp_millis());
        self.clock
    }

    /// Users not deleted, as the fake holds them (listings follow the
    /// order: `listed_users`).
    pub fn live_users(&self) -> impl Iterator<Item = &Person> {
        self.users.iter().filter(|u| u.deleted_at.is_none())
    }

    pub fn live_groups(&self) -> impl Iterator<Item = &Team> {
        self.groups.iter().filter(|g| g.deleted_at.is_none())
    }

    /// A group's live members, in the listing order.
    pub fn members_of<'a>(&'a self, group: &'a Team) -> impl Iterator<Item = &'a Person> {
        self.order
            .arrange(group.members.clone())
            .into_iter()
            .filter_map(|i| self.users.get(i))
            .filter(|u| u.deleted_at.is_none())
    }

    /// Users as a listing shows them (not deleted), in the listing order.
    pub fn listed_users(&self) -> impl Iterator<Item = &Person> {
        self.order
            .arrange((0..self.users.len()).collect())
            .into_iter()
            .filter_map(|i| self.users.get(i))
            .filter(|u| u.deleted_at.is_none())
    }

    /// The live user with this email (case-insensitive), for tests that
    /// follow an address rather than an id.
    pub fn id_by_email(&self, email: &str) -> Option<String> {
        self.live_users()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id.clone())
    }

    /// The user at `index` as it was at stamp `at`: None if it did not
    /// exist yet. Only stamped changes are known; a user changed since by a
    /// direct write to `users` reads as it is now.
    pub fn user_as_of(&self, index: usize, at: i64) -> Option<&Person> {
        match self.history.iter().find(|r| r.index == index && r.at > at) {
            Some(revision) => revision.before.as_ref(),
            None => self.users.get(index),
        }
    }

    /// Stamp a change made to the user at `index`, remembering what it was
    /// `before` (None: the change created it). The stamp is set last, so a
    /// change cannot backdate itself.
    fn stamp(&mut self, index: usize, at: i64, before: Option<Person>) {
        if let Some(user) = self.users.get_mut(index) {
            user.updated_at = at;
            self.history.push(Revision { index, at, before });
        }
    }

    /// Change the user with this id and stamp it; false if there is none.
    pub fn update_user(&mut self, id: &str, change: impl FnOnce(&mut Person)) -> bool {
        let at = self.tick();
        let Some(index) = self.users.iter().position(|u| u.id == id) else {
            return false;
        };
        let before = self.users[index].clone();
        change(&mut self.users[index]);
        self.stamp(index, at, Some(before));
        true
    }

    /// A rename: the user's address becomes `email`.
    pub fn set_email(&mut self, id: &str, email: impl Into<String>) -> bool {
        let email = email.into();
        self.update_user(id, |u| u.email = email)
    }

    /// Two users exchange their addresses in one change, both stamped.
    pub fn swap_emails(&mut self, a: &str, b: &str) -> bool {
        self.rotate_emails(&[a, b])
    }

    /// Each user takes the address of the next one in `ids`, the last the
    /// first's (two ids: a swap), in one change that stamps them all. False,
    /// and nothing changed, if an id is unknown or named twice.
    pub fn rotate_emails(&mut self, ids: &[impl AsRef<str>]) -> bool {
        let mut indexes = Vec::with_capacity(ids.len());
        for id in ids {
            match self.users.iter().position(|u| u.id == id.as_ref()) {
                Some(index) if !indexes.contains(&index) => indexes.push(index),
                _ => return false,
            }
        }
        let emails: Vec<String> = indexes
            .iter()
            .map(|i| self.users[*i].email.clone())
            .collect();
        let at = self.tick();
        for (n, index) in indexes.iter().enumerate() {
            let before = self.users[*index].clone();
            self.users[*index].email = emails[(n + 1) % emails.len()].clone();
            self.stamp(*index, at, Some(before));
        }
        true
    }

    /// Delete a user: gone from listings and groups, a tombstone for delta.
    pub fn delete_user(&mut self, id: &str) -> bool {
        let at = self.tick();
        let Some(index) = self.users.iter().position(|u| u.id == id) else {
            return false;
        };
        let before = self.users[index].clone();
        self.users[index].deleted_at = Some(at);
        self.stamp(index, at, Some(before));
        for group in &mut self.groups {
            if group.members.contains(&index) {
                group.members.retain(|m| *m != index);
                group.updated_at = at;
            }
        }
        true
    }

    /// Add a user (stamped now); its index.
    pub fn add_user(&mut self, mut user: Person) -> usize {
        let at = self.tick();
        user.deleted_at = None;
        self.users.push(user);
        let index = self.users.len() - 1;
        self.stamp(index, at, None);
        index
    }

    /// Put a user in a group, or take it out.
    pub fn set_member(&mut self, group_id: &str, user_id: &str, member: bool) -> bool {
        let at = self.tick();
        let Some(index) = self.users.iter().position(|u| u.id == user_id) else {
            return false;
        };
        let Some(group) = self.groups.iter_mut().find(|g| g.id == group_id) else {
            return false;
        };
        let present = group.members.contains(&index);
        if member && !present {
            group.members.push(index);
        } else if !member && present {
            group.members.retain(|m| *m != index);
        }
        group.updated_at = at;
        true
    }
}

/// A fault the fake injects into its next API answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with the provider's throttling headers and body.
    Throttle,
    /// 503 with the provider's error body.
    Unavailable,
}

/// Faults to inject, shared with the test that set them. Token endpoints are
/// never faulted; every API request asks `next()` first.
#[derive(Debug)]
pub struct Faults {
    throttle: AtomicU32,
    fail: AtomicU32,
    /// Listing pages still served before every request fails (u64::MAX: no cut).
    cut_after: AtomicU64,
    /// How long a throttled client is told to wait, in milliseconds.
    pub retry_after_ms: AtomicU64,
    /// API requests answered (faulted or not), for tests that count calls.
    pub requests: AtomicU64,
    /// How long each page of users waits before it is answered, in
    /// milliseconds (a slow provider: a run stays mid-way for a while).
    pace_ms: AtomicU64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            throttle: AtomicU32::new(0),
            fail: AtomicU32::new(0),
            cut_after: AtomicU64::new(u64::MAX),
            retry_after_ms: AtomicU64::new(1000),
            requests: AtomicU64::new(0),
            pace_ms: AtomicU64::new(0),
        }
    }
}

impl Faults {
    /// The next `requests` API requests are throttled.
    pub fn throttle(&self, requests: u32) {
        self.throttle.store(requests, Ordering::SeqCst);
    }

    /// The next `requests` API requests fail with 503.
    pub fn fail(&self, requests: u32) {
        self.fail.store(requests, Ordering::SeqCst);
    }

    /// Serve `pages` more requests, then fail every one with 503 until
    /// `clear` (an outage mid-listing: the listing never completes).
    pub fn cut_after(&self, pages: u64) {
        self.cut_after.store(pages, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.throttle(0);
        self.fail(0);
        self.cut_after(u64::MAX);
        self.pace(std::time::Duration::ZERO);
    }

    /// Answer each page of users after `every` (zero: at once).
    pub fn pace(&self, every: std::time::Duration) {
        self.pace_ms
            .store(every.as_millis() as u64, Ordering::SeqCst);
    }

    /// Wait as `pace` asks before answering a page of users.
    pub async fn paced(&self) {
        let ms = self.pace_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }

    /// What to do with this API request: a fault, or None to answer it.
    pub fn next(&self) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let take = |counter: &AtomicU32| {
            counter
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if take(&self.throttle) {
            return Some(Fault::Throttle);
        }
        if take(&self.fail) {
            return Some(Fault::Unavailable);
        }
        let cut = self
            .cut_after
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                u64::MAX => None,
                0 => None,
                n => Some(n - 1),
            });
        match cut {
            Err(0) => Some(Fault::Unavailable),
            _ => None,
        }
    }
}

/// What a running fake and its test share.
#[derive(Debug, Default)]
pub struct Shared {
    directory: RwLock<Org>,
    pub faults: Faults,
    tokens: Mutex<HashSet<String>>,
    /// Access tokens issued, for tests of token reuse and refresh.
    pub tokens_issued: AtomicU64,
    /// The query string of every users listing answered, for tests of what
    /// a connector asks its provider for.
    user_queries: Mutex<Vec<String>>,
    /// Users listings answered (every page of `users`, a delta round, a
    /// group's users), for tests that prove a connector did not list.
    pub users_listed: AtomicU64,
    /// The key (id or email) of every single-user read answered (found or
    /// not), in order.
    user_reads: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(directory: Org) -> std::sync::Arc<Shared> {
        std::sync::Arc::new(Shared {
            directory: RwLock::new(directory),
            ..Shared::default()
        })
    }

    /// Read the directory (a poisoned lock still reads: a panicking test
    /// handler must not hide the directory from the others).
    pub fn directory(&self) -> RwLockReadGuard<'_, Org> {
        self.directory.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn directory_mut(&self) -> RwLockWriteGuard<'_, Org> {
        self.directory.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember what a users listing asked for (its query string).
    pub fn asked(&self, query: &str) {
        self.user_queries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(query.to_owned());
    }

    /// The query strings of the users listings answered so far.
    pub fn user_queries(&self) -> Vec<String> {
        self.user_queries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Count a users listing page answered.
    pub fn listed(&self) {
        self.users_listed.fetch_add(1, Ordering::SeqCst);
    }

    /// Remember a single-user read of `key` (answered, found or not).
    pub fn read_user(&self, key: &str) {
        self.user_reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.to_owned());
    }

    /// The keys of the single-user reads answered so far.
    pub fn user_reads(&self) -> Vec<String> {
        self.user_reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The live user an id or an email (folded) names: what a provider's
    /// single-user read finds.
    pub fn find_user(&self, key: &str) -> Option<Person> {
        let key = key.trim();
        self.directory()
            .live_users()
            .find(|u| u.id == key || u.email.eq_ignore_ascii_case(key))
            .cloned()
    }

    /// Mint an access token the fake will accept until `revoke_tokens`.
    pub fn issue_token(&self) -> String {
        let mut bytes = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone());
        self.tokens_issued.fetch_add(1, Ordering::SeqCst);
        token
    }

    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(token)
    }

    /// Every access token issued and still valid (tests check none leaks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Expire every issued token (the next API call gets 401).
    pub fn revoke_tokens(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The `Authorization` header's credential after `scheme ` (Bearer, SSWS).
pub fn credential<'a>(req: &'a actix_web::HttpRequest, scheme: &str) -> Option<&'a str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix(scheme)?
        .strip_prefix(' ')
}

/// Start an actix server for a fake on 127.0.0.1, port 0; `routes` gets the
/// fake's base URL (for the absolute next links providers send).
pub fn serve<F>(routes: impl FnOnce(&str) -> F) -> std::io::Result<Running>
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let configure = routes(&base_url);
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)?
            .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(Running { base_url, handle })
}

/// A running fake; stops when dropped.
pub struct Running {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Running {
    /// Graph's API base on this fake (`/v1.0`).
    pub fn graph_base(&self) -> String {
        format!("{}/v1.0", self.base_url)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Stopping is async; outside a runtime the server ends with its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let handle = self.handle.clone();
            drop(runtime.spawn(async move { handle.stop(false).await }));
        }
    }
}

/// `2026-01-01T00:00:00.000Z` from epoch milliseconds (the providers' form).
pub fn timestamp(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_directory() {
        assert_eq!(Org::generate(50, 3, 7), Org::generate(50, 3, 7));
        assert_ne!(Org::generate(50, 3, 7), Org::generate(50, 3, 8));
        let dir = Org::generate(50, 3, 7);
        assert_eq!(
            dir.groups.iter().map(|g| g.members.len()).sum::<usize>(),
            50
        );
    }

    #[test]
    fn changes_are_stamped_later_and_deleted_users_leave_listings_and_groups() {
        let mut dir = Org::generate(10, 2, 3);
        let before = dir.clock;
        let id = dir.users[0].id.clone();
        assert!(dir.update_user(&id, |u| u.title = "Boss".into()));
        assert!(dir.users[0].updated_at > before);
        assert!(dir.delete_user(&id));
        assert_eq!(dir.live_users().count(), 9);
        assert!(dir.groups.iter().all(|g| !g.members.contains(&0)));
        assert!(!dir.update_user("nobody", |_| ()));
    }

    #[rstest::rstest]
    #[case(Order::AsCreated, vec![0, 1, 2, 3, 4])]
    #[case(Order::Reversed, vec![4, 3, 2, 1, 0])]
    #[case(Order::Shuffled(7), Order::Shuffled(7).arrange((0..5).collect()))]
    fn listings_follow_the_directorys_order(#[case] order: Order, #[case] expected: Vec<usize>) {
        let mut dir = Org::generate(5, 1, 3);
        dir.order = order;
        let listed: Vec<&str> = dir.listed_users().map(|u| u.id.as_str()).collect();
        let expected: Vec<&str> = expected.iter().map(|i| dir.users[*i].id.as_str()).collect();
        assert_eq!(listed, expected);
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(sorted.len(), 5, "every user once");
        let group = &dir.groups[0];
        let members: Vec<&str> = dir.members_of(group).map(|u| u.id.as_str()).collect();
        let in_order: Vec<&str> = listed
            .iter()
            .copied()
            .filter(|id| members.contains(id))
            .collect();
        assert_eq!(members, in_order, "a group's members follow the order too");
    }

    #[test]
    fn a_shuffle_is_fixed_by_its_seed_and_keeps_users_in_place_when_one_is_added() {
        let order = Order::Shuffled(11);
        let ten = order.arrange((0..10).collect());
        assert_eq!(ten, order.arrange((0..10).collect()));
        assert_ne!(ten, (0..10).collect::<Vec<_>>());
        assert_ne!(ten, Order::Shuffled(12).arrange((0..10).collect()));
        let eleven: Vec<usize> = order
            .arrange((0..11).collect())
            .into_iter()
            .filter(|i| *i < 10)
            .collect();
        assert_eq!(eleven, ten);
    }

    #[test]
    fn a_swap_exchanges_two_addresses_and_stamps_both_users_once() {
        let mut dir = Org::generate(4, 1, 3);
        let before = dir.clone();
        let (a, b) = (dir.users[0].id.clone(), dir.users[1].id.clone());
        let clock = dir.clock;
        assert!(dir.swap_emails(&a, &b));
        assert_eq!(dir.users[0].email, before.users[1].email);
        assert_eq!(dir.users[1].email, before.users[0].email);
        assert!(dir.users[0].updated_at > clock);
        assert_eq!(dir.users[0].updated_at, dir.users[1].updated_at);
        assert_eq!(dir.users[2], before.users[2]);
        assert_eq!(dir.user_as_of(0, clock), Some(&before.users[0]));
        assert_eq!(dir.user_as_of(0, dir.clock), Some(&dir.users[0]));
    }

    #[test]
    fn a_rotation_hands_each_user_the_next_ones_address() {
        let mut dir = Org::generate(4, 1, 3);
        let emails: Vec<String> = dir.users.iter().map(|u| u.email.clone()).collect();
        let ids: Vec<String> = dir.users[..3].iter().map(|u| u.id.clone()).collect();
        assert!(dir.rotate_emails(&ids));
        let now: Vec<&str> = dir.users.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(now, [&emails[1], &emails[2], &emails[0], &emails[3]]);
        assert_eq!(
            dir.id_by_email(&emails[0].to_uppercase()),
            Some(ids[2].clone())
        );
    }

    #[rstest::rstest]
    #[case(&["nobody"])]
    #[case(&["00000003-0000-4000-8000-000000000000", "nobody"])]
    #[case(&["00000003-0000-4000-8000-000000000000", "00000003-0000-4000-8000-000000000000"])]
    fn a_rotation_naming_an_unknown_or_repeated_user_changes_nothing(#[case] ids: &[&str]) {
        let mut dir = Org::generate(4, 1, 3);
        let before = dir.clone();
        assert!(!dir.rotate_emails(ids));
        assert_eq!(dir, before);
    }

    #[test]
    fn a_rename_is_stamped_and_remembered_and_a_new_user_did_not_exist_before() {
        let mut dir = Org::generate(3, 1, 3);
        let start = dir.clock;
        let id = dir.users[2].id.clone();
        let old = dir.users[2].email.clone();
        assert!(dir.set_email(&id, "renamed@example.com"));
        assert_eq!(dir.id_by_email("Renamed@Example.com"), Some(id.clone()));
        assert_eq!(dir.id_by_email(&old), None);
        assert_eq!(
            dir.user_as_of(2, start).map(|u| u.email.as_str()),
            Some(old.as_str())
        );
        assert!(!dir.set_email("nobody", "x@example.com"));

        let mut new = dir.users[0].clone();
        new.id = "new".into();
        let index = dir.add_user(new);
        assert_eq!(dir.user_as_of(index, start), None);
        assert!(dir.delete_user(&id));
        assert_eq!(
            dir.id_by_email("renamed@example.com"),
            None,
            "deleted users are not found"
        );
    }

    #[test]
    fn faults_are_served_in_order_and_a_cut_fails_every_request_after_it() {
        let faults = Faults::default();
        faults.throttle(1);
        faults.fail(1);
        assert_eq!(faults.next(), Some(Fault::Throttle));
        assert_eq!(faults.next(), Some(Fault::Unavailable));
        assert_eq!(faults.next(), None);
        faults.cut_after(1);
        assert_eq!(faults.next(), None);
        assert_eq!(faults.next(), Some(Fault::Unavailable));
        assert_eq!(faults.next(), Some(Fault::Unavailable));
        faults.clear();
        assert_eq!(faults.next(), None);
    }
}
