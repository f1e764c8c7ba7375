//! Connections and runs of the pull side, and the row lease that lets one
//! replica at a time run a connection: taken by one conditional UPDATE (the
//! lease is free, expired, or already ours), so two replicas racing for it on
//! PostgreSQL cannot both win, and a process that died loses it on expiry
//! (a live run renews it by a heartbeat, `pull::run`).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use tracing::instrument;

use super::entities::{connections, sync_runs};
use super::{Conn, Result, Store, StoreError};
use crate::domain::run::RunStatus;

pub use connections::Model as Connection;
pub use sync_runs::Model as Run;

impl Store {
    #[instrument(skip_all, fields(directory_id = %connection.directory_id))]
    pub async fn insert_connection(&self, connection: Connection) -> Result<Connection> {
        let model: connections::ActiveModel = connection.into();
        Ok(model.insert(self.connection()).await?)
    }

    /// A pull directory and its connection, together or not at all.
    #[instrument(skip_all, fields(tenant_id = %directory.tenant_id, name = %directory.name))]
    pub async fn create_pull_directory(
        &self,
        directory: super::tenants::Directory,
        connection: Connection,
    ) -> Result<(super::tenants::Directory, Connection)> {
        let tx = self.write().await?;
        let directory: super::entities::directories::ActiveModel = directory.into();
        let directory = directory.insert(tx.conn()).await?;
        let connection: connections::ActiveModel = connection.into();
        let connection = connection.insert(tx.conn()).await?;
        tx.commit().await?;
        Ok((directory, connection))
    }

