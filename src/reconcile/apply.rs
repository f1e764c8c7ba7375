//! Applying the user rules: read what a page of changes needs in a few
//! statements, plan each change (`plan::plan_user`, pure), write the results
//! and record one event per change. Runs inside the caller's transaction, so
//! the mirror write, the app identity and the events commit together or not at
//! all; `Effects::flush` appends the events last (store::events says why).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use tracing::{info, instrument};

use super::plan::{
    self, Change, Current, DeactivatedBy, Field, Outcome, Profile, Snapshot, Status, Write,
};
use super::policy::{OnDelete, OnMissing, Policy};
use crate::domain::time::rfc3339;
use crate::store::events::{self, NewEvent};
use crate::store::identity::{self as ids, AppUser, Link};
use crate::store::{Conn, StoreError, tenants};

/// The directory a change comes from, with the policy in force.
#[derive(Debug, Clone)]
pub struct Directory {
    pub id: String,
    pub tenant_id: String,
    pub policy: Policy,
}

impl Directory {
    /// Read the directory and its policy inside the transaction.
    pub async fn load<C: Conn>(conn: &C, id: &str) -> Result<Directory, StoreError> {
        let row = tenants::directory_in(conn, id).await?;
        let policy = serde_json::from_value(row.policy).map_err(|e| {
            StoreError::Invalid(format!("directory {id} has an unreadable policy: {e}"))
        })?;
        Ok(Directory {
            id: row.id,
            tenant_id: row.tenant_id,
            policy,
        })
    }

    fn uses_groups(&self) -> bool {
        self.policy.group_roles_enabled || self.policy.require_group_membership
    }
}

/// Events a transaction produced, appended just before it commits.
#[derive(Debug, Default)]
pub struct Effects {
    events: Vec<NewEvent>,
}

impl Effects {
    pub fn push(
        &mut self,
        r#type: &'static str,
        resource_type: &'static str,
        id: &str,
        data: Value,
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
    pub fn count(&self, r#type: &str) -> u64 {
        self.events.iter().filter(|e| e.r#type == r#type).count() as u64
    }

    /// Add one event of the caller's own (a run's `sync.run.finished`).
    pub fn push_event(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Append the events (numbered per tenant). Call last in the transaction.
    pub async fn flush<C: Conn>(
        self,
        conn: &C,
        tenant_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        events::append(conn, tenant_id, self.events, now).await
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
        },
        has_signed_in: row.has_signed_in,
    }
}

/// The planner's user written over a row (or a new row).
pub fn to_row(user: &plan::AppUser, base: Option<&AppUser>, tenant_id: &str, now: i64) -> AppUser {
    let p = &user.profile;
    let (id, version, created_at, updated_at, profile_directory_id) = match base {
        Some(b) => (
            b.id.clone(),
            b.version + 1,
            b.created_at,
            now.max(b.updated_at),
            b.profile_directory_id.clone(),
        ),
        None => (user.id.clone(), 1, now, now, None),
    };
    AppUser {
        id,
        tenant_id: tenant_id.to_owned(),
        email: user.email.clone(),
        email_folded: user.email.clone(),
        status: status_str(user.status).to_owned(),
        deactivated_by: user
            .deactivated_by
            .map(|d| deactivated_by_str(d).to_owned()),
        deactivated_at: user.deactivated_at,
        role: user.role.clone(),
        has_signed_in: user.has_signed_in,
        given_name: p.given_name.clone(),
        family_name: p.family_name.clone(),
        display_name: p.display_name.clone(),
        avatar_url: p.avatar_url.clone(),
        department: p.department.clone(),
        title: p.title.clone(),
        employee_number: p.employee_number.clone(),
        manager: p.manager.clone(),
        profile_directory_id,
        version,
        created_at,
        updated_at,
    }
}

/// The host application's view of a user (events, CLI, API).
pub fn user_view(row: &AppUser) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(row.id));
    out.insert("email".into(), json!(row.email));
    out.insert("status".into(), json!(row.status));
    out.insert("deactivated_by".into(), json!(row.deactivated_by));
    out.insert("role".into(), json!(row.role));
    out.insert("has_signed_in".into(), json!(row.has_signed_in));
    if let Ok(Value::Object(fields)) = serde_json::to_value(to_plan(row).profile) {
        out.extend(fields);
    }
    out.insert("created_at".into(), json!(rfc3339(row.created_at)));
    out.insert("updated_at".into(), json!(rfc3339(row.updated_at)));
    Value::Object(out)
}

