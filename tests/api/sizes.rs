//! Size caps (README "Limits"): every string attribute, multi-valued
//! attribute and whole resource has a cap, enforced alike on POST, PUT,
//! PATCH and Bulk (at the cap: accepted; one past: 400 `invalidValue` naming
//! the attribute and its cap, nothing written); a list page stops at its
//! byte budget with `itemsPerPage` saying so, and the client still pages
//! through everything.

use std::collections::HashSet;

use dirsync::config::ServerSettings;
use rstest::rstest;
use serde_json::{Value, json};

use crate::helpers::{Served, TestApp, json, spawn_app, spawn_app_with};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[derive(Debug, Clone, Copy)]
enum Write {
    Post,
    Put,
    Patch,
    Bulk,
}

/// The answer to a write: its status and body (for Bulk, the operation's).
struct Answer {
    status: u16,
    body: Value,
}

/// Write `attrs` onto the user `id` (or a new user, for POST) the way `how` says.
async fn write(app: &TestApp, how: Write, id: &str, attrs: &Value) -> Answer {
    let mut whole = json!({"schemas": [USER], "userName": "base@example.com"});
    whole
        .as_object_mut()
        .unwrap()
        .extend(attrs.as_object().unwrap().clone());
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": attrs}]
    });
    let res = match how {
        Write::Post => {
            whole["userName"] = json!("new@example.com");
            app.post("/Users", &whole).await
        }
        Write::Put => app.put(&format!("/Users/{id}"), &whole).await,
        Write::Patch => app.patch(&format!("/Users/{id}"), &patch).await,
        Write::Bulk => {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [{"method": "PATCH", "path": format!("/Users/{id}"), "data": patch}]
            });
            let res = app.post("/Bulk", &body).await;
            assert_eq!(res.status(), 200);
            let out = json(res).await;
            let op = &out["Operations"][0];
            return Answer {
                status: op["status"].as_str().unwrap().parse().unwrap(),
                body: op["response"].clone(),
            };
        }
    };
    let status = res.status().as_u16();
    Answer {
        status,
        body: json(res).await,
    }
}

/// A user to write over, and what it looks like before.
async fn base_user(app: &TestApp) -> (String, Value) {
    let id = app.create_user("base@example.com").await;
    let before = app.get_ok(&format!("/Users/{id}")).await;
    (id, before)
}

/// Refused, and nothing written: the user is as before, and no new one.
async fn assert_refused(app: &TestApp, answer: Answer, detail: &str, id: &str, before: &Value) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["scimType"], "invalidValue", "{}", answer.body);
    assert_eq!(answer.body["detail"], detail);
    assert_eq!(&app.get_ok(&format!("/Users/{id}")).await, before);
    let new = app
        .filter("/Users", "userName eq \"new@example.com\"")
        .await;
    assert_eq!(new["totalResults"], 0);
}

fn accepted(how: Write) -> u16 {
    match how {
        Write::Post => 201,
        _ => 200,
    }
}

fn emails(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"value": format!("e{i}@example.com"), "primary": i == 0}))
        .collect()
}

#[rstest]
#[case::a_core_string(json!({"title": "t".repeat(1024)}), json!({"title": "t".repeat(1025)}), "title is 1025 bytes long; at most 1024 are accepted")]
#[case::a_sub_attribute(json!({"name": {"givenName": "é".repeat(512)}}), json!({"name": {"givenName": format!("x{}", "é".repeat(512))}}), "name.givenName is 1025 bytes long; at most 1024 are accepted")]
#[case::a_reference(json!({"profileUrl": format!("https://x/{}", "p".repeat(2038))}), json!({"profileUrl": format!("https://x/{}", "p".repeat(2039))}), "profileUrl is 2049 bytes long; at most 2048 are accepted")]
#[case::an_extension_attribute(json!({ENTERPRISE: {"department": "d".repeat(1024)}}), json!({ENTERPRISE: {"department": "d".repeat(1025)}}), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department is 1025 bytes long; at most 1024 are accepted")]
#[case::a_multi_valued_count(json!({"emails": emails(100)}), json!({"emails": emails(101)}), "emails has 101 values; at most 100 are accepted")]
#[tokio::test]
async fn a_value_at_its_cap_is_written_and_one_past_is_400_invalid_value_with_nothing_written(
    #[values(Write::Post, Write::Put, Write::Patch, Write::Bulk)] how: Write,
    #[case] at_cap: Value,
    #[case] past: Value,
    #[case] detail: &str,
) {
    let app = spawn_app().await;
    let (id, before) = base_user(&app).await;
    let answer = write(&app, how, &id, &past).await;
    assert_refused(&app, answer, detail, &id, &before).await;

    let answer = write(&app, how, &id, &at_cap).await;
    assert_eq!(answer.status, accepted(how), "{}", answer.body);
    let (key, value) = at_cap.as_object().unwrap().iter().next().unwrap();
    let id = answer.body["id"].as_str().unwrap_or(&id).to_owned();
    let stored = app.get_ok(&format!("/Users/{id}")).await;
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                assert_eq!(&stored[key][k], v, "{key}.{k}");
            }
        }
        _ => assert_eq!(&stored[key], value, "{key}"),
    }
}

