//! Persistence: sea-orm entities and queries. The only module that imports
//! `sea_orm` or builds SQL; SCIM filters arrive as `domain::filter::Filter` and
//! become SQL conditions in `mirror/filter.rs`, never an in-memory scan. Imports
//! neither `scim`, `reconcile` nor `pull`, which call it.

pub mod app;
pub mod entities;
pub mod events;
pub mod folds;
pub mod mirror;
pub mod operators;
pub mod pages;
pub mod pull;
mod rows;
pub mod scim_requests;
pub mod setup_links;
pub mod tenants;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, SqlErr};
use tracing::instrument;

pub use sea_orm::{DatabaseTransaction, TransactionTrait};

/// Anything queries run on: the pool or a transaction. Lets the layers above
/// pass connections along without importing sea_orm.
pub trait Conn: sea_orm::ConnectionTrait {}
impl<T: sea_orm::ConnectionTrait> Conn for T {}

/// A handle on the database: cheap to clone, shared by every request.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite has one writer. A deferred transaction that reads and then writes
    /// fails with SQLITE_BUSY_SNAPSHOT (no busy wait) if another writer commits
    /// in between, so write transactions queue here instead. None on PostgreSQL.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Counts this process's committed write transactions, so a long-poll
    /// of the event feed wakes the moment one commits (other replicas'
    /// commits are seen by polling).
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    /// Where the SCIM request log lives (`scim_requests`): on SQLite a file
    /// of its own beside the database's, with its own writer lock, so the
    /// log's writes never queue with the directories'; on PostgreSQL the
    /// same database (with commits of its own, which wake no event
    /// long-poll). None in the log's own handle.
    scim_log: Option<Arc<Store>>,
}

/// A write transaction: commit it, or drop it to roll back.
pub struct WriteTx {
    txn: DatabaseTransaction,
    guard: Option<OwnedMutexGuard<()>>,
    commits: Arc<tokio::sync::watch::Sender<u64>>,
}

impl WriteTx {
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Whether no other write transaction can run beside this one (SQLite,
    /// behind the process's writer lock): nothing it reads can change
    /// before it commits.
    pub fn is_alone(&self) -> bool {
        self.guard.is_some()
    }

    pub async fn commit(self) -> Result<()> {
        self.txn.commit().await?;
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique index refused the write (duplicate userName, displayName, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A conditional update found another version: a concurrent writer won.
    #[error("version mismatch")]
    VersionMismatch,
    /// The database gave up on this transaction for a concurrent one
    /// (deadlock, serialization failure); the client should retry.
    #[error("busy: retry")]
    Busy,
    /// Stored data that does not parse (a policy written by hand, say).
    #[error("invalid stored data: {0}")]
    Invalid(String),
    #[error("database: {0}")]
    Database(DbErr),
}

impl StoreError {
    /// The same error again, for a second party (a batch's commit failed
    /// for every write in it).
    pub fn again(&self) -> StoreError {
        match self {
            StoreError::NotFound => StoreError::NotFound,
            StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
            StoreError::VersionMismatch => StoreError::VersionMismatch,
            StoreError::Busy => StoreError::Busy,
            StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
            StoreError::Database(e) => StoreError::Database(DbErr::Custom(e.to_string())),
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) => StoreError::Conflict(msg),
            // PostgreSQL aborted this transaction to let a concurrent one
            // through (SQLSTATE 40P01 / 40001): retrying it will succeed.
            _ if is_transient(&err) => StoreError::Busy,
            _ => match err {
                DbErr::RecordNotFound(_) => StoreError::NotFound,
                other => StoreError::Database(other),
            },
        }
    }
}

fn is_transient(err: &DbErr) -> bool {
    let text = err.to_string();
    [
        "40P01",
        "40001",
        "deadlock detected",
        "could not serialize access",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why the database cannot serve this build (`Store::ready`).
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// The trivial query failed: no connection, or the database refuses.
    #[error("the database does not answer: {0}")]
    Database(StoreError),
    /// The migration table could not be read, or records a migration this
    /// build does not know.
    #[error("the migration status cannot be read: {0}")]
    Migrations(StoreError),
    /// Migrations this build knows that the database has not applied.
    #[error("migrations not applied: {}", .0.join(", "))]
    Pending(Vec<String>),
}

impl Store {
    /// Connect by URL: `sqlite://FILE?mode=rwc` or `postgres://…`.
    #[instrument(skip_all)]
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let mut store = Store::open(url, max_connections, File::Database).await?;
        let log = match store.backend() {
            DbBackend::Sqlite => Store::open(url, max_connections, File::ScimLog).await?,
            _ => Store {
                db: store.db.clone(),
                write_lock: None,
                commits: Arc::new(tokio::sync::watch::channel(0).0),
                scim_log: None,
            },
        };
        store.scim_log = Some(Arc::new(log));
        Ok(store)
    }

    /// One pool on `url`; on SQLite, on the database's file or its SCIM
    /// request log's.
    async fn open(url: &str, max_connections: u32, file: File) -> Result<Store> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(move |opts| {
                // WAL lets readers run beside the one writer; NORMAL sync is durable
                // across application crashes in WAL mode (sqlite.org/wal.html).
                let opts = opts
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(30))
                    .create_if_missing(true);
                match file {
                    File::Database => opts,
                    File::ScimLog => {
                        let log = scim_log_file(opts.get_filename());
                        opts.filename(log)
                    }
                }
            })
            .map_sqlx_postgres_opts(|opts| {
                // sqlx prepares and caches every statement per connection.
                // PostgreSQL then switches to a generic plan after five runs,
                // costed with the statistics of that moment: planned on a
                // near-empty table it stays a sequential scan as the table
                // grows (a 15,000-user import ran at 1,600 users/s). Custom
                // plans see the real parameters every time.
                opts.options([("plan_cache_mode", "force_custom_plan")])
            });
        let db = Database::connect(options).await?;
        let write_lock =
            (db.get_database_backend() == DbBackend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Store {
            db,
            write_lock,
            commits: Arc::new(tokio::sync::watch::channel(0).0),
            scim_log: None,
        })
    }

