//! The one write path for identity data. A unit of work opens the store's
//! write transaction, lends it to the edge for its mirror write
//! (`Unit::conn`), runs the rules on the changes the edge hands over, holds
//! the events they produce, and on `commit` appends them (numbered per
//! tenant, last, so a tenant's sequence lock is held for the shortest time)
//! and commits: the mirror, the app identity and the events land together
//! or not at all. SCIM writes, pull pages and group listings, run records,
//! host actions and directory removal all go through it; nothing else
//! appends events or commits identity data.
//!
//! `Writer` commits concurrent writes together (group commit): the jobs
//! queued while one transaction commits go in the next. One job's refusal
//! undoes only that job: the batch runs again without it, each job in a
//! savepoint of its own. User changes handed over with `user_later` are
//! planned together at the end, one engine pass per directory for the
//! whole batch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tracing::{instrument, warn};

use super::apply::{self, Applied, Batch, Effects, Options, Origin, UserChange};
use super::groups;
use super::model::{Change, EventType, GroupChange, GroupOutcome, MemberChanges};
use crate::store::events::{self, NewEvent};
use crate::store::{self, DatabaseTransaction, Savepoint, Store, StoreError, WriteTx};

/// Engine passes a set of user changes may take when concurrent
/// transactions keep taking its addresses first (each retry sees at least
/// one more of them committed).
const PASSES: u32 = 5;

/// One transaction's worth of identity changes and their events.
pub struct Unit {
    tx: WriteTx,
    now: i64,
    /// The current job's events, and the tenant whose feed they go to (one
    /// per job).
    fx: Effects,
    tenant_id: Option<String>,
    /// The events of the jobs kept so far, with their tenants.
    kept: Vec<(String, NewEvent)>,
    /// Changes planned at commit, in order, with their directories.
    later: Vec<(String, Later)>,
    /// Where the current job's share of `later` starts.
    job_later: usize,
}

impl Unit {
    /// Open the store's write transaction; `now` stamps what it writes.
    pub async fn begin(store: &Store, now: i64) -> Result<Unit, StoreError> {
        Ok(Unit {
            tx: store.write().await?,
            now,
            fx: Effects::default(),
            tenant_id: None,
            kept: Vec::new(),
            later: Vec::new(),
            job_later: 0,
        })
    }

    /// The transaction, for the edge's own rows (the mirror, run records)
    /// and reads.
    pub fn conn(&self) -> &DatabaseTransaction {
        self.tx.conn()
    }

    pub fn now(&self) -> i64 {
        self.now
    }

    /// The current job's events so far (for counting).
    pub fn effects(&self) -> &Effects {
        &self.fx
    }

    /// The directory and its policy, as this transaction reads them.
    pub async fn directory(&self, id: &str) -> Result<Origin, StoreError> {
        Origin::load(self.conn(), id).await
    }

    fn for_tenant(&mut self, tenant_id: &str) -> Result<(), StoreError> {
        match &self.tenant_id {
            Some(held) if held != tenant_id => Err(StoreError::Invalid(format!(
                "one job writes one tenant's events: {held}, then {tenant_id}"
            ))),
            Some(_) => Ok(()),
            None => {
                self.tenant_id = Some(tenant_id.to_owned());
                Ok(())
            }
        }
    }

