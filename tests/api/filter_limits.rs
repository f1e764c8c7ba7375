//! The filter limits the README documents (1,024 terms, 64 levels of nesting):
//! every filter at a limit runs and answers the right resources on both
//! backends, and one past it is 400 invalidFilter, never a 5xx.

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_scim_error, ids, spawn_app};

const MAX_TERMS: usize = 1024;
const MAX_DEPTH: usize = 64;

/// Three users: ann (titled, active), bob (titled, inactive), cy (untitled).
struct Three {
    app: TestApp,
    ann: String,
    bob: String,
    cy: String,
}

async fn three() -> Three {
    let app = spawn_app().await;
    let mut made = Vec::new();
    for (name, title, active) in [
        ("ann", Some("Lead"), true),
        ("bob", Some("Dev"), false),
        ("cy", None, true),
    ] {
        let mut body = json!({
            "userName": format!("{name}@example.com"),
            "externalId": format!("ext-{name}"),
            "name": {"familyName": name},
            "emails": [{"value": format!("{name}@example.com"), "type": "work"}],
            "active": active
        });
        if let Some(title) = title {
            body["title"] = json!(title);
        }
        made.push(
            app.post_created("/Users", &body).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let [ann, bob, cy] = <[String; 3]>::try_from(made).unwrap();
    Three { app, ann, bob, cy }
}

impl Three {
    /// The users `POST /Users/.search` answers for this filter, by name. The
    /// body carries the filter: a 1,024-term filter outgrows a URL.
    async fn search(&self, filter: &str) -> Vec<&'static str> {
        let res = self
            .app
            .post("/Users/.search", &json!({"filter": filter, "count": 10}))
            .await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "{}", body["detail"]);
        let mut names: Vec<&'static str> = ids(&body)
            .iter()
            .map(|id| match id {
                id if *id == self.ann => "ann",
                id if *id == self.bob => "bob",
                id if *id == self.cy => "cy",
                other => panic!("unexpected user {other}"),
            })
            .collect();
        names.sort_unstable();
        names
    }

    async fn refused(&self, filter: &str) {
        let res = self
            .app
            .post("/Users/.search", &json!({"filter": filter}))
            .await;
        assert_scim_error(res, 400, Some("invalidFilter")).await;
    }
}

