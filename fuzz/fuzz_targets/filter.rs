//! A list request's query string (`filter`, `sortBy`, `sortOrder`, `startIndex`,
//! `count`, `cursor`) through the path a `GET /Users` or `GET /Groups` takes:
//! `scim::list` parses it and `scim::filter` the filter (with the vendor
//! rewrites of `scim::quirks`), then `store::mirror::filter` makes SQL of it for
//! SQLite and for PostgreSQL, and the listing runs on a SQLite database with a
//! few rows. The first input byte picks the resource type.
//!
//! Fails on a panic anywhere, and on a database error for a request the parser
//! accepted: the server would answer it with a 500 (issue 13, item 1: an `or`
//! chain deeper than SQLite's expression limit).
#![no_main]

use std::sync::OnceLock;

use dirsync::config::ServerSettings;
use dirsync::scim::list::{ListParams, plan};
use dirsync::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use dirsync::store::Store;
use dirsync::store::mirror::filter::{GROUPS, Table, Translator, USERS};
use dirsync::store::mirror::groups::list_groups;
use dirsync::store::mirror::users::list_users;
use libfuzzer_sys::fuzz_target;
use sea_orm::DbBackend;
use sea_orm::sea_query::{Alias, Asterisk, Order, PostgresQueryBuilder, Query, SqliteQueryBuilder};

struct Db {
    runtime: tokio::runtime::Runtime,
    store: Store,
    directory: String,
}

static DB: OnceLock<Db> = OnceLock::new();
static SETTINGS: OnceLock<ServerSettings> = OnceLock::new();

const USER_ROWS: &[(&str, &str, &str)] = &[
    (
        "0190f5d2-0000-7000-8000-000000000001",
        "alice@example.com",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"alice@example.com","externalId":"a-1","name":{"givenName":"Alice","familyName":"Smith"},"displayName":"Alice Smith","title":"Engineer","active":true,"emails":[{"value":"alice@example.com","type":"work","primary":true},{"value":"alice@home.example","type":"home"}],"phoneNumbers":[{"value":"+1 555 0100","type":"work"}],"addresses":[{"streetAddress":"1 Main St","type":"work","primary":true}],"roles":[{"value":"admin"}],"x509Certificates":[{"value":"TUlJQ0lqQ0NBWXVnQXdJQkFnSUpB"}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42","department":"R&D","manager":{"value":"0190f5d2-0000-7000-8000-000000000002"}}}"#,
    ),
    (
        "0190f5d2-0000-7000-8000-000000000002",
        "bob",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob","active":false,"emails":[{"value":"bob@example.com"}],"name":{"formatted":"Bob"}}"#,
    ),
];

const GROUP_ROWS: &[(&str, &str, &str)] = &[(
    "0190f5d2-0000-7000-8000-000000000003",
    "Engineering",
    r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","externalId":"g-1"}"#,
)];

fn db() -> &'static Db {
    DB.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let path = std::env::temp_dir().join(format!("dirsync-fuzz-filter-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (store, directory) = runtime.block_on(async {
            let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()), 1)
                .await
                .expect("open the SQLite database");
            store.migrate().await.expect("migrate");
            dirsync::admin::create_tenant(&store, "fuzz").await.expect("a tenant");
            let directory = dirsync::admin::create_directory(&store, "fuzz", "fuzz", "generic")
                .await
                .expect("a directory")
                .id;
            for (id, name, data) in USER_ROWS {
                let sql = format!(
                    "INSERT INTO directory_users (id, directory_id, user_name, user_name_folded, external_id, \
                     display_name, primary_email, active, data, version, created_at, updated_at) \
                     VALUES ('{id}', '{directory}', '{name}', '{}', 'a-1', 'x', '{name}', 1, '{data}', 1, 1700000000000, 1700000000000)",
                    name.to_lowercase()
                );
                store.execute_unprepared(&sql).await.expect("insert a user");
            }
            for (id, name, data) in GROUP_ROWS {
                let sql = format!(
                    "INSERT INTO directory_groups (id, directory_id, display_name, display_name_folded, external_id, \
                     data, version, created_at, updated_at) \
                     VALUES ('{id}', '{directory}', '{name}', '{}', 'g-1', '{data}', 1, 1700000000000, 1700000000000)",
                    name.to_lowercase()
                );
                store.execute_unprepared(&sql).await.expect("insert a group");
            }
            (store, directory)
        });
        Db {
            runtime,
            store,
            directory,
        }
    })
}

/// The statement the listing would run, as each backend's SQL (the translation
/// must not panic for either, even though only SQLite runs here).
fn build_sql(backend: DbBackend, table: &Table, plan: &dirsync::scim::list::QueryPlan) {
    let translator = Translator::new(backend, table);
    let mut select = Query::select();
    select
        .column(Asterisk)
        .from(Alias::new(table.name))
        .and_where(translator.condition(&plan.query.filter));
    if let Some(sort) = &plan.query.sort {
        select.order_by_expr(translator.sort_key(&sort.attr, sort.element_at), Order::Asc);
    }
    let (sql, _values) = match backend {
        DbBackend::Postgres => select.build(PostgresQueryBuilder),
        _ => select.build(SqliteQueryBuilder),
    };
    assert!(!sql.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(rest) else {
        return;
    };
    let users = which & 1 == 0;
    let (rt, table) = if users {
        (&USER_RESOURCE, &USERS)
    } else {
        (&GROUP_RESOURCE, &GROUPS)
    };
    let settings = SETTINGS.get_or_init(ServerSettings::for_tests);
    let Ok(params) = ListParams::from_query(query) else {
        return;
    };
    let Ok(plan) = plan(rt, &params, settings) else {
        return;
    };
    build_sql(DbBackend::Sqlite, table, &plan);
    build_sql(DbBackend::Postgres, table, &plan);
    let db = db();
    let conn = db.store.connection();
    let outcome = db.runtime.block_on(async {
        if users {
            list_users(conn, &db.directory, &plan.query)
                .await
                .map(|_| ())
        } else {
            list_groups(conn, &db.directory, &plan.query)
                .await
                .map(|_| ())
        }
    });
    if let Err(err) = outcome {
        let shown: String = query.chars().take(300).collect();
        panic!(
            "SQLite refused a listing the parser accepted (the server answers 500): {err}\n\
             query ({} bytes): {shown:?}",
            query.len()
        );
    }
});
