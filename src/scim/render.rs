//! Stored rows → SCIM resource representations (before projection), and the
//! media type responses are labelled with.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use serde_json::{Map, Value, json};

use super::etag::etag;
use super::schema;
use crate::store::mirror::groups::{Member, MirrorGroup};
use crate::store::mirror::users::{GroupOfUser, MirrorUser};

/// RFC 3339 with milliseconds, UTC.
pub fn timestamp(ms: i64) -> String {
    crate::domain::time::rfc3339(ms)
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

/// A representation without its related rows (a user's `groups`, a group's
/// `members`): the attributes that come before them and those after them.
/// The rows are written between the two as they are read
/// (`scim::representation`).
#[derive(Debug, Clone, PartialEq)]
pub struct Parts {
    pub before: Map<String, Value>,
    pub after: Map<String, Value>,
}

/// A User: its attributes, then `groups`, then `meta`.
pub fn user(base_url: &str, user: &MirrorUser) -> Parts {
    let meta = meta(
        "User",
        user_location(base_url, &user.id),
        user.created_at,
        user.updated_at,
        user.version,
    );
    Parts {
        before: base(&user.id, &user.data, schema::USER),
        after: Map::from_iter([("meta".to_owned(), meta)]),
    }
}

/// One element of a User's `groups`.
pub fn group_of_user(base_url: &str, group: &GroupOfUser) -> Value {
    json!({
        "value": group.group_id,
        "$ref": group_location(base_url, &group.group_id),
        "display": group.display_name,
        "type": "direct",
    })
}

/// A Group: its attributes, then `members`, then `meta`.
pub fn group(base_url: &str, group: &MirrorGroup) -> Parts {
    let meta = meta(
        "Group",
        group_location(base_url, &group.id),
        group.created_at,
        group.updated_at,
        group.version,
    );
    Parts {
        before: base(&group.id, &group.data, schema::GROUP),
        after: Map::from_iter([("meta".to_owned(), meta)]),
    }
}

/// One element of a Group's `members`.
pub fn member(base_url: &str, member: &Member) -> Value {
    let location = if member.member_type == "Group" {
        group_location(base_url, &member.member_id)
    } else {
        user_location(base_url, &member.member_id)
    };
    let mut out = Map::new();
    out.insert("value".into(), json!(member.member_id));
    out.insert("$ref".into(), json!(location));
    if let Some(display) = &member.display {
        out.insert("display".into(), json!(display));
    }
    out.insert("type".into(), json!(member.member_type));
    Value::Object(out)
}

/// Whether an `Accept` header prefers `application/json` to
/// `application/scim+json` (RFC 9110 §12.5.1: the most specific range that
/// matches a type gives its quality; `*/*` and `application/*` match the SCIM
/// type too, so they keep it).
pub fn prefers_plain_json(accept: &str) -> bool {
    let (mut json, mut scim, mut any_application, mut any) = (None, None, None, None);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").map(|q| q.trim().parse::<f32>()))
            .map_or(1.0, |q| q.unwrap_or(0.0));
        let slot = match essence.as_str() {
            "application/json" => &mut json,
            "application/scim+json" => &mut scim,
            "application/*" => &mut any_application,
            "*/*" => &mut any,
            _ => continue,
        };
        *slot = Some(q);
    }
    let json = json.unwrap_or(0.0);
    let scim = scim.or(any_application).or(any).unwrap_or(0.0);
    json > 0.0 && json > scim
}

/// Middleware (`actix_web::middleware::from_fn`) for the `/scim/v2` scope: a
/// client that accepts only `application/json`, or any client of a OneLogin
/// directory that does not name the SCIM type, gets its SCIM responses
/// labelled `application/json`, body unchanged (OneLogin: "the content type
/// header for all responses must be of type application/json", L10). Everyone
/// else keeps `application/scim+json` (RFC 7644 §3.1, E23).
pub async fn answer_in_accepted_media_type(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut res = next.call(req).await?;
    // A OneLogin directory gets plain JSON unless the client asks for the
    // SCIM type by name; anyone else only when it accepts plain JSON alone.
    let onelogin = res
        .request()
        .extensions()
        .get::<super::auth::Caller>()
        .is_some_and(|c| c.wants_plain_json(user_agent.as_deref()));
    let plain = match accept.as_deref() {
        Some(a) if prefers_plain_json(a) => true,
        Some(a) if onelogin => !a.to_ascii_lowercase().contains(super::CONTENT_TYPE),
        None => onelogin,
        Some(_) => false,
    };
    let is_scim = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(super::CONTENT_TYPE));
    if plain && is_scim {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Ok(res)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, middleware::from_fn, test as actix_test, web};
    use rstest::rstest;

    #[rstest]
    #[case("application/json", true)]
    #[case("application/json; charset=utf-8", true)]
    #[case("Application/JSON, text/plain", true)]
    #[case("application/scim+json", false)]
    #[case("application/json, application/scim+json", false)]
    #[case("application/json, */*", false)]
    #[case("application/json;q=0.9, application/*;q=0.1", true)]
    #[case("application/json;q=0.5, application/scim+json;q=0.9", false)]
    #[case("application/json, application/scim+json;q=0", true)]
    #[case("application/json;q=0", false)]
    #[case("*/*", false)]
    #[case("", false)]
    fn only_a_client_accepting_plain_json_alone_gets_plain_json(
        #[case] accept: &str,
        #[case] expected: bool,
    ) {
        // L10 (OneLogin) without breaking E23 (Entra) or RFC 7644 §3.1.
        assert_eq!(prefers_plain_json(accept), expected);
    }

    #[actix_web::test]
    async fn the_middleware_relabels_scim_responses_for_a_plain_json_client() {
        let app = actix_test::init_service(
            App::new()
                .wrap(from_fn(answer_in_accepted_media_type))
                .route(
                    "/scim",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .content_type(super::super::CONTENT_TYPE)
                            .body("{}")
                    }),
                )
                .route(
                    "/text",
                    web::get()
                        .to(|| async { HttpResponse::Ok().content_type("text/plain").body("x") }),
                ),
        )
        .await;
        let content_type = |res: &ServiceResponse<_>| {
            res.headers()
                .get(header::CONTENT_TYPE)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        let req = actix_test::TestRequest::get()
            .uri("/scim")
            .insert_header((header::ACCEPT, "application/json"))
            .to_request();
        let res = actix_test::call_service(&app, req).await;
        assert_eq!(content_type(&res), "application/json");
        let req = actix_test::TestRequest::get().uri("/scim").to_request();
        let res = actix_test::call_service(&app, req).await;
        assert_eq!(content_type(&res), super::super::CONTENT_TYPE);
        let req = actix_test::TestRequest::get()
            .uri("/text")
            .insert_header((header::ACCEPT, "application/json"))
            .to_request();
        let res = actix_test::call_service(&app, req).await;
        assert_eq!(content_type(&res), "text/plain");
    }
}
