//! One run of a connection: list the users in scope page by page into the
//! engine (`reconcile::listing`), then, on a full run whose user listing
//! completed, the groups and their members; record the run (trigger, mode,
//! status, counts, first errors) and where the next incremental run starts.
//!
//! The rules stay in `reconcile`: a listing that did not complete
//! deactivates no one, the mass-deactivation guard stops a run at
//! `needs_approval`, a dry run writes nothing but the run's record.
//!
//! `run_connection` wraps a run in the connection's lease, so one process at
//! a time runs a connection, whichever replica or CLI started it.

use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use super::PullError;
use super::schedule::Schedule;
use super::source::{Asked, Position, Scope, Source, UserPage};
use crate::domain::names::fold;
use crate::domain::time::rfc3339;
use crate::reconcile::apply::Origin;
use crate::reconcile::listing::{
    Counts, GroupCounts, GroupListing, HeldBack, Listing, ListingOptions, ListingStatus, NotApplied,
};
use crate::reconcile::model::{EventType, RunStatus, Snapshot};
use crate::reconcile::unit::Unit;
use crate::store::pull::{self as runs, Connection, Run};
use crate::store::{Store, StoreError};

/// How long a lease lasts without renewal unless `--pull-lease-ttl` says
/// otherwise. A run's heartbeat renews it every fifth of this, whatever
/// the provider is doing, so a process that died (`kill -9`, a lost host)
/// holds its connection at most this long after its last beat.
pub const LEASE_TTL_MS: i64 = 20 * 1000;

static LEASE_TTL: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// This process's lease length (`--pull-lease-ttl`), set once at start;
/// at least a second.
pub fn set_lease_ttl(ttl: std::time::Duration) {
    let _ = LEASE_TTL.set(ttl.max(std::time::Duration::from_secs(1)));
}

/// How long this process's leases last without renewal, in milliseconds.
pub fn lease_ttl_ms() -> i64 {
    LEASE_TTL
        .get()
        .map_or(LEASE_TTL_MS, |ttl| ttl.as_millis() as i64)
}

/// Errors kept per run (the provider's first, then skips and conflicts).
const ERRORS_KEPT: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Schedule,
    /// An operator approved a run the guard stopped.
    Approval,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::Approval => "approval",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Request {
    pub trigger: Trigger,
    pub dry_run: bool,
    /// Start from the stored cursor when there is one (else a full run).
    pub incremental: bool,
    /// Import just these users (emails or the directory's ids): a selective
    /// import, which never marks anyone missing.
    pub only: Vec<String>,
    /// Import just this department's users (selective, as `only`).
    pub department: Option<String>,
    /// An import (the import wizard's, mode `import`): the users the
    /// listing selects go through the engine as a partial listing, so no
    /// one is missing for not being selected and groups are left alone.
    /// With no `only` and no `department`, every user in scope. With
    /// `only`, each named user is read by itself (`Source::user`) when the
    /// source can (`Source::reads_one`), rather than listed.
    pub import: bool,
    /// The run the guard stopped that this run carries out, with the number
    /// of deactivations the operator saw and approved.
    pub approves: Option<(String, u64)>,
}

impl Request {
    pub fn manual() -> Request {
        Request {
            trigger: Trigger::Manual,
            dry_run: false,
            incremental: false,
            only: Vec::new(),
            department: None,
            import: false,
            approves: None,
        }
    }

    fn is_selective(&self) -> bool {
        self.import || !self.only.is_empty() || self.department.is_some()
    }
}

/// How far a run got, for a progress bar. The first report comes as soon
/// as the run's record exists, before any page: a caller that answers
/// before the run ends (the API's 202) takes the run's id from it.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub run_id: String,
    pub pages: u64,
    pub users: u64,
    pub groups: u64,
    /// Provider values dropped at dirsync's caps in the users the run took
    /// in (`RunCounts::values_dropped`).
    pub values_dropped: u64,
}

/// How often a run's record shows its progress while it lists groups (each
/// engine page of users shows it too).
const SHOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Progress {
    /// Show how far a dry run got in its record, in the shape of its final
    /// counts, so whoever reads the run while it runs sees it move (a run
    /// that writes shows its counts in each page's own transaction).
    async fn show(&self, store: &Store) -> Result<(), StoreError> {
        let counts = json!({
            "users": { "seen": self.users },
            "groups": { "seen": self.groups },
            "values_dropped": self.values_dropped,
        });
        runs::save_progress(store.connection(), &self.run_id, counts).await
    }
}

