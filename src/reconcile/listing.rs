//! Entry points that need no HTTP: one user or group snapshot, or a complete
//! listing of a directory's users fed page by page (the pull worker, tests,
//! the benchmark).
//!
//! A complete listing holds its deactivations until the end. Then the users it
//! did not list are "missing" (policy `on_missing`), and the mass-deactivation
//! guard weighs every deactivation of the run at once: over the threshold, none
//! is applied and the run needs an operator's approval. A listing that did not
//! complete deactivates no one.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use tracing::{instrument, warn};

use super::apply::{self, Applied, Effects, Options, Origin, UserChange};
use super::model::{
    Change, EventType, GroupChange, GroupOutcome, GroupSnapshot, Outcome, Snapshot,
};
use super::plan::Status;
use super::unit::Unit;
use crate::store::app::groups as app_groups;
use crate::store::app::links;
use crate::store::{Store, StoreError};

/// Changes per transaction.
pub const PAGE: usize = 500;

/// Users created by a listing before it first refreshes the planner's
/// statistics (`Store::analyze_identity`).
const ANALYZE_FROM: u64 = 1_000;

/// How a listing ended (what a pull run's `RunStatus` is made from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    /// Everything planned was applied.
    Applied,
    /// The guard tripped: creations and updates applied, no deactivation.
    NeedsApproval,
    /// The listing did not complete: no one was deactivated or marked missing.
    Incomplete,
    /// Nothing was written.
    DryRun,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Users in the listing.
    pub seen: u64,
    /// Linked users the complete listing did not include.
    pub missing: u64,
    pub created: u64,
    /// Of `created`, the users the directory already said were inactive
    /// (created deactivated: they never had access).
    pub created_deactivated: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub conflicts: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: &Outcome) {
        let slot = match outcome {
            Outcome::Created => &mut self.created,
            Outcome::Updated(_) => &mut self.updated,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::Deactivated => &mut self.deactivated,
            Outcome::Reactivated => &mut self.reactivated,
            Outcome::Deleted => &mut self.deleted,
            Outcome::Skipped(_) => &mut self.skipped,
            // A change still waiting for its address at the end of a run
            // is a conflict of that run.
            Outcome::Conflict(_) | Outcome::Deferred(_) => &mut self.conflicts,
        };
        *slot += 1;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: ListingStatus,
    pub counts: Counts,
    /// Deactivations the run planned (applied unless the guard tripped).
    pub deactivations: u64,
    /// Active users of the directory the guard measured against.
    pub population: u64,
    /// Whether the guard tripped (also reported on a dry run).
    pub guard_tripped: bool,
    /// The first skips and conflicts, with their reasons.
    pub problems: Vec<NotApplied>,
    /// The start of the plan (`PLAN_KEPT` changes), on a dry run.
    #[serde(skip)]
    pub plan: Vec<Applied>,
    /// When the guard tripped: every user the run would have deactivated
    /// (what an operator approves).
    #[serde(skip)]
    pub held_back: Vec<HeldBack>,
}

/// A deactivation the guard held back: whom, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The app user.
    pub user_id: String,
    pub reason: HeldBackReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldBackReason {
    /// The complete listing left them out, or the directory said they were
    /// removed (policy `on_missing`).
    Missing,
    /// The directory lists them as no longer active.
    Directory,
}

impl HeldBackReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HeldBackReason::Missing => "missing",
            HeldBackReason::Directory => "directory",
        }
    }
}

/// The app users of `applied` that a change deactivates, for `reason`.
fn deactivated(applied: Vec<Applied>, reason: HeldBackReason) -> impl Iterator<Item = HeldBack> {
    applied
        .into_iter()
        .filter(|a| a.outcome == Outcome::Deactivated)
        .filter_map(move |a| a.app_user_id.map(|user_id| HeldBack { user_id, reason }))
}