    /// The user rules on a set of changes from one directory, now.
    ///
    /// On PostgreSQL another transaction may take an address between this
    /// pass's read and its write (two directory users with one email
    /// created at once): the unique index refuses the second insert once
    /// the first commits. The pass is then undone to its savepoint and
    /// planned again on what is committed now, which is what the rules
    /// give when the two arrive one after the other (docs/reconciliation.md,
    /// rules 1 and 5: the later one links to, defers to, or conflicts with
    /// the user the first made), never a refusal of the write.
    pub async fn users(
        &mut self,
        dir: &Origin,
        changes: Vec<UserChange>,
        options: Options,
    ) -> Result<Batch, StoreError> {
        self.for_tenant(&dir.tenant_id)?;
        if self.tx.is_alone() || options.dry_run {
            return Box::pin(apply::apply_users(
                self.tx.conn(),
                dir,
                changes,
                self.now,
                options,
                &mut self.fx,
            ))
            .await;
        }
        let mut passes = 1;
        loop {
            let events = self.fx.len();
            store::savepoint(self.conn(), Savepoint::Pass).await?;
            // Boxed: the engine's future is large, and a pass inside a
            // listing inside a run would otherwise sit on the task's stack.
            let result = Box::pin(apply::apply_users(
                self.tx.conn(),
                dir,
                changes.clone(),
                self.now,
                options,
                &mut self.fx,
            ))
            .await;
            match result {
                Ok(batch) => {
                    store::release(self.conn(), Savepoint::Pass).await?;
                    return Ok(batch);
                }
                Err(StoreError::Conflict(why)) if passes < PASSES => {
                    tracing::info!(passes, %why, "an address was taken meanwhile: planning the pass again");
                    store::rollback_to(self.conn(), Savepoint::Pass).await?;
                    self.fx.truncate(events);
                    passes += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// A user change planned at commit, with the other changes of the unit
    /// from the same directory (one engine pass for a batch, a pass more
    /// for each user that comes again).
    pub fn user_later(&mut self, directory_id: &str, change: UserChange) {
        self.later
            .push((directory_id.to_owned(), Later::User(change)));
    }

    /// A directory group's snapshot or removal and its member changes,
    /// planned at commit in its place among the unit's other changes (after
    /// the user changes handed over before it).
    pub fn group_later(
        &mut self,
        directory_id: &str,
        source_id: &str,
        change: GroupChange,
        members: MemberChanges,
    ) {
        let group = Later::Group {
            source_id: source_id.to_owned(),
            change,
            members,
        };
        self.later.push((directory_id.to_owned(), group));
    }

    /// Member changes of a directory group, planned at commit in their place.
    pub fn members_later(
        &mut self,
        directory_id: &str,
        group_source_id: &str,
        members: MemberChanges,
    ) {
        let step = Later::Members {
            group_source_id: group_source_id.to_owned(),
            members,
        };
        self.later.push((directory_id.to_owned(), step));
    }

    /// A directory group's snapshot or removal.
    pub async fn group(
        &mut self,
        dir: &Origin,
        source_id: &str,
        change: GroupChange,
    ) -> Result<GroupOutcome, StoreError> {
        self.for_tenant(&dir.tenant_id)?;
        groups::apply_group(
            self.tx.conn(),
            dir,
            source_id,
            change,
            self.now,
            &mut self.fx,
        )
        .await
    }

    /// Members added to and removed from a directory group.
    pub async fn members(
        &mut self,
        dir: &Origin,
        group_source_id: &str,
        changes: &MemberChanges,
    ) -> Result<(), StoreError> {
        self.for_tenant(&dir.tenant_id)?;
        groups::apply_members(
            self.tx.conn(),
            dir,
            group_source_id,
            changes,
            self.now,
            &mut self.fx,
        )
        .await
    }

    /// A directory group's complete member list (a pull's listing).
    pub async fn replace_members(
        &mut self,
        dir: &Origin,
        group_source_id: &str,
        members: &[String],
    ) -> Result<(), StoreError> {
        self.for_tenant(&dir.tenant_id)?;
        groups::replace_members(
            self.tx.conn(),
            dir,
            group_source_id,
            members,
            self.now,
            &mut self.fx,
        )
        .await
    }

    /// An event of the caller's own making (a host action, a run's end, a
    /// directory's removal), for a tenant's feed.
    pub fn event(
        &mut self,
        tenant_id: &str,
        r#type: EventType,
        resource_type: &'static str,
        resource_id: &str,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.for_tenant(tenant_id)?;
        self.fx.push(r#type, resource_type, resource_id, data);
        Ok(())
    }

    /// The current job's events join the kept ones.
    fn keep_job(&mut self) {
        let fx = std::mem::take(&mut self.fx).into_events();
        if let Some(tenant_id) = self.tenant_id.take() {
            self.kept
                .extend(fx.into_iter().map(|e| (tenant_id.clone(), e)));
        }
        self.job_later = self.later.len();
    }

    /// Start a job that `end_job` keeps or undoes alone.
    async fn begin_job(&mut self) -> Result<(), StoreError> {
        self.keep_job();
        store::savepoint(self.conn(), Savepoint::Job).await
    }

    async fn end_job(&mut self, keep: bool) -> Result<(), StoreError> {
        if keep {
            store::release(self.conn(), Savepoint::Job).await?;
            self.keep_job();
        } else {
            store::rollback_to(self.conn(), Savepoint::Job).await?;
            self.fx = Effects::default();
            self.tenant_id = None;
            self.later.truncate(self.job_later);
        }
        Ok(())
    }

    /// Plan the changes handed over for later, append the events (each
    /// tenant's in the order they came, tenants in a fixed order so two
    /// units never wait on each other's counters), then commit. What the
    /// later changes came to is returned. Dropping a unit instead rolls it
    /// back (a dry run, a refusal).
    #[instrument(skip_all, fields(later = self.later.len()))]
    pub async fn commit(mut self) -> Result<Vec<Applied>, StoreError> {
        self.keep_job();
        let mut applied = Vec::new();
        let mut dirs: HashMap<String, Origin> = HashMap::new();
        let mut users = Vec::new();
        for (directory_id, step) in std::mem::take(&mut self.later) {
            let step = match step {
                Later::User(change) => {
                    users.push((directory_id, change));
                    continue;
                }
                // What came before a group's step applies first.
                step => step,
            };
            self.users_in_waves(std::mem::take(&mut users), &mut dirs, &mut applied)
                .await?;
            let dir = self.cached(&mut dirs, &directory_id).await?;
            match step {
                Later::Group {
                    source_id,
                    change,
                    members,
                } => {
                    self.group(&dir, &source_id, change).await?;
                    if !members.added.is_empty() || !members.removed.is_empty() {
                        self.members(&dir, &source_id, &members).await?;
                    }
                }
                Later::Members {
                    group_source_id,
                    members,
                } => self.members(&dir, &group_source_id, &members).await?,
                Later::User(_) => {}
            }
            self.keep_job();
        }
        self.users_in_waves(users, &mut dirs, &mut applied).await?;
        let mut by_tenant: BTreeMap<String, Vec<NewEvent>> = BTreeMap::new();
        for (tenant_id, event) in std::mem::take(&mut self.kept) {
            by_tenant.entry(tenant_id).or_default().push(event);
        }
        for (tenant_id, events) in by_tenant {
            events::append(self.tx.conn(), &tenant_id, events, self.now).await?;
        }
        self.tx.commit().await?;
        Ok(applied)
    }
}

/// A change planned when its unit commits.
enum Later {
    User(UserChange),
    Group {
        source_id: String,
        change: GroupChange,
        members: MemberChanges,
    },
    Members {
        group_source_id: String,
        members: MemberChanges,
    },
}

impl Unit {
    async fn cached(
        &self,
        dirs: &mut HashMap<String, Origin>,
        id: &str,
    ) -> Result<Origin, StoreError> {
        if let Some(dir) = dirs.get(id) {
            return Ok(dir.clone());
        }
        let dir = self.directory(id).await?;
        dirs.insert(id.to_owned(), dir.clone());
        Ok(dir)
    }

    /// User changes in as few engine passes as `waves` allows.
    async fn users_in_waves(
        &mut self,
        users: Vec<(String, UserChange)>,
        dirs: &mut HashMap<String, Origin>,
        applied: &mut Vec<Applied>,
    ) -> Result<(), StoreError> {
        for (directory_id, changes) in waves(users) {
            let dir = self.cached(dirs, &directory_id).await?;
            let batch = self.users(&dir, changes, Options::default()).await?;
            applied.extend(batch.applied);
            self.keep_job();
        }
        Ok(())
    }
}

/// The later user changes in engine passes: per directory, in order, a
/// new pass where a user comes again, so each user's changes apply one
/// after the other, as they would one write at a time (the same events),
/// and everything else in as few passes as that allows. A change asking
/// for an address another change of the open pass asks for starts a new
/// pass too: one pass judges its changes together, and two users of one
/// set asking for one address both wait (rule 5), while one write at a
/// time gives it to the first and defers the second.
fn waves(later: Vec<(String, UserChange)>) -> Vec<(String, Vec<UserChange>)> {
    struct Pass {
        directory_id: String,
        changes: Vec<UserChange>,
        users: HashSet<String>,
        addresses: HashSet<String>,
    }
    let mut done = Vec::new();
    let mut open: Vec<Pass> = Vec::new();
    for (directory_id, change) in later {
        let address = match &change.change {
            Change::Upsert(s) => s.email.clone(),
            _ => None,
        };
        let at = match open.iter().position(|p| p.directory_id == directory_id) {
            Some(at)
                if open[at].users.contains(&change.source_id)
                    || address
                        .as_ref()
                        .is_some_and(|a| open[at].addresses.contains(a)) =>
            {
                let pass = open.remove(at);
                done.push((pass.directory_id, pass.changes));
                None
            }
            found => found,
        };
        let at = at.unwrap_or_else(|| {
            open.push(Pass {
                directory_id,
                changes: Vec::new(),
                users: HashSet::new(),
                addresses: HashSet::new(),
            });
            open.len() - 1
        });
        let pass = &mut open[at];
        pass.users.insert(change.source_id.clone());
        pass.addresses.extend(address);
        pass.changes.push(change);
    }
    done.extend(open.into_iter().map(|p| (p.directory_id, p.changes)));
    done
}

/// What a job hands back: whether to keep what it wrote, and what to do
/// once the transaction's fate is known (answer its request).
struct Done {
    keep: bool,
    reply: Reply,
}

/// Told how the transaction ended: what its later user changes came to, or
/// why it did not commit.
type Reply = Box<dyn FnOnce(Result<&[Applied], &StoreError>) + Send>;

/// One write of a request: runs on the batch's unit; again, from the
/// start, in a new transaction, when another job of its batch was refused.
type Job = Box<dyn for<'a> Fn(&'a mut Unit) -> BoxFuture<'a, Done> + Send + Sync>;

/// Group commit: writes queued while a transaction commits go together in
/// the next one, at most `max` of them, in arrival order. Cloned, it is the
/// same queue.
#[derive(Clone)]
pub struct Writer {
    store: Store,
    queue: Option<mpsc::UnboundedSender<Job>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("batched", &self.queue.is_some())
            .finish()
    }
}

impl Writer {
    /// A writer batching up to `max` writes per transaction (1: each in a
    /// transaction of its own, on the caller's task). Spawns its task on
    /// the current Tokio runtime when `max` > 1.
    pub fn new(store: Store, max: usize) -> Writer {
        if max <= 1 {
            return Writer { store, queue: None };
        }
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(run(store.clone(), jobs, max));
        Writer {
            store,
            queue: Some(queue),
        }
    }

    /// Run `write` in a unit of work with other writes and answer once the
    /// transaction ended: its value and what the user changes it handed
    /// over for later came to, or its error, or the commit's. An error
    /// undoes what `write` wrote, and only that. `write` may run more than
    /// once (a neighbour's refusal reruns the batch without it); only the
    /// run that commits answers.
    pub async fn write<T, E, F>(&self, write: F) -> Result<(T, Vec<Applied>), E>
    where
        F: for<'a> Fn(&'a mut Unit) -> BoxFuture<'a, Result<T, E>> + Send + Sync + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let answer = Arc::new(Mutex::new(Some(answer)));
        let write = Arc::new(write);
        let job: Job = Box::new(move |unit: &mut Unit| {
            let (write, answer) = (write.clone(), answer.clone());
            Box::pin(async move {
                let from = unit.later.len();
                let result = AssertUnwindSafe(write(unit)).catch_unwind().await;
                let result = match result {
                    Ok(result) => result,
                    Err(_) => Err(E::from(StoreError::Invalid("a write panicked".into()))),
                };
                let mine: Vec<String> = unit.later[from.min(unit.later.len())..]
                    .iter()
                    .filter_map(|(_, step)| match step {
                        Later::User(change) => Some(change.source_id.clone()),
                        _ => None,
                    })
                    .collect();
                let keep = result.is_ok();
                let reply: Reply = Box::new(move |ended| {
                    let out = match (result, ended) {
                        (Err(err), _) => Err(err),
                        (Ok(value), Ok(applied)) => Ok((
                            value,
                            applied
                                .iter()
                                .filter(|a| mine.contains(&a.source_id))
                                .cloned()
                                .collect(),
                        )),
                        (Ok(_), Err(err)) => Err(E::from(err.again())),
                    };
                    let answer = answer.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(answer) = answer {
                        let _ = answer.send(out);
                    }
                });
                Done { keep, reply }
            })
        });
        match &self.queue {
            None => one(&self.store, vec![job]).await,
            Some(queue) => {
                if queue.send(job).is_err() {
                    warn!("the group-commit writer has stopped");
                }
            }
        }
        // A write the writer could not start is dropped with its answer.
        answered
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Busy)))
    }
}