    pub async fn connection_of(&self, directory_id: &str) -> Result<Connection> {
        connections::Entity::find()
            .filter(connections::Column::DirectoryId.eq(directory_id))
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Every connection (key rotation, the scheduler's view).
    pub async fn connections(&self) -> Result<Vec<Connection>> {
        Ok(connections::Entity::find()
            .order_by_asc(connections::Column::Id)
            .all(self.connection())
            .await?)
    }

    /// Delete a directory's connection unless a run holds its lease
    /// (`delete_idle_connection`): false when one does.
    #[instrument(skip(self))]
    pub async fn delete_connection(&self, directory_id: &str, now: i64) -> Result<bool> {
        delete_idle_connection(self.connection(), directory_id, now).await
    }

    pub async fn set_next_run(&self, id: &str, at: Option<i64>) -> Result<()> {
        set_next_run(self.connection(), id, at).await
    }

    /// Connections whose scheduled run is due and whose lease is free.
    pub async fn due_connections(&self, now: i64, limit: u64) -> Result<Vec<Connection>> {
        Ok(connections::Entity::find()
            .filter(connections::Column::NextRunAt.lte(now))
            .filter(lease_free(now))
            .order_by_asc(connections::Column::NextRunAt)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// Take (or renew) the connection's lease until `now + ttl_ms`: true
    /// when `owner` holds it now.
    #[instrument(skip(self))]
    pub async fn take_lease(&self, id: &str, owner: &str, now: i64, ttl_ms: i64) -> Result<bool> {
        let done = connections::Entity::update_many()
            .col_expr(connections::Column::LeaseOwner, Expr::value(owner))
            .col_expr(
                connections::Column::LeaseExpiresAt,
                Expr::value(now + ttl_ms),
            )
            .filter(connections::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(lease_free(now))
                    .add(connections::Column::LeaseOwner.eq(owner)),
            )
            .exec(self.connection())
            .await?;
        Ok(done.rows_affected == 1)
    }

    /// Give the lease back (only if `owner` still holds it).
    pub async fn release_lease(&self, id: &str, owner: &str) -> Result<()> {
        release_lease(self.connection(), id, owner).await
    }

    pub async fn insert_run(&self, run: Run) -> Result<Run> {
        let model: sync_runs::ActiveModel = run.into();
        Ok(model.insert(self.connection()).await?)
    }

    pub async fn run(&self, id: &str) -> Result<Run> {
        sync_runs::Entity::find_by_id(id.to_owned())
            .one(self.connection())
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A directory's runs, newest first.
    pub async fn runs_of(&self, directory_id: &str, limit: u64) -> Result<Vec<Run>> {
        Ok(sync_runs::Entity::find()
            .filter(sync_runs::Column::DirectoryId.eq(directory_id))
            .order_by_desc(sync_runs::Column::StartedAt)
            .order_by_desc(sync_runs::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?)
    }
}

/// Write a connection's changed columns (settings, scope, schedule,
/// sealed credentials) as a whole row.
#[instrument(skip_all, fields(id = %connection.id))]
pub async fn save_connection<C: Conn>(conn: &C, connection: Connection) -> Result<()> {
    connection
        .into_active_model()
        .reset_all()
        .update(conn)
        .await?;
    Ok(())
}

/// A connection's changed definition (`admin::connections::update`).
#[derive(Debug, Clone)]
pub struct NewDefinition {
    pub settings: serde_json::Value,
    pub scope: serde_json::Value,
    pub schedule: serde_json::Value,
    /// New sealed credentials; None leaves the stored ones (a key rotation
    /// may have re-sealed them since they were read).
    pub secret_sealed: Option<String>,
    /// Forget the incremental cursor: the next run is full.
    pub reset_cursor: bool,
    pub next_run_at: Option<i64>,
}

/// Write a connection's new definition, only while no run holds its lease
/// (the same condition `take_lease` takes it on, in one UPDATE, so a run
/// cannot start half-way): false when one does.
#[instrument(skip_all, fields(id = %id))]
pub async fn save_definition<C: Conn>(
    conn: &C,
    id: &str,
    definition: &NewDefinition,
    now: i64,
) -> Result<bool> {
    let mut update = connections::Entity::update_many()
        .col_expr(
            connections::Column::Settings,
            Expr::value(definition.settings.clone()),
        )
        .col_expr(
            connections::Column::Scope,
            Expr::value(definition.scope.clone()),
        )
        .col_expr(
            connections::Column::Schedule,
            Expr::value(definition.schedule.clone()),
        )
        .col_expr(
            connections::Column::NextRunAt,
            Expr::value(definition.next_run_at),
        )
        .col_expr(connections::Column::UpdatedAt, Expr::value(now));
    if let Some(sealed) = &definition.secret_sealed {
        update = update.col_expr(connections::Column::SecretSealed, Expr::value(sealed));
    }
    if definition.reset_cursor {
        update = update.col_expr(
            connections::Column::Cursor,
            Expr::value(Option::<String>::None),
        );
    }
    let done = update
        .filter(connections::Column::Id.eq(id))
        .filter(lease_free(now))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Delete a directory's connection unless a run holds its lease: false when
/// one does (and the connection stays). True when there is none.
pub async fn delete_idle_connection<C: Conn>(
    conn: &C,
    directory_id: &str,
    now: i64,
) -> Result<bool> {
    connections::Entity::delete_many()
        .filter(connections::Column::DirectoryId.eq(directory_id))
        .filter(lease_free(now))
        .exec(conn)
        .await?;
    // What the delete left is a connection a run holds.
    let left = connections::Entity::find()
        .filter(connections::Column::DirectoryId.eq(directory_id))
        .one(conn)
        .await?;
    Ok(left.is_none())
}

pub async fn set_next_run<C: Conn>(conn: &C, id: &str, at: Option<i64>) -> Result<()> {
    connections::Entity::update_many()
        .col_expr(connections::Column::NextRunAt, Expr::value(at))
        .filter(connections::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Extend the lease `owner` holds until `now + ttl_ms` (a run's heartbeat,
/// and its final record): false when it no longer holds it (another
/// worker took it after it lapsed, or it was given back).
pub async fn renew_lease<C: Conn>(
    conn: &C,
    id: &str,
    owner: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<bool> {
    let done = connections::Entity::update_many()
        .col_expr(
            connections::Column::LeaseExpiresAt,
            Expr::value(now + ttl_ms),
        )
        .filter(connections::Column::Id.eq(id))
        .filter(connections::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// A connection's runs still marked running.
pub async fn running_runs<C: Conn>(conn: &C, connection: &Connection) -> Result<Vec<Run>> {
    Ok(sync_runs::Entity::find()
        // The directory first: its index holds a directory's runs.
        .filter(sync_runs::Column::DirectoryId.eq(&connection.directory_id))
        .filter(sync_runs::Column::ConnectionId.eq(&connection.id))
        .filter(sync_runs::Column::Status.eq(RunStatus::Running.as_str()))
        .order_by_asc(sync_runs::Column::Id)
        .all(conn)
        .await?)
}

/// Mark a running run failed now, with `errors`, keeping the counts it
/// showed: the run as it now stands, or None when it was no longer
/// running.
pub async fn fail_run<C: Conn>(
    conn: &C,
    run_id: &str,
    now: i64,
    errors: serde_json::Value,
) -> Result<Option<Run>> {
    let done = sync_runs::Entity::update_many()
        .col_expr(
            sync_runs::Column::Status,
            Expr::value(RunStatus::Failed.as_str()),
        )
        .col_expr(sync_runs::Column::FinishedAt, Expr::value(now))
        .col_expr(sync_runs::Column::Errors, Expr::value(errors))
        .filter(sync_runs::Column::Id.eq(run_id))
        .filter(sync_runs::Column::Status.eq(RunStatus::Running.as_str()))
        .exec(conn)
        .await?;
    if done.rows_affected != 1 {
        return Ok(None);
    }
    Ok(sync_runs::Entity::find_by_id(run_id.to_owned())
        .one(conn)
        .await?)
}

/// Connections whose lease lapsed without being given back: the process
/// that held it died (a run gives its lease back with its record).
pub async fn lapsed_connections<C: Conn>(conn: &C, now: i64) -> Result<Vec<Connection>> {
    Ok(connections::Entity::find()
        .filter(connections::Column::LeaseOwner.is_not_null())
        .filter(connections::Column::LeaseExpiresAt.lt(now))
        .order_by_asc(connections::Column::Id)
        .all(conn)
        .await?)
}

/// Give the lease back (only if `owner` still holds it).
pub async fn release_lease<C: Conn>(conn: &C, id: &str, owner: &str) -> Result<()> {
    connections::Entity::update_many()
        .col_expr(
            connections::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            connections::Column::LeaseExpiresAt,
            Expr::value(Option::<i64>::None),
        )
        .filter(connections::Column::Id.eq(id))
        .filter(connections::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(())
}

/// Write a run's row as it now stands.
pub async fn save_run<C: Conn>(conn: &C, run: Run) -> Result<()> {
    run.into_active_model().reset_all().update(conn).await?;
    Ok(())
}

/// A running run's counts so far, in the shape of its final counts
/// (`{"users": {...}, "groups": {...}}`), written in the transaction of the
/// page that made them; nothing once the run has its final record.
pub async fn save_progress<C: Conn>(
    conn: &C,
    run_id: &str,
    counts: serde_json::Value,
) -> Result<()> {
    sync_runs::Entity::update_many()
        .col_expr(sync_runs::Column::Counts, Expr::value(counts))
        .filter(sync_runs::Column::Id.eq(run_id))
        .filter(sync_runs::Column::Status.eq(RunStatus::Running.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Record the run that carried out `stopped` (a run the guard stopped),
/// unless one already did.
pub async fn set_approved_by<C: Conn>(conn: &C, stopped: &str, by: &str) -> Result<()> {
    sync_runs::Entity::update_many()
        .col_expr(sync_runs::Column::ApprovedByRunId, Expr::value(by))
        .filter(sync_runs::Column::Id.eq(stopped))
        .filter(sync_runs::Column::ApprovedByRunId.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// The users a run the guard stopped would have deactivated, with why
/// (`missing` or `directory`), in statements of at most `CHUNK` rows.
pub async fn save_held_back<C: Conn>(
    conn: &C,
    run_id: &str,
    users: &[(String, &'static str)],
) -> Result<()> {
    use super::entities::run_deactivations;
    const CHUNK: usize = 300;
    for users in users.chunks(CHUNK) {
        let chunk = users
            .iter()
            .map(|(user_id, reason)| run_deactivations::ActiveModel {
                run_id: sea_orm::Set(run_id.to_owned()),
                user_id: sea_orm::Set(user_id.clone()),
                reason: sea_orm::Set((*reason).to_owned()),
            });
        run_deactivations::Entity::insert_many(chunk)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    run_deactivations::Column::RunId,
                    run_deactivations::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Where the next incremental run starts (None: the next run is full),
/// written only while `owner` holds the lease: false when it does not.
pub async fn set_cursor<C: Conn>(
    conn: &C,
    id: &str,
    owner: &str,
    cursor: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = connections::Entity::update_many()
        .col_expr(
            connections::Column::Cursor,
            Expr::value(cursor.map(str::to_owned)),
        )
        .col_expr(connections::Column::UpdatedAt, Expr::value(now))
        .filter(connections::Column::Id.eq(id))
        .filter(connections::Column::LeaseOwner.eq(owner))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Make the next run of a directory's connection a full listing (its
/// attribute mapping changed: every user is read again). A run holding the
/// lease writes its own cursor when it ends; `pull::run` drops that one
/// too when the mapping changed under it.
pub async fn forget_cursor<C: Conn>(conn: &C, directory_id: &str, now: i64) -> Result<()> {
    connections::Entity::update_many()
        .col_expr(
            connections::Column::Cursor,
            Expr::value(Option::<String>::None),
        )
        .col_expr(connections::Column::UpdatedAt, Expr::value(now))
        .filter(connections::Column::DirectoryId.eq(directory_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Replace a connection's sealed credentials, only if they are still
/// `was` (key rotation touches no other column: not the lease, not the
/// cursor a run may be writing). False when they changed meanwhile.
pub async fn reseal<C: Conn>(
    conn: &C,
    id: &str,
    was: &str,
    sealed: &str,
    now: i64,
) -> Result<bool> {
    let done = connections::Entity::update_many()
        .col_expr(connections::Column::SecretSealed, Expr::value(sealed))
        .col_expr(connections::Column::UpdatedAt, Expr::value(now))
        .filter(connections::Column::Id.eq(id))
        .filter(connections::Column::SecretSealed.eq(was))
        .exec(conn)
        .await?;
    Ok(done.rows_affected == 1)
}

fn lease_free(now: i64) -> Condition {
    Condition::any()
        .add(connections::Column::LeaseOwner.is_null())
        .add(connections::Column::LeaseExpiresAt.lt(now))
}
