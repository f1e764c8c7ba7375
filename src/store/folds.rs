//! Existing rows refolded when the fold changes (`domain::names::fold`, and
//! the migration `m20261206_000009_name_folds` that records it is done):
//! each unique folded column gets the fold of the value it keys.
//!
//! Two rows that were distinct under the old fold may fold alike now (`Ａdmin`
//! beside `admin`, made when only case was folded). The migration must not
//! fail on them, and neither may be lost: the first created takes the new key,
//! and a later look-alike keeps the key it had (still unique), logged by id.
//! Such a row is not reachable by a filter on its name (which compares the new
//! fold) but its directory may still change, deactivate or delete it: a write
//! that keeps its name keeps its key (`mirror::users::update_user`); renaming
//! it to anything unique folds it anew. For application users, whose folded
//! address is their address, the one that kept its address is moved by the
//! engine's address rules once its directory speaks of it again (a taken
//! address waits, docs/reconciliation.md).

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::domain::names::fold;
use crate::store::Result;

/// A unique folded column and what it is the fold of.
struct Key {
    table: &'static str,
    /// The column that scopes uniqueness (the directory, the tenant).
    scope: &'static str,
    raw: &'static str,
    folded: &'static str,
    /// The raw column is itself the folded value (an application user's
    /// address) and is rewritten too.
    raw_is_folded: bool,
}

const KEYS: [Key; 3] = [
    Key {
        table: "directory_users",
        scope: "directory_id",
        raw: "user_name",
        folded: "user_name_folded",
        raw_is_folded: false,
    },
    Key {
        table: "directory_groups",
        scope: "directory_id",
        raw: "display_name",
        folded: "display_name_folded",
        raw_is_folded: false,
    },
    Key {
        table: "users",
        scope: "tenant_id",
        raw: "email",
        folded: "email_folded",
        raw_is_folded: true,
    },
];

/// Rows read at a time.
const PAGE: u64 = 1000;

/// What a refold did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refolded {
    /// Rows whose key changed.
    pub changed: u64,
    /// Rows that kept their old key: a look-alike of an older row.
    pub kept: Vec<(&'static str, String)>,
}

/// A row whose key the new fold changes.
struct Change {
    id: String,
    scope: String,
    key: String,
    created_at: i64,
}

/// Refold every key in one transaction (and the addresses deferred changes
/// wait for). Safe to run again: a refolded row is unchanged the second time.
pub async fn refold(db: &DatabaseConnection) -> Result<Refolded> {
    let txn = super::begin_write(db).await?;
    let mut done = Refolded::default();
    for key in &KEYS {
        let mut pending = changes(&txn, key).await?;
        // Earliest first; rounds until none moves, as a key one row frees
        // may be the one another wants.
        pending.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        loop {
            let before = pending.len();
            let mut kept = Vec::new();
            for change in pending {
                if taken(&txn, key, &change).await? {
                    kept.push(change);
                } else {
                    rekey(&txn, key, &change).await?;
                    done.changed += 1;
                }
            }
            pending = kept;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for change in pending {
            tracing::warn!(
                table = key.table,
                id = %change.id,
                "a look-alike of an older row keeps its old key: its name folds like the older one's"
            );
            done.kept.push((key.table, change.id));
        }
    }
    refold_deferred(&txn).await?;
    txn.commit().await?;
    Ok(done)
}

async fn changes<C: ConnectionTrait>(conn: &C, key: &Key) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let select = Query::select()
            .columns([
                Alias::new("id"),
                Alias::new(key.scope),
                Alias::new(key.raw),
                Alias::new(key.folded),
                Alias::new("created_at"),
            ])
            .from(Alias::new(key.table))
            .and_where(Expr::col(Alias::new("id")).gt(after.clone()))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(PAGE)
            .to_owned();
        let rows = conn.query_all(&select).await?;
        let Some(last) = rows.last() else {
            return Ok(out);
        };
        after = last.try_get("", "id")?;
        for row in &rows {
            let raw: String = row.try_get("", key.raw)?;
            let folded: String = row.try_get("", key.folded)?;
            let new = fold(&raw);
            if new != folded {
                out.push(Change {
                    id: row.try_get("", "id")?,
                    scope: row.try_get("", key.scope)?,
                    key: new,
                    created_at: row.try_get("", "created_at")?,
                });
            }
        }
    }
}

/// Whether another row of the scope holds the key now.
async fn taken<C: ConnectionTrait>(conn: &C, key: &Key, change: &Change) -> Result<bool> {
    let select = Query::select()
        .expr(Expr::val(1))
        .from(Alias::new(key.table))
        .and_where(Expr::col(Alias::new(key.scope)).eq(change.scope.clone()))
        .and_where(Expr::col(Alias::new(key.folded)).eq(change.key.clone()))
        .limit(1)
        .to_owned();
    Ok(conn.query_one(&select).await?.is_some())
}

async fn rekey<C: ConnectionTrait>(conn: &C, key: &Key, change: &Change) -> Result<()> {
    let mut update = Query::update();
    update
        .table(Alias::new(key.table))
        .value(Alias::new(key.folded), change.key.clone())
        .and_where(Expr::col(Alias::new("id")).eq(change.id.clone()));
    if key.raw_is_folded {
        update.value(Alias::new(key.raw), change.key.clone());
    }
    conn.execute(&update).await?;
    Ok(())
}

/// A deferred change waits for a folded address: the address, and the one
/// its snapshot carries, in the new fold, so it meets the refolded holder.
async fn refold_deferred<C: ConnectionTrait>(conn: &C) -> Result<()> {
    let select = Query::select()
        .columns([
            Alias::new("directory_id"),
            Alias::new("source_id"),
            Alias::new("email_folded"),
            Alias::new("snapshot"),
        ])
        .from(Alias::new("deferred_changes"))
        .to_owned();
    for row in conn.query_all(&select).await? {
        let email: String = row.try_get("", "email_folded")?;
        let mut snapshot: serde_json::Value = row.try_get("", "snapshot")?;
        let new = fold(&email);
        let carried = snapshot
            .get("email")
            .and_then(serde_json::Value::as_str)
            .map(fold);
        if new == email && carried.as_deref() == snapshot.get("email").and_then(|e| e.as_str()) {
            continue;
        }
        if let (Some(carried), Some(object)) = (carried, snapshot.as_object_mut()) {
            object.insert("email".to_owned(), carried.into());
        }
        let directory_id: String = row.try_get("", "directory_id")?;
        let source_id: String = row.try_get("", "source_id")?;
        let update = Query::update()
            .table(Alias::new("deferred_changes"))
            .value(Alias::new("email_folded"), new)
            .value(Alias::new("snapshot"), snapshot)
            .and_where(Expr::col(Alias::new("directory_id")).eq(directory_id))
            .and_where(Expr::col(Alias::new("source_id")).eq(source_id))
            .to_owned();
        conn.execute(&update).await?;
    }
    Ok(())
}
