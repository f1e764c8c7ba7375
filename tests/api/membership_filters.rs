//! Filters on membership (`members` of a Group, `groups` of a User), answered
//! from the membership rows: the RFC 7644 §3.4.2.2 forms `members[value eq
//! "id"]` and `members.value eq "id"`, Entra's `members eq "id"`, `pr`; every
//! other form of them is 400 invalidFilter, never a silent empty answer.

use serde_json::json;

use crate::helpers::{TestApp, assert_scim_error, enc, ids, patch_op, spawn_app};

/// ann and bob in sales, bob in ops, cy and the sales group in parent, dan in
/// nothing, and an empty group.
struct Org {
    app: TestApp,
    names: Vec<(String, &'static str)>,
}

async fn org() -> Org {
    let app = spawn_app().await;
    let ann = app.create_user("ann@example.com").await;
    let bob = app.create_user("bob@example.com").await;
    let cy = app.create_user("cy@example.com").await;
    let dan = app.create_user("dan@example.com").await;
    let sales = app.create_group("Sales", &[&ann, &bob]).await;
    let ops = app.create_group("Ops", &[&bob]).await;
    let parent = app.create_group("Parent", &[&cy, &sales]).await;
    let empty = app.create_group("Empty", &[]).await;
    let names = vec![
        (ann, "ann"),
        (bob, "bob"),
        (cy, "cy"),
        (dan, "dan"),
        (sales, "sales"),
        (ops, "ops"),
        (parent, "parent"),
        (empty, "empty"),
    ];
    Org { app, names }
}

impl Org {
    fn id(&self, name: &str) -> &str {
        &self.names.iter().find(|(_, n)| *n == name).unwrap().0
    }

    /// The filter with `{name}` replaced by that resource's id.
    fn expand(&self, filter: &str) -> String {
        self.names.iter().fold(filter.to_owned(), |f, (id, name)| {
            f.replace(&format!("{{{name}}}"), id)
        })
    }

    /// What `GET {collection}?filter=…` answers, by name, sorted.
    async fn select(&self, collection: &str, filter: &str) -> Vec<&'static str> {
        let list = self.app.filter(collection, &self.expand(filter)).await;
        let found = ids(&list);
        assert_eq!(list["totalResults"], found.len(), "{filter}: {list}");
        let mut names: Vec<&'static str> = found
            .iter()
            .map(|id| {
                self.names
                    .iter()
                    .find(|(known, _)| known == id)
                    .unwrap_or_else(|| panic!("{filter}: unexpected {id}"))
                    .1
            })
            .collect();
        names.sort_unstable();
        names
    }

    async fn check(&self, collection: &str, cases: &[(&str, &[&str])]) {
        for (filter, expected) in cases {
            assert_eq!(
                &self.select(collection, filter).await,
                expected,
                "{collection} {filter}"
            );
        }
    }
}

