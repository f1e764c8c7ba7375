//! Applying the user rules: read what a page of changes needs in a few
//! statements, plan each change (`plan::plan_user`, pure), write the results
//! and record one event per change. Runs inside the caller's transaction, so
//! the mirror write, the app identity and the events commit together or not at
//! all; `unit::Unit` appends the events last (store::events says why).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, instrument};

use super::addresses::{self, Holder, Move, Verdict};
use super::mapping::{Mapping, SourceKind, StandardField, Target};
use super::model::{Change, Custom, EventType, Field, Outcome, Profile, Snapshot, SnapshotField};
use super::plan::{self, Current, DeactivatedBy, Status, Write};
use super::policy::{OnDelete, OnMissing, Policy};
use crate::domain::time::rfc3339;
use crate::store::app::groups as app_groups;
use crate::store::app::links::{self, Link};
use crate::store::app::users::{self as app_users, AppUser, CustomAttributes};
use crate::store::events::NewEvent;
use crate::store::mirror::deferred::{self, Deferred};
use crate::store::{Conn, StoreError, tenants};

/// Custom attributes past `CUSTOM_ATTRIBUTES_BYTES` together are dropped,
/// whole, the last by name first (a cut value would be another value, and
/// which ones stay must not depend on the order the rules gave them).
fn keep_within_cap(custom: &mut Custom) {
    use crate::domain::limits::CUSTOM_ATTRIBUTES_BYTES;
    // Far under the cap is the rule: a bound from the lengths alone spares
    // writing every value out for each user.
    let at_most: usize = custom
        .iter()
        .map(|(name, value)| name.len() + json_len_at_most(value) + 6)
        .sum();
    if at_most <= CUSTOM_ATTRIBUTES_BYTES {
        return;
    }
    let size = |name: &String, value: &Value| name.len() + json_len(value) + 6;
    let custom = custom.to_mut();
    let mut total: usize = custom.iter().map(|(k, v)| size(k, v)).sum();
    while total > CUSTOM_ATTRIBUTES_BYTES {
        let Some((name, value)) = custom.pop_last() else {
            break;
        };
        total -= size(&name, &value);
        tracing::warn!(
            attribute = %name,
            max = CUSTOM_ATTRIBUTES_BYTES,
            "custom attributes past their cap together; dropped"
        );
    }
}

/// No less than `value`'s length as JSON text: a string's byte escaped is
/// at most six (`\u001f`), and a list adds its brackets and commas.
fn json_len_at_most(value: &Value) -> usize {
    match value {
        Value::String(s) => 6 * s.len() + 2,
        Value::Array(items) => items.iter().map(|v| json_len_at_most(v) + 1).sum::<usize>() + 2,
        _ => json_len(value),
    }
}

/// How long `value` is as JSON text, counted without writing it out.
fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Value into a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// One user under two attribute mappings (`Origin::compare`).
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    pub before: Snapshot,
    pub after: Snapshot,
    pub changed: Vec<Field>,
}

/// Where a change comes from: the directory (its id and tenant) and the
/// policy in force. Not the directory's row (`store::tenants::Directory`).
#[derive(Debug, Clone)]
pub struct Origin {
    pub id: String,
    pub tenant_id: String,
    pub policy: Policy,
    /// A fingerprint of `policy`: part of what a link was judged under.
    policy_key: String,
    /// The policy's attribute mapping, compiled for the directory's kind.
    mapping: Arc<Mapping>,
    /// Every target of the mapping, each once (what a complete snapshot
    /// carries), worked out once per directory rather than per user.
    targets: Arc<[Target]>,
}

impl Origin {
    /// Read the directory and its policy inside the transaction.
    pub async fn load<C: Conn>(conn: &C, id: &str) -> Result<Origin, StoreError> {
        let row = tenants::directory_in(conn, id).await?;
        let policy: Policy = serde_json::from_value(row.policy).map_err(|e| {
            StoreError::Invalid(format!("directory {id} has an unreadable policy: {e}"))
        })?;
        let text = serde_json::to_string(&policy).unwrap_or_default();
        let kind = SourceKind::of_directory(&row.kind).ok_or_else(|| {
            StoreError::Invalid(format!("directory {id} has an unknown kind {:?}", row.kind))
        })?;
        let mapping = Mapping::compile(kind, &policy.attribute_mapping).map_err(|e| {
            StoreError::Invalid(format!(
                "directory {id} has an unusable attribute mapping: {e}"
            ))
        })?;
        Ok(Origin {
            id: row.id,
            tenant_id: row.tenant_id,
            policy_key: crate::crypto::hash_token(&text)[..16].to_owned(),
            policy,
            targets: mapping.targets_carried(|_| true).into(),
            mapping: Arc::new(mapping),
        })
    }

    /// Where a snapshot keeps a standard field, and its name as a partial
    /// item's carried attribute.
    fn slot<'s>(
        &self,
        s: &'s mut Snapshot,
        field: StandardField,
    ) -> (&'s mut Option<String>, SnapshotField) {
        let p = &mut s.profile;
        match field {
            StandardField::GivenName => (&mut p.given_name, SnapshotField::GivenName),
            StandardField::FamilyName => (&mut p.family_name, SnapshotField::FamilyName),
            StandardField::DisplayName => (&mut p.display_name, SnapshotField::DisplayName),
            StandardField::AvatarUrl => (&mut p.avatar_url, SnapshotField::AvatarUrl),
            StandardField::Department => (&mut p.department, SnapshotField::Department),
            StandardField::Title => (&mut p.title, SnapshotField::Title),
            StandardField::EmployeeNumber => {
                (&mut p.employee_number, SnapshotField::EmployeeNumber)
            }
            StandardField::Manager => (&mut p.manager, SnapshotField::Manager),
            StandardField::Email => (&mut s.email, SnapshotField::Email),
        }
    }

    /// The policy's attribute mapping, compiled: what a pull connector asks
    /// its provider for (`Mapping::top_level_properties`).
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// This directory under another attribute mapping (a preview's), checked
    /// like a stored one.
    pub fn with_mapping(&self, rules: Vec<super::mapping::Rule>) -> Result<Origin, String> {
        let mapping = Mapping::compile(self.mapping.kind(), &rules).map_err(|e| e.to_string())?;
        let mut policy = self.policy.clone();
        policy.attribute_mapping = rules;
        let text = serde_json::to_string(&policy).unwrap_or_default();
        Ok(Origin {
            id: self.id.clone(),
            tenant_id: self.tenant_id.clone(),
            policy_key: crate::crypto::hash_token(&text)[..16].to_owned(),
            policy,
            targets: mapping.targets_carried(|_| true).into(),
            mapping: Arc::new(mapping),
        })
    }

    /// What this directory's rules and another's make of one user, side by
    /// side (a mapping change's preview): each mapped snapshot, and what
    /// differs between them.
    pub fn compare(&self, proposed: &Origin, snapshot: &Snapshot) -> Compared {
        let mut before = snapshot.clone();
        self.map(&mut before);
        let mut after = snapshot.clone();
        proposed.map(&mut after);
        let mut changed = plan::profile_differences(&before.profile, &after.profile);
        if before.email != after.email {
            changed.insert(0, Field::Email);
        }
        if before.role != after.role {
            changed.insert(0, Field::Role);
        }
        Compared {
            before,
            after,
            changed,
        }
    }

    /// Read the attribute mapping into every snapshot of a page ([`Self::map`]).
    pub fn map_all(&self, mut changes: Vec<UserChange>) -> Vec<UserChange> {
        for c in &mut changes {
            if let Change::Upsert(s) = &mut c.change {
                self.map(s);
            }
        }
        changes
    }

    /// Read the attribute mapping into a snapshot from the document the
    /// edge handed over with it, before anything compares or stores it:
    /// what a rule gives replaces the default source of the field it
    /// targets; custom attributes and the role are the rules' alone. A
    /// partial item (a Graph delta round) carries only the targets whose
    /// source properties it holds; the rest keep what was said before
    /// (`Snapshot::merged_over`). Without a document (a stored snapshot, a
    /// removal) there is nothing to read.
    pub fn map(&self, s: &mut Snapshot) {
        let Some(document) = s.document.take() else {
            return;
        };
        if self.mapping.is_empty() {
            return;
        }
        let mut mapped = self.mapping.evaluate(&document);
        let partial: Vec<Target>;
        let targets: &[Target] = match (&s.carried, document.as_object()) {
            (None, _) => &self.targets,
            (Some(_), Some(item)) => {
                partial = self
                    .mapping
                    .targets_carried(|p| item.keys().any(|k| k.eq_ignore_ascii_case(p)));
                &partial
            }
            (Some(_), None) => &[],
        };
        // A field a rule targets comes from the rule's source alone: a
        // partial item that carries the field's default source but not the
        // rule's does not carry the field.
        if s.carried.is_some() {
            for target in self.targets.iter().filter(|t| !targets.contains(t)) {
                if let Target::Field(field) = target {
                    let (_, attribute) = self.slot(s, *field);
                    if let Some(carried) = s.carried.as_mut() {
                        carried.retain(|a| *a != attribute);
                    }
                }
            }
        }
        // A complete snapshot's custom attributes are the rules' alone: what
        // they gave moves over whole.
        let whole = s.carried.is_none() && s.profile.custom.is_empty();
        if whole {
            s.profile.custom = Custom::from(std::mem::take(&mut mapped.custom));
        }
        for target in targets {
            match target {
                Target::Custom(_) if whole => {}
                Target::Field(field) => {
                    let value = mapped.fields.remove(field).flatten();
                    let (slot, attribute) = self.slot(s, *field);
                    *slot = match field {
                        // The address the engine matches and keys by:
                        // folded like every edge's, and only if it is one.
                        StandardField::Email => value.filter(|v| v.contains('@')).map(|v| {
                            crate::domain::names::fold(&crate::domain::names::without_invisible(&v))
                        }),
                        _ => value,
                    };
                    if let Some(carried) = s.carried.as_mut().filter(|c| !c.contains(&attribute)) {
                        carried.push(attribute);
                    }
                }
                Target::Custom(name) => {
                    match mapped.custom.remove(name) {
                        Some(value) => {
                            s.profile.custom.to_mut().insert(name.clone(), value);
                        }
                        None => s.profile.custom.remove(name),
                    }
                    if s.carried.is_some() {
                        s.carried_custom.push(name.clone());
                    }
                }
                Target::Role => {
                    s.role = mapped.role.take();
                    if let Some(carried) = s.carried.as_mut() {
                        carried.push(SnapshotField::Role);
                    }
                }
            }
        }
        keep_within_cap(&mut s.profile.custom);
    }

    /// What a link judged now, for an app user at `version`, records.
    fn judged(&self, version: i64) -> String {
        format!("{version}:{}", self.policy_key)
    }

    fn uses_groups(&self) -> bool {
        self.policy.group_roles_enabled || self.policy.require_group_membership
    }
}