/// Apply one user snapshot from a directory in its own transaction.
#[instrument(skip_all, fields(directory_id, source_id))]
pub async fn apply_snapshot(
    store: &Store,
    directory_id: &str,
    source_id: &str,
    change: Change,
    now: i64,
) -> Result<Applied, StoreError> {
    let mut unit = Unit::begin(store, now).await?;
    let dir = unit.directory(directory_id).await?;
    let change = UserChange {
        source_id: source_id.to_owned(),
        change,
    };
    let batch = unit.users(&dir, vec![change], Options::default()).await?;
    unit.commit().await?;
    batch
        .applied
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Invalid("the engine returned no outcome".into()))
}

/// Apply one group snapshot (or its removal) from a directory and, when
/// given, its complete member list (the directory's ids for its users), in
/// one transaction.
#[instrument(skip_all, fields(directory_id, source_id))]
pub async fn apply_group_snapshot(
    store: &Store,
    directory_id: &str,
    source_id: &str,
    change: GroupChange,
    members: Option<&[String]>,
    now: i64,
) -> Result<GroupOutcome, StoreError> {
    let mut unit = Unit::begin(store, now).await?;
    let dir = unit.directory(directory_id).await?;
    let removed = change == GroupChange::Removed;
    let outcome = unit.group(&dir, source_id, change).await?;
    if let (Some(members), false) = (members, removed) {
        unit.replace_members(&dir, source_id, members).await?;
    }
    unit.commit().await?;
    Ok(outcome)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ListingOptions {
    pub dry_run: bool,
    /// An operator approved the deactivations (the guard does not apply).
    pub approved: bool,
    /// An operator approved up to this many deactivations (a run the guard
    /// stopped, approved as it was weighed): the guard lets through as many,
    /// and trips again beyond.
    pub approved_up_to: Option<u64>,
    /// The listing names only some users (an incremental run, a selective
    /// import): no one is missing for not being listed; what it lists, and
    /// what it says was removed, is applied under the guard all the same.
    pub partial: bool,
}

/// Planned changes a dry run keeps to show.
pub const PLAN_KEPT: usize = 1000;

/// Skips and conflicts kept with their reasons, per run.
pub const PROBLEMS_KEPT: usize = 20;

/// A change that was not applied, and why (a skip or a conflict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotApplied {
    /// The directory's id for the user.
    pub source_id: String,
    pub outcome: &'static str,
    pub reason: String,
}

/// A complete listing of one directory in progress.
pub struct Listing {
    dir: Origin,
    options: ListingOptions,
    seen: HashSet<String>,
    held: Vec<UserChange>,
    /// Users the source said are gone (a partial listing's removals).
    removed: Vec<String>,
    counts: Counts,
    problems: Vec<NotApplied>,
    plan: Vec<Applied>,
    /// `counts.created` when this listing last refreshed the statistics.
    analyzed_at: u64,
    /// Users whose latest word waits for an address another user of the
    /// directory still holds, with why. A later page may release it (the
    /// engine then applies the change there); what still waits when the
    /// listing ends is a conflict of the run.
    waiting: BTreeMap<String, String>,
    /// The pull run whose record shows the counts (`shown_in`).
    shown_in: Option<String>,
    /// Provider values the edge dropped at its caps so far in that run
    /// (`show_values_dropped`).
    values_dropped: u64,
}

/// A running pull run's counts as its record shows them, in the shape of
/// its final counts.
fn shown(users: &Counts, groups: &GroupCounts, values_dropped: u64) -> serde_json::Value {
    serde_json::json!({ "users": users, "groups": groups, "values_dropped": values_dropped })
}

impl Listing {
    pub async fn begin(
        store: &Store,
        directory_id: &str,
        options: ListingOptions,
    ) -> Result<Listing, StoreError> {
        let dir = Origin::load(store.connection(), directory_id).await?;
        Ok(Listing {
            dir,
            options,
            seen: HashSet::new(),
            held: Vec::new(),
            removed: Vec::new(),
            counts: Counts::default(),
            problems: Vec::new(),
            plan: Vec::new(),
            analyzed_at: 0,
            waiting: BTreeMap::new(),
            shown_in: None,
            values_dropped: 0,
        })
    }

