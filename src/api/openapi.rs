//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers and
//! their types (utoipa), served at `/api/v1/openapi.json`, printed by
//! `dirsync openapi` and committed at `openapi/openapi.json` (CI fails when
//! the two differ).

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    connections, directories, events, groups, runs, setup_links, tenants, users, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "dirsync host API",
        description = "The host application's API: its users, groups and events, its actions on users, and its directories (SCIM directories with their tokens and policy, pull directories with their connection and runs). Bearer JWTs (HS256, RS256, ES256, EdDSA) with `tenant` and `scope` claims; errors are RFC 9457 problems.",
        version = "1"
    ),
    paths(
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::get_tenant,
        setup_links::create_setup_link,
        setup_links::list_setup_links,
        setup_links::revoke_setup_link,
        users::list_users,
        users::get_user,
        users::get_user_by_email,
        users::user_groups,
        users::user_directories,
        users::sign_in_user,
        users::deactivate_user,
        users::reactivate_user,
        users::set_user_role,
        groups::list_groups,
        groups::get_group,
        groups::list_members,
        events::list_events,
        directories::list_directories,
        directories::create_directory,
        directories::get_directory,
        directories::delete_directory,
        directories::get_policy,
        directories::replace_policy,
        directories::preview_policy,
        directories::list_tokens,
        directories::create_token,
        directories::revoke_token,
        directories::list_scim_requests,
        connections::create_connection,
        connections::get_connection,
        connections::update_connection,
        connections::delete_connection,
        connections::test_connection,
        connections::sync_connection,
        connections::preview_connection,
        connections::import_connection,
        connections::list_runs,
        runs::get_run,
        runs::list_held_back,
        runs::approve_run,
        webhooks::list_webhooks,
        webhooks::create_webhook,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::enable_webhook,
        webhooks::disable_webhook,
        webhooks::test_webhook,
        webhooks::rotate_secret,
        webhooks::replay_webhook,
        webhooks::list_attempts,
    ),
    components(schemas(super::problem::Problem, super::problem::FieldError)),
    modifiers(&Bearer, &Problems),
    tags(
        (name = "tenants", description = "The operator's tenants"),
        (name = "users", description = "The application's users and the host's actions on them"),
        (name = "groups", description = "The application's groups"),
        (name = "events", description = "The ordered, gap-free event feed"),
        (name = "directories", description = "The tenant's directories, their SCIM tokens and policy"),
        (name = "connections", description = "Pull directories' connections to Google Workspace, Entra ID or Okta, and their runs"),
        (name = "runs", description = "Runs of a connection, and approving one the guard stopped"),
        (name = "webhooks", description = "Webhook endpoints: every event delivered, signed, in order; their delivery log"),
    )
)]
struct Document;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every operation may answer with these problems (a bad parameter, no or
/// a bad token, a missing scope, an unknown id, a server without a key, a
/// database that gave way to a concurrent write): documented once, here,
/// for all of them.
struct Problems;

impl Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        let common = [
            (
                "400",
                "A parameter or the body is invalid (the problem names each field)",
            ),
            ("401", "No token, or one that does not verify"),
            ("403", "The token lacks the scope (or is not an operator's)"),
            ("404", "No such resource in the caller's tenant"),
            (
                "503",
                "The API has no key configured, or the database asked for a retry",
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                if operation.request_body.is_some() {
                    for (status, description) in [
                        ("413", "The body is larger than the server accepts"),
                        ("415", "The body is not application/json"),
                    ] {
                        operation
                            .responses
                            .responses
                            .entry(status.to_owned())
                            .or_insert_with(|| problem(description).into());
                    }
                }
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description).into());
                }
            }
        }
    }
}

/// The document.
pub fn spec() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// The document as committed: pretty JSON with a final newline.
pub fn json() -> String {
    let mut text = spec().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}
