//! Related rows in any number (README "Limits"): a group's `members` (and a
//! user's `groups`) are read from the database a chunk at a time and written
//! as they are read, on a single GET and on list and search pages alike, so
//! the server's memory does not grow with a group's size; the JSON is what a
//! whole-built representation was, and a page's byte budget counts what was
//! streamed.

use std::collections::HashSet;

use dirsync::config::ServerSettings;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Served, TestApp, enc, json, spawn_app, spawn_app_with};
use crate::sizes::{PEAK_RSS_BOUND, peak_rss};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// `n` users of the app's directory and a membership of each in `group`,
/// each member's `display` `display_bytes` long, written by the database
/// itself (`n` SCIM requests would take minutes). Returns the member ids.
async fn seed_members(app: &TestApp, group: &str, n: usize, display_bytes: usize) -> Vec<String> {
    let dir = &app.directory_id;
    // Ids shaped like UUIDs, twelve digits at the end whatever `i`.
    let id = "'00000000-0000-7000-8000-' || (100000000000 + i)";
    let name = "'member' || i || '@example.com'";
    let data = format!(r#"'{{"schemas":["{USER}"],"active":true,"userName":"' || {name} || '"}}'"#);
    let data = match app.store.backend() {
        sea_orm::DbBackend::Postgres => format!("CAST({data} AS jsonb)"),
        _ => data,
    };
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})");
    let display = format!("'{}'", "d".repeat(display_bytes.saturating_sub(12)));
    let tx = app.store.write().await.unwrap();
    tx.conn()
        .execute_unprepared(&format!(
            "{numbers} INSERT INTO directory_users (id, directory_id, user_name, \
             user_name_folded, external_id, display_name, primary_email, active, data, version, \
             created_at, updated_at) \
             SELECT {id}, '{dir}', {name}, {name}, NULL, NULL, NULL, TRUE, {data}, 1, 0, 0 FROM n"
        ))
        .await
        .unwrap();
    tx.conn()
        .execute_unprepared(&format!(
            "{numbers} INSERT INTO directory_memberships (directory_id, group_id, member_id, \
             member_type, display, created_at) \
             SELECT '{dir}', '{group}', {id}, 'User', {display} || (100000000000 + i), 0 FROM n"
        ))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (1..=n)
        .map(|i| format!("00000000-0000-7000-8000-{}", 100_000_000_000 + i))
        .collect()
}

/// The `value` of each member of a group's representation, in order.
fn member_values(group: &Value) -> Vec<String> {
    group
        .get("members")
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every member answered once, in member id order (the membership rows'
/// key), each as a small group's are.
fn assert_every_member_once(group: &Value, seeded: &[String], base: &str) {
    let values = member_values(group);
    assert_eq!(values.len(), seeded.len(), "members answered");
    let mut expected = seeded.to_vec();
    expected.sort();
    assert_eq!(values, expected, "each member once, in id order");
    let last = &group["members"][seeded.len() - 1];
    let id = last["value"].as_str().unwrap();
    assert_eq!(
        last,
        &json!({"value": id, "$ref": format!("{base}/Users/{id}"),
                "display": format!("{}{}", "d".repeat(20), &id[24..]), "type": "User"})
    );
}

/// At least 50,000, as the issue asks of a large group.
const MEMBERS: usize = 50_000;

#[tokio::test]
async fn a_group_of_fifty_thousand_answers_every_member_once_on_get_and_in_pages() {
    let app = spawn_app().await;
    // Id order: a small group, the large one, a small one.
    let alone = app.create_user("alone@example.com").await;
    let before = app.create_group("Before", &[&alone]).await;
    let large = app.create_group("Large", &[]).await;
    let after = app.create_group("After", &[&alone]).await;
    let seeded = seed_members(&app, &large, MEMBERS, 32).await;

    let res = app.get(&format!("/Groups/{large}")).await;
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let body = json(res).await;
    assert_every_member_once(&body, &seeded, &app.base);
    assert_eq!(body["displayName"], "Large");
    assert_eq!(body["meta"]["version"], etag);
    // The attributes keep the order a whole-built group had: members
    // after the group's own attributes, before `meta`.
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "displayName", "members", "meta"]);

    // Without members, nothing of them: a small, sized response.
    let res = app
        .get(&format!("/Groups/{large}?excludedAttributes=members"))
        .await;
    assert_eq!(res.status(), 200);
    let length: usize = res.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = json(res).await;
    assert!(body.get("members").is_none(), "{body}");
    assert_eq!(body["id"], large);
    assert!(length < 1_000, "{length} bytes");

    // A projection onto a sub-attribute applies to every member.
    let only = app
        .get_ok(&format!("/Groups/{large}?attributes=members.value"))
        .await;
    let members = only["members"].as_array().unwrap();
    assert_eq!(members.len(), MEMBERS);
    assert!(members.iter().all(|m| m.as_object().unwrap().len() == 1));
    assert!(only.get("displayName").is_none());

    // The large group passes the default 4 MiB budget alone: a page ends
    // before it (it is measured, not held), and it is the whole of the next.
    let mut pages = Vec::new();
    let mut start = 1;
    while start <= 3 {
        let page = app
            .get_ok(&format!("/Groups?startIndex={start}&count=10"))
            .await;
        assert_eq!(page["totalResults"], 3);
        let answered = page["Resources"].as_array().unwrap().clone();
        assert_eq!(page["itemsPerPage"], answered.len());
        start += answered.len();
        pages.push(answered);
    }
    let ids: Vec<Vec<&str>> = pages
        .iter()
        .map(|p| p.iter().map(|g| g["id"].as_str().unwrap()).collect())
        .collect();
    assert_eq!(
        ids,
        [
            vec![before.as_str()],
            vec![large.as_str()],
            vec![after.as_str()]
        ]
    );
    assert_every_member_once(&pages[1][0], &seeded, &app.base);
    assert_eq!(member_values(&pages[0][0]), [alone.as_str()]);
    assert_eq!(member_values(&pages[2][0]), [alone.as_str()]);

    // A filter on a cursor page, and the root search: the group, whole.
    let filter = enc("displayName eq \"Large\"");
    let page = app
        .get_ok(&format!("/Groups?filter={filter}&cursor="))
        .await;
    assert_eq!(page["itemsPerPage"], 1);
    assert!(page.get("nextCursor").is_none(), "{}", page["nextCursor"]);
    assert_every_member_once(&page["Resources"][0], &seeded, &app.base);
    let search = json(
        app.post("/.search", &json!({"filter": "displayName eq \"Large\""}))
            .await,
    )
    .await;
    assert_eq!(search["totalResults"], 1, "{search}");
    assert_eq!(search["itemsPerPage"], 1);
    assert_every_member_once(&search["Resources"][0], &seeded, &app.base);

    // Without members the three fit one page.
    let page = app
        .get_ok("/Groups?excludedAttributes=members&count=10")
        .await;
    assert_eq!(page["itemsPerPage"], 3);
    let groups = page["Resources"].as_array().unwrap();
    assert!(groups.iter().all(|g| g.get("members").is_none()));
}