/// The writer's task: take what is queued, up to `max`, and commit it as one.
async fn run(store: Store, mut jobs: mpsc::UnboundedReceiver<Job>, max: usize) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < max {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        one(&store, batch).await;
    }
}

/// Run `batch` in one unit, commit, and reply to each. The first pass
/// sets no savepoints (each costs two statements per job, and refusals are
/// rare): when a job is refused, its refusal is answered, the transaction
/// rolled back, and the rest run again in a new one, each job in a
/// savepoint of its own from then on.
async fn one(store: &Store, mut batch: Vec<Job>) {
    let mut careful = false;
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let mut unit = match Unit::begin(store, now).await {
            Ok(unit) => unit,
            Err(err) => {
                warn!(error = %err, writes = batch.len(), "a write transaction could not begin");
                return;
            }
        };
        let savepoints = careful && batch.len() > 1;
        let mut replies = Vec::with_capacity(batch.len());
        let mut refused = None;
        for (i, job) in batch.iter().enumerate() {
            if savepoints && let Err(err) = unit.begin_job().await {
                warn!(error = %err, "a savepoint could not be set");
                return;
            }
            let Done { keep, reply } = job(&mut unit).await;
            if savepoints {
                if let Err(err) = unit.end_job(keep).await {
                    warn!(error = %err, "a savepoint could not be ended");
                    reply(Err(&err));
                    return;
                }
            } else if !keep {
                // Its refusal stands (its predecessors run again the same
                // way); the rest go again without what it wrote.
                reply(Ok(&[]));
                refused = Some(i);
                break;
            } else {
                unit.keep_job();
            }
            if keep {
                replies.push(reply);
            } else {
                reply(Ok(&[]));
            }
        }
        if let Some(i) = refused {
            drop(unit);
            drop(replies);
            drop(batch.remove(i));
            if batch.is_empty() {
                return;
            }
            careful = true;
            continue;
        }
        let result = unit.commit().await;
        let result = result.as_deref();
        for reply in replies {
            reply(result);
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(directory: &str, user: &str) -> (String, UserChange) {
        let change = UserChange {
            source_id: user.to_owned(),
            change: Change::Removed,
        };
        (directory.to_owned(), change)
    }

    fn shape(waves: &[(String, Vec<UserChange>)]) -> Vec<(String, Vec<String>)> {
        waves
            .iter()
            .map(|(d, c)| (d.clone(), c.iter().map(|c| c.source_id.clone()).collect()))
            .collect()
    }

    #[test]
    fn a_user_that_comes_again_starts_a_new_pass_of_its_directory_only() {
        let later = vec![
            change("d1", "a"),
            change("d2", "x"),
            change("d1", "b"),
            change("d1", "a"),
            change("d2", "y"),
            change("d1", "c"),
        ];
        let got = shape(&waves(later));
        let own = |d: &str, u: &[&str]| (d.to_owned(), u.iter().map(|u| u.to_string()).collect());
        assert_eq!(
            got,
            vec![
                own("d1", &["a", "b"]),
                own("d2", &["x", "y"]),
                own("d1", &["a", "c"])
            ]
        );
        assert!(waves(Vec::new()).is_empty());
    }

    #[test]
    fn a_user_asking_for_an_address_the_open_pass_asks_for_starts_a_new_pass() {
        let asks = |user: &str, email: &str| {
            let snapshot = crate::reconcile::model::Snapshot {
                email: Some(email.to_owned()),
                ..Default::default()
            };
            let change = UserChange {
                source_id: user.to_owned(),
                change: Change::upsert(snapshot),
            };
            ("d1".to_owned(), change)
        };
        let later = vec![
            asks("a", "shared@example.com"),
            asks("b", "own@example.com"),
            asks("c", "shared@example.com"),
            asks("d", "other@example.com"),
        ];
        let own = |u: &[&str]| ("d1".to_owned(), u.iter().map(|u| u.to_string()).collect());
        assert_eq!(
            shape(&waves(later)),
            vec![own(&["a", "b"]), own(&["c", "d"])]
        );
    }
}
