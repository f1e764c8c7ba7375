//! The one write path for identity data. A unit of work opens the store's
//! write transaction, lends it to the edge for its mirror write
//! (`Unit::conn`), runs the rules on the changes the edge hands over, holds
//! the events they produce, and on `commit` appends them (numbered per
//! tenant, last, so a tenant's sequence lock is held for the shortest time)
//! and commits: the mirror, the app identity and the events land together
//! or not at all. SCIM writes, pull pages and group listings, run records,
//! host actions and directory removal all go through it; nothing else
//! appends events or commits identity data.

use tracing::instrument;

use super::apply::{self, Batch, Directory, Effects, Options, UserChange};
use super::groups::{self, GroupChange, GroupOutcome, MemberChanges};
use crate::store::events;
use crate::store::{DatabaseTransaction, Store, StoreError, WriteTx};

/// One transaction's worth of identity changes and their events.
pub struct Unit {
    tx: WriteTx,
    fx: Effects,
    /// The tenant whose feed the events go to (one per unit).
    tenant_id: Option<String>,
    now: i64,
}

impl Unit {
    /// Open the store's write transaction; `now` stamps what it writes.
    pub async fn begin(store: &Store, now: i64) -> Result<Unit, StoreError> {
        Ok(Unit {
            tx: store.write().await?,
            fx: Effects::default(),
            tenant_id: None,
            now,
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

    /// The events so far (for counting).
    pub fn effects(&self) -> &Effects {
        &self.fx
    }

    /// The directory and its policy, as this transaction reads them.
    pub async fn directory(&self, id: &str) -> Result<Directory, StoreError> {
        Directory::load(self.conn(), id).await
    }

    fn for_tenant(&mut self, tenant_id: &str) -> Result<(), StoreError> {
        match &self.tenant_id {
            Some(held) if held != tenant_id => Err(StoreError::Invalid(format!(
                "one unit of work writes one tenant's events: {held}, then {tenant_id}"
            ))),
            Some(_) => Ok(()),
            None => {
                self.tenant_id = Some(tenant_id.to_owned());
                Ok(())
            }
        }
    }

    /// The user rules on a set of changes from one directory.
    pub async fn users(
        &mut self,
        dir: &Directory,
        changes: Vec<UserChange>,
        options: Options,
    ) -> Result<Batch, StoreError> {
        self.for_tenant(&dir.tenant_id)?;
        apply::apply_users(
            self.tx.conn(),
            dir,
            changes,
            self.now,
            options,
            &mut self.fx,
        )
        .await
    }

    /// A directory group's snapshot or removal.
    pub async fn group(
        &mut self,
        dir: &Directory,
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
        dir: &Directory,
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
        dir: &Directory,
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
        r#type: &'static str,
        resource_type: &'static str,
        resource_id: &str,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.for_tenant(tenant_id)?;
        self.fx.push(r#type, resource_type, resource_id, data);
        Ok(())
    }

    /// Append the events, then commit. Dropping a unit instead rolls it
    /// back (a dry run, a refusal).
    #[instrument(skip_all, fields(events = self.fx.len()))]
    pub async fn commit(self) -> Result<(), StoreError> {
        if let Some(tenant_id) = &self.tenant_id
            && !self.fx.is_empty()
        {
            events::append(self.tx.conn(), tenant_id, self.fx.into_events(), self.now).await?;
        }
        self.tx.commit().await
    }
}