    /// Where the SCIM request log is read and written (`scim_requests`).
    pub fn scim_log(&self) -> &Store {
        self.scim_log.as_deref().unwrap_or(self)
    }

    /// Whether the SCIM request log is a database of its own (SQLite).
    pub fn has_log_file(&self) -> bool {
        self.scim_log.is_some() && self.backend() == DbBackend::Sqlite
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Apply every pending migration.
    pub async fn migrate(&self) -> Result<()> {
        use migrations::MigratorTrait;
        let pending = migrations::Migrator::get_pending_migrations(&self.db).await?;
        // The fold is this crate's code: the rows are refolded here, after
        // the steps before `NAME_FOLDS` and before it is recorded.
        if let Some(before) = pending
            .iter()
            .position(|m| m.name() == migrations::NAME_FOLDS)
        {
            if before > 0 {
                let steps = u32::try_from(before).unwrap_or(u32::MAX);
                migrations::Migrator::up(&self.db, Some(steps)).await?;
            }
            let refolded = folds::refold(&self.db).await?;
            tracing::info!(
                changed = refolded.changed,
                kept = refolded.kept.len(),
                "names and addresses refolded (NFKC, case folded)"
            );
        }
        migrations::Migrator::up(&self.db, None).await?;
        if self.has_log_file() {
            migrations::LogMigrator::up(&self.scim_log().db, None).await?;
        }
        Ok(())
    }

    /// Run one raw statement (operations tooling and tests: CREATE/DROP DATABASE).
    pub async fn execute_unprepared(&self, sql: &str) -> Result<()> {
        use sea_orm::ConnectionTrait;
        self.db.execute_unprepared(sql).await?;
        Ok(())
    }

    /// Refresh PostgreSQL's statistics of the identity tables (nothing on
    /// SQLite). Without them the planner costs `directory_id = $1 AND
    /// source_id IN (…)` as if the directory held 0.5 % of the links and
    /// reads the whole directory through the primary key's first column,
    /// filtering 99,500 rows for 500 (EXPLAIN ANALYZE, 100,000 links never
    /// analyzed: 48–76 ms a statement, 22 s of a 100,000-user pull-sync).
    /// Autovacuum analyzes too late for a bulk import, or never when it is off.
    pub async fn analyze_identity(&self) -> Result<()> {
        if self.backend() != DbBackend::Postgres {
            return Ok(());
        }
        use sea_orm::ConnectionTrait;
        self.db
            .execute_unprepared("ANALYZE users, user_links, groups, group_members")
            .await?;
        Ok(())
    }

    /// Whether this build can serve from the database: it answers a trivial
    /// query, and every migration the build knows is applied. Reads only:
    /// sea-orm-migration's `*_read_only` status never creates its table.
    #[instrument(skip_all)]
    pub async fn ready(&self) -> Result<(), NotReady> {
        use migrations::MigratorTrait;
        use sea_orm::ConnectionTrait;
        self.db
            .execute_unprepared("SELECT 1")
            .await
            .map_err(|e| NotReady::Database(e.into()))?;
        // A migration applied by a newer build that this one lacks is an
        // error here, as it is for `migrate` at start: this build refuses to
        // serve a schema it does not know.
        let mut pending = migrations::Migrator::get_pending_migrations_read_only(&self.db)
            .await
            .map_err(|e| NotReady::Migrations(e.into()))?;
        if self.has_log_file() {
            pending.extend(
                migrations::LogMigrator::get_pending_migrations_read_only(&self.scim_log().db)
                    .await
                    .map_err(|e| NotReady::Migrations(e.into()))?,
            );
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(NotReady::Pending(
                pending.iter().map(|m| m.name().to_owned()).collect(),
            ))
        }
    }

    /// Roll every migration back (tests prove down migrations work).
    pub async fn migrate_down(&self) -> Result<()> {
        use migrations::MigratorTrait;
        migrations::Migrator::down(&self.db, None).await?;
        if self.has_log_file() {
            migrations::LogMigrator::down(&self.scim_log().db, None).await?;
        }
        Ok(())
    }

    /// Begin a write transaction (queued behind other writers on SQLite).
    /// On SQLite it is `BEGIN IMMEDIATE`: it takes the database's write
    /// lock at once, waiting for it up to the busy timeout. A deferred
    /// transaction that read first and then asked for the lock while
    /// another process (the CLI beside the server) had written since would
    /// be refused at once ("database is locked"), whatever the timeout.
    pub async fn write(&self) -> Result<WriteTx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let txn = begin_write(&self.db).await?;
        Ok(WriteTx {
            txn,
            guard,
            commits: self.commits.clone(),
        })
    }

