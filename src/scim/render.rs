//! Stored rows → SCIM resource representations (before projection).

use serde_json::{Map, Value, json};

use super::etag::etag;
use super::schema;
use crate::store::groups::{Group, Member};
use crate::store::users::{GroupOfUser, User};

/// RFC 3339 with milliseconds, UTC.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn meta(resource_type: &str, location: String, created: i64, updated: i64, version: i64) -> Value {
    json!({
        "resourceType": resource_type,
        "created": timestamp(created),
        "lastModified": timestamp(updated),
        "location": location,
        "version": etag(version),
    })
}

/// Start a representation: `schemas`, `id`, then the canonical data in order.
fn base(id: &str, data: &Value, default_schema: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let schemas = data
        .get("schemas")
        .cloned()
        .unwrap_or_else(|| json!([default_schema]));
    out.insert("schemas".into(), schemas);
    out.insert("id".into(), json!(id));
    if let Some(obj) = data.as_object() {
        for (k, v) in obj {
            if k != "schemas" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

pub fn user_location(base_url: &str, id: &str) -> String {
    format!("{base_url}/Users/{id}")
}

pub fn group_location(base_url: &str, id: &str) -> String {
    format!("{base_url}/Groups/{id}")
}

/// A User; `groups` is `None` when the projection does not want them (they
/// were not read).
pub fn user(base_url: &str, user: &User, groups: Option<&[GroupOfUser]>) -> Map<String, Value> {
    let mut out = base(&user.id, &user.data, schema::USER);
    if let Some(groups) = groups
        && !groups.is_empty()
    {
        let list: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.group_id,
                    "$ref": group_location(base_url, &g.group_id),
                    "display": g.display_name,
                    "type": "direct",
                })
            })
            .collect();
        out.insert("groups".into(), Value::Array(list));
    }
    out.insert(
        "meta".into(),
        meta(
            "User",
            user_location(base_url, &user.id),
            user.created_at,
            user.updated_at,
            user.version,
        ),
    );
    out
}

/// A Group; `members` is `None` when the projection does not want them.
pub fn group(base_url: &str, group: &Group, members: Option<&[Member]>) -> Map<String, Value> {
    let mut out = base(&group.id, &group.data, schema::GROUP);
    if let Some(members) = members
        && !members.is_empty()
    {
        let list: Vec<Value> = members
            .iter()
            .map(|m| {
                let location = if m.member_type == "Group" {
                    group_location(base_url, &m.member_id)
                } else {
                    user_location(base_url, &m.member_id)
                };
                let mut member = Map::new();
                member.insert("value".into(), json!(m.member_id));
                member.insert("$ref".into(), json!(location));
                if let Some(display) = &m.display {
                    member.insert("display".into(), json!(display));
                }
                member.insert("type".into(), json!(m.member_type));
                Value::Object(member)
            })
            .collect();
        out.insert("members".into(), Value::Array(list));
    }
    out.insert(
        "meta".into(),
        meta(
            "Group",
            group_location(base_url, &group.id),
            group.created_at,
            group.updated_at,
            group.version,
        ),
    );
    out
}