    /// Show the listing's counts in this pull run's record, written in the
    /// transaction of each page: what the record shows is what committed,
    /// also when the process dies before the run ends.
    pub fn shown_in(mut self, run_id: &str) -> Listing {
        self.shown_in = Some(run_id.to_owned());
        self
    }

    /// How many provider values the edge dropped at its caps so far in the
    /// run (the pull side's normalization reports them), shown beside the
    /// counts from the next commit on, so a run that dies keeps those of
    /// the pages it committed, like its other counts.
    pub fn show_values_dropped(&mut self, values: u64) {
        self.values_dropped = values;
    }

    /// Commit a unit of this listing, its counts shown with it; a dry run
    /// rolls it back.
    async fn commit(&self, unit: Unit) -> Result<(), StoreError> {
        if self.options.dry_run {
            return Ok(());
        }
        if let Some(run_id) = &self.shown_in {
            let counts = shown(&self.counts, &GroupCounts::default(), self.values_dropped);
            crate::store::pull::save_progress(unit.conn(), run_id, counts).await?;
        }
        unit.commit().await?;
        Ok(())
    }

    fn record(&mut self, applied: Vec<Applied>) {
        for a in &applied {
            if let Outcome::Deferred(why) = &a.outcome {
                self.waiting.insert(a.source_id.clone(), why.clone());
                continue;
            }
            self.waiting.remove(&a.source_id);
            self.counts.add(&a.outcome);
            if a.outcome == Outcome::Created && a.status == Some(Status::Deactivated) {
                self.counts.created_deactivated += 1;
            }
            let problem = match &a.outcome {
                Outcome::Skipped(why) => Some(("skipped", why)),
                Outcome::Conflict(why) => Some(("conflict", why)),
                _ => None,
            };
            if let (Some((outcome, why)), true) = (problem, self.problems.len() < PROBLEMS_KEPT) {
                self.problems.push(NotApplied {
                    source_id: a.source_id.clone(),
                    outcome,
                    reason: why.clone(),
                });
            }
        }
        // A dry run keeps the start of its plan to show, not the whole
        // directory (memory stays bounded by a page).
        if self.options.dry_run && self.plan.len() < PLAN_KEPT {
            let room = PLAN_KEPT - self.plan.len();
            self.plan.extend(applied.into_iter().take(room));
        }
    }

    /// Apply one page of users (source id and snapshot), a transaction per
    /// `PAGE` users. Deactivations wait for `finish`.
    #[instrument(skip_all, fields(directory_id = %self.dir.id, count = users.len()))]
    pub async fn page(
        &mut self,
        store: &Store,
        users: Vec<(String, Snapshot)>,
        now: i64,
    ) -> Result<(), StoreError> {
        // The same user twice in one listing (Okta lists the deprovisioned
        // after the rest, Graph's delta may replay an item): the later word
        // is the newer one, so it wins, also over an earlier removal.
        let mut latest: Vec<(String, Snapshot)> = Vec::with_capacity(users.len());
        let mut at: std::collections::HashMap<String, usize> = Default::default();
        for (source_id, snapshot) in users {
            match at.get(&source_id) {
                Some(&i) => latest[i].1 = snapshot,
                None => {
                    at.insert(source_id.clone(), latest.len());
                    latest.push((source_id, snapshot));
                }
            }
        }
        let mut users = latest.into_iter().peekable();
        while users.peek().is_some() {
            let mut changes = Vec::new();
            for (source_id, snapshot) in users.by_ref().take(PAGE) {
                if self.seen.insert(source_id.clone()) {
                    self.counts.seen += 1;
                } else {
                    self.forget(&source_id);
                }
                changes.push(UserChange {
                    source_id,
                    change: Change::upsert(snapshot),
                });
            }
            let options = Options {
                dry_run: self.options.dry_run,
                hold_deactivations: true,
            };
            let mut unit = Unit::begin(store, now).await?;
            let batch = unit.users(&self.dir, changes, options).await?;
            self.held.extend(batch.held);
            self.record(batch.applied);
            self.commit(unit).await?;
            // An import that doubled what it created since the last refresh
            // refreshes the statistics (ANALYZE_FROM, 2 × ANALYZE_FROM, …: a
            // handful per listing); a listing that creates nothing, none.
            if !self.options.dry_run
                && self.counts.created >= ANALYZE_FROM.max(2 * self.analyzed_at)
            {
                store.analyze_identity().await?;
                self.analyzed_at = self.counts.created;
            }
        }
        Ok(())
    }