/// Events a transaction produced; `unit::Unit` appends them just before it
/// commits.
#[derive(Debug, Default)]
pub struct Effects {
    events: Vec<NewEvent>,
}

impl Effects {
    pub fn push(&mut self, r#type: EventType, resource_type: &'static str, id: &str, data: Value) {
        self.push_text(r#type, resource_type, id, data.to_string());
    }

    /// [`Self::push`] with the data object already written out as JSON text.
    fn push_text(
        &mut self,
        r#type: EventType,
        resource_type: &'static str,
        id: &str,
        data: String,
    ) {
        self.events.push(NewEvent {
            r#type,
            resource_type,
            resource_id: id.to_owned(),
            data,
        });
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// How many events of this type are waiting.
    pub fn count(&self, r#type: EventType) -> u64 {
        self.events.iter().filter(|e| e.r#type == r#type).count() as u64
    }

    /// Add one event of the caller's own (a run's `sync.run.finished`).
    pub fn push_event(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Forget the events after the first `len` (a pass undone).
    pub(super) fn truncate(&mut self, len: usize) {
        self.events.truncate(len);
    }

    /// The events, for the unit of work to append.
    pub(super) fn into_events(self) -> Vec<NewEvent> {
        self.events
    }
}

/// One change to one directory user, named by its stable id in the directory
/// (the mirror row id for SCIM, the provider's id for a pull).
#[derive(Debug, Clone, PartialEq)]
pub struct UserChange {
    pub source_id: String,
    pub change: Change,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub source_id: String,
    pub outcome: Outcome,
    pub app_user_id: Option<String>,
    /// The app user's status after a change that created or updated it (a
    /// user created already deactivated, for the run's counts).
    pub status: Option<Status>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Plan only: nothing written, no event.
    pub dry_run: bool,
    /// Deactivations are returned in `Batch::held` instead of applied (a
    /// complete listing decides them at the end, under the guard).
    pub hold_deactivations: bool,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub applied: Vec<Applied>,
    pub held: Vec<UserChange>,
}

pub fn status_str(status: Status) -> &'static str {
    match status {
        Status::Pending => "PENDING",
        Status::Active => "ACTIVE",
        Status::Deactivated => "DEACTIVATED",
    }
}

fn parse_status(s: &str) -> Status {
    match s {
        "ACTIVE" => Status::Active,
        "DEACTIVATED" => Status::Deactivated,
        _ => Status::Pending,
    }
}

pub fn deactivated_by_str(by: DeactivatedBy) -> &'static str {
    match by {
        DeactivatedBy::Admin => "admin",
        DeactivatedBy::Directory => "directory",
    }
}

fn parse_deactivated_by(s: &str) -> Option<DeactivatedBy> {
    match s {
        "admin" => Some(DeactivatedBy::Admin),
        "directory" => Some(DeactivatedBy::Directory),
        _ => None,
    }
}

/// A row's custom attributes (none when the column is NULL), shared.
fn custom_attributes(stored: &Option<CustomAttributes>) -> Custom {
    stored.as_ref().map(|c| c.0.clone()).unwrap_or_default()
}

/// The row as the planner sees it.
pub fn to_plan(row: &AppUser) -> plan::AppUser {
    plan::AppUser {
        id: row.id.clone(),
        email: row.email_folded.clone(),
        status: parse_status(&row.status),
        deactivated_by: row.deactivated_by.as_deref().and_then(parse_deactivated_by),
        deactivated_at: row.deactivated_at,
        role: row.role.clone(),
        profile: Profile {
            given_name: row.given_name.clone(),
            family_name: row.family_name.clone(),
            display_name: row.display_name.clone(),
            avatar_url: row.avatar_url.clone(),
            department: row.department.clone(),
            title: row.title.clone(),
            employee_number: row.employee_number.clone(),
            manager: row.manager.clone(),
            custom: custom_attributes(&row.custom_attributes),
        },
        has_signed_in: row.has_signed_in,
    }
}

/// The planner's user written over a row (or a new row). Takes the user
/// by value: its text moves into the row rather than being copied (this
/// runs for every user a sync creates or updates).
pub fn to_row(user: plan::AppUser, base: Option<&AppUser>, tenant_id: &str, now: i64) -> AppUser {
    let p = user.profile;
    let (id, version, created_at, updated_at, profile_directory_id) = match base {
        Some(b) => (
            b.id.clone(),
            b.version + 1,
            b.created_at,
            now.max(b.updated_at),
            b.profile_directory_id.clone(),
        ),
        None => (user.id, 1, now, now, None),
    };
    AppUser {
        id,
        tenant_id: tenant_id.to_owned(),
        email_folded: user.email.clone(),
        email: user.email,
        status: status_str(user.status).to_owned(),
        deactivated_by: user
            .deactivated_by
            .map(|d| deactivated_by_str(d).to_owned()),
        deactivated_at: user.deactivated_at,
        role: user.role,
        has_signed_in: user.has_signed_in,
        given_name: p.given_name,
        family_name: p.family_name,
        display_name: p.display_name,
        avatar_url: p.avatar_url,
        department: p.department,
        title: p.title,
        employee_number: p.employee_number,
        manager: p.manager,
        custom_attributes: (!p.custom.is_empty()).then(|| CustomAttributes(p.custom)),
        profile_directory_id,
        version,
        created_at,
        updated_at,
    }
}

/// The host application's view of a user: the API's `User`, and the
/// `user` of every user event.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    pub id: String,
    /// Folded (lowercase); unique in the tenant.
    pub email: String,
    /// `PENDING` (never signed in), `ACTIVE`, or `DEACTIVATED`.
    pub status: String,
    /// Who deactivated it: `admin` or `directory`.
    pub deactivated_by: Option<String>,
    pub role: String,
    pub has_signed_in: bool,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub employee_number: Option<String>,
    pub manager: Option<String>,
    /// What the directory's attribute mapping gives: name → a string, or a
    /// list of strings when the source holds several values.
    #[schema(value_type = Object)]
    pub custom_attributes: Custom,
    /// RFC 3339, milliseconds, UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl From<&AppUser> for UserView {
    fn from(row: &AppUser) -> UserView {
        UserView {
            id: row.id.clone(),
            email: row.email.clone(),
            status: row.status.clone(),
            deactivated_by: row.deactivated_by.clone(),
            role: row.role.clone(),
            has_signed_in: row.has_signed_in,
            given_name: row.given_name.clone(),
            family_name: row.family_name.clone(),
            display_name: row.display_name.clone(),
            avatar_url: row.avatar_url.clone(),
            department: row.department.clone(),
            title: row.title.clone(),
            employee_number: row.employee_number.clone(),
            manager: row.manager.clone(),
            custom_attributes: custom_attributes(&row.custom_attributes),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// [`UserView`] written straight from the row it is made of, without a copy
/// of the row's text: the `user` of a user event, which every change of
/// every user writes. The same members in the same order as `UserView`;
/// `a_user_event_is_written_as_it_always_was` and
/// `a_row_writes_as_its_user_view_does` keep the two one.
#[derive(Serialize)]
struct RowView<'a> {
    id: &'a str,
    email: &'a str,
    status: &'a str,
    deactivated_by: Option<&'a str>,
    role: &'a str,
    has_signed_in: bool,
    given_name: Option<&'a str>,
    family_name: Option<&'a str>,
    display_name: Option<&'a str>,
    avatar_url: Option<&'a str>,
    department: Option<&'a str>,
    title: Option<&'a str>,
    employee_number: Option<&'a str>,
    manager: Option<&'a str>,
    custom_attributes: &'a Custom,
    created_at: String,
    updated_at: String,
}

impl<'a> From<&'a AppUser> for RowView<'a> {
    fn from(row: &'a AppUser) -> RowView<'a> {
        RowView {
            id: &row.id,
            email: &row.email,
            status: &row.status,
            deactivated_by: row.deactivated_by.as_deref(),
            role: &row.role,
            has_signed_in: row.has_signed_in,
            given_name: row.given_name.as_deref(),
            family_name: row.family_name.as_deref(),
            display_name: row.display_name.as_deref(),
            avatar_url: row.avatar_url.as_deref(),
            department: row.department.as_deref(),
            title: row.title.as_deref(),
            employee_number: row.employee_number.as_deref(),
            manager: row.manager.as_deref(),
            custom_attributes: row.custom_attributes.as_ref().map_or(&NONE, |c| &c.0),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// What a row without custom attributes shows: an empty object.
static NONE: Custom = Custom::NONE;

/// The host application's view of a user, as JSON (events, CLI).
pub fn user_view(row: &AppUser) -> Value {
    serde_json::to_value(UserView::from(row)).unwrap_or(Value::Null)
}

/// The event for an outcome, if the outcome is a change.
pub fn user_event(outcome: &Outcome) -> Option<(EventType, Vec<Field>)> {
    match outcome {
        Outcome::Created => Some((EventType::UserCreated, Vec::new())),
        Outcome::Updated(fields) => Some((EventType::UserUpdated, fields.clone())),
        Outcome::Deactivated => Some((EventType::UserDeactivated, vec![Field::Status])),
        Outcome::Reactivated => Some((EventType::UserReactivated, vec![Field::Status])),
        Outcome::Deleted => Some((EventType::UserDeleted, Vec::new())),
        Outcome::Unchanged | Outcome::Skipped(_) | Outcome::Conflict(_) | Outcome::Deferred(_) => {
            None
        }
    }
}

fn push_user_event(fx: &mut Effects, dir: &Origin, outcome: &Outcome, row: &AppUser) {
    /// A user event's data, written out as text without a tree between.
    #[derive(Serialize)]
    struct Data<'a> {
        user: RowView<'a>,
        changed: &'a [Field],
        directory_id: &'a str,
    }
    if let Some((kind, changed)) = user_event(outcome) {
        let data = Data {
            user: RowView::from(row),
            changed: &changed,
            directory_id: &dir.id,
        };
        // Strings, a map with string keys and a list of names: writing them
        // out cannot fail.
        let text = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned());
        fx.push_text(kind, "user", &row.id, text);
    }
}

/// What the batch read, kept current as its changes are planned, plus the
/// writes it owes.
#[derive(Default)]
struct State {
    users: HashMap<String, AppUser>,
    by_email: HashMap<String, String>,
    /// This directory's links by source id.
    links: HashMap<String, Link>,
    /// This directory's live links by app user.
    here: HashMap<String, String>,
    /// Other directories' live links by app user.
    elsewhere: HashMap<String, Vec<Link>>,
    groups: HashMap<String, Vec<String>>,
    /// Source ids and addresses already asked of the store.
    sources_read: HashSet<String>,
    emails_read: HashSet<String>,
    /// Addresses whose waiting changes were read.
    deferred_read: HashSet<String>,
    /// Each loaded app user's address before the set.
    loaded_email: HashMap<String, String>,
    /// Deferred changes of this directory read for the set, by source id.
    deferred: HashMap<String, Deferred>,
    inserted: Vec<String>,
    updated: HashSet<String>,
    deleted: Vec<String>,
    links_changed: HashSet<String>,
    links_deleted: Vec<String>,
    linked_now: Vec<String>,
    deferred_written: Vec<Deferred>,
    deferred_cleared: Vec<String>,
    /// Links whose snapshot the set judged (their `judged` is stamped with
    /// the app user's version after the set's writes).
    judged: Vec<String>,
    /// App users whose removed link from this directory an upsert of the
    /// set revives, with the one source that revives it (`revivals`).
    revived: HashMap<String, String>,
    /// The new snapshot of each link whose snapshot changed, by source id:
    /// the JSON text its hash was taken of, written as it is (the link's
    /// own `snapshot` is then None).
    snapshot_texts: HashMap<String, String>,
}

impl State {
    /// An app user as read from the store.
    fn read_user(&mut self, row: AppUser) {
        self.loaded_email
            .insert(row.id.clone(), row.email_folded.clone());
        self.add_user(row);
    }

    fn add_user(&mut self, row: AppUser) {
        self.by_email
            .insert(row.email_folded.clone(), row.id.clone());
        self.users.insert(row.id.clone(), row);
    }

    fn add_link(&mut self, dir: &Origin, link: Link) {
        if link.directory_id == dir.id {
            if link.removed_at.is_none() {
                self.here
                    .insert(link.app_user_id.clone(), link.source_id.clone());
            }
            self.links.insert(link.source_id.clone(), link);
        } else if link.removed_at.is_none() {
            self.elsewhere
                .entry(link.app_user_id.clone())
                .or_default()
                .push(link);
        }
    }

    /// The app user this directory user is linked to.
    fn linked(&self, source_id: &str) -> Option<&AppUser> {
        self.links
            .get(source_id)
            .and_then(|l| self.users.get(&l.app_user_id))
    }

    /// Who holds an address before the set, for `addresses::settle`.
    fn holder(&self, address: &str) -> Option<Holder> {
        let id = self.by_email.get(address)?.clone();
        Some(if self.here.contains_key(&id) {
            Holder::Here(id)
        } else {
            Holder::Elsewhere(id)
        })
    }
}

/// Read what these changes need that the state does not hold yet: their
/// links, the app users linked or matched by email, other directories'
/// links to those users, and their groups when the policy uses them.
async fn load<C: Conn>(
    conn: &C,
    dir: &Origin,
    state: &mut State,
    changes: &[UserChange],
) -> Result<(), StoreError> {
    let sources: Vec<String> = changes
        .iter()
        .filter(|c| state.sources_read.insert(c.source_id.clone()))
        .map(|c| c.source_id.clone())
        .collect();
    for link in links::links_by_source(conn, &dir.id, &sources).await? {
        state.add_link(dir, link);
    }
    // An IdP that deleted a user and creates it again under the same
    // externalId gets its app user back (the removed link is re-keyed).
    let returning: Vec<String> = changes
        .iter()
        .filter(|c| sources.contains(&c.source_id) && !state.links.contains_key(&c.source_id))
        .filter_map(|c| match &c.change {
            Change::Upsert(s) => s.external_id.clone(),
            _ => None,
        })
        .collect();
    let mut removed_by_external = HashMap::new();
    if !returning.is_empty() {
        for link in links::removed_links_by_external_id(conn, &dir.id, &returning).await? {
            if let Some(ext) = link.external_id.clone() {
                removed_by_external.entry(ext).or_insert(link);
            }
        }
    }
    for change in changes {
        if state.links.contains_key(&change.source_id) {
            continue;
        }
        if let Change::Upsert(s) = &change.change
            && let Some(old) = s
                .external_id
                .as_ref()
                .and_then(|e| removed_by_external.remove(e))
        {
            state.links_deleted.push(old.source_id.clone());
            let moved = Link {
                source_id: change.source_id.clone(),
                ..old
            };
            state.links_changed.insert(moved.source_id.clone());
            state.add_link(dir, moved);
        }
    }
    let mut user_ids: Vec<String> = changes
        .iter()
        .filter_map(|c| state.links.get(&c.source_id))
        .map(|l| l.app_user_id.clone())
        .filter(|id| !state.users.contains_key(id))
        .collect();
    user_ids.sort();
    user_ids.dedup();
    let mut added: Vec<String> = Vec::new();
    for row in app_users::users_by_id(conn, &user_ids).await? {
        added.push(row.id.clone());
        state.read_user(row);
    }
    // Match by email only where the state does not already know the holder.
    let mut emails: Vec<String> = changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::Upsert(s) => s.email.clone(),
            _ => None,
        })
        .filter(|e| !state.by_email.contains_key(e) && state.emails_read.insert(e.clone()))
        .collect();
    emails.sort();
    emails.dedup();
    let mut by_email_only = Vec::new();
    if !emails.is_empty() {
        for row in app_users::users_by_email(conn, &dir.tenant_id, &emails).await? {
            if state.users.contains_key(&row.id) {
                continue;
            }
            by_email_only.push(row.id.clone());
            added.push(row.id.clone());
            state.read_user(row);
        }
    }
    // Other directories' links (one person in two directories), and this
    // directory's links to users matched by email or named by a removed
    // link the set would revive (one directory user per app user).
    for link in links::links_elsewhere(conn, &dir.id, &added).await? {
        state.add_link(dir, link);
    }
    // A removed link an upsert would revive gives way to another live link
    // of this directory to its user (`revivals`), which must be known.
    let mut reviving: Vec<String> = changes
        .iter()
        .filter(|c| matches!(c.change, Change::Upsert(_)))
        .filter_map(|c| state.links.get(&c.source_id))
        .filter(|l| l.removed_at.is_some())
        .map(|l| l.app_user_id.clone())
        .collect();
    reviving.sort();
    reviving.dedup();
    let mut links_here_of = by_email_only;
    links_here_of.extend(reviving);
    if !links_here_of.is_empty() {
        for link in links::links_of_users(conn, &links_here_of).await? {
            if link.directory_id == dir.id && !state.links.contains_key(&link.source_id) {
                state.add_link(dir, link);
            }
        }
    }
    if dir.uses_groups() && !added.is_empty() {
        for key in app_groups::group_keys_of_users(conn, &dir.id, &added).await? {
            let keys = state.groups.entry(key.user_id).or_default();
            keys.push(key.name);
            keys.extend(key.external_id);
        }
    }
    Ok(())
}

/// Deferred changes one set may take in (bounds what one write reads).
const RESUMED_MAX: usize = 1_000;

/// The addresses a set touches: what its users hold now and what they ask for.
fn addresses_touched(state: &State, set: &[UserChange]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in set {
        if let Some(user) = state.linked(&c.source_id) {
            out.push(user.email_folded.clone());
        }
        if let Change::Upsert(s) = &c.change
            && let Some(email) = &s.email
        {
            out.push(email.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A stored snapshot as the change it was.
fn stored_change(snapshot: Option<&Value>) -> Option<Snapshot> {
    serde_json::from_value(snapshot?.clone()).ok()
}

/// Complete the partial items of a set (a Graph delta round): an attribute an
/// item does not carry keeps what the directory said before, its deferred
/// word if it has one, else the link's last snapshot.
async fn complete<C: Conn>(
    conn: &C,
    dir: &Origin,
    state: &State,
    changes: Vec<UserChange>,
) -> Result<Vec<UserChange>, StoreError> {
    let partial: Vec<String> = changes
        .iter()
        .filter(|c| matches!(&c.change, Change::Upsert(s) if s.carried.is_some()))
        .filter(|c| !state.deferred.contains_key(&c.source_id))
        .map(|c| c.source_id.clone())
        .collect();
    if partial.is_empty()
        && !changes
            .iter()
            .any(|c| state.deferred.contains_key(&c.source_id))
    {
        return Ok(changes);
    }
    let mut before: HashMap<String, Snapshot> = HashMap::new();
    for link in links::snapshots_by_source(conn, &dir.id, &partial).await? {
        if let Some(s) = stored_change(link.snapshot.as_ref()) {
            before.insert(link.source_id, s);
        }
    }
    Ok(changes
        .into_iter()
        .map(|c| match c.change {
            Change::Upsert(s) if s.carried.is_some() => {
                let base = state
                    .deferred
                    .get(&c.source_id)
                    .and_then(|d| stored_change(Some(&d.snapshot)))
                    .or_else(|| before.remove(&c.source_id));
                UserChange {
                    source_id: c.source_id,
                    change: Change::upsert((*s).merged_over(base.as_ref())),
                }
            }
            _ => c,
        })
        .collect())
}

/// Complete the partial items of a page outside any set (the pull run judges
/// its department scope on what the directory says of the user as a whole,
/// not on the part an item carries). The same completion as a set's.
pub async fn complete_users<C: Conn>(
    conn: &C,
    dir: &Origin,
    changes: Vec<UserChange>,
) -> Result<Vec<UserChange>, StoreError> {
    let changes = dir.map_all(changes);
    let partial: Vec<String> = changes
        .iter()
        .filter(|c| matches!(&c.change, Change::Upsert(s) if s.carried.is_some()))
        .map(|c| c.source_id.clone())
        .collect();
    if partial.is_empty() {
        return Ok(changes);
    }
    let mut state = State::default();
    for row in deferred::deferred_for(conn, &dir.id, &[], &partial).await? {
        state.deferred.insert(row.source_id.clone(), row);
    }
    complete(conn, dir, &state, changes).await
}

/// The set one call judges: the given changes (the later word on a user
/// wins), completed, plus the deferred changes waiting for an address the
/// set touches (and, in turn, those waiting for what they touch). The
/// number of changes given comes first in the returned set.
async fn gather<C: Conn>(
    conn: &C,
    dir: &Origin,
    state: &mut State,
    changes: Vec<UserChange>,
) -> Result<Vec<UserChange>, StoreError> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut set: Vec<UserChange> = Vec::with_capacity(changes.len());
    for change in changes {
        match at.get(&change.source_id) {
            Some(&i) => set[i] = change,
            None => {
                at.insert(change.source_id.clone(), set.len());
                set.push(change);
            }
        }
    }
    let partial = set
        .iter()
        .any(|c| matches!(&c.change, Change::Upsert(s) if s.carried.is_some()));
    let own: Vec<String> = set.iter().map(|c| c.source_id.clone()).collect();
    if partial {
        // The users' own deferred words first: a partial item completes
        // over the latest word, which may be one still waiting.
        for row in deferred::deferred_for(conn, &dir.id, &[], &own).await? {
            state.deferred.insert(row.source_id.clone(), row);
        }
        state.deferred_read.extend(own.iter().cloned());
        set = complete(conn, dir, state, set).await?;
    }
    load(conn, dir, state, &set).await?;
    let given = set.len();
    // The first round also reads the set's own deferred words (unless the
    // partial items read them already).
    let mut sources: Vec<String> = if partial { Vec::new() } else { own };
    let mut touched = addresses_touched(state, &set);
    let mut fresh: Vec<UserChange> = Vec::new();
    loop {
        let emails: Vec<String> = std::mem::take(&mut touched)
            .into_iter()
            .filter(|e| state.deferred_read.insert(e.clone()))
            .collect();
        if emails.is_empty() && sources.is_empty() {
            break;
        }
        let rows = deferred::deferred_for(conn, &dir.id, &emails, &sources).await?;
        sources.clear();
        fresh.clear();
        for row in rows {
            let room = set.len() - given < RESUMED_MAX;
            if room
                && !at.contains_key(&row.source_id)
                && let Some(s) = stored_change(Some(&row.snapshot))
            {
                at.insert(row.source_id.clone(), set.len());
                let resumed = UserChange {
                    source_id: row.source_id.clone(),
                    change: Change::upsert(s),
                };
                fresh.push(resumed.clone());
                set.push(resumed);
            }
            state.deferred.insert(row.source_id.clone(), row);
        }
        if fresh.is_empty() {
            break;
        }
        load(conn, dir, state, &fresh).await?;
        touched = addresses_touched(state, &fresh);
    }
    Ok(set)
}

/// The no-op fast path: the changes that say again exactly what a link's
/// snapshot says (same hash), judged under the same policy for an app user
/// whose version has not moved since, for a user no other live link names
/// (of any directory) and with no change waiting, come out `unchanged`
/// without reading the app user or planning: the rules would give the same
/// answer as last time, which left nothing to do. The rest are returned for
/// the full path.
async fn fast_path<C: Conn>(
    conn: &C,
    dir: &Origin,
    changes: Vec<UserChange>,
) -> Result<(Vec<UserChange>, Skipped), StoreError> {
    if dir.uses_groups() {
        return Ok((changes, Skipped::default()));
    }
    // A user named twice in the page takes the full path (the later word wins there).
    let mut times: HashMap<&str, usize> = HashMap::new();
    for c in &changes {
        *times.entry(c.source_id.as_str()).or_default() += 1;
    }
    let candidates: Vec<String> = changes
        .iter()
        .filter(|c| times[c.source_id.as_str()] == 1)
        .filter(|c| matches!(&c.change, Change::Upsert(s) if s.carried.is_none()))
        .map(|c| c.source_id.clone())
        .collect();
    if candidates.is_empty() {
        return Ok((changes, Skipped::default()));
    }
    let judged: HashMap<String, links::JudgedLink> =
        links::judged_links(conn, &dir.id, &candidates)
            .await?
            .into_iter()
            .map(|l| (l.source_id.clone(), l))
            .collect();
    if judged.is_empty() {
        return Ok((changes, Skipped::default()));
    }
    let order: HashMap<String, usize> = changes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, c)| (c.source_id.clone(), i))
        .collect();
    let mut rest = Vec::with_capacity(changes.len());
    let mut unchanged = Vec::new();
    for c in changes {
        let same = match (&c.change, judged.get(&c.source_id)) {
            (Change::Upsert(s), Some(link)) if s.carried.is_none() => {
                link.judged == dir.judged(link.version)
                    && link.directory_active == s.active
                    && link.snapshot_hash == hashed(s)
            }
            _ => false,
        };
        if same {
            unchanged.push(Applied {
                app_user_id: judged.get(&c.source_id).map(|l| l.app_user_id.clone()),
                source_id: c.source_id,
                outcome: Outcome::Unchanged,
                status: None,
            });
        } else {
            rest.push(c);
        }
    }
    let order = if unchanged.is_empty() {
        HashMap::new()
    } else {
        order
    };
    Ok((
        rest,
        Skipped {
            applied: unchanged,
            order,
        },
    ))
}

/// What the fast path found unchanged, and where each change of the page
/// stood (empty when it found nothing: the full path keeps the page's order).
#[derive(Default)]
struct Skipped {
    applied: Vec<Applied>,
    order: HashMap<String, usize>,
}

/// The hash of a snapshot's JSON text, as a link keeps it (groups are
/// derived, never stored, so they are not part of it).
fn hashed(s: &Snapshot) -> String {
    crate::crypto::hash_bytes(&snapshot_text(s))
}

/// A snapshot's JSON text: what its hash is taken of and what a link stores.
fn snapshot_text(s: &Snapshot) -> Vec<u8> {
    // Sized for a typical snapshot up front: growing the text by doubling
    // was a visible part of every user's cost (the snapshot-apply bench).
    let mut text = Vec::with_capacity(1024);
    if serde_json::to_writer(&mut text, s).is_err() {
        text.clear();
    }
    text
}

/// Apply a page of user changes from one directory as one set: the later
/// word on a user wins, addresses are judged on the state after the whole
/// set (with the deferred changes it releases), and the result never
/// depends on the order of the page.
#[instrument(skip_all, fields(directory_id = %dir.id, count = changes.len()))]
pub async fn apply_users<C: Conn>(
    conn: &C,
    dir: &Origin,
    changes: Vec<UserChange>,
    now: i64,
    options: Options,
    fx: &mut Effects,
) -> Result<Batch, StoreError> {
    let changes = dir.map_all(changes);
    let (changes, skipped) = fast_path(conn, dir, changes).await?;
    let mut state = State::default();
    let set = gather(conn, dir, &mut state, changes).await?;
    state.revived = revivals(&state, &set);
    // Plan every change against the state before the set.
    let planned: Vec<Planned> = set
        .iter()
        .map(|item| plan_one(&state, dir, item, now, options))
        .collect();
    // Then judge the addresses of the whole set at once.
    let mut moves = Vec::new();
    for (i, p) in planned.iter().enumerate() {
        if let (false, Some(m)) = (p.held, address_move(&state, p)) {
            moves.push((i, m));
        }
    }
    let holders: HashMap<String, Holder> = moves
        .iter()
        .filter_map(|(_, m)| m.to.clone())
        .filter_map(|a| state.holder(&a).map(|h| (a, h)))
        .collect();
    let only: Vec<Move> = moves.iter().map(|(_, m)| m.clone()).collect();
    let mut verdicts = vec![Verdict::Accepted; planned.len()];
    for ((i, _), verdict) in moves.iter().zip(addresses::settle(&only, &holders)) {
        verdicts[*i] = verdict;
    }
    let mut batch = Batch {
        applied: skipped.applied,
        ..Batch::default()
    };
    for ((item, p), verdict) in set.into_iter().zip(planned).zip(verdicts) {
        if p.held {
            batch.held.push(item);
            continue;
        }
        let applied = settle_one(&mut state, dir, item, p, verdict, now, options, fx);
        batch.applied.push(applied);
    }
    // In the page's order, whichever path each change took (changes a set
    // resumed come after).
    if !skipped.order.is_empty() {
        let at = |a: &Applied| skipped.order.get(&a.source_id).copied();
        batch.applied.sort_by_key(|a| at(a).unwrap_or(usize::MAX));
    }
    if !options.dry_run {
        write(conn, dir, state, now, fx).await?;
    }
    Ok(batch)
}

/// One change planned against the state before its set.
struct Planned {
    plan: plan::Plan,
    /// The app user the change is about (linked, or matched by email).
    subject_id: Option<String>,
    /// The change as planned, when it is not the item's own: with the
    /// user's groups from the store (a copy only then).
    change: Option<Change>,
    /// A deactivation held for the end of a listing.
    held: bool,
}

/// The removed links the set's upserts revive, one per app user: none
/// where another live link of this directory names the user (it took the
/// user since; the returning directory user is a new one, whose address
/// waits), else the link most recently written (then the least source id)
/// among those the set revives. One directory user per app user, and the
/// same answer in any order of the set; a user revived is nobody's to
/// adopt by address in the same set.
fn revivals(state: &State, set: &[UserChange]) -> HashMap<String, String> {
    let mut won: HashMap<String, &Link> = HashMap::new();
    for item in set {
        if !matches!(item.change, Change::Upsert(_)) {
            continue;
        }
        let Some(link) = state
            .links
            .get(&item.source_id)
            .filter(|l| l.removed_at.is_some() && !state.here.contains_key(&l.app_user_id))
        else {
            continue;
        };
        won.entry(link.app_user_id.clone())
            .and_modify(|best| {
                if (link.updated_at, std::cmp::Reverse(&link.source_id))
                    > (best.updated_at, std::cmp::Reverse(&best.source_id))
                {
                    *best = link;
                }
            })
            .or_insert(link);
    }
    won.into_iter()
        .map(|(user, link)| (user, link.source_id.clone()))
        .collect()
}

fn plan_one(state: &State, dir: &Origin, item: &UserChange, now: i64, options: Options) -> Planned {
    // A removed link has said its last word: a removal said again (a delta
    // repeating it, after a policy change) is about nobody, so it neither
    // deletes nor deactivates the user the link once named, whom another
    // change of the same set may be adopting by address. An upsert revives it.
    let link = state.links.get(&item.source_id).filter(|l| {
        l.removed_at.is_none()
            || (matches!(item.change, Change::Upsert(_))
                && state.revived.get(&l.app_user_id) == Some(&l.source_id))
    });
    let linked = link.and_then(|l| state.users.get(&l.app_user_id));
    // A first match by email adopts a user this directory does not link
    // yet; one it links belongs to another of its users, and whether the
    // address is free at the end is for `addresses::settle`.
    let by_email = match (&item.change, linked) {
        (Change::Upsert(s), None) => s
            .email
            .as_ref()
            .and_then(|e| state.by_email.get(e))
            .filter(|id| !state.here.contains_key(*id) && !state.revived.contains_key(*id))
            .and_then(|id| state.users.get(id)),
        _ => None,
    };
    let subject = linked.or(by_email);
    let elsewhere = subject
        .and_then(|u| state.elsewhere.get(&u.id))
        .map_or(&[][..], Vec::as_slice);
    let current = Current {
        linked: linked.map(to_plan),
        by_email: by_email.map(to_plan),
        other_links: !elsewhere.is_empty(),
        other_directory_active: elsewhere.iter().any(|l| l.directory_active),
        owns_profile: linked.is_some_and(|u| {
            u.profile_directory_id
                .as_deref()
                .is_none_or(|d| d == dir.id)
        }),
    };
    // The user's groups in this directory come from the store, not the edge.
    let change = match (&item.change, subject.and_then(|u| state.groups.get(&u.id))) {
        (Change::Upsert(s), Some(groups)) => {
            let mut s = s.clone();
            s.groups = groups.clone();
            Some(Change::Upsert(s))
        }
        _ => None,
    };
    let planned = change.as_ref().unwrap_or(&item.change);
    let plan = plan::plan_user(&current, planned, &dir.policy, now, || {
        uuid::Uuid::now_v7().to_string()
    });
    Planned {
        held: options.hold_deactivations && plan.outcome == Outcome::Deactivated,
        plan,
        subject_id: subject.map(|u| u.id.clone()),
        change,
    }
}

/// The address effect of a plan, if it has one.
fn address_move(state: &State, p: &Planned) -> Option<Move> {
    for w in &p.plan.writes {
        match w {
            Write::Create(u) => {
                return Some(Move {
                    user: u.id.clone(),
                    from: None,
                    to: Some(u.email.clone()),
                    adopts: false,
                });
            }
            Write::Update(u) => {
                let base = state.users.get(&u.id)?;
                if base.email_folded != u.email {
                    return Some(Move {
                        user: u.id.clone(),
                        from: Some(base.email_folded.clone()),
                        to: Some(u.email.clone()),
                        adopts: false,
                    });
                }
            }
            Write::Delete { app_user_id } => {
                return Some(Move {
                    user: app_user_id.clone(),
                    from: Some(state.users.get(app_user_id)?.email_folded.clone()),
                    to: None,
                    adopts: false,
                });
            }
            Write::Link { app_user_id } if p.plan.outcome != Outcome::Created => {
                return Some(Move {
                    user: app_user_id.clone(),
                    from: None,
                    to: Some(state.users.get(app_user_id)?.email_folded.clone()),
                    adopts: true,
                });
            }
            Write::Link { .. } | Write::Unlink { .. } => {}
        }
    }
    None
}

/// Carry out one planned change as its verdict allows: apply its writes to
/// the state and record its event, or keep it waiting.
#[allow(clippy::too_many_arguments)]
fn settle_one(
    state: &mut State,
    dir: &Origin,
    item: UserChange,
    mut p: Planned,
    verdict: Verdict,
    now: i64,
    options: Options,
    fx: &mut Effects,
) -> Applied {
    let outcome = match (&verdict, verdict.reason()) {
        (Verdict::Deferred { address, holder }, Some(reason)) => {
            info!(source_id = %item.source_id, reason, "directory user deferred");
            if let Change::Upsert(s) = p.change.as_ref().unwrap_or(&item.change) {
                defer(
                    state,
                    dir,
                    &item.source_id,
                    s,
                    address,
                    holder,
                    &reason,
                    now,
                );
            }
            Outcome::Deferred(reason)
        }
        (Verdict::Conflict { .. }, Some(reason)) => Outcome::Conflict(reason),
        _ => p.plan.outcome.clone(),
    };
    match &outcome {
        Outcome::Skipped(reason) => {
            info!(source_id = %item.source_id, reason, "directory user skipped");
        }
        Outcome::Conflict(reason) => {
            tracing::warn!(source_id = %item.source_id, reason, "directory user in conflict");
        }
        _ => {}
    }
    let accepted = verdict == Verdict::Accepted;
    let mut applied = Applied {
        source_id: item.source_id.clone(),
        outcome: outcome.clone(),
        app_user_id: p.subject_id.clone(),
        status: p
            .plan
            .writes
            .iter()
            .find_map(|w| match w {
                Write::Create(u) | Write::Update(u) => Some(u.status),
                _ => None,
            })
            .filter(|_| accepted),
    };
    if !matches!(outcome, Outcome::Deferred(_)) && state.deferred.contains_key(&item.source_id) {
        // A later word on the user was applied (or refused for good): what
        // waited is superseded.
        state.deferred_cleared.push(item.source_id.clone());
    }
    if options.dry_run || !accepted {
        return applied;
    }
    // The user the event is about: read where the writes leave it, not
    // copied (no write of a plan changes the user after the one that names
    // it for the event).
    let mut event_row = None;
    for w in std::mem::take(&mut p.plan.writes) {
        match w {
            Write::Create(u) => {
                let mut row = to_row(u, None, &dir.tenant_id, now);
                row.profile_directory_id = Some(dir.id.clone());
                applied.app_user_id = Some(row.id.clone());
                state.inserted.push(row.id.clone());
                event_row = Some(Subject::Kept(row.id.clone()));
                state.add_user(row);
            }
            Write::Update(u) => {
                let Some(base) = state.users.get(&u.id) else {
                    continue;
                };
                let row = to_row(u, Some(base), &dir.tenant_id, now);
                if base.email_folded != row.email_folded
                    && state.by_email.get(&base.email_folded) == Some(&base.id)
                {
                    state.by_email.remove(&base.email_folded);
                }
                state.updated.insert(row.id.clone());
                event_row = Some(Subject::Kept(row.id.clone()));
                state.add_user(row);
            }
            Write::Delete { app_user_id: id } => {
                if let Some(row) = state.users.remove(&id) {
                    if state.by_email.get(&row.email_folded) == Some(&id) {
                        state.by_email.remove(&row.email_folded);
                    }
                    event_row = Some(Subject::Deleted(Box::new(row)));
                }
                state.here.remove(&id);
                state.links.retain(|_, l| l.app_user_id != id);
                state.deleted.push(id);
            }
            Write::Link { app_user_id: id } => {
                let row = Link {
                    directory_id: dir.id.clone(),
                    source_id: item.source_id.clone(),
                    tenant_id: dir.tenant_id.clone(),
                    app_user_id: id.clone(),
                    external_id: None,
                    directory_active: true,
                    snapshot: None,
                    snapshot_hash: String::new(),
                    judged: None,
                    removed_at: None,
                    created_at: now,
                    updated_at: now,
                };
                state.links_changed.insert(item.source_id.clone());
                state.linked_now.push(item.source_id.clone());
                state.add_link(dir, row);
                if event_row.is_none() && state.users.contains_key(&id) {
                    event_row = Some(Subject::Kept(id));
                }
            }
            Write::Unlink { app_user_id: id } => {
                state.links.remove(&item.source_id);
                state.here.remove(&id);
                state.links_deleted.push(item.source_id.clone());
                // The profile goes to whichever directory writes next.
                if let Some(row) = state.users.get_mut(&id)
                    && row.profile_directory_id.as_deref() == Some(dir.id.as_str())
                {
                    row.profile_directory_id = None;
                    row.version += 1;
                    row.updated_at = now.max(row.updated_at);
                    state.updated.insert(id.clone());
                }
                event_row = state.users.contains_key(&id).then_some(Subject::Kept(id));
            }
        }
    }
    book_link(
        state,
        dir,
        &item,
        p.change.as_ref().unwrap_or(&item.change),
        &outcome,
        now,
    );
    let row = match &event_row {
        Some(Subject::Kept(id)) => state.users.get(id),
        Some(Subject::Deleted(row)) => Some(&**row),
        None => None,
    };
    if let Some(row) = row {
        push_user_event(fx, dir, &outcome, row);
    }
    applied
}

/// The app user a change's event is about.
enum Subject {
    /// Still in the batch's state, by id.
    Kept(String),
    /// Deleted by the change (rare: boxed).
    Deleted(Box<AppUser>),
}

/// Keep a change waiting for its address (stored only if it says something
/// new: a resumed change still waiting costs no write).
#[allow(clippy::too_many_arguments)]
fn defer(
    state: &mut State,
    dir: &Origin,
    source_id: &str,
    snapshot: &Snapshot,
    address: &str,
    holder: &Option<String>,
    reason: &str,
    now: i64,
) {
    let mut stored = snapshot.clone();
    stored.groups = Vec::new();
    let Ok(json) = serde_json::to_value(&stored) else {
        return;
    };
    let row = Deferred {
        directory_id: dir.id.clone(),
        source_id: source_id.to_owned(),
        tenant_id: dir.tenant_id.clone(),
        email_folded: address.to_owned(),
        holder_id: holder.clone(),
        reason: reason.to_owned(),
        snapshot: json,
        created_at: now,
        updated_at: now,
    };
    let same = state.deferred.get(source_id).is_some_and(|d| {
        d.email_folded == row.email_folded
            && d.holder_id == row.holder_id
            && d.snapshot == row.snapshot
    });
    if !same {
        state.deferred_written.push(row);
    }
}

/// Keep this directory's link in step with what it said: the last snapshot,
/// whether it says active, removal.
fn book_link(
    state: &mut State,
    dir: &Origin,
    item: &UserChange,
    change: &Change,
    outcome: &Outcome,
    now: i64,
) {
    if matches!(
        outcome,
        Outcome::Skipped(_) | Outcome::Conflict(_) | Outcome::Deferred(_) | Outcome::Deleted
    ) {
        return;
    }
    let Some(link) = state.links.get_mut(&item.source_id) else {
        return;
    };
    let before = link.clone();
    match change {
        Change::Upsert(s) => {
            let active = s.active && dir.policy.membership_satisfied(&s.groups);
            // The stored snapshot (groups are derived, never stored) is
            // rewritten only when it changed.
            let text = snapshot_text(s);
            let hash = crate::crypto::hash_bytes(&text);
            if hash != link.snapshot_hash {
                // Written as the text just hashed: no tree built for it.
                match String::from_utf8(text) {
                    Ok(text) => {
                        link.snapshot = None;
                        state.snapshot_texts.insert(item.source_id.clone(), text);
                    }
                    Err(_) => link.snapshot = serde_json::to_value(&**s).ok(),
                }
                link.snapshot_hash = hash;
            }
            link.external_id = s.external_id.clone();
            link.directory_active = active;
            link.removed_at = None;
            state.judged.push(item.source_id.clone());
        }
        Change::Removed => {
            link.judged = None;
            if dir.policy.on_delete == OnDelete::Deactivate {
                link.removed_at = Some(now);
                link.directory_active = false;
            }
        }
        Change::Missing => {
            link.judged = None;
            if dir.policy.on_missing == OnMissing::Deactivate {
                link.directory_active = false;
            }
        }
    }
    if *link != before {
        link.updated_at = now;
        if link.removed_at.is_some() {
            state.here.remove(&link.app_user_id);
        }
        state.links_changed.insert(item.source_id.clone());
    }
}

/// Stamp the links the set judged with their app user's version after the
/// set and the policy (a link whose stamp did not change is not written).
/// Where the directory's groups take part in the rules, a membership can
/// change what the same snapshot means, so no stamp is kept; nor for a
/// removed or missing user (`book_link` clears it).
fn stamp_judged(state: &mut State, dir: &Origin) {
    for source in std::mem::take(&mut state.judged) {
        let Some(link) = state.links.get_mut(&source) else {
            continue;
        };
        // Another directory's link can change what the rules make of the
        // same snapshot (whose profile it is, whether anyone still says
        // active) without touching the app user: no stamp then either.
        let judged = match state.users.get(&link.app_user_id) {
            Some(user) if !dir.uses_groups() && !state.elsewhere.contains_key(&user.id) => {
                Some(dir.judged(user.version))
            }
            _ => None,
        };
        if link.judged != judged {
            link.judged = judged;
            state.links_changed.insert(source);
        }
    }
}

async fn write<C: Conn>(
    conn: &C,
    dir: &Origin,
    state: State,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    for id in &state.deleted {
        app_users::delete_user(conn, id).await?;
    }
    for source in &state.links_deleted {
        if !state.links.contains_key(source) {
            links::delete_link(conn, &dir.id, source).await?;
        }
    }
    // Users leaving an address that another user of the set takes (a swap,
    // a rotation, a rename chain, a new user taking a released address)
    // move off it first, so no statement meets the unique index half-way.
    let parked: Vec<String> = state
        .updated
        .iter()
        .filter(|id| {
            let (Some(was), Some(row)) = (state.loaded_email.get(*id), state.users.get(*id)) else {
                return false;
            };
            *was != row.email_folded && state.by_email.get(was).is_some_and(|taker| taker != *id)
        })
        .cloned()
        .collect();
    app_users::park_emails(conn, &parked).await?;
    let mut state = state;
    stamp_judged(&mut state, dir);
    // What is written moves out of the state (its JSON is most of a row's
    // cost to copy); what follows reads only ids from it.
    let inserted: HashSet<&String> = state.inserted.iter().collect();
    let rows: Vec<AppUser> = state
        .inserted
        .iter()
        .filter_map(|id| state.users.remove(id))
        .collect();
    app_users::insert_users(conn, rows).await?;
    for id in &state.updated {
        if inserted.contains(id) {
            continue;
        }
        if let Some(row) = state.users.get(id) {
            app_users::update_user(conn, row).await?;
        }
    }
    let links: Vec<(Link, Option<String>)> = state
        .links_changed
        .iter()
        .filter_map(|s| {
            let link = state.links.get_mut(s)?;
            let snapshot = link.snapshot.take();
            let text = state.snapshot_texts.remove(s);
            Some((
                Link {
                    snapshot,
                    ..link.clone()
                },
                text,
            ))
        })
        .collect();
    links::upsert_links(conn, links).await?;
    deferred::delete_deferred(conn, &dir.id, &state.deferred_cleared).await?;
    deferred::upsert_deferred(conn, state.deferred_written).await?;
    // Users linked now join the app groups their directory already put them in.
    if !state.linked_now.is_empty() {
        let found = app_groups::mirror_groups_of(conn, &dir.id, &state.linked_now).await?;
        let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
        for m in found {
            if let Some(link) = state.links.get(&m.member_id) {
                by_group
                    .entry(m.group_id)
                    .or_default()
                    .push(link.app_user_id.clone());
            }
        }
        for (group_id, users) in by_group {
            add_members(conn, &group_id, &users, now, fx).await?;
        }
    }
    Ok(())
}

/// Add app users to an app group, one `group.member_added` per new member.
pub async fn add_members<C: Conn>(
    conn: &C,
    group_id: &str,
    user_ids: &[String],
    now: i64,
    fx: &mut Effects,
) -> Result<Vec<String>, StoreError> {
    let present: HashSet<String> = app_groups::members_among(conn, group_id, user_ids)
        .await?
        .into_iter()
        .collect();
    let mut new: Vec<String> = user_ids
        .iter()
        .filter(|u| !present.contains(*u))
        .cloned()
        .collect();
    new.sort();
    new.dedup();
    app_groups::add_group_members(conn, group_id, &new, now).await?;
    for user in &new {
        fx.push(
            EventType::GroupMemberAdded,
            "group",
            group_id,
            json!({ "group_id": group_id, "user_id": user }),
        );
    }
    Ok(new)
}

/// Remove app users from an app group, one `group.member_removed` per member.
pub async fn remove_members<C: Conn>(
    conn: &C,
    group_id: &str,
    user_ids: &[String],
    fx: &mut Effects,
) -> Result<Vec<String>, StoreError> {
    let mut gone = app_groups::members_among(conn, group_id, user_ids).await?;
    gone.sort();
    gone.dedup();
    app_groups::remove_group_members(conn, group_id, &gone).await?;
    for user in &gone {
        fx.push(
            EventType::GroupMemberRemoved,
            "group",
            group_id,
            json!({ "group_id": group_id, "user_id": user }),
        );
    }
    Ok(gone)
}

/// Re-plan directory users from their stored snapshots (their groups changed,
/// and the policy maps groups to roles or requires membership).
pub async fn refresh_users<C: Conn>(
    conn: &C,
    dir: &Origin,
    app_user_ids: &[String],
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    if !dir.uses_groups() || app_user_ids.is_empty() {
        return Ok(());
    }
    let links = links::snapshots_of(conn, &dir.id, app_user_ids).await?;
    // A user whose latest word still waits for its address is re-planned
    // with that word, so the refresh never drops it for an older one.
    let sources: Vec<String> = links.iter().map(|l| l.source_id.clone()).collect();
    let mut waiting: HashMap<String, Value> = deferred::deferred_for(conn, &dir.id, &[], &sources)
        .await?
        .into_iter()
        .map(|d| (d.source_id, d.snapshot))
        .collect();
    let changes: Vec<UserChange> = links
        .into_iter()
        .filter_map(|l| {
            let latest = waiting.remove(&l.source_id).or(l.snapshot)?;
            let snapshot: Snapshot = serde_json::from_value(latest).ok()?;
            Some(UserChange {
                source_id: l.source_id,
                change: Change::upsert(snapshot),
            })
        })
        .collect();
    apply_users(conn, dir, changes, now, Options::default(), fx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    /// A snapshot as the mapping leaves it: every field, a role, a custom
    /// attribute of one value and one of several.
    fn mapped_snapshot() -> Snapshot {
        let mut custom = BTreeMap::new();
        custom.insert("cost_center".to_owned(), json!("cc-42"));
        custom.insert("badges".to_owned(), json!(["a", "b"]));
        Snapshot {
            external_id: Some("00u1".into()),
            email: Some("ada@example.com".into()),
            profile: Profile {
                given_name: Some("Ada".into()),
                family_name: Some("Lovelace".into()),
                display_name: Some("Ada Lovelace".into()),
                department: Some("Eng".into()),
                employee_number: Some("7".into()),
                custom: custom.into(),
                ..Profile::default()
            },
            active: true,
            role: Some("admin".into()),
            groups: vec!["never stored".into()],
            ..Snapshot::default()
        }
    }

    /// What stored links hold for `mapped_snapshot()`, with and without its
    /// custom attributes and role.
    const HASH_MAPPED: &str = "5bf0b443fba643bc2e2813b19b04a086a91d32bc5f7ee035a40bbe71ad3983f5";
    const HASH_PLAIN: &str = "8b8ee9869a7a561b3b46a0d017f69328e81d5593df9b4522ea721b76211ad053";

    // A link keeps the hash of its snapshot's text; a hash that changed for
    // the same snapshot would make every stored link look changed after an
    // upgrade (a full write and an event per user). These texts and hashes
    // are what stored links hold: they must never change.
    #[test]
    fn a_stored_snapshot_hashes_as_it_always_has() {
        let s = mapped_snapshot();
        assert_eq!(
            String::from_utf8(snapshot_text(&s)).unwrap(),
            r#"{"external_id":"00u1","email":"ada@example.com","profile":{"given_name":"Ada","family_name":"Lovelace","display_name":"Ada Lovelace","avatar_url":null,"department":"Eng","title":null,"employee_number":"7","manager":null,"custom":{"badges":["a","b"],"cost_center":"cc-42"}},"active":true,"role":"admin"}"#
        );
        assert_eq!(hashed(&s), HASH_MAPPED);
        // A snapshot without custom attributes or a role hashes as one taken
        // before attribute mappings existed.
        let mut plain = mapped_snapshot();
        plain.profile.custom = Custom::default();
        plain.role = None;
        assert_eq!(
            String::from_utf8(snapshot_text(&plain)).unwrap(),
            r#"{"external_id":"00u1","email":"ada@example.com","profile":{"given_name":"Ada","family_name":"Lovelace","display_name":"Ada Lovelace","avatar_url":null,"department":"Eng","title":null,"employee_number":"7","manager":null},"active":true}"#
        );
        assert_eq!(hashed(&plain), HASH_PLAIN);
    }

    fn row(custom: Option<Value>) -> AppUser {
        // As the column reads: an object by name, anything else as none.
        let custom = custom.and_then(|v| serde_json::from_value(v).ok());
        AppUser {
            id: "u1".into(),
            tenant_id: "t".into(),
            email: "ada@example.com".into(),
            email_folded: "ada@example.com".into(),
            status: "PENDING".into(),
            deactivated_by: None,
            deactivated_at: None,
            role: "member".into(),
            has_signed_in: false,
            given_name: Some("Ada".into()),
            family_name: None,
            display_name: Some("Ada \"the\" Countess".into()),
            avatar_url: None,
            department: Some("Eng".into()),
            title: None,
            employee_number: None,
            manager: None,
            custom_attributes: custom,
            profile_directory_id: Some("d".into()),
            version: 1,
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_123,
        }
    }

    // A user event writes the row through `RowView`; the API answers with
    // `UserView`. The host application sees one user in both.
    #[test]
    fn a_row_writes_as_its_user_view_does() {
        let mut deactivated = row(Some(json!({"z": "last", "a": ["x", "y"], "m": "middle"})));
        deactivated.status = "DEACTIVATED".into();
        deactivated.deactivated_by = Some("directory".into());
        deactivated.title = Some("Tab\tand \u{e9}".into());
        for row in [
            row(None),
            row(Some(json!({}))),
            row(Some(json!("not an object"))),
            row(Some(json!({"b": "2", "a": "1"}))),
            deactivated,
        ] {
            assert_eq!(
                serde_json::to_string(&RowView::from(&row)).unwrap(),
                serde_json::to_string(&UserView::from(&row)).unwrap()
            );
        }
    }

    #[test]
    fn the_bound_on_a_custom_value_is_never_under_its_length() {
        for value in [
            json!(""),
            json!("\u{1}\u{1f}\"\\/"),
            json!("é€😀"),
            json!(["a", "\n", ""]),
            json!([]),
            json!({"a": 1}),
        ] {
            assert!(json_len_at_most(&value) >= json_len(&value), "{value}");
            assert_eq!(json_len(&value), value.to_string().len());
        }
    }

    fn event_text(row: &AppUser, outcome: &Outcome) -> String {
        let dir = Origin {
            id: "d".into(),
            tenant_id: "t".into(),
            policy: Policy::default(),
            policy_key: String::new(),
            mapping: Arc::new(Mapping::compile(SourceKind::Scim, &[]).unwrap()),
            targets: Arc::from(Vec::new()),
        };
        let mut fx = Effects::default();
        push_user_event(&mut fx, &dir, outcome, row);
        let mut events = fx.into_events();
        assert_eq!(events.len(), 1);
        events.remove(0).data
    }

    // The host application reads these bytes (webhooks sign them): the
    // same user gives the same text, custom attributes by name whatever
    // order the row holds them in (PostgreSQL's jsonb keeps its own).
    #[test]
    fn a_user_event_is_written_as_it_always_was() {
        let sorted = row(Some(json!({"badges": ["a", "b"], "cost_center": "cc-42"})));
        let expected = r#"{"user":{"id":"u1","email":"ada@example.com","status":"PENDING","deactivated_by":null,"role":"member","has_signed_in":false,"given_name":"Ada","family_name":null,"display_name":"Ada \"the\" Countess","avatar_url":null,"department":"Eng","title":null,"employee_number":null,"manager":null,"custom_attributes":{"badges":["a","b"],"cost_center":"cc-42"},"created_at":"2023-11-14T22:13:20.000Z","updated_at":"2023-11-14T22:13:20.123Z"},"changed":[],"directory_id":"d"}"#;
        assert_eq!(event_text(&sorted, &Outcome::Created), expected);
        let unsorted = row(Some(json!({"cost_center": "cc-42", "badges": ["a", "b"]})));
        assert_eq!(event_text(&unsorted, &Outcome::Created), expected);
        let updated = event_text(
            &row(None),
            &Outcome::Updated(vec![Field::Custom("cost_center".into()), Field::Department]),
        );
        assert_eq!(
            updated,
            r#"{"user":{"id":"u1","email":"ada@example.com","status":"PENDING","deactivated_by":null,"role":"member","has_signed_in":false,"given_name":"Ada","family_name":null,"display_name":"Ada \"the\" Countess","avatar_url":null,"department":"Eng","title":null,"employee_number":null,"manager":null,"custom_attributes":{},"created_at":"2023-11-14T22:13:20.000Z","updated_at":"2023-11-14T22:13:20.123Z"},"changed":["custom_attributes.cost_center","department"],"directory_id":"d"}"#
        );
    }
}
