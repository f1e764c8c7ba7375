//! Sorting (RFC 7644 §3.4.2.3), index paging (§3.4.2.4) and cursor paging
//! (RFC 9865) on lists and searches.

use std::collections::HashSet;

use dirsync::config::ServerSettings;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_scim_error, enc, ids, json, spawn_app, spawn_app_with};

fn field<'a>(list: &'a Value, pick: impl Fn(&'a Value) -> Option<&'a str>) -> Vec<Option<&'a str>> {
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(pick)
        .collect()
}

/// Users named for sorting: mixed case, and one without a familyName.
async fn sortable() -> TestApp {
    let app = spawn_app().await;
    for (user_name, family, title) in [
        ("carol", Some("Zed"), None),
        ("Alice", Some("young"), Some("b")),
        ("bob", None, Some("A")),
        ("dave", Some("Xu"), None),
    ] {
        let mut body = json!({"userName": user_name, "emails": [{"value": format!("{user_name}@x.example"), "type": "work"}]});
        if let Some(family) = family {
            body["name"] = json!({"familyName": family});
        }
        if let Some(title) = title {
            body["title"] = json!(title);
        }
        app.post_created("/Users", &body).await;
    }
    app
}

#[tokio::test]
async fn sort_by_orders_case_insensitively_ascending_by_default() {
    let app = sortable().await;
    let user_names = |list: &Value| -> Vec<String> {
        field(list, |r| r["userName"].as_str())
            .into_iter()
            .map(|n| n.unwrap().to_owned())
            .collect()
    };
    let asc = app.get_ok("/Users?sortBy=userName").await;
    assert_eq!(user_names(&asc), ["Alice", "bob", "carol", "dave"]);
    let asc = app
        .get_ok("/Users?sortBy=USERNAME&sortOrder=Ascending")
        .await;
    assert_eq!(user_names(&asc), ["Alice", "bob", "carol", "dave"]);
    let desc = app
        .get_ok("/Users?sortBy=userName&sortOrder=descending")
        .await;
    assert_eq!(user_names(&desc), ["dave", "carol", "bob", "Alice"]);
    // Multi-valued attributes sort by their (primary or first) value.
    let by_email = app
        .get_ok("/Users?sortBy=emails&sortOrder=descending")
        .await;
    assert_eq!(user_names(&by_email), ["dave", "carol", "bob", "Alice"]);
    // The same through a SearchRequest.
    let searched = json(
        app.post(
            "/Users/.search",
            &json!({"sortBy": "userName", "sortOrder": "descending", "count": 2}),
        )
        .await,
    )
    .await;
    assert_eq!(user_names(&searched), ["dave", "carol"]);
}

#[tokio::test]
async fn resources_without_the_sort_attribute_come_last_in_both_orders() {
    let app = sortable().await;
    let family = |list: &Value| -> Vec<Option<String>> {
        field(list, |r| r["name"]["familyName"].as_str())
            .into_iter()
            .map(|n| n.map(str::to_owned))
            .collect()
    };
    let asc = app.get_ok("/Users?sortBy=name.familyName").await;
    assert_eq!(
        family(&asc),
        [
            Some("Xu".into()),
            Some("young".into()),
            Some("Zed".into()),
            None
        ]
    );
    let desc = app
        .get_ok("/Users?sortBy=name.familyName&sortOrder=descending")
        .await;
    assert_eq!(
        family(&desc),
        [
            Some("Zed".into()),
            Some("young".into()),
            Some("Xu".into()),
            None
        ]
    );
    let titles = app.get_ok("/Users?sortBy=title&sortOrder=descending").await;
    assert_eq!(
        field(&titles, |r| r["title"].as_str()),
        [Some("b"), Some("A"), None, None]
    );
}

#[tokio::test]
async fn groups_sort_by_display_name() {
    let app = spawn_app().await;
    for name in ["beta", "Alpha", "gamma"] {
        app.create_group(name, &[]).await;
    }
    let list = app
        .get_ok("/Groups?sortBy=displayName&sortOrder=descending")
        .await;
    assert_eq!(
        field(&list, |r| r["displayName"].as_str()),
        [Some("gamma"), Some("beta"), Some("Alpha")]
    );
}

#[tokio::test]
async fn sort_by_an_unknown_attribute_or_order_is_400() {
    let app = sortable().await;
    assert_scim_error(app.get("/Users?sortBy=nosuch").await, 400, None).await;
    assert_scim_error(
        app.get("/Users?sortBy=userName&sortOrder=sideways").await,
        400,
        None,
    )
    .await;
}