/// The event for an outcome, if the outcome is a change.
pub fn user_event(outcome: &Outcome) -> Option<(&'static str, Vec<Field>)> {
    match outcome {
        Outcome::Created => Some(("user.created", Vec::new())),
        Outcome::Updated(fields) => Some(("user.updated", fields.clone())),
        Outcome::Deactivated => Some(("user.deactivated", vec![Field::Status])),
        Outcome::Reactivated => Some(("user.reactivated", vec![Field::Status])),
        Outcome::Deleted => Some(("user.deleted", Vec::new())),
        Outcome::Unchanged | Outcome::Skipped(_) | Outcome::Conflict(_) => None,
    }
}

fn push_user_event(fx: &mut Effects, dir: &Directory, outcome: &Outcome, row: &AppUser) {
    if let Some((kind, changed)) = user_event(outcome) {
        fx.push(
            kind,
            "user",
            &row.id,
            json!({ "user": user_view(row), "changed": changed, "directory_id": dir.id }),
        );
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
    inserted: Vec<String>,
    updated: HashSet<String>,
    deleted: Vec<String>,
    links_changed: HashSet<String>,
    links_deleted: Vec<String>,
    linked_now: Vec<String>,
}

impl State {
    fn add_user(&mut self, row: AppUser) {
        self.by_email
            .insert(row.email_folded.clone(), row.id.clone());
        self.users.insert(row.id.clone(), row);
    }

    fn add_link(&mut self, dir: &Directory, link: Link) {
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
}

async fn load<C: Conn>(
    conn: &C,
    dir: &Directory,
    changes: &[UserChange],
) -> Result<State, StoreError> {
    let mut state = State::default();
    let sources: Vec<String> = changes.iter().map(|c| c.source_id.clone()).collect();
    for link in ids::links_by_source(conn, &dir.id, &sources).await? {
        state.add_link(dir, link);
    }
    // An IdP that deleted a user and creates it again under the same
    // externalId gets its app user back (the removed link is re-keyed).
    let returning: Vec<String> = changes
        .iter()
        .filter(|c| !state.links.contains_key(&c.source_id))
        .filter_map(|c| match &c.change {
            Change::Upsert(s) => s.external_id.clone(),
            _ => None,
        })
        .collect();
    let mut removed_by_external = HashMap::new();
    if !returning.is_empty() {
        for link in ids::removed_links_by_external_id(conn, &dir.id, &returning).await? {
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
    let mut user_ids: Vec<String> = state
        .links
        .values()
        .map(|l| l.app_user_id.clone())
        .collect();
    user_ids.sort();
    user_ids.dedup();
    for row in ids::users_by_id(conn, &user_ids).await? {
        state.add_user(row);
    }
    // Match by email only where the linked users do not already hold it.
    let mut emails: Vec<String> = changes
        .iter()
        .filter_map(|c| match &c.change {
            Change::Upsert(s) => s.email.clone(),
            _ => None,
        })
        .filter(|e| !state.by_email.contains_key(e))
        .collect();
    emails.sort();
    emails.dedup();
    let mut by_email_only = Vec::new();
    if !emails.is_empty() {
        for row in ids::users_by_email(conn, &dir.tenant_id, &emails).await? {
            by_email_only.push(row.id.clone());
            state.add_user(row);
        }
    }
    // Other directories' links (one person in two directories), and this
    // directory's links to users matched by email (one directory user per
    // app user).
    let all: Vec<String> = state.users.keys().cloned().collect();
    for link in ids::links_elsewhere(conn, &dir.id, &all).await? {
        state.add_link(dir, link);
    }
    if !by_email_only.is_empty() {
        for link in ids::links_of_users(conn, &by_email_only).await? {
            if link.directory_id == dir.id && !state.links.contains_key(&link.source_id) {
                state.add_link(dir, link);
            }
        }
    }
    if dir.uses_groups() {
        for key in ids::group_keys_of_users(conn, &dir.id, &all).await? {
            let keys = state.groups.entry(key.user_id).or_default();
            keys.push(key.name);
            keys.extend(key.external_id);
        }
    }
    Ok(state)
}

/// Apply a page of user changes from one directory, in order.
#[instrument(skip_all, fields(directory_id = %dir.id, count = changes.len()))]
pub async fn apply_users<C: Conn>(
    conn: &C,
    dir: &Directory,
    changes: Vec<UserChange>,
    now: i64,
    options: Options,
    fx: &mut Effects,
) -> Result<Batch, StoreError> {
    let mut state = load(conn, dir, &changes).await?;
    let mut batch = Batch::default();
    for item in changes {
        let applied = apply_one(&mut state, dir, &item, now, options, fx);
        match applied {
            Some(applied) => batch.applied.push(applied),
            None => batch.held.push(item),
        }
    }
    if !options.dry_run {
        write(conn, dir, state, now, fx).await?;
    }
    Ok(batch)
}

/// Plan one change against the batch state and record its writes. None when
/// the change is a deactivation held for later.
fn apply_one(
    state: &mut State,
    dir: &Directory,
    item: &UserChange,
    now: i64,
    options: Options,
    fx: &mut Effects,
) -> Option<Applied> {
    let policy = &dir.policy;
    // Read the batch state by reference; the plan owns what it needs.
    let (current, subject_id, groups) = {
        let link = state.links.get(&item.source_id);
        let linked = link.and_then(|l| state.users.get(&l.app_user_id));
        let by_email = match &item.change {
            Change::Upsert(s) => s.email.as_ref(),
            _ => None,
        }
        .and_then(|e| state.by_email.get(e))
        .and_then(|id| state.users.get(id));
        let subject = linked.or(by_email);
        let elsewhere = subject
            .and_then(|u| state.elsewhere.get(&u.id))
            .map_or(&[][..], Vec::as_slice);
        let current = Current {
            linked: linked.map(to_plan),
            // The same row as `linked` in the common case: plan it once.
            by_email: match (linked, by_email) {
                (Some(l), Some(b)) if l.id == b.id => linked.map(to_plan),
                _ => by_email.map(to_plan),
            },
            by_email_linked_here: link.is_none()
                && by_email
                    .and_then(|u| state.here.get(&u.id))
                    .is_some_and(|s| *s != item.source_id),
            other_links: !elsewhere.is_empty(),
            other_directory_active: elsewhere.iter().any(|l| l.directory_active),
            owns_profile: linked.is_some_and(|u| {
                u.profile_directory_id
                    .as_deref()
                    .is_none_or(|d| d == dir.id)
            }),
        };
        let groups = subject.and_then(|u| state.groups.get(&u.id)).cloned();
        (current, subject.map(|u| u.id.clone()), groups)
    };
    // The user's groups in this directory come from the store, not the edge.
    let with_groups;
    let change = match (&item.change, groups) {
        (Change::Upsert(s), Some(groups)) => {
            let mut s = s.clone();
            s.groups = groups;
            with_groups = Change::Upsert(s);
            &with_groups
        }
        (change, _) => change,
    };
    let plan = plan::plan_user(&current, change, policy, now, || {
        uuid::Uuid::now_v7().to_string()
    });
    if options.hold_deactivations && plan.outcome == Outcome::Deactivated {
        return None;
    }
    let mut app_user_id = subject_id;
    match &plan.outcome {
        Outcome::Skipped(reason) => {
            info!(source_id = %item.source_id, reason, "directory user skipped");
        }
        Outcome::Conflict(reason) => {
            tracing::warn!(source_id = %item.source_id, reason, "directory user in conflict");
        }
        _ => {}
    }
    if options.dry_run {
        return Some(Applied {
            source_id: item.source_id.clone(),
            outcome: plan.outcome,
            app_user_id,
        });
    }
    let mut event_row = None;
    for w in &plan.writes {
        match w {
            Write::Create(u) => {
                let mut row = to_row(u, None, &dir.tenant_id, now);
                row.profile_directory_id = Some(dir.id.clone());
                app_user_id = Some(row.id.clone());
                state.inserted.push(row.id.clone());
                event_row = Some(row.clone());
                state.add_user(row);
            }
            Write::Update(u) => {
                let Some(base) = state.users.get(&u.id).cloned() else {
                    continue;
                };
                let row = to_row(u, Some(&base), &dir.tenant_id, now);
                if base.email_folded != row.email_folded {
                    state.by_email.remove(&base.email_folded);
                }
                state.updated.insert(row.id.clone());
                event_row = Some(row.clone());
                state.add_user(row);
            }
            Write::Delete { app_user_id: id } => {
                if let Some(row) = state.users.remove(id) {
                    state.by_email.remove(&row.email_folded);
                    event_row = Some(row);
                }
                state.here.remove(id);
                state.links.retain(|_, l| l.app_user_id != *id);
                state.deleted.push(id.clone());
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
                    removed_at: None,
                    created_at: now,
                    updated_at: now,
                };
                state.links_changed.insert(item.source_id.clone());
                state.linked_now.push(item.source_id.clone());
                state.add_link(dir, row);
                if event_row.is_none() {
                    event_row = state.users.get(id).cloned();
                }
            }
            Write::Unlink { app_user_id: id } => {
                state.links.remove(&item.source_id);
                state.here.remove(id);
                state.links_deleted.push(item.source_id.clone());
                // The profile goes to whichever directory writes next.
                if let Some(row) = state.users.get_mut(id)
                    && row.profile_directory_id.as_deref() == Some(dir.id.as_str())
                {
                    row.profile_directory_id = None;
                    row.version += 1;
                    row.updated_at = now.max(row.updated_at);
                    state.updated.insert(id.clone());
                }
                event_row = state.users.get(id).cloned();
            }
        }
    }
    book_link(state, dir, item, change, &plan.outcome, now);
    if let Some(row) = &event_row {
        push_user_event(fx, dir, &plan.outcome, row);
    }
    Some(Applied {
        source_id: item.source_id.clone(),
        outcome: plan.outcome,
        app_user_id,
    })
}

/// Keep this directory's link in step with what it said: the last snapshot,
/// whether it says active, removal.
fn book_link(
    state: &mut State,
    dir: &Directory,
    item: &UserChange,
    change: &Change,
    outcome: &Outcome,
    now: i64,
) {
    if matches!(
        outcome,
        Outcome::Skipped(_) | Outcome::Conflict(_) | Outcome::Deleted
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
            let text = serde_json::to_string(&**s).unwrap_or_default();
            let hash = crate::crypto::hash_token(&text);
            if hash != link.snapshot_hash {
                link.snapshot = serde_json::from_str(&text).ok();
                link.snapshot_hash = hash;
            }
            link.external_id = s.external_id.clone();
            link.directory_active = active;
            link.removed_at = None;
        }
        Change::Removed => {
            if dir.policy.on_delete == OnDelete::Deactivate {
                link.removed_at = Some(now);
                link.directory_active = false;
            }
        }
        Change::Missing => {
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

async fn write<C: Conn>(
    conn: &C,
    dir: &Directory,
    state: State,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    for id in &state.deleted {
        ids::delete_user(conn, id).await?;
    }
    for source in &state.links_deleted {
        if !state.links.contains_key(source) {
            ids::delete_link(conn, &dir.id, source).await?;
        }
    }
    let inserted: HashSet<&String> = state.inserted.iter().collect();
    let rows: Vec<AppUser> = state
        .inserted
        .iter()
        .filter_map(|id| state.users.get(id).cloned())
        .collect();
    ids::insert_users(conn, rows).await?;
    for id in &state.updated {
        if inserted.contains(id) {
            continue;
        }
        if let Some(row) = state.users.get(id) {
            ids::update_user(conn, row).await?;
        }
    }
    let links: Vec<Link> = state
        .links_changed
        .iter()
        .filter_map(|s| state.links.get(s).cloned())
        .collect();
    ids::upsert_links(conn, links).await?;
    // Users linked now join the app groups their directory already put them in.
    if !state.linked_now.is_empty() {
        let found = ids::mirror_groups_of(conn, &dir.id, &state.linked_now).await?;
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
    let present: HashSet<String> = ids::members_among(conn, group_id, user_ids)
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
    ids::add_group_members(conn, group_id, &new, now).await?;
    for user in &new {
        fx.push(
            "group.member_added",
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
    let mut gone = ids::members_among(conn, group_id, user_ids).await?;
    gone.sort();
    gone.dedup();
    ids::remove_group_members(conn, group_id, &gone).await?;
    for user in &gone {
        fx.push(
            "group.member_removed",
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
    dir: &Directory,
    app_user_ids: &[String],
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    if !dir.uses_groups() || app_user_ids.is_empty() {
        return Ok(());
    }
    let changes: Vec<UserChange> = ids::snapshots_of(conn, &dir.id, app_user_ids)
        .await?
        .into_iter()
        .filter_map(|l| {
            let snapshot: Snapshot = serde_json::from_value(l.snapshot?).ok()?;
            Some(UserChange {
                source_id: l.source_id,
                change: Change::upsert(snapshot),
            })
        })
        .collect();
    apply_users(conn, dir, changes, now, Options::default(), fx).await?;
    Ok(())
}