/// `roles` roles of about a kilobyte each, and a nickName of `nick` bytes.
fn padded(roles: usize, nick: usize) -> Value {
    let roles: Vec<Value> = (0..roles)
        .map(|i| json!({"value": format!("{i:04}{}", "r".repeat(980))}))
        .collect();
    json!({"roles": roles, "nickName": "n".repeat(nick)})
}

#[rstest]
#[tokio::test]
async fn a_resource_at_the_total_cap_is_written_and_one_byte_past_is_400_invalid_value(
    #[values(Write::Post, Write::Put, Write::Patch, Write::Bulk)] how: Write,
) {
    let app = spawn_app().await;
    let (id, before) = base_user(&app).await;
    // The refusal says how big the resource would be; fewer roles bring it
    // within a nickName's reach of the cap (each role is under 1,000 bytes,
    // so no step lands within the cap), and the nickName then takes it to
    // the cap exactly, or one byte past.
    let mut roles = 70;
    let over = loop {
        let probe = write(&app, how, &id, &padded(roles, 1000)).await;
        assert_eq!(probe.status, 400, "{}", probe.body);
        let detail = probe.body["detail"].as_str().unwrap().to_owned();
        let size: usize = detail
            .strip_prefix("the User is ")
            .and_then(|d| d.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{detail}"));
        if size - 65_536 < 1000 {
            break size - 65_536;
        }
        roles -= 1;
    };
    let answer = write(&app, how, &id, &padded(roles, 1001 - over)).await;
    assert_refused(
        &app,
        answer,
        "the User is 65537 bytes as stored; at most 65536 are accepted",
        &id,
        &before,
    )
    .await;
    let answer = write(&app, how, &id, &padded(roles, 1000 - over)).await;
    assert_eq!(answer.status, accepted(how), "{}", answer.body);
}

#[tokio::test]
async fn a_group_names_at_most_ten_thousand_members_in_one_request() {
    let app = spawn_app().await;
    let group = app.create_group("Team", &[]).await;
    let members = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| json!({"value": uuid::Uuid::now_v7().to_string()}))
            .collect()
    };
    let add = |members: Vec<Value>| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": members}]
        })
    };
    // References to nothing are skipped (README "SCIM support"), so the
    // request is about the count only.
    let res = app
        .patch(&format!("/Groups/{group}"), &add(members(10_000)))
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .patch(&format!("/Groups/{group}"), &add(members(10_001)))
        .await;
    let body = json(res).await;
    assert_eq!(body["scimType"], "invalidValue");
    assert_eq!(
        body["detail"],
        "members has 10001 values; at most 10000 are accepted"
    );
}

/// Users of about 20 kB each (twenty attributes near their caps).
async fn seed_large_users(app: &TestApp, n: usize) -> HashSet<String> {
    let mut ids = HashSet::new();
    for i in 0..n {
        let big = |c: char| c.to_string().repeat(1000);
        let body = json!({
            "schemas": [USER, ENTERPRISE],
            "userName": format!("user{i:03}@example.com"),
            "displayName": big('d'), "nickName": big('n'), "title": big('t'),
            "userType": big('u'), "locale": big('l'), "timezone": big('z'),
            "preferredLanguage": big('p'),
            "name": {"formatted": big('f'), "givenName": big('g'), "familyName": big('a'),
                     "middleName": big('m'), "honorificPrefix": big('h'), "honorificSuffix": big('s')},
            ENTERPRISE: {"employeeNumber": big('e'), "costCenter": big('c'), "organization": big('o'),
                         "division": big('v'), "department": big('x')}
        });
        let res = app.post("/Users", &body).await;
        assert_eq!(res.status(), 201);
        ids.insert(json(res).await["id"].as_str().unwrap().to_owned());
    }
    ids
}

const BUDGET: u64 = 65_536;

#[tokio::test]
async fn a_page_past_its_byte_budget_answers_fewer_resources_and_index_paging_reaches_them_all() {
    let app = spawn_app_with(ServerSettings {
        max_page_bytes: BUDGET,
        ..ServerSettings::for_tests()
    })
    .await;
    let ids = seed_large_users(&app, 10).await;
    let mut seen = HashSet::new();
    let mut start = 1;
    while seen.len() < ids.len() {
        let res = app
            .get(&format!("/Users?count=100&startIndex={start}"))
            .await;
        let text = res.text().await.unwrap();
        let page: Value = serde_json::from_str(&text).unwrap();
        let answered = page["Resources"].as_array().unwrap();
        assert_eq!(page["totalResults"], 10);
        assert_eq!(page["startIndex"], start);
        assert_eq!(page["itemsPerPage"], answered.len());
        assert!(
            !answered.is_empty() && answered.len() < 10,
            "{}",
            answered.len()
        );
        let bytes: usize = answered.iter().map(|r| r.to_string().len()).sum();
        assert!(bytes as u64 <= BUDGET, "{bytes} bytes");
        for r in answered {
            assert!(
                seen.insert(r["id"].as_str().unwrap().to_owned()),
                "repeated"
            );
        }
        start += answered.len();
    }
    assert_eq!(seen, ids);
    let past = app.get_ok(&format!("/Users?startIndex={start}")).await;
    assert_eq!(past["itemsPerPage"], 0);
}

