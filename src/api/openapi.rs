//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers and
//! their types (utoipa), served at `/api/v1/openapi.json`, printed by
//! `dirsync openapi` and committed at `openapi/openapi.json` (CI fails when
//! the two differ).

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{connections, directories, events, groups, runs, tenants, users};

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
        directories::list_tokens,
        directories::create_token,
        directories::revoke_token,
        connections::create_connection,
        connections::get_connection,
        connections::update_connection,
        connections::delete_connection,
        connections::test_connection,
        connections::sync_connection,
        connections::list_runs,
        runs::get_run,
        runs::approve_run,
    ),
    modifiers(&Bearer),
    tags(
        (name = "tenants", description = "The operator's tenants"),
        (name = "users", description = "The application's users and the host's actions on them"),
        (name = "groups", description = "The application's groups"),
        (name = "events", description = "The ordered, gap-free event feed"),
        (name = "directories", description = "The tenant's directories, their SCIM tokens and policy"),
        (name = "connections", description = "Pull directories' connections to Google Workspace, Entra ID or Okta, and their runs"),
        (name = "runs", description = "Runs of a connection, and approving one the guard stopped"),
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
