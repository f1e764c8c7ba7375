//! Filters (RFC 7644 §3.4.2.2) on `/Users` and `/Groups`: every operator, logic
//! and grouping, value paths, sub-attributes, extension URNs, meta dates, case
//! rules, encodings, and 400 invalidFilter for what cannot be parsed.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_scim_error, enc, spawn_app};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Three users that tell the operators apart.
struct People {
    app: TestApp,
    bjensen: String,
    jsmith: String,
    mpepper: String,
}

async fn people() -> People {
    let app = spawn_app().await;
    let boss = app.create_user("boss@corp.example").await;
    // The boss only exists to be a manager; filters below exclude it by name.
    let bjensen = app
        .post_created(
            "/Users",
            &json!({
                "userName": "bjensen@example.com",
                "externalId": "Ext-A",
                "displayName": "Babs Jensen",
                "title": "Tour Guide",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": true},
                    {"value": "babs@jensen.org", "type": "home"}
                ],
                "active": true,
                ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": boss}}
            }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jsmith = app
        .post_created(
            "/Users",
            &json!({
                "userName": "jsmith@example.org",
                "externalId": "ext-a",
                "title": "Engineer",
                "name": {"givenName": "John", "familyName": "Smith"},
                "emails": [{"value": "jsmith@example.org", "type": "work", "primary": true}],
                "active": false,
                ENTERPRISE: {"employeeNumber": "100"}
            }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mpepper = app
        .post_created(
            "/Users",
            &json!({
                "userName": "mpepper@example.com",
                "name": {"givenName": "Mary", "familyName": "Pepper"},
                "emails": [{"value": "mp@home.net", "type": "home"}],
                "active": true
            }),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    People {
        app,
        bjensen,
        jsmith,
        mpepper,
    }
}

impl People {
    /// The users a filter selects (the manager excluded), by short name.
    async fn select(&self, filter: &str) -> Vec<&'static str> {
        let list = self.app.filter("/Users", filter).await;
        self.short_names(&list, filter)
    }

    fn short_names(&self, list: &Value, filter: &str) -> Vec<&'static str> {
        let resources = list["Resources"]
            .as_array()
            .unwrap_or_else(|| panic!("{filter}: {list}"));
        assert_eq!(
            list["totalResults"].as_u64().unwrap() as usize,
            resources.len(),
            "{filter}: totalResults vs Resources"
        );
        let mut names: Vec<&'static str> = resources
            .iter()
            .filter_map(|r| match r["id"].as_str().unwrap() {
                id if id == self.bjensen => Some("bjensen"),
                id if id == self.jsmith => Some("jsmith"),
                id if id == self.mpepper => Some("mpepper"),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names
    }

    async fn check(&self, cases: &[(&str, &[&str])]) {
        for (filter, expected) in cases {
            assert_eq!(&self.select(filter).await, expected, "{filter}");
        }
    }
}

#[tokio::test]
async fn eq_and_ne_compare_whole_values() {
    let p = people().await;
    p.check(&[
        (r#"userName eq "bjensen@example.com""#, &["bjensen"]),
        (r#"title eq "Engineer""#, &["jsmith"]),
        (r#"active eq false"#, &["jsmith"]),
        (r#"active eq true"#, &["bjensen", "mpepper"]),
        (
            r#"userName ne "bjensen@example.com""#,
            &["jsmith", "mpepper"],
        ),
        (r#"name.familyName ne "Smith""#, &["bjensen", "mpepper"]),
        (r#"active ne true"#, &["jsmith"]),
        (&format!(r#"id eq "{}""#, p.jsmith), &["jsmith"]),
    ])
    .await;
}

#[tokio::test]
async fn co_sw_and_ew_match_substrings() {
    let p = people().await;
    p.check(&[
        (r#"name.familyName co "ens""#, &["bjensen"]),
        (r#"name.familyName co "E""#, &["bjensen", "mpepper"]),
        (r#"userName sw "J""#, &["jsmith"]),
        (r#"userName sw "bjensen@""#, &["bjensen"]),
        (r#"userName ew ".ORG""#, &["jsmith"]),
        (r#"userName ew "@example.com""#, &["bjensen", "mpepper"]),
        (r#"title co "our""#, &["bjensen"]),
        // P2: a complex multi-valued attribute compares its `value`.
        (r#"emails co "jensen""#, &["bjensen"]),
        // LIKE wildcards in a value are literal characters.
        (r#"userName co "%""#, &[]),
        (r#"userName co "_""#, &[]),
    ])
    .await;
}

#[tokio::test]
async fn gt_ge_lt_le_order_strings_case_insensitively() {
    let p = people().await;
    p.check(&[
        (r#"userName gt "jsmith@example.org""#, &["mpepper"]),
        (
            r#"userName ge "JSMITH@EXAMPLE.ORG""#,
            &["jsmith", "mpepper"],
        ),
        (r#"userName lt "jsmith@example.org""#, &["bjensen"]),
        (
            r#"userName le "jsmith@example.org""#,
            &["bjensen", "jsmith"],
        ),
    ])
    .await;
    // "Pepper" and "Smith" sort after "p" case-insensitively.
    assert_eq!(
        p.select(r#"name.familyName gt "p""#).await,
        vec!["jsmith", "mpepper"]
    );
}

#[tokio::test]
async fn pr_selects_resources_that_have_the_attribute() {
    let p = people().await;
    p.check(&[
        ("title pr", &["bjensen", "jsmith"]),
        ("externalId pr", &["bjensen", "jsmith"]),
        ("name.familyName pr", &["bjensen", "jsmith", "mpepper"]),
        ("displayName pr", &["bjensen"]),
        ("nickName pr", &[]),
        (
            &format!("{ENTERPRISE}:employeeNumber pr"),
            &["bjensen", "jsmith"],
        ),
        (&format!("{ENTERPRISE}:manager pr"), &["bjensen"]),
    ])
    .await;
}

#[tokio::test]
async fn and_or_not_and_grouping_combine_with_and_binding_tighter() {
    let p = people().await;
    p.check(&[
        (r#"title pr and active eq true"#, &["bjensen"]),
        (
            r#"userName sw "b" or userName sw "m""#,
            &["bjensen", "mpepper"],
        ),
        (r#"not (userName sw "b")"#, &["jsmith", "mpepper"]),
        (r#"not (title pr)"#, &["mpepper"]),
        // mpepper has no title, so `title eq` does not match her and `not` does.
        (r#"not (title eq "Tour Guide")"#, &["jsmith", "mpepper"]),
        (r#"emails[not (primary eq true)]"#, &["bjensen", "mpepper"]),
        // RFC 7644 §3.4.2.2: "and" binds tighter than "or".
        (
            r#"userName sw "m" or userName sw "j" and active eq false"#,
            &["jsmith", "mpepper"],
        ),
        (
            r#"(userName sw "m" or userName sw "j") and active eq false"#,
            &["jsmith"],
        ),
        (
            r#"active eq true and (title eq "Tour Guide" or name.givenName eq "Mary")"#,
            &["bjensen", "mpepper"],
        ),
        (
            r#"not (active eq true and not (title pr))"#,
            &["bjensen", "jsmith"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn value_paths_match_within_one_element() {
    let p = people().await;
    p.check(&[
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            &["bjensen"],
        ),
        (r#"emails[type eq "home"]"#, &["bjensen", "mpepper"]),
        // Both conditions must hold for the same element: bjensen's home email
        // is not at example.com and her work email is not "home".
        (r#"emails[type eq "home" and value co "example.com"]"#, &[]),
        (r#"emails[not (type eq "work")]"#, &["bjensen", "mpepper"]),
        (r#"emails[primary eq true]"#, &["bjensen", "jsmith"]),
        // E8: the form Entra sends.
        (
            r#"emails[type eq "work"].value eq "jsmith@example.org""#,
            &["jsmith"],
        ),
        (r#"emails.value eq "MP@home.net""#, &["mpepper"]),
        (r#"emails.type eq "home""#, &["bjensen", "mpepper"]),
    ])
    .await;
}

#[tokio::test]
async fn sub_attributes_and_extension_urns_resolve() {
    let p = people().await;
    let boss = p
        .app
        .filter("/Users", r#"userName eq "boss@corp.example""#)
        .await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    p.check(&[
        (r#"name.familyName eq "jensen""#, &["bjensen"]),
        (r#"name.givenName sw "J""#, &["jsmith"]),
        (
            &format!(r#"{ENTERPRISE}:employeeNumber eq "701984""#),
            &["bjensen"],
        ),
        (
            &format!(r#"{ENTERPRISE}:employeeNumber eq "100""#),
            &["jsmith"],
        ),
        (
            &format!(r#"{ENTERPRISE}:manager.value eq "{boss}""#),
            &["bjensen"],
        ),
        (
            &format!(
                r#"{ENTERPRISE}:manager.value eq "{}""#,
                uuid::Uuid::new_v4()
            ),
            &[],
        ),
        // RFC 8141: the URN compares case-insensitively.
        (
            r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:employeeNumber eq "100""#,
            &["jsmith"],
        ),
        // The core schema URN may prefix core attributes.
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "Pepper""#,
            &["mpepper"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn meta_created_and_last_modified_compare_as_instants() {
    let p = people().await;
    // Give jsmith a later lastModified than its created.
    let res = p
        .app
        .patch(
            &format!("/Users/{}", p.jsmith),
            &crate::helpers::patch_op(json!([{"op": "replace", "path": "title", "value": "Lead"}])),
        )
        .await;
    assert_eq!(res.status(), 200);
    let all = p.app.get_ok("/Users?count=100").await;
    let users: Vec<&Value> = all["Resources"].as_array().unwrap().iter().collect();
    let instant = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    for field in ["created", "lastModified"] {
        for pivot_user in &users {
            let pivot = pivot_user["meta"][field].as_str().unwrap();
            let t = instant(&pivot_user["meta"][field]);
            for (op, keep) in [
                ("gt", (|a: i64, b: i64| a > b) as fn(i64, i64) -> bool),
                ("ge", |a, b| a >= b),
                ("lt", |a, b| a < b),
                ("le", |a, b| a <= b),
                ("eq", |a, b| a == b),
            ] {
                let filter = format!(r#"meta.{field} {op} "{pivot}""#);
                let mut expected: Vec<&str> = users
                    .iter()
                    .filter(|u| keep(instant(&u["meta"][field]), t))
                    .map(|u| u["id"].as_str().unwrap())
                    .collect();
                expected.sort_unstable();
                let list = p.app.filter("/Users", &filter).await;
                let mut got: Vec<&str> = list["Resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u["id"].as_str().unwrap())
                    .collect();
                got.sort_unstable();
                assert_eq!(got, expected, "{filter}");
            }
        }
    }
    // Offsets are instants too; the past and the future bound everything.
    assert_eq!(
        p.app
            .filter("/Users", r#"meta.created gt "2000-01-01T02:00:00+02:00""#)
            .await["totalResults"],
        4
    );
    assert_eq!(
        p.app
            .filter("/Users", r#"meta.lastModified ge "2999-01-01T00:00:00Z""#)
            .await["totalResults"],
        0
    );
    let lead = p.app.filter("/Users", r#"title eq "Lead""#).await;
    let modified = lead["Resources"][0]["meta"]["lastModified"]
        .as_str()
        .unwrap();
    assert!(
        p.select(&format!(r#"meta.lastModified ge "{modified}""#))
            .await
            .contains(&"jsmith")
    );
}

#[tokio::test]
async fn attribute_names_and_operators_are_case_insensitive() {
    let p = people().await;
    p.check(&[
        (r#"USERNAME EQ "bjensen@example.com""#, &["bjensen"]),
        (r#"Username Eq "bjensen@example.com""#, &["bjensen"]),
        (r#"NAME.FAMILYNAME Co "jen""#, &["bjensen"]),
        (
            r#"Emails[TYPE Eq "work" AND Value Co "example.com"]"#,
            &["bjensen"],
        ),
        (r#"TITLE PR aNd NOT (Active EQ true)"#, &["jsmith"]),
        (
            r#"userName SW "m" OR userName sw "j""#,
            &["jsmith", "mpepper"],
        ),
    ])
    .await;
}

#[tokio::test]
async fn user_name_compares_case_insensitively_and_external_id_exactly() {
    let p = people().await;
    p.check(&[
        (r#"userName eq "BJENSEN@EXAMPLE.COM""#, &["bjensen"]),
        (r#"userName eq "BJensen@Example.Com""#, &["bjensen"]),
        (r#"externalId eq "Ext-A""#, &["bjensen"]),
        (r#"externalId eq "ext-a""#, &["jsmith"]),
        (r#"externalId eq "EXT-A""#, &[]),
        (r#"externalId sw "Ext""#, &["bjensen"]),
        (r#"externalId co "xt-""#, &["bjensen", "jsmith"]),
    ])
    .await;
}

#[tokio::test]
async fn plus_in_the_query_string_is_a_space_and_percent_2b_a_plus() {
    let p = people().await;
    let plus = p.app.create_user("a+b@example.com").await;
    // E19: Entra form-encodes the filter.
    let list = p
        .app
        .get_ok("/Users?filter=externalId+eq+%22Ext-A%22")
        .await;
    assert_eq!(p.short_names(&list, "externalId+eq"), vec!["bjensen"]);
    let list = p
        .app
        .get_ok("/Users?filter=userName+eq+%22a%2Bb%40example.com%22")
        .await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], json!(plus));
    // Plain %20 works too.
    let list = p
        .app
        .get_ok("/Users?filter=userName%20eq%20%22a%2Bb%40example.com%22")
        .await;
    assert_eq!(list["Resources"][0]["id"], json!(plus));
}

#[tokio::test]
async fn a_user_name_nobody_has_is_200_with_zero_results() {
    // E18, L1: Test Connection probes a random userName.
    let app = spawn_app().await;
    app.create_user("someone@example.com").await;
    let probe = uuid::Uuid::new_v4().to_string();
    let list = app
        .filter("/Users", &format!(r#"userName eq "{probe}""#))
        .await;
    assert_eq!(list["totalResults"], 0);
    assert_eq!(list["Resources"], json!([]));
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
}

#[tokio::test]
async fn malformed_or_unknown_filters_are_400_invalid_filter() {
    let app = spawn_app().await;
    app.create_user("someone@example.com").await;
    let bad = [
        "userName eq",
        "userName zz \"x\"",
        "((userName eq \"x\")",
        "userName eq \"unterminated",
        "eq \"x\"",
        "and",
        "nosuch eq \"x\"",
        "name.nosuch eq \"x\"",
        "emails[nosuch eq \"x\"]",
        "emails[type eq \"work\"",
        "urn:example:bogus:1.0:User:thing eq \"x\"",
        "active gt true",
        "active eq \"maybe\"",
        "meta.created gt \"yesterday\"",
        "password eq \"secret\"",
        "userName eq \"a\" garbage",
    ];
    for filter in bad {
        let res = app.get(&format!("/Users?filter={}", enc(filter))).await;
        let body = assert_scim_error(res, 400, Some("invalidFilter")).await;
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{filter}");
        let res = app.post("/Users/.search", &json!({"filter": filter})).await;
        assert_scim_error(res, 400, Some("invalidFilter")).await;
    }
    for filter in ["members[display co \"x\"]", "nosuch pr", "displayName eq"] {
        let res = app.get(&format!("/Groups?filter={}", enc(filter))).await;
        assert_scim_error(res, 400, Some("invalidFilter")).await;
    }
    // Nothing was created or changed by any of it.
    assert_eq!(app.total("/Users").await, 1);
}

#[tokio::test]
async fn group_filters_on_display_name_and_external_id() {
    let app = spawn_app().await;
    let user = app.create_user("member@example.com").await;
    let sales = app
        .post_created(
            "/Groups",
            &json!({"displayName": "Sales EMEA", "externalId": "Grp-1", "members": [{"value": user}]}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops = app
        .post_created(
            "/Groups",
            &json!({"displayName": "Ops", "externalId": "grp-1"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unicode = app.create_group("Ünïcödé Grüppe", &[]).await;

    let found = |list: Value| -> Vec<String> {
        let mut ids: Vec<String> = list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        found(
            app.filter("/Groups", r#"displayName eq "Sales EMEA""#)
                .await
        ),
        vec![sales.clone()]
    );
    // displayName is case-insensitive (RFC 7643 §4.2 caseExact false).
    assert_eq!(
        found(
            app.filter("/Groups", r#"displayName eq "sales emea""#)
                .await
        ),
        vec![sales.clone()]
    );
    assert_eq!(
        found(app.filter("/Groups", r#"displayName sw "s""#).await),
        vec![sales.clone()]
    );
    // externalId is case-exact.
    assert_eq!(
        found(app.filter("/Groups", r#"externalId eq "Grp-1""#).await),
        vec![sales.clone()]
    );
    assert_eq!(
        found(app.filter("/Groups", r#"externalId eq "grp-1""#).await),
        vec![ops.clone()]
    );
    // P8: non-ASCII names, percent-encoded as UTF-8.
    assert_eq!(
        found(
            app.filter("/Groups", r#"displayName eq "Ünïcödé Grüppe""#)
                .await
        ),
        vec![unicode]
    );
    // E15: Entra's exact request, excludedAttributes before the filter.
    let list = app
        .get_ok(&format!(
            "/Groups?excludedAttributes=members&filter={}",
            enc(r#"displayName eq "Sales EMEA""#)
        ))
        .await;
    assert_eq!(list["totalResults"], 1);
    assert!(list["Resources"][0].get("members").is_none(), "{list}");
    assert_eq!(list["Resources"][0]["displayName"], "Sales EMEA");
    let none = app
        .filter(
            "/Groups",
            &format!(r#"displayName eq "{}""#, uuid::Uuid::new_v4()),
        )
        .await;
    assert_eq!(none["totalResults"], 0);
}

#[tokio::test]
async fn quotes_backslashes_and_sql_metacharacters_in_values_are_literal() {
    let app = spawn_app().await;
    let quoted = app
        .post_created(
            "/Users",
            &json!({"userName": r#"o"brien\x@example.com"#, "title": "it's 100% done_"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_user("plain@example.com").await;
    let only_quoted = |list: Value| {
        assert_eq!(list["totalResults"], 1, "{list}");
        assert_eq!(list["Resources"][0]["id"], json!(quoted));
    };
    only_quoted(
        app.filter("/Users", r#"userName eq "o\"brien\\x@example.com""#)
            .await,
    );
    only_quoted(app.filter("/Users", r#"title eq "it's 100% done_""#).await);
    only_quoted(app.filter("/Users", r#"title co "100% d""#).await);
    only_quoted(app.filter("/Users", r#"title ew "done_""#).await);
    for filter in [
        r#"userName eq "x' OR '1'='1""#,
        r#"userName eq "x\" or userName pr or userName eq \"y""#,
        r#"title co "'; DROP TABLE directory_users; --""#,
    ] {
        assert_eq!(
            app.filter("/Users", filter).await["totalResults"],
            0,
            "{filter}"
        );
    }
    assert_eq!(app.total("/Users").await, 2);
}