#[tokio::test]
async fn under_a_budget_that_holds_it_a_group_of_several_chunks_shares_its_page() {
    let app = spawn_app_with(ServerSettings {
        max_page_bytes: 8 * 1024 * 1024,
        ..ServerSettings::for_tests()
    })
    .await;
    let alone = app.create_user("alone@example.com").await;
    let before = app.create_group("Before", &[&alone]).await;
    let large = app.create_group("Large", &[]).await;
    let after = app.create_group("After", &[&alone]).await;
    let seeded: HashSet<String> = seed_members(&app, &large, 5_000, 32)
        .await
        .into_iter()
        .collect();
    // In id order and sorted by name (out of id order: each group's
    // members are read on their own).
    for (query, order) in [
        ("count=10", [&before, &large, &after]),
        ("count=10&sortBy=displayName", [&after, &before, &large]),
    ] {
        let page = app.get_ok(&format!("/Groups?{query}")).await;
        assert_eq!(page["itemsPerPage"], 3);
        let groups = page["Resources"].as_array().unwrap();
        let ids: Vec<&str> = groups.iter().map(|g| g["id"].as_str().unwrap()).collect();
        assert_eq!(ids, order.map(String::as_str));
        for group in groups {
            let members: HashSet<String> = member_values(group).into_iter().collect();
            if group["id"] == large.as_str() {
                assert_eq!(members, seeded);
            } else {
                assert_eq!(members, HashSet::from([alone.clone()]));
            }
        }
    }
}

#[tokio::test]
async fn a_user_in_thousands_of_groups_answers_each_once_in_name_order() {
    let app = spawn_app().await;
    let user = app.create_user("member@example.com").await;
    let n = 4_500;
    let dir = &app.directory_id;
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})");
    let id = "'00000000-0000-7000-9000-' || (100000000000 + i)";
    let data = r#"'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Team ' || (100000 + i) || '"}'"#;
    let data = match app.store.backend() {
        sea_orm::DbBackend::Postgres => format!("CAST({data} AS jsonb)"),
        _ => data.to_owned(),
    };
    for sql in [
        format!(
            "{numbers} INSERT INTO directory_groups (id, directory_id, display_name, \
             display_name_folded, external_id, data, version, created_at, updated_at) \
             SELECT {id}, '{dir}', 'Team ' || (100000 + i), 'team ' || (100000 + i), NULL, \
             {data}, 1, 0, 0 FROM n"
        ),
        format!(
            "{numbers} INSERT INTO directory_memberships (directory_id, group_id, member_id, \
             member_type, display, created_at) SELECT '{dir}', {id}, '{user}', 'User', NULL, 0 FROM n"
        ),
    ] {
        app.store
            .connection()
            .execute_unprepared(&sql)
            .await
            .unwrap();
    }
    let read = app.get_ok(&format!("/Users/{user}")).await;
    let groups = read["groups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["display"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=n).map(|i| format!("Team {}", 100_000 + i)).collect();
    assert_eq!(names, expected);
    let page = app
        .filter("/Users", "userName eq \"member@example.com\"")
        .await;
    assert_eq!(page["Resources"][0]["groups"], read["groups"]);
}

/// Members of the group the memory test reads, each `display` at its cap
/// (1,024 bytes): 56 MiB of JSON, which built whole took 280 to 390 MiB
/// of the server (a debug build).
const HUGE: usize = 50_000;

#[tokio::test]
async fn getting_a_huge_group_keeps_peak_memory_under_the_bound_of_the_largest_lists() {
    let app = spawn_app().await;
    let group = app.create_group("Huge", &[]).await;
    let seeded = seed_members(&app, &group, HUGE, 1024).await;
    // The measured server is a child process on the same database that
    // has done nothing but start.
    let served = Served::start(&app.db_url, &[("RUST_LOG", "info")]);
    let pid = served.pid();
    let idle = peak_rss(pid);
    let res = app
        .client
        .get(format!("{}/scim/v2/Groups/{group}", served.origin))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    let peak = peak_rss(pid);
    served.stop();
    let size = body.len();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(member_values(&body).len(), seeded.len());
    eprintln!(
        "peak RSS: idle {} MiB, answering a group of {HUGE} members ({} MiB of JSON) {} MiB",
        idle >> 20,
        size >> 20,
        peak >> 20
    );
    assert!(peak < PEAK_RSS_BOUND, "peak RSS {} MiB", peak >> 20);
}