#[tokio::test]
async fn start_index_and_count_page_through_a_stable_order() {
    let app = spawn_app().await;
    let mut all = Vec::new();
    for i in 0..7 {
        all.push(app.create_user(&format!("user{i}@example.com")).await);
    }
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let page = app
            .get_ok(&format!("/Users?startIndex={start}&count=3"))
            .await;
        assert_eq!(page["totalResults"], 7);
        assert_eq!(page["startIndex"], start);
        let expected_len = if start == 7 { 1 } else { 3 };
        assert_eq!(page["itemsPerPage"], expected_len);
        assert_eq!(page["Resources"].as_array().unwrap().len(), expected_len);
        seen.extend(ids(&page));
    }
    let whole = ids(&app.get_ok("/Users").await);
    assert_eq!(seen, whole, "pages concatenate to the full listing");
    let mut sorted = seen.clone();
    sorted.sort();
    let mut created = all.clone();
    created.sort();
    assert_eq!(sorted, created, "each user exactly once");

    // Past the end: no resources, the total still told.
    let past = app.get_ok("/Users?startIndex=20&count=3").await;
    assert_eq!(past["totalResults"], 7);
    assert_eq!(past["itemsPerPage"], 0);
    assert_eq!(past["Resources"], json!([]));
    assert_eq!(past["startIndex"], 20);
}

#[tokio::test]
async fn pages_stay_stable_when_many_resources_tie_on_the_sort_key() {
    let app = spawn_app().await;
    for i in 0..9 {
        let body = json!({"userName": format!("tie{i}"), "active": i % 3 == 0});
        app.post_created("/Users", &body).await;
    }
    let mut seen = Vec::new();
    for start in [1, 3, 5, 7, 9] {
        let page = app
            .get_ok(&format!("/Users?sortBy=active&startIndex={start}&count=2"))
            .await;
        seen.extend(ids(&page));
    }
    assert_eq!(seen.len(), 9);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 9, "no repeats");
    let again: Vec<String> = ids(&app.get_ok("/Users?sortBy=active&count=9").await);
    assert_eq!(seen, again);
}

#[tokio::test]
async fn start_index_below_one_is_read_as_one() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com").await;
    app.create_user("b@example.com").await;
    for start in ["0", "-5"] {
        let page = app
            .get_ok(&format!("/Users?startIndex={start}&count=1"))
            .await;
        assert_eq!(page["startIndex"], 1, "{start}");
        assert_eq!(ids(&page), vec![a.clone()], "{start}");
    }
}

#[tokio::test]
async fn count_zero_returns_only_the_total() {
    let app = spawn_app().await;
    app.create_user("a@example.com").await;
    app.create_user("b@example.com").await;
    for path in ["/Users?count=0", "/Users?count=-3"] {
        let page = app.get_ok(path).await;
        assert_eq!(page["totalResults"], 2, "{path}");
        assert_eq!(page["itemsPerPage"], 0, "{path}");
        assert!(
            page.get("Resources")
                .is_none_or(|r| r.as_array().is_some_and(Vec::is_empty)),
            "{path}: {page}"
        );
    }
    let filtered = app
        .get_ok(&format!(
            "/Users?count=0&filter={}",
            enc(r#"userName sw "a""#)
        ))
        .await;
    assert_eq!(filtered["totalResults"], 1);
}

#[tokio::test]
async fn count_above_the_maximum_is_capped() {
    let app = spawn_app_with(ServerSettings {
        max_page_size: 5,
        ..ServerSettings::for_tests()
    })
    .await;
    for i in 0..8 {
        app.create_user(&format!("u{i}@example.com")).await;
    }
    let page = app.get_ok("/Users?count=1000").await;
    assert_eq!(page["totalResults"], 8);
    assert_eq!(page["itemsPerPage"], 5);
    assert_eq!(page["Resources"].as_array().unwrap().len(), 5);
    let searched = json(app.post("/Users/.search", &json!({"count": 1000})).await).await;
    assert_eq!(searched["itemsPerPage"], 5);
    let cursor = app.get_ok("/Users?cursor=&count=1000").await;
    assert_eq!(cursor["Resources"].as_array().unwrap().len(), 5);
    assert!(cursor["nextCursor"].is_string());
    let second = app
        .get_ok(&format!(
            "/Users?cursor={}&count=1000",
            enc(cursor["nextCursor"].as_str().unwrap())
        ))
        .await;
    assert_eq!(second["Resources"].as_array().unwrap().len(), 3);
}

/// Follow `nextCursor` from an empty cursor; returns every id in order.
async fn walk(app: &TestApp, collection: &str, extra: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let page = app
            .get_ok(&format!(
                "{collection}?cursor={}&count=3{extra}",
                enc(&cursor)
            ))
            .await;
        assert!(
            page.get("startIndex").is_none(),
            "cursor pages have no startIndex: {page}"
        );
        let items = ids(&page);
        assert!(items.len() <= 3);
        seen.extend(items);
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = next.to_owned(),
            None => return seen,
        }
    }
    panic!("nextCursor never ended")
}

#[tokio::test]
async fn cursor_paging_visits_every_resource_exactly_once() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(app.create_user(&format!("c{i}@example.com")).await);
    }
    let seen = walk(&app, "/Users", "").await;
    let mut sorted = seen.clone();
    sorted.sort();
    users.sort();
    assert_eq!(sorted, users);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 10);

    // The first page tells the total.
    let first = app.get_ok("/Users?cursor=&count=3").await;
    assert_eq!(first["totalResults"], 10);
    assert_eq!(first["itemsPerPage"], 3);

    // With a sort order and a filter, cursors follow that listing.
    let sorted_walk = walk(
        &app,
        "/Users",
        &format!(
            "&sortBy=userName&sortOrder=descending&filter={}",
            enc(r#"userName sw "c""#)
        ),
    )
    .await;
    let expected = ids(&app
        .get_ok("/Users?sortBy=userName&sortOrder=descending&count=100")
        .await);
    assert_eq!(sorted_walk, expected);

    // Groups page the same way.
    let mut groups = Vec::new();
    for i in 0..4 {
        groups.push(app.create_group(&format!("g{i}"), &[]).await);
    }
    let mut seen = walk(&app, "/Groups", "").await;
    seen.sort();
    groups.sort();
    assert_eq!(seen, groups);
}