    /// Complete the partial items of a page (a Graph delta round) over what
    /// the directory said before, so a caller can judge them whole.
    pub async fn complete(
        &self,
        store: &Store,
        users: Vec<(String, Snapshot)>,
    ) -> Result<Vec<(String, Snapshot)>, StoreError> {
        if users.iter().all(|(_, s)| s.carried.is_none()) {
            return Ok(users);
        }
        let changes = users
            .into_iter()
            .map(|(source_id, s)| UserChange {
                source_id,
                change: Change::upsert(s),
            })
            .collect();
        Ok(
            apply::complete_users(store.connection(), &self.dir, changes)
                .await?
                .into_iter()
                .filter_map(|c| match c.change {
                    Change::Upsert(s) => Some((c.source_id, *s)),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Drop what an earlier word of this listing held for the user.
    fn forget(&mut self, source_id: &str) {
        self.held.retain(|c| c.source_id != source_id);
        self.removed.retain(|r| r != source_id);
    }

    /// Users the source reports removed (Graph delta's `@removed`): treated
    /// as missing from the directory, decided at `finish` with the rest.
    pub fn removed(&mut self, source_ids: Vec<String>) {
        for id in source_ids {
            if !self.seen.insert(id.clone()) {
                self.forget(&id);
            }
            self.removed.push(id);
        }
    }

    /// Weigh changes without writing them (a dry run of the engine).
    async fn weigh(
        &self,
        store: &Store,
        changes: Vec<UserChange>,
        now: i64,
        options: Options,
    ) -> Result<apply::Batch, StoreError> {
        let mut unit = Unit::begin(store, now).await?;
        unit.users(&self.dir, changes, options).await
    }

    /// End the listing. `complete` says the source listed every user; only then
    /// are the unlisted ones missing and any deactivation applied.
    #[instrument(skip_all, fields(directory_id = %self.dir.id, complete))]
    pub async fn finish(
        mut self,
        store: &Store,
        complete: bool,
        now: i64,
    ) -> Result<Report, StoreError> {
        if !complete {
            warn!(
                held = self.held.len(),
                "incomplete listing: no deactivation applied"
            );
            return Ok(self.report(ListingStatus::Incomplete, 0, 0, false));
        }
        let missing_ids: Vec<String> = if self.options.partial {
            std::mem::take(&mut self.removed)
        } else {
            let live = links::live_source_ids(store.connection(), &self.dir.id).await?;
            live.into_iter()
                .filter(|s| !self.seen.contains(s))
                .collect()
        };
        let missing: Vec<UserChange> = missing_ids
            .into_iter()
            .map(|source_id| UserChange {
                source_id,
                change: Change::Missing,
            })
            .collect();
        // Weigh the run's deactivations: the held ones plus the missing ones
        // the policy would deactivate (whom, kept in case the guard trips).
        let weigh = Options {
            dry_run: true,
            hold_deactivations: false,
        };
        let mut held_back = Vec::new();
        for chunk in missing.chunks(PAGE) {
            let batch = self.weigh(store, chunk.to_vec(), now, weigh).await?;
            held_back.extend(deactivated(batch.applied, HeldBackReason::Missing));
        }
        let would_deactivate = self.held.len() as u64 + held_back.len() as u64;
        let population = links::count_active_links(store.connection(), &self.dir.id).await?;
        let tripped = self
            .dir
            .policy
            .deactivation_threshold
            .is_exceeded(would_deactivate, population);
        let approved = self.options.approved
            || self
                .options
                .approved_up_to
                .is_some_and(|n| would_deactivate <= n);
        if tripped && !approved {
            warn!(
                would_deactivate,
                population, "mass-deactivation guard tripped: nothing deactivated"
            );
            let status = if self.options.dry_run {
                ListingStatus::DryRun
            } else {
                ListingStatus::NeedsApproval
            };
            for chunk in self.held.chunks(PAGE) {
                let batch = self.weigh(store, chunk.to_vec(), now, weigh).await?;
                held_back.extend(deactivated(batch.applied, HeldBackReason::Directory));
            }
            let mut report = self.report(status, would_deactivate, population, true);
            report.held_back = held_back;
            return Ok(report);
        }
        let options = Options {
            dry_run: self.options.dry_run,
            hold_deactivations: false,
        };
        let held = std::mem::take(&mut self.held);
        for chunk in held.chunks(PAGE) {
            let mut unit = Unit::begin(store, now).await?;
            let batch = unit.users(&self.dir, chunk.to_vec(), options).await?;
            self.record(batch.applied);
            self.commit(unit).await?;
        }
        // Missing users are counted once as missing, and again only when that
        // changed something (under `on_missing: ignore` it changes nothing).
        self.counts.missing = missing.len() as u64;
        for chunk in missing.chunks(PAGE) {
            let mut unit = Unit::begin(store, now).await?;
            let batch = unit.users(&self.dir, chunk.to_vec(), options).await?;
            let changed = batch
                .applied
                .into_iter()
                .filter(|a| a.outcome != Outcome::Unchanged)
                .collect();
            self.record(changed);
            self.commit(unit).await?;
        }
        let status = if self.options.dry_run {
            ListingStatus::DryRun
        } else {
            ListingStatus::Applied
        };
        Ok(self.report(status, would_deactivate, population, tripped))
    }

    fn report(
        mut self,
        status: ListingStatus,
        deactivations: u64,
        population: u64,
        guard_tripped: bool,
    ) -> Report {
        // What still waits for its address at the end of the listing is a
        // conflict; the change stays stored and applies when the address
        // is released (a later run, or any write that releases it).
        for (source_id, reason) in std::mem::take(&mut self.waiting) {
            self.counts.conflicts += 1;
            if self.problems.len() < PROBLEMS_KEPT {
                self.problems.push(NotApplied {
                    source_id,
                    outcome: "conflict",
                    reason,
                });
            }
        }
        Report {
            status,
            counts: self.counts,
            problems: self.problems,
            deactivations,
            population,
            guard_tripped,
            plan: self.plan,
            held_back: Vec::new(),
        }
    }
}

/// What a group listing did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    pub seen: u64,
    pub created: u64,
    /// Of `created`, the users the directory already said were inactive
    /// (created deactivated: they never had access).
    pub created_deactivated: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub members_added: u64,
    pub members_removed: u64,
}

impl GroupCounts {
    fn add(&mut self, outcome: GroupOutcome) {
        let slot = match outcome {
            GroupOutcome::Created => &mut self.created,
            GroupOutcome::Updated => &mut self.updated,
            GroupOutcome::Unchanged => &mut self.unchanged,
            GroupOutcome::Deleted => &mut self.deleted,
        };
        *slot += 1;
    }

    fn effects(&mut self, fx: &Effects) {
        self.members_added += fx.count(EventType::GroupMemberAdded);
        self.members_removed += fx.count(EventType::GroupMemberRemoved);
    }
}

/// Groups one transaction of a group listing takes at most, and the member
/// ids it holds at most (a larger group goes alone): fewer commits than one
/// per group, and a transaction short enough not to hold SCIM writers back.
const GROUPS_PER_UNIT: usize = 64;
const MEMBERS_PER_UNIT: usize = 20_000;

/// A complete listing of a directory's groups, each group with its whole
/// member list, applied several groups to a transaction (bounded by
/// `GROUPS_PER_UNIT` and `MEMBERS_PER_UNIT`). When it completes, groups it
/// did not list are deleted; on a dry run every transaction rolls back.
pub struct GroupListing {
    dir: Origin,
    dry_run: bool,
    seen: HashSet<String>,
    /// Groups listed and not yet applied, and their members' count.
    pending: Vec<(String, GroupSnapshot, Vec<String>)>,
    pending_members: usize,
    pub counts: GroupCounts,
    /// The pull run whose record shows the counts, its users' counts and
    /// the provider values dropped at the caps.
    shown_in: Option<(String, Counts, u64)>,
}

impl GroupListing {
    pub async fn begin(
        store: &Store,
        directory_id: &str,
        dry_run: bool,
    ) -> Result<GroupListing, StoreError> {
        Ok(GroupListing {
            dir: Origin::load(store.connection(), directory_id).await?,
            dry_run,
            seen: HashSet::new(),
            pending: Vec::new(),
            pending_members: 0,
            counts: GroupCounts::default(),
            shown_in: None,
        })
    }

    /// Show the counts in this pull run's record (beside its `users`
    /// counts and the provider values it dropped at the caps), written in
    /// the transaction of each group commit.
    pub fn shown_in(mut self, run_id: &str, users: &Counts, values_dropped: u64) -> GroupListing {
        self.shown_in = Some((run_id.to_owned(), users.clone(), values_dropped));
        self
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Commit a unit of this listing, its counts shown with it; a dry run
    /// rolls it back.
    async fn commit(&self, unit: Unit) -> Result<(), StoreError> {
        if self.dry_run {
            return Ok(());
        }
        if let Some((run_id, users, values_dropped)) = &self.shown_in {
            let counts = shown(users, &self.counts, *values_dropped);
            crate::store::pull::save_progress(unit.conn(), run_id, counts).await?;
        }
        unit.commit().await?;
        Ok(())
    }

    /// One group, whose members are exactly `members` (the directory's ids
    /// for its user members): applied with the next groups, or now when
    /// the transaction is full.
    #[instrument(skip_all, fields(directory_id = %self.dir.id, source_id, members = members.len()))]
    pub async fn group(
        &mut self,
        store: &Store,
        source_id: &str,
        snapshot: GroupSnapshot,
        members: Vec<String>,
        now: i64,
    ) -> Result<(), StoreError> {
        if !self.seen.insert(source_id.to_owned()) {
            return Ok(());
        }
        self.counts.seen += 1;
        self.pending_members += members.len();
        self.pending.push((source_id.to_owned(), snapshot, members));
        if self.pending.len() >= GROUPS_PER_UNIT || self.pending_members >= MEMBERS_PER_UNIT {
            self.flush(store, now).await?;
        }
        Ok(())
    }

    /// Apply the pending groups in one transaction.
    async fn flush(&mut self, store: &Store, now: i64) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending_members = 0;
        let mut unit = Unit::begin(store, now).await?;
        for (source_id, snapshot, members) in std::mem::take(&mut self.pending) {
            let outcome = unit
                .group(&self.dir, &source_id, GroupChange::Upsert(snapshot))
                .await?;
            unit.replace_members(&self.dir, &source_id, &members)
                .await?;
            self.counts.add(outcome);
        }
        self.counts.effects(unit.effects());
        self.commit(unit).await
    }

    /// End the listing; when `complete`, delete the groups it did not list.
    pub async fn finish(
        mut self,
        store: &Store,
        complete: bool,
        now: i64,
    ) -> Result<GroupCounts, StoreError> {
        self.flush(store, now).await?;
        if !complete {
            return Ok(self.counts);
        }
        let known = app_groups::group_source_ids(store.connection(), &self.dir.id).await?;
        let gone: Vec<String> = known
            .into_iter()
            .filter(|s| !self.seen.contains(s))
            .collect();
        for chunk in gone.chunks(GROUPS_PER_UNIT) {
            let mut unit = Unit::begin(store, now).await?;
            for source_id in chunk {
                let outcome = unit
                    .group(&self.dir, source_id, GroupChange::Removed)
                    .await?;
                self.counts.add(outcome);
            }
            self.counts.effects(unit.effects());
            self.commit(unit).await?;
        }
        Ok(self.counts)
    }
}