#[rstest]
#[case::in_id_order("")]
#[case::sorted("&sortBy=userName&sortOrder=descending")]
#[tokio::test]
async fn a_cursor_page_past_its_byte_budget_ends_early_and_its_next_cursor_reaches_them_all(
    #[case] sort: &str,
) {
    let app = spawn_app_with(ServerSettings {
        max_page_bytes: BUDGET,
        ..ServerSettings::for_tests()
    })
    .await;
    let ids = seed_large_users(&app, 10).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = app
            .get_ok(&format!("/Users?count=1000&cursor={cursor}{sort}"))
            .await;
        pages += 1;
        let answered = page["Resources"].as_array().unwrap();
        assert_eq!(page["totalResults"], 10);
        assert_eq!(page["itemsPerPage"], answered.len());
        seen.extend(
            answered
                .iter()
                .map(|r| r["userName"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert!(pages > 2, "{pages} pages");
    let mut expected: Vec<String> = (0..10).map(|i| format!("user{i:03}@example.com")).collect();
    if !sort.is_empty() {
        expected.reverse();
        assert_eq!(seen, expected);
    } else {
        seen.sort();
        assert_eq!(seen, expected);
    }
    assert_eq!(ids.len(), 10);
}

/// The server's peak resident memory so far (`VmHWM`), in bytes.
pub(crate) fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// A user as large as the caps allow: twenty attributes at 1,000 bytes and
/// roles up to just under the resource cap.
fn largest_user(i: usize) -> Value {
    let big = |c: char| c.to_string().repeat(1000);
    let roles: Vec<Value> = (0..42)
        .map(|r| json!({"value": format!("{r:04}{}", "r".repeat(980))}))
        .collect();
    json!({
        "schemas": [USER, ENTERPRISE],
        "userName": format!("user{i:04}@example.com"),
        "displayName": big('d'), "nickName": big('n'), "title": big('t'),
        "userType": big('u'), "locale": big('l'), "timezone": big('z'),
        "preferredLanguage": big('p'),
        "name": {"formatted": big('f'), "givenName": big('g'), "familyName": big('a'),
                 "middleName": big('m'), "honorificPrefix": big('h'), "honorificSuffix": big('s')},
        "roles": roles,
        ENTERPRISE: {"employeeNumber": big('e'), "costCenter": big('c'), "organization": big('o'),
                     "division": big('v'), "department": big('x')}
    })
}

/// README "Limits": the bound on the server's peak memory while it answers
/// the largest list responses (and a huge group, `large_groups`).
pub(crate) const PEAK_RSS_BOUND: u64 = 160 * 1024 * 1024;

#[tokio::test]
async fn the_largest_list_responses_of_the_largest_users_keep_peak_memory_under_its_bound() {
    let app = spawn_app().await;
    // Seeded through the in-process server, so the measured one (a child
    // process on the same database) has done nothing but answer lists.
    let users: Vec<Value> = (0..80).map(largest_user).collect();
    for chunk in users.chunks(40) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(
                |u| json!({"method": "POST", "path": "/Users", "bulkId": u["userName"], "data": u}),
            )
            .collect();
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
        let out = json(app.post("/Bulk", &body).await).await;
        for op in out["Operations"].as_array().unwrap() {
            assert_eq!(op["status"], "201", "{op}");
        }
    }
    let served = Served::start(&app.db_url, &[("RUST_LOG", "info")]);
    let pid = served.pid();
    let idle = peak_rss(pid);
    let url = format!("{}/scim/v2/Users", served.origin);
    let lists = (0..16).map(|i| {
        let request = app.client.get(&url).bearer_auth(&app.token);
        let request = match i % 2 {
            0 => request.query(&[("count", "1000")]),
            _ => request.query(&[("count", "1000"), ("cursor", "")]),
        };
        async move {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.bytes().await.unwrap().len()
        }
    });
    let sizes = futures_util::future::join_all(lists).await;
    let peak = peak_rss(pid);
    served.stop();
    for size in sizes {
        // A full page at the default budget (4 MiB of resources): the
        // response is as large as it is allowed to be.
        assert!(size > 4_000_000 && size < 4_300_000, "{size} bytes");
    }
    eprintln!(
        "peak RSS: idle {} MiB, answering {} MiB",
        idle >> 20,
        peak >> 20
    );
    assert!(peak < PEAK_RSS_BOUND, "peak RSS {} MiB", peak >> 20);
}