/// A run's counts, as stored and shown.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunCounts {
    pub users: Counts,
    pub groups: GroupCounts,
    /// Deactivations the run weighed against the guard.
    pub deactivations: u64,
    /// Active users the guard measured against.
    pub population: u64,
    pub guard_tripped: bool,
    /// Provider errors that cut a listing short (their reasons are in the
    /// run's `errors`).
    pub errors: u64,
    /// Provider values longer than dirsync keeps (`domain::limits`),
    /// dropped by `normalize` from the users the run took in (and from
    /// items whose id itself was too long, which are no user): the users
    /// were synced without them. Not an error: such a run still succeeds.
    pub values_dropped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("directory {0} has no connection")]
    NoConnection(String),
    #[error("a run of this connection is already in progress ({0})")]
    Busy(String),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A run's `sync.run.finished` event, appended in the transaction that
/// records how it ended.
fn finished(unit: &mut Unit, run: &Run) -> Result<(), StoreError> {
    unit.event(
        &run.tenant_id,
        EventType::SyncRunFinished,
        "sync_run",
        &run.id,
        json!({ "run": run_view(run) }),
    )
}

/// A run as an operator reads it (`dirsync runs`).
pub fn run_view(run: &Run) -> Value {
    json!({
        "id": run.id,
        "directory_id": run.directory_id,
        "trigger": run.trigger,
        "mode": run.mode,
        "status": run.status,
        "started_at": rfc3339(run.started_at),
        "finished_at": run.finished_at.map(rfc3339),
        "counts": run.counts,
        "errors": run.errors,
        "approved_by_run_id": run.approved_by_run_id,
    })
}

/// Which users of a page the run keeps: the connection's department scope
/// (leaving it is being missing), narrowed by the request's selection.
struct Selection {
    only: Vec<String>,
    department: Option<String>,
    scope_department: Option<String>,
}

/// Whether the snapshot's department is `department` (folded), or any
/// when None.
pub(crate) fn in_department(department: &Option<String>, snapshot: &Snapshot) -> bool {
    department.as_ref().is_none_or(|d| {
        snapshot
            .profile
            .department
            .as_deref()
            .is_some_and(|have| fold(have) == *d)
    })
}

impl Selection {
    fn new(request: &Request, scope: &Scope) -> Selection {
        Selection {
            only: request.only.iter().map(|o| fold(o.trim())).collect(),
            department: request.department.as_deref().map(fold),
            scope_department: scope.department.as_deref().map(fold),
        }
    }

    fn in_scope(&self, snapshot: &Snapshot) -> bool {
        in_department(&self.scope_department, snapshot)
    }

    /// The names of the selection (folded) that this user answers to.
    fn named<'a>(
        &'a self,
        source_id: &'a str,
        snapshot: &'a Snapshot,
    ) -> impl Iterator<Item = String> + 'a {
        self.only
            .iter()
            .filter(move |o| {
                fold(source_id) == **o || snapshot.email.as_deref() == Some(o.as_str())
            })
            .cloned()
    }

    fn selected(&self, source_id: &str, snapshot: &Snapshot) -> bool {
        let listed = self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| fold(source_id) == *o || snapshot.email.as_deref() == Some(o.as_str()));
        listed && in_department(&self.department, snapshot)
    }
}

/// The names an import reads one by one: its selection, each once, when
/// the source reads one user of its scope; None: list the scope.
fn named_keys<S: Source>(request: &Request, source: &S) -> Option<Vec<String>> {
    if !(request.import && !request.only.is_empty() && source.reads_one()) {
        return None;
    }
    let mut keys: Vec<String> = Vec::new();
    for key in request.only.iter().map(|k| k.trim()) {
        if !key.is_empty() && !keys.iter().any(|k| fold(k) == fold(key)) {
            keys.push(key.to_owned());
        }
    }
    (!keys.is_empty()).then_some(keys)
}

/// One named user as a page of its own (none when the provider lacks it);
/// `more`: another name follows (a `next` the loop does not follow as a
/// position).
async fn read_named<S: Source + Send>(
    source: &mut S,
    key: &str,
    more: bool,
) -> Result<UserPage, PullError> {
    let mut page = UserPage {
        next: more.then(String::new),
        ..UserPage::default()
    };
    if let Some(user) = source.user(key).await? {
        page.push(user);
    }
    Ok(page)
}