#[tokio::test]
async fn a_cursor_survives_the_deletion_of_the_last_resource_it_saw() {
    let app = spawn_app().await;
    for i in 0..6 {
        app.create_user(&format!("d{i}@example.com")).await;
    }
    let first = app.get_ok("/Users?cursor=&count=3").await;
    let last_seen = ids(&first).pop().unwrap();
    assert_eq!(
        app.delete(&format!("/Users/{last_seen}")).await.status(),
        204
    );
    let next = first["nextCursor"].as_str().unwrap();
    let second = app
        .get_ok(&format!("/Users?cursor={}&count=3", enc(next)))
        .await;
    let all_now = ids(&app.get_ok("/Users").await);
    assert_eq!(ids(&second), all_now[2..].to_vec());
}

#[tokio::test]
async fn an_invalid_cursor_is_400_invalid_cursor() {
    let app = spawn_app().await;
    for i in 0..4 {
        app.create_user(&format!("x{i}@example.com")).await;
    }
    for cursor in ["!!!", "bm90LWEtY3Vyc29y", "YTpub3QtYS11dWlk", "bzotMQ"] {
        let res = app
            .get(&format!("/Users?cursor={}&count=2", enc(cursor)))
            .await;
        assert_scim_error(res, 400, Some("invalidCursor")).await;
    }
    let res = app
        .post("/Users/.search", &json!({"cursor": "garbage!", "count": 2}))
        .await;
    assert_scim_error(res, 400, Some("invalidCursor")).await;
    // A cursor from an unsorted listing replayed with a sort order.
    let first = app.get_ok("/Users?cursor=&count=2").await;
    let next = first["nextCursor"].as_str().unwrap();
    let res = app
        .get(&format!(
            "/Users?cursor={}&count=2&sortBy=userName",
            enc(next)
        ))
        .await;
    assert_scim_error(res, 400, Some("invalidCursor")).await;
}

#[tokio::test]
async fn cursor_together_with_start_index_is_400() {
    let app = spawn_app().await;
    app.create_user("a@example.com").await;
    assert_scim_error(app.get("/Users?cursor=&startIndex=1").await, 400, None).await;
    let first = app.get_ok("/Users?cursor=&count=1").await;
    assert!(first.get("nextCursor").is_none());
    let res = app
        .post("/Groups/.search", &json!({"cursor": "", "startIndex": 2}))
        .await;
    assert_scim_error(res, 400, None).await;
}

#[tokio::test]
async fn root_search_pages_by_index_only() {
    let app = spawn_app().await;
    app.create_user("a@example.com").await;
    app.create_group("G", &[]).await;
    let res = app.post("/.search", &json!({"cursor": ""})).await;
    assert_scim_error(res, 400, None).await;
    let page = json(
        app.post("/.search", &json!({"startIndex": 2, "count": 5}))
            .await,
    )
    .await;
    assert_eq!(page["totalResults"], 2);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["Resources"][0]["meta"]["resourceType"], "Group");
}

#[tokio::test]
async fn an_enormous_start_index_is_an_empty_page() {
    let app = spawn_app().await;
    app.create_user("a@example.com").await;
    let page = app
        .get_ok("/Users?startIndex=9223372036854775807&count=10")
        .await;
    assert_eq!(page["totalResults"], 1);
    assert_eq!(page["Resources"], json!([]));
    let res = app.get("/Users?startIndex=99999999999999999999999").await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
    let res = app.get("/Users?count=ten").await;
    assert_scim_error(res, 400, Some("invalidValue")).await;
}

#[tokio::test]
async fn sort_by_meta_last_modified_puts_the_latest_change_first_when_descending() {
    let app = spawn_app().await;
    let first = app.create_user("first@example.com").await;
    let second = app.create_user("second@example.com").await;
    let res = app
        .patch(
            &format!("/Users/{first}"),
            &crate::helpers::patch_op(
                json!([{"op": "replace", "path": "title", "value": "later"}]),
            ),
        )
        .await;
    assert_eq!(res.status(), 200);
    let list = app
        .get_ok("/Users?sortBy=meta.lastModified&sortOrder=descending")
        .await;
    let order = ids(&list);
    let stamps: Vec<&str> = field(&list, |r| r["meta"]["lastModified"].as_str())
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted, "descending by lastModified");
    assert_eq!(order.len(), 2);
    assert!(order.contains(&first) && order.contains(&second));
    let asc = app.get_ok("/Users?sortBy=meta.created").await;
    assert_eq!(ids(&asc), vec![first, second]);
}