#[tokio::test]
async fn groups_filtered_by_a_member_are_the_groups_that_have_it() {
    let o = org().await;
    o.check(
        "/Groups",
        &[
            (r#"members[value eq "{ann}"]"#, &["sales"]),
            (r#"members[value eq "{bob}"]"#, &["ops", "sales"]),
            (r#"members.value eq "{bob}""#, &["ops", "sales"]),
            // Entra's membership check names the complex attribute (as P2).
            (r#"members eq "{bob}""#, &["ops", "sales"]),
            (r#"Members[Value EQ "{cy}"]"#, &["parent"]),
            (
                r#"members[value eq "{ann}" or value eq "{cy}"]"#,
                &["parent", "sales"],
            ),
            // A group is a member like a user.
            (r#"members[value eq "{sales}"]"#, &["parent"]),
            (r#"members[value eq "{dan}"]"#, &[]),
            (
                r#"members[value eq "00000000-0000-0000-0000-000000000000"]"#,
                &[],
            ),
            ("members pr", &["ops", "parent", "sales"]),
            ("members[value pr]", &["ops", "parent", "sales"]),
            ("not (members pr)", &["empty"]),
            (r#"not (members[value eq "{bob}"])"#, &["empty", "parent"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn users_filtered_by_a_group_are_its_direct_members() {
    let o = org().await;
    o.check(
        "/Users",
        &[
            (r#"groups[value eq "{sales}"]"#, &["ann", "bob"]),
            (r#"groups.value eq "{ops}""#, &["bob"]),
            (r#"groups eq "{ops}""#, &["bob"]),
            (
                r#"groups[value eq "{ops}" or value eq "{parent}"]"#,
                &["bob", "cy"],
            ),
            // `groups` lists direct memberships (the representation's), so ann
            // and bob, in parent through sales, are not selected by parent.
            (r#"groups[value eq "{parent}"]"#, &["cy"]),
            (r#"groups[value eq "{empty}"]"#, &[]),
            ("groups pr", &["ann", "bob", "cy"]),
            ("not (groups pr)", &["dan"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_membership_check_combines_with_id_as_entra_and_okta_send_it() {
    let o = org().await;
    o.check(
        "/Groups",
        &[
            (
                r#"id eq "{sales}" and members[value eq "{ann}"]"#,
                &["sales"],
            ),
            (r#"id eq "{ops}" and members[value eq "{ann}"]"#, &[]),
            (r#"id eq "{ops}" and members eq "{bob}""#, &["ops"]),
            (
                r#"displayName eq "sales" and members.value eq "{bob}""#,
                &["sales"],
            ),
            (
                r#"displayName sw "o" or members[value eq "{cy}"]"#,
                &["ops", "parent"],
            ),
        ],
    )
    .await;
    o.check(
        "/Users",
        &[
            (
                r#"userName eq "ann@example.com" and groups[value eq "{sales}"]"#,
                &["ann"],
            ),
            (
                r#"userName eq "ann@example.com" and groups[value eq "{ops}"]"#,
                &[],
            ),
        ],
    )
    .await;
    // The answer follows the membership rows: after a PATCH removes ann from
    // sales, the check says so.
    let res = o
        .app
        .patch(
            &format!("/Groups/{}", o.id("sales")),
            &patch_op(json!([{
                "op": "remove",
                "path": format!(r#"members[value eq "{}"]"#, o.id("ann"))
            }])),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    o.check(
        "/Groups",
        &[(r#"id eq "{sales}" and members[value eq "{ann}"]"#, &[])],
    )
    .await;
    o.check("/Users", &[(r#"groups[value eq "{sales}"]"#, &["bob"])])
        .await;
}

#[tokio::test]
async fn membership_filters_never_see_another_directory() {
    let o = org().await;
    let (_, other_token) = o.app.other_directory(false).await;
    let other = |method: reqwest::Method, path: &str| o.app.request_as(&other_token, method, path);
    let res = other(reqwest::Method::POST, "/Users")
        .header("content-type", "application/scim+json")
        .body(json!({"userName": "xavier@example.com"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let xavier = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The other directory's group names its own user and, were it let, ours.
    let res = other(reqwest::Method::POST, "/Groups")
        .header("content-type", "application/scim+json")
        .body(
            json!({"displayName": "Sales", "members": [{"value": xavier}, {"value": o.id("ann")}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let theirs = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    o.check(
        "/Groups",
        &[(&format!(r#"members[value eq "{xavier}"]"#), &[])],
    )
    .await;
    o.check(
        "/Users",
        &[(&format!(r#"groups[value eq "{theirs}"]"#), &[])],
    )
    .await;
    for (path, filter) in [
        ("/Groups", format!(r#"members[value eq "{}"]"#, o.id("ann"))),
        ("/Users", format!(r#"groups[value eq "{}"]"#, o.id("sales"))),
    ] {
        let list: serde_json::Value = other(
            reqwest::Method::GET,
            &format!("{path}?filter={}", enc(&filter)),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(list["totalResults"], 0, "{path} {filter}: {list}");
    }
    let list: serde_json::Value = other(
        reqwest::Method::GET,
        &format!(
            "/Groups?filter={}",
            enc(&format!(r#"members eq "{xavier}""#))
        ),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ids(&list), [theirs]);
}

#[rstest::rstest]
#[case("/Groups", r#"members[display co "x"]"#)]
#[case("/Groups", r#"members[type eq "User"]"#)]
#[case("/Groups", r#"members[value ne "{ann}"]"#)]
#[case("/Groups", r#"members[value co "a"]"#)]
#[case("/Groups", r#"members[value eq "{ann}" and value eq "{bob}"]"#)]
#[case("/Groups", r#"members[value eq "{ann}" or type eq "User"]"#)]
#[case("/Groups", r#"members[not (value eq "{ann}")]"#)]
#[case("/Groups", r#"members.display eq "ann@example.com""#)]
#[case("/Groups", r#"members.value sw "0""#)]
#[case("/Groups", r#"members ne "{ann}""#)]
#[case("/Groups", "members eq null")]
#[case("/Groups", "members.type pr")]
#[case("/Groups", r#"members[type eq "User"].value eq "{ann}""#)]
#[case("/Users", r#"groups[display eq "Sales"]"#)]
#[case("/Users", r#"groups.display eq "Sales""#)]
#[case("/Users", r#"groups[type eq "direct"]"#)]
#[case("/Users", r#"groups co "a""#)]
#[tokio::test]
async fn other_membership_filters_are_invalid_filter(
    #[case] collection: &str,
    #[case] filter: &str,
) {
    let o = org().await;
    let filter = o.expand(filter);
    let res = o
        .app
        .get(&format!("{collection}?filter={}", enc(&filter)))
        .await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
    let res = o
        .app
        .post(&format!("{collection}/.search"), &json!({"filter": filter}))
        .await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
}

#[tokio::test]
async fn a_membership_filter_of_1024_ids_runs_and_1025_is_invalid_filter() {
    let o = org().await;
    let filter = |terms: usize| {
        let mut values = vec![format!(r#"value eq "{}""#, o.id("cy"))];
        values.extend((1..terms).map(|i| format!(r#"value eq "{:032x}""#, i)));
        format!("members[{}]", values.join(" or "))
    };
    let res = o
        .app
        .post("/Groups/.search", &json!({"filter": filter(1024)}))
        .await;
    assert_eq!(res.status(), 200);
    let list: serde_json::Value = res.json().await.unwrap();
    assert_eq!(ids(&list), [o.id("parent")]);
    let res = o
        .app
        .post("/Groups/.search", &json!({"filter": filter(1025)}))
        .await;
    assert_scim_error(res, 400, Some("invalidFilter")).await;
}