/// `terms` comparisons of one attribute joined by `or`: two hit ann and bob.
fn or_of_eq_on_one_attribute(terms: usize) -> String {
    let mut parts = vec![
        r#"userName eq "ann@example.com""#.to_owned(),
        r#"userName eq "BOB@example.com""#.to_owned(),
    ];
    parts.extend((2..terms).map(|i| format!(r#"userName eq "miss{i}@example.com""#)));
    parts.join(" or ")
}

/// `terms` comparisons of many attributes and operators joined by `or`: one
/// hits ann (title), one hits bob (an email's value), the rest miss.
fn or_of_mixed_attributes(terms: usize) -> String {
    let mut parts = vec![
        r#"title eq "lead""#.to_owned(),
        r#"emails[value eq "bob@example.com"]"#.to_owned(),
    ];
    parts.extend((2..terms).map(|i| match i % 6 {
        0 => format!(r#"userName eq "miss{i}""#),
        1 => format!(r#"title co "miss{i}""#),
        2 => format!(r#"externalId eq "miss{i}""#),
        3 => format!(r#"emails[type eq "miss{i}"]"#),
        4 => format!(r#"name.familyName sw "miss{i}""#),
        _ => format!(r#"meta.created lt "2001-01-01T00:00:{:02}Z""#, i % 60),
    }));
    parts.join(" or ")
}

/// `terms` conditions joined by `and`: ann is the one titled active user, and
/// every other condition holds for everyone.
fn and_of_mixed_attributes(terms: usize) -> String {
    let mut parts = vec!["title pr".to_owned(), "active eq true".to_owned()];
    parts.extend((2..terms).map(|i| match i % 4 {
        0 => format!(r#"userName ne "miss{i}""#),
        1 => format!(r#"emails[value ne "miss{i}"]"#),
        2 => r#"externalId sw "ext-""#.to_owned(),
        _ => format!(r#"name.familyName ne "miss{i}""#),
    }));
    parts.join(" and ")
}

/// A filter whose tree is `depth` levels deep: `not (` around `not (` … around
/// `title pr`. An odd number of `not`s selects the untitled.
fn nots(depth: usize) -> String {
    let n = depth - 1;
    format!("{}title pr{}", "not (".repeat(n), ")".repeat(n))
}

/// `depth` levels of parentheses around one term (the tree is one level).
fn parentheses(depth: usize) -> String {
    format!("{}title pr{}", "(".repeat(depth), ")".repeat(depth))
}

/// A tree `depth` levels deep of `and` and `or` by turns, each level holding
/// `width` conditions and the next level: conditions that leave the answer to
/// the innermost `title pr` (true ones under `and`, false ones under `or`).
/// It has `1 + (depth - 1) * (width - 1)` terms.
fn alternating(depth: usize, width: usize) -> String {
    let mut filter = "title pr".to_owned();
    for level in 1..depth {
        let is_and = level % 2 == 0;
        // A value path is two levels (the path and the comparison inside): not
        // beside the innermost term, where it would be the deepest branch.
        let kind = |i: usize| if level == 1 { 2 } else { i % 3 };
        let filler = |i: usize| match (is_and, kind(i)) {
            (true, 0) => format!(r#"emails[value ne "miss{i}"]"#),
            (true, 1) => format!(r#"name.familyName ne "miss{i}""#),
            (true, _) => format!(r#"userName ne "miss{i}""#),
            (false, 0) => format!(r#"emails[value eq "miss{i}"]"#),
            (false, 1) => format!(r#"name.familyName co "miss{i}""#),
            (false, _) => format!(r#"userName eq "miss{i}""#),
        };
        let op = if is_and { "and" } else { "or" };
        let mut parts: Vec<String> = (1..width).map(|i| filler(level * width + i)).collect();
        parts.push(format!("({filter})"));
        filter = parts.join(&format!(" {op} "));
    }
    filter
}

/// `not (` `depth - 2` times around a value path with one comparison inside.
fn value_path_at(depth: usize) -> String {
    let n = depth - 2;
    format!(
        r#"{}emails[type eq "work"]{}"#,
        "not (".repeat(n),
        ")".repeat(n)
    )
}

#[tokio::test]
async fn an_or_of_1024_comparisons_of_one_attribute_runs_and_1025_is_invalid_filter() {
    let t = three().await;
    assert_eq!(
        t.search(&or_of_eq_on_one_attribute(MAX_TERMS)).await,
        ["ann", "bob"]
    );
    t.refused(&or_of_eq_on_one_attribute(MAX_TERMS + 1)).await;
}

#[tokio::test]
async fn an_or_of_1024_comparisons_of_mixed_attributes_runs_and_1025_is_invalid_filter() {
    let t = three().await;
    assert_eq!(
        t.search(&or_of_mixed_attributes(MAX_TERMS)).await,
        ["ann", "bob"]
    );
    t.refused(&or_of_mixed_attributes(MAX_TERMS + 1)).await;
}

#[tokio::test]
async fn an_and_of_1024_conditions_runs_and_1025_is_invalid_filter() {
    let t = three().await;
    assert_eq!(t.search(&and_of_mixed_attributes(MAX_TERMS)).await, ["ann"]);
    t.refused(&and_of_mixed_attributes(MAX_TERMS + 1)).await;
}

#[tokio::test]
async fn sixty_four_levels_of_not_run_and_sixty_five_are_invalid_filter() {
    let t = three().await;
    // 63 `not`s: an odd number, so the untitled user.
    assert_eq!(t.search(&nots(MAX_DEPTH)).await, ["cy"]);
    assert_eq!(t.search(&nots(MAX_DEPTH - 1)).await, ["ann", "bob"]);
    t.refused(&nots(MAX_DEPTH + 1)).await;
}

#[tokio::test]
async fn sixty_four_parentheses_run_and_sixty_five_are_invalid_filter() {
    let t = three().await;
    assert_eq!(t.search(&parentheses(MAX_DEPTH)).await, ["ann", "bob"]);
    t.refused(&parentheses(MAX_DEPTH + 1)).await;
}

#[tokio::test]
async fn sixty_four_levels_of_alternating_and_or_run_and_sixty_five_are_invalid_filter() {
    let t = three().await;
    assert_eq!(t.search(&alternating(MAX_DEPTH, 2)).await, ["ann", "bob"]);
    t.refused(&alternating(MAX_DEPTH + 1, 2)).await;
}

#[tokio::test]
async fn a_value_path_at_the_deepest_level_runs_and_one_deeper_is_invalid_filter() {
    let t = three().await;
    assert_eq!(
        t.search(&value_path_at(MAX_DEPTH)).await,
        ["ann", "bob", "cy"]
    );
    t.refused(&value_path_at(MAX_DEPTH + 1)).await;
}

#[tokio::test]
async fn the_deepest_and_widest_filter_allowed_runs_on_both_backends() {
    // 64 levels of 16 conditions, the outermost filled up: 1,024 terms at 64
    // levels, about the deepest SQL the parser lets through.
    let t = three().await;
    let width = MAX_TERMS / MAX_DEPTH;
    let mut widest = alternating(MAX_DEPTH, width);
    // The outermost level is an `or`: more false conditions fill it to the limit.
    for i in 1 + (MAX_DEPTH - 1) * (width - 1)..MAX_TERMS {
        widest.push_str(&format!(r#" or title eq "miss{i}""#));
    }
    assert_eq!(
        widest.matches(" pr").count()
            + widest.matches(" ne ").count()
            + widest.matches(" eq ").count()
            + widest.matches(" co ").count(),
        MAX_TERMS
    );
    assert_eq!(t.search(&widest).await, ["ann", "bob"]);
    let too_wide = format!(r#"userName eq "miss" or ({widest})"#);
    t.refused(&too_wide).await;
}