/// One error of a run, as stored.
fn error_entry(kind: &str, reason: &str, source_id: Option<&str>) -> Value {
    let mut v = json!({ "kind": kind, "reason": reason });
    if let Some(id) = source_id {
        v["source_id"] = json!(id);
    }
    v
}

/// Run `request` on `connection` through `source` once, recording it. The
/// caller holds the connection's lease as `owner`; the run keeps it alive,
/// and gives it back (the next scheduled run set) with its record.
#[instrument(skip_all, fields(directory_id = %connection.directory_id, trigger = request.trigger.as_str()))]
pub async fn sync_once<S: Source + Send>(
    store: &Store,
    connection: &Connection,
    source: &mut S,
    request: &Request,
    owner: &str,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Run, RunError> {
    let scope: Scope = serde_json::from_value(connection.scope.clone()).unwrap_or_default();
    let selection = Selection::new(request, &scope);
    let selective = request.is_selective();
    let mut incremental = request.incremental && !selective && connection.cursor.is_some();
    // A selective run is never "full": the scheduler counts only real full
    // runs (missing users, groups) when it decides the next one.
    let mode = |incremental: bool| match (request.dry_run, selective, incremental) {
        (true, _, _) => "dry_run",
        (false, true, _) if request.import => "import",
        (false, true, _) => "selective",
        (false, false, true) => "incremental",
        (false, false, false) => "full",
    };
    // The mapping the run reads under: the provider is asked for what its
    // rules read, and the cursor is kept only if it is still the
    // directory's when the run ends.
    let origin = Origin::load(store.connection(), &connection.directory_id).await?;
    source.ask_for(&Asked::of(origin.mapping()));
    let started_under = origin.policy.attribute_mapping;
    let started_at = now_ms();
    let lease = Lease::hold(store, &connection.id, owner);
    let mut run = store
        .insert_run(new_run(connection, request, mode(incremental), started_at))
        .await?;
    let seen = Progress {
        run_id: run.id.clone(),
        ..Progress::default()
    };
    progress(&seen);
    // Each phase's state lives on the heap: nested in one future, a run's
    // pages, listings and units make a frame larger than a 2 MiB thread
    // stack holds in a debug build.
    let outcome = Box::pin(list_and_apply(
        store,
        connection,
        source,
        request,
        &selection,
        &mut incremental,
        &lease,
        seen,
        progress,
    ))
    .await;
    run.mode = mode(incremental).to_owned();
    run.finished_at = Some(now_ms());
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            // The store failed under the run: record that much if it can.
            run.status = RunStatus::Failed.as_str().to_owned();
            run.errors = json!([error_entry("store", &err.to_string(), None)]);
            let _ = runs::save_run(store.connection(), run).await;
            return Err(err);
        }
    };
    let mut errors: Vec<Value> = outcome
        .failures
        .iter()
        .map(|(kind, err)| error_entry(kind, &err.to_string(), None))
        .collect();
    errors.extend(
        outcome
            .problems
            .iter()
            .map(|p: &NotApplied| error_entry(p.outcome, &p.reason, Some(&p.source_id))),
    );
    errors.truncate(ERRORS_KEPT);
    let users_failed = outcome.failures.iter().any(|(kind, _)| *kind == "users");
    run.status = if outcome.status == ListingStatus::NeedsApproval {
        RunStatus::NeedsApproval
    } else if users_failed && outcome.counts.users.seen == 0 {
        RunStatus::Failed
    } else if !outcome.failures.is_empty() {
        RunStatus::Partial
    } else {
        RunStatus::Succeeded
    }
    .as_str()
    .to_owned();
    run.deactivations = outcome.counts.deactivations as i64;
    run.counts = serde_json::to_value(&outcome.counts).unwrap_or_default();
    if request.dry_run {
        run.counts["plan"] = Value::Array(outcome.plan.clone());
    }
    // What was asked, so an approval repeats the same run.
    run.counts["request"] = json!({
        "only": request.only,
        "department": request.department,
        "incremental": request.incremental,
        "import": request.import,
    });
    run.errors = Value::Array(errors);

    lease.keep()?;
    let mut unit = Unit::begin(store, now_ms()).await?;
    // The record is final only while this run still holds the lease: one
    // that lapsed (a stall longer than the lease) was marked failed by
    // whoever took it over, and that word stands.
    if !runs::renew_lease(unit.conn(), &connection.id, owner, now_ms(), lease_ttl_ms()).await? {
        return Err(RunError::Busy(
            "this run lost its lease to another worker".into(),
        ));
    }
    if let (Some(cursor), false) = (&outcome.cursor, request.dry_run) {
        // A mapping changed while the run listed forgot the cursor
        // (`admin::update_policy`); this run's would hold a delta token
        // issued under the old selection, read under the old rules: none is
        // kept, so the next run is full. Read in the transaction that saves.
        let now_under = Origin::load(unit.conn(), &connection.directory_id)
            .await?
            .policy
            .attribute_mapping;
        let cursor = if now_under == started_under {
            cursor.as_deref()
        } else {
            info!("the directory's attribute mapping changed during the run: no cursor kept");
            None
        };
        // Only the lease holder moves the cursor: a run that lost its lease
        // must not rewind the cursor of the run that took over.
        if !runs::set_cursor(unit.conn(), &connection.id, owner, cursor, now_ms()).await? {
            return Err(RunError::Busy(
                "this run lost its lease to another worker".into(),
            ));
        }
    }
    runs::save_run(unit.conn(), run.clone()).await?;
    if run.status == RunStatus::NeedsApproval.as_str() {
        let held_back: Vec<(String, &'static str)> = outcome
            .held_back
            .iter()
            .map(|h| (h.user_id.clone(), h.reason.as_str()))
            .collect();
        runs::save_held_back(unit.conn(), &run.id, &held_back).await?;
    }
    // An approval is carried out once its run went through; one that
    // failed, or tripped the guard again (more to deactivate than was
    // approved), leaves the stopped run open.
    if let (Some((stopped, _)), Ok(RunStatus::Succeeded)) = (&request.approves, run.status.parse())
    {
        runs::set_approved_by(unit.conn(), stopped, &run.id).await?;
    }
    // The next scheduled run is set and the lease given back with the run's
    // record: whoever sees the run finished (its record, its event) may
    // start the next one at once, and is not told one is still running.
    if !request.dry_run {
        runs::set_next_run(unit.conn(), &connection.id, next_run(connection)).await?;
    }
    runs::release_lease(unit.conn(), &connection.id, owner).await?;
    // Host applications hear of runs that changed something or did not
    // succeed; a no-op run stays silent (an hourly schedule would flood the
    // feed with nothing).
    let c = &outcome.counts;
    let changed = c.users.seen != c.users.unchanged + c.users.skipped + c.users.conflicts
        || c.users.deactivated + c.users.reactivated + c.users.deleted > 0
        || c.groups.created + c.groups.updated + c.groups.deleted > 0
        || c.groups.members_added + c.groups.members_removed > 0;
    if !request.dry_run && (changed || run.status != RunStatus::Succeeded.as_str()) {
        finished(&mut unit, &run)?;
    }
    unit.commit().await?;
    info!(run_id = %run.id, status = %run.status, mode = %run.mode, "run finished");
    Ok(run)
}