    /// A receiver that changes each time a write transaction of this process
    /// commits.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

/// Which file a SQLite pool opens.
#[derive(Debug, Clone, Copy)]
enum File {
    Database,
    ScimLog,
}

/// The SCIM request log's file beside the database's `database`: its name
/// with `-scim-log` appended, as SQLite's own `-wal` and `-shm`. An
/// in-memory database (`sqlite::memory:`) keeps its name: sqlx gives each
/// pool on it a memory database of its own.
fn scim_log_file(database: &std::path::Path) -> std::path::PathBuf {
    let name = database.as_os_str();
    if name.to_string_lossy().starts_with("file:") {
        return database.to_owned();
    }
    let mut log = name.to_owned();
    log.push("-scim-log");
    log.into()
}

/// Begin a transaction that writes: `BEGIN IMMEDIATE` on SQLite (see
/// [`Store::write`]), a plain `BEGIN` on PostgreSQL.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions};
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?)
}

/// A savepoint in a write transaction, by what it undoes alone (on
/// PostgreSQL an error aborts the whole transaction unless rolled back to
/// a savepoint). Two names, so a pass inside a job nests in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Savepoint {
    /// One job of a batched write.
    Job,
    /// One engine pass, run again when a concurrent transaction took an
    /// address first.
    Pass,
}

impl Savepoint {
    fn name(self) -> &'static str {
        match self {
            Savepoint::Job => "job",
            Savepoint::Pass => "pass",
        }
    }
}

/// Set the savepoint `at`.
pub async fn savepoint(conn: &DatabaseTransaction, at: Savepoint) -> Result<()> {
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared(&format!("SAVEPOINT {}", at.name()))
        .await?;
    Ok(())
}

/// Keep what was written since the savepoint `at`.
pub async fn release(conn: &DatabaseTransaction, at: Savepoint) -> Result<()> {
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared(&format!("RELEASE SAVEPOINT {}", at.name()))
        .await?;
    Ok(())
}

/// Undo what was written since the savepoint `at`; the transaction goes on.
pub async fn rollback_to(conn: &DatabaseTransaction, at: Savepoint) -> Result<()> {
    use sea_orm::ConnectionTrait;
    conn.execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {}", at.name()))
        .await?;
    conn.execute_unprepared(&format!("RELEASE SAVEPOINT {}", at.name()))
        .await?;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlocks_and_serialization_failures_are_busy_and_other_errors_are_not() {
        for text in [
            "error returned from database: deadlock detected",
            "error returned from database: could not serialize access due to concurrent update",
        ] {
            let err = StoreError::from(DbErr::Custom(text.into()));
            assert!(matches!(err, StoreError::Busy), "{text}: {err:?}");
        }
        let err = StoreError::from(DbErr::Custom("syntax error".into()));
        assert!(matches!(err, StoreError::Database(_)));
    }
}