/// What the listings did.
struct Outcome {
    status: ListingStatus,
    counts: RunCounts,
    problems: Vec<NotApplied>,
    /// Provider errors that cut a listing short: ("users" | "groups", error).
    failures: Vec<(&'static str, PullError)>,
    /// Some(new cursor) when the run decides the next run's start (None
    /// inside: the next run is full).
    cursor: Option<Option<String>>,
    /// On a dry run, the changes it would make (the first `PLAN_SHOWN`).
    plan: Vec<Value>,
    /// When the guard stopped the run: whom it would have deactivated.
    held_back: Vec<HeldBack>,
}

/// Planned changes a dry run shows in its record.
const PLAN_SHOWN: usize = 100;

/// One planned change as a dry run shows it; None for `unchanged`.
fn planned(applied: &crate::reconcile::apply::Applied) -> Option<Value> {
    use crate::reconcile::model::Outcome as O;
    let (outcome, detail) = match &applied.outcome {
        O::Unchanged => return None,
        O::Created => ("create", Value::Null),
        O::Updated(fields) => ("update", json!(fields)),
        O::Deactivated => ("deactivate", Value::Null),
        O::Reactivated => ("reactivate", Value::Null),
        O::Deleted => ("delete", Value::Null),
        O::Skipped(why) => ("skip", json!(why)),
        O::Conflict(why) => ("conflict", json!(why)),
        O::Deferred(why) => ("defer", json!(why)),
    };
    let mut v = json!({ "source_id": applied.source_id, "change": outcome });
    if !detail.is_null() {
        v["detail"] = detail;
    }
    Some(v)
}

#[allow(clippy::too_many_arguments)]
async fn list_and_apply<S: Source + Send>(
    store: &Store,
    connection: &Connection,
    source: &mut S,
    request: &Request,
    selection: &Selection,
    incremental: &mut bool,
    lease: &Lease,
    mut seen: Progress,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Outcome, RunError> {
    let selective = request.is_selective();
    let options = |incremental: bool| ListingOptions {
        dry_run: request.dry_run,
        approved: false,
        approved_up_to: request.approves.as_ref().map(|(_, n)| *n),
        partial: incremental || selective,
    };
    let mut listing = Listing::begin(store, &connection.directory_id, options(*incremental))
        .await?
        .shown_in(&seen.run_id);
    let mut at = match (&connection.cursor, *incremental) {
        (Some(cursor), true) => Position::Since(cursor.clone()),
        _ => Position::Start,
    };
    let mut failures = Vec::new();
    let mut cursor = None;
    let mut batch: Vec<(String, Snapshot)> = Vec::new();
    // An import that names its users reads just them, one by one, when the
    // provider applies no part of the scope (`Source::reads_one`): each is a
    // page of one (or none) and goes through the engine as a listed page
    // does. Otherwise the scope is listed and the named users kept.
    let named = named_keys(request, &*source);
    let mut next_named = 0;
    // The users the run took in (a user named twice, by id and by email,
    // is read twice and taken once), and the names that found one.
    let mut taken = std::collections::HashSet::new();
    let mut found = std::collections::HashSet::new();
    loop {
        let read = match &named {
            Some(keys) => {
                let key = &keys[next_named];
                next_named += 1;
                read_named(source, key, next_named < keys.len()).await
            }
            None => source.users(&at).await,
        };
        let page = match read {
            Ok(page) => page,
            Err(PullError::CursorExpired(why)) if matches!(at, Position::Since(_)) => {
                warn!(%why, "incremental cursor expired: running a full listing");
                *incremental = false;
                listing = Listing::begin(store, &connection.directory_id, options(false))
                    .await?
                    .shown_in(&seen.run_id);
                batch.clear();
                at = Position::Start;
                continue;
            }
            Err(PullError::Store(err)) => return Err(err.into()),
            Err(err) => {
                // What was read before the failure is applied (creations and
                // updates); the listing stays incomplete.
                listing
                    .page(store, std::mem::take(&mut batch), now_ms())
                    .await?;
                failures.push(("users", err));
                break;
            }
        };
        seen.pages += 1;
        seen.users += page.users.len() as u64;
        let mut dropped = page.dropped;
        seen.values_dropped += dropped.unidentified();
        let mut left_scope = Vec::new();
        // A partial item (a Graph delta round) is judged whole: one that
        // does not carry the department kept the one it had.
        for (id, snapshot) in listing.complete(store, page.users).await? {
            if !selection.in_scope(&snapshot) {
                left_scope.push(id);
            } else if selection.selected(&id, &snapshot) {
                found.extend(selection.named(&id, &snapshot));
                if named.is_some() && !taken.insert(id.clone()) {
                    continue;
                }
                seen.values_dropped += dropped.take(&id);
                batch.push((id, snapshot));
            }
        }
        // Shown with the page that commits these users.
        listing.show_values_dropped(seen.values_dropped);
        // Providers page in hundreds; the engine writes a transaction per
        // `listing::PAGE` users, so small pages are gathered (memory stays
        // bounded by that many snapshots).
        if batch.len() >= crate::reconcile::listing::PAGE || page.next.is_none() {
            listing
                .page(store, std::mem::take(&mut batch), now_ms())
                .await?;
            if request.dry_run {
                seen.show(store).await?;
            }
        }
        if *incremental {
            // In an incremental run, a user who changed out of the
            // department scope is gone from it: missing, as in a full run.
            listing.removed(page.removed);
            listing.removed(left_scope);
        }
        progress(&seen);
        lease.keep()?;
        match page.next {
            Some(next) => at = Position::Next(next),
            None => {
                cursor = Some(page.cursor);
                break;
            }
        }
    }
    let complete = failures.is_empty();
    let mut report = listing.finish(store, complete, now_ms()).await?;
    // Each name of an import that found no user in the connection's scope
    // (the provider does not have it, or the scope leaves it out) is a
    // problem of its own; only once the whole listing or every read is in.
    if request.import && complete {
        let mut missed: Vec<&String> = Vec::new();
        for key in &selection.only {
            if !found.contains(key) && !missed.contains(&key) {
                missed.push(key);
            }
        }
        report
            .problems
            .extend(missed.into_iter().map(|key| NotApplied {
                source_id: key.clone(),
                outcome: "not_found",
                reason: "no such user in the directory (or outside the connection's scope)".into(),
            }));
    }
    let mut counts = RunCounts {
        users: report.counts.clone(),
        groups: GroupCounts::default(),
        deactivations: report.deactivations,
        population: report.population,
        guard_tripped: report.guard_tripped,
        errors: 0,
        values_dropped: seen.values_dropped,
    };
    // Groups follow a complete full listing (memberships name users the run
    // has just linked); incremental and selective runs refresh users only.
    // Not after the guard stopped the run either: group changes can
    // deactivate (a membership requirement), and nothing may be removed
    // until an operator approves.
    let stopped = report.status == ListingStatus::NeedsApproval;
    if complete && !*incremental && !selective && !stopped {
        match Box::pin(list_groups(
            store,
            connection,
            source,
            request.dry_run,
            &report.counts,
            lease,
            &mut seen,
            progress,
        ))
        .await
        {
            Ok(groups) => counts.groups = groups,
            Err(RunError::Pull(err)) => failures.push(("groups", err)),
            Err(other) => return Err(other),
        }
    }
    // The cursor moves only past a listing that completed; selective runs
    // leave it where it was.
    // nor past deactivations the guard held back.
    let cursor = if complete && !selective && !stopped {
        cursor
    } else {
        None
    };
    counts.errors = failures.len() as u64;
    Ok(Outcome {
        status: report.status,
        counts,
        problems: report.problems,
        plan: report
            .plan
            .iter()
            .filter_map(planned)
            .take(PLAN_SHOWN)
            .collect(),
        held_back: report.held_back,
        failures,
        cursor,
    })
}

#[allow(clippy::too_many_arguments)]
async fn list_groups<S: Source + Send>(
    store: &Store,
    connection: &Connection,
    source: &mut S,
    dry_run: bool,
    users: &Counts,
    lease: &Lease,
    seen: &mut Progress,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<GroupCounts, RunError> {
    let mut listing = GroupListing::begin(store, &connection.directory_id, dry_run)
        .await?
        .shown_in(&seen.run_id, users, seen.values_dropped);
    let listed = list_groups_into(&mut listing, store, source, lease, seen, progress).await;
    match listed {
        Ok(()) => Ok(listing.finish(store, true, now_ms()).await?),
        // What the provider listed before it failed still applies (the
        // listing holds groups back to apply several in one transaction).
        Err(RunError::Pull(err)) => {
            listing.finish(store, false, now_ms()).await?;
            Err(RunError::Pull(err))
        }
        // A lost lease or a failed write: nothing more is written.
        Err(err) => Err(err),
    }
}

async fn list_groups_into<S: Source + Send>(
    listing: &mut GroupListing,
    store: &Store,
    source: &mut S,
    lease: &Lease,
    seen: &mut Progress,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<(), RunError> {
    let mut shown = std::time::Instant::now();
    let mut next: Option<String> = None;
    loop {
        let page = source.groups(next.as_deref()).await?;
        for (group_id, snapshot) in page.groups {
            let mut members = Vec::new();
            let mut at: Option<String> = None;
            loop {
                let page = source.members(&group_id, at.as_deref()).await?;
                members.extend(page.users);
                lease.keep()?;
                match page.next {
                    Some(n) => at = Some(n),
                    None => break,
                }
            }
            listing
                .group(store, &group_id, snapshot, members, now_ms())
                .await?;
            seen.groups += 1;
            progress(seen);
            if shown.elapsed() >= SHOW_EVERY && listing.is_dry_run() {
                seen.show(store).await?;
                shown = std::time::Instant::now();
            }
        }
        lease.keep()?;
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    Ok(())
}

/// The lease a run holds, kept alive by a heartbeat of its own: a task
/// that renews it every fifth of its length while the run lives, whether
/// the run is writing, waiting on a throttled provider or planning. The
/// lease thus belongs to a live process: one killed stops beating, and
/// the lease lapses one length after its last beat. A run whose heartbeat
/// found the lease taken (it stalled past the lease and another worker
/// took over) stops at its next step.
struct Lease {
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    beat: tokio::task::JoinHandle<()>,
}

impl Lease {
    fn hold(store: &Store, connection_id: &str, owner: &str) -> Lease {
        use std::sync::atomic::{AtomicBool, Ordering};
        let lost = std::sync::Arc::new(AtomicBool::new(false));
        let (store, id, owner) = (store.clone(), connection_id.to_owned(), owner.to_owned());
        let flag = lost.clone();
        let beat = tokio::spawn(async move {
            let every = std::time::Duration::from_millis((lease_ttl_ms() / 5).max(200) as u64);
            loop {
                tokio::time::sleep(every).await;
                // Behind the store's writer, as a page's transaction is: on
                // SQLite a beat committed after that transaction read and
                // before it wrote would fail it (SQLITE_BUSY_SNAPSHOT), and
                // the run with it.
                let renewed = async {
                    let tx = store.write().await?;
                    let held =
                        runs::renew_lease(tx.conn(), &id, &owner, now_ms(), lease_ttl_ms()).await?;
                    tx.commit().await?;
                    Ok::<bool, StoreError>(held)
                }
                .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The next beat tries again; the lease lasts five beats.
                    Err(err) => warn!(%err, "the run's lease could not be renewed"),
                }
            }
        });
        Lease { lost, beat }
    }

    fn keep(&self) -> Result<(), RunError> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RunError::Busy(
                "this run lost its lease to another worker".into(),
            ));
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

/// Runs of `connection` still `running` whose lease lapsed: the process
/// running them died. Each is marked `failed`, keeping the counts its
/// pages committed, and its `sync.run.finished` event is appended in the
/// same transaction (a dry run's, as ever, stays silent). The caller holds
/// the connection's lease, so no run of it is alive.
pub async fn fail_abandoned(store: &Store, connection: &Connection) -> Result<u64, RunError> {
    let mut failed = 0;
    for stale in runs::running_runs(store.connection(), connection).await? {
        let mut unit = Unit::begin(store, now_ms()).await?;
        let errors = json!([error_entry(
            "worker",
            "the process running it stopped before it finished (its lease lapsed)",
            None,
        )]);
        let Some(run) = runs::fail_run(unit.conn(), &stale.id, now_ms(), errors).await? else {
            continue;
        };
        if run.mode != "dry_run" {
            finished(&mut unit, &run)?;
        }
        unit.commit().await?;
        warn!(run_id = %run.id, "a run whose process stopped is marked failed");
        failed += 1;
    }
    Ok(failed)
}

/// Every connection with a run left `running` under a lapsed lease: take
/// the lease as `owner`, mark those runs failed (`fail_abandoned`), give it
/// back. The scheduler's tick calls it, so such a run is closed within a
/// tick of its lease lapsing even if the connection is not due.
pub async fn fail_lapsed(store: &Store, owner: &str) -> Result<u64, RunError> {
    let mut failed = 0;
    for connection in runs::lapsed_connections(store.connection(), now_ms()).await? {
        if !store
            .take_lease(&connection.id, owner, now_ms(), lease_ttl_ms())
            .await?
        {
            continue;
        }
        let result = fail_abandoned(store, &connection).await;
        store.release_lease(&connection.id, owner).await?;
        failed += result?;
    }
    Ok(failed)
}

/// Take the connection's lease as `owner`, run, schedule the next run and
/// give the lease back (with the run's record when the run got that far).
/// `Busy` when another worker holds the lease.
#[instrument(skip_all, fields(directory_id, owner))]
pub async fn run_connection<S, F>(
    store: &Store,
    directory_id: &str,
    request: &Request,
    owner: &str,
    connect: F,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Run, RunError>
where
    S: Source + Send,
    F: FnOnce(&Connection) -> Result<S, PullError>,
{
    let listed = store
        .connection_of(directory_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RunError::NoConnection(directory_id.to_owned()),
            other => other.into(),
        })?;
    if !store
        .take_lease(&listed.id, owner, now_ms(), lease_ttl_ms())
        .await?
    {
        let holder = store.connection_of(directory_id).await?;
        return Err(RunError::Busy(format!(
            "held by {} until {}",
            holder.lease_owner.as_deref().unwrap_or("another worker"),
            holder.lease_expires_at.map(rfc3339).unwrap_or_default()
        )));
    }
    let result = run_leased(store, directory_id, request, owner, connect, progress).await;
    // The lease goes back whatever happened, so the next run need not wait
    // for it to lapse.
    let released = store.release_lease(&listed.id, owner).await;
    let run = result?;
    released?;
    Ok(run)
}

async fn run_leased<S, F>(
    store: &Store,
    directory_id: &str,
    request: &Request,
    owner: &str,
    connect: F,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Run, RunError>
where
    S: Source + Send,
    F: FnOnce(&Connection) -> Result<S, PullError>,
{
    // Read again under the lease: the row read before may predate a run
    // that finished in between (its cursor, its next run).
    let connection = store.connection_of(directory_id).await?;
    if request.trigger == Trigger::Schedule && connection.next_run_at.is_none_or(|at| at > now_ms())
    {
        return Err(RunError::Busy(
            "another worker ran it since it was due".into(),
        ));
    }
    // Whoever ran it before us is gone (its lease lapsed): its run ended.
    fail_abandoned(store, &connection).await?;
    let started = std::time::Instant::now();
    let result = match connect(&connection) {
        Ok(mut source) => {
            match Box::pin(sync_once(
                store,
                &connection,
                &mut source,
                request,
                owner,
                progress,
            ))
            .await
            {
                // Its record committed with the next run and the lease's
                // release.
                Ok(run) => {
                    crate::metrics::pull_run(&connection.provider, &run.status, started.elapsed());
                    return Ok(run);
                }
                Err(err) => Err(err),
            }
        }
        Err(err) => record_unstarted(store, &connection, request, err).await,
    };
    // Every run the server, the CLI or an approval starts passes here (a
    // completed one was counted above). One that ended in an error is
    // `failed`: its record says so, or will once its lapsed lease is found.
    let status = result
        .as_ref()
        .map_or(RunStatus::Failed.as_str(), |run| run.status.as_str());
    crate::metrics::pull_run(&connection.provider, status, started.elapsed());
    if !request.dry_run {
        store
            .set_next_run(&connection.id, next_run(&connection))
            .await?;
    }
    result
}

/// When the connection runs next after a run that ends now.
fn next_run(connection: &Connection) -> Option<i64> {
    let schedule: Schedule =
        serde_json::from_value(connection.schedule.clone()).unwrap_or_default();
    schedule.next_after(now_ms())
}

/// A run that could not start (unreadable credentials): recorded as failed.
async fn record_unstarted(
    store: &Store,
    connection: &Connection,
    request: &Request,
    err: PullError,
) -> Result<Run, RunError> {
    let now = now_ms();
    Ok(store
        .insert_run(Run {
            status: RunStatus::Failed.as_str().to_owned(),
            finished_at: Some(now),
            counts: serde_json::to_value(RunCounts::default()).unwrap_or_default(),
            errors: json!([error_entry("connection", &err.to_string(), None)]),
            ..new_run(
                connection,
                request,
                if request.dry_run { "dry_run" } else { "full" },
                now,
            )
        })
        .await?)
}

/// A run of `connection` as it starts: `running`, nothing counted yet.
fn new_run(connection: &Connection, request: &Request, mode: &str, started_at: i64) -> Run {
    Run {
        id: uuid::Uuid::now_v7().to_string(),
        connection_id: connection.id.clone(),
        directory_id: connection.directory_id.clone(),
        tenant_id: connection.tenant_id.clone(),
        trigger: request.trigger.as_str().to_owned(),
        mode: mode.to_owned(),
        status: RunStatus::Running.as_str().to_owned(),
        started_at,
        finished_at: None,
        counts: json!({}),
        errors: json!([]),
        deactivations: 0,
        approved_by_run_id: None,
    }
}
