//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes`,
//! `/Schemas`, generated from the same registry and settings the server
//! enforces, so every claim is true. Also the root `/.search`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::body::ScimBody;
use super::error::ScimError;
use super::list::{ListParams, Pagination, list_response};
use super::page;
use super::schema::{self, Attribute, RESOURCE_TYPES, SCHEMAS};
use super::{ScimState, json_response};

pub async fn service_provider_config(state: web::Data<ScimState>) -> HttpResponse {
    let s = &state.settings;
    let body = json!({
        "schemas": [schema::SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": s.bulk_max_operations,
            "maxPayloadSize": s.bulk_max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": s.max_page_size},
        // dirsync never stores credentials; a password sent is dropped.
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        // RFC 9865 §4.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": s.default_page_size,
            "maxPageSize": s.max_page_size,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A directory's SCIM token, sent as Authorization: Bearer <token>.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", state.base_url),
        },
    });
    json_response(StatusCode::OK, &body)
}

fn resource_type_json(base_url: &str, rt: &schema::ResourceType) -> Value {
    let extensions: Vec<Value> = rt
        .extensions
        .iter()
        .map(|e| json!({"schema": e.schema.id, "required": e.required}))
        .collect();
    let mut out = json!({
        "schemas": [schema::RESOURCE_TYPE],
        "id": rt.id,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base_url}/ResourceTypes/{}", rt.id),
        },
    });
    if !extensions.is_empty()
        && let Some(obj) = out.as_object_mut()
    {
        obj.insert("schemaExtensions".into(), Value::Array(extensions));
    }
    out
}

pub async fn resource_types(state: web::Data<ScimState>) -> HttpResponse {
    let resources = RESOURCE_TYPES
        .iter()
        .map(|rt| resource_type_json(&state.base_url, rt))
        .collect();
    let body = list_response(
        RESOURCE_TYPES.len() as u64,
        resources,
        &Pagination::Index { start_index: 1 },
    );
    json_response(StatusCode::OK, &body)
}

pub async fn resource_type(
    state: web::Data<ScimState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let rt = RESOURCE_TYPES
        .iter()
        .find(|rt| rt.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| {
            ScimError::not_found(format!(
                "no resource type {}",
                crate::domain::text::quoted(&id)
            ))
        })?;
    Ok(json_response(
        StatusCode::OK,
        &resource_type_json(&state.base_url, rt),
    ))
}

/// The attribute's description, with the caps the server enforces on what a
/// client writes (RFC 7643 §7 has no field for a length; the description is
/// where a client's developer reads).
fn description(a: &Attribute) -> String {
    use schema::{AttrType, Mutability};
    let mut text = a.description.to_owned();
    if matches!(a.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
        return text;
    }
    if a.multi_valued {
        text.push_str(&format!(" At most {} values.", a.max_items));
    }
    if matches!(
        a.ty,
        AttrType::String | AttrType::Reference | AttrType::Binary
    ) {
        text.push_str(&format!(" At most {} bytes (UTF-8).", a.max_bytes));
    }
    text
}

fn attribute_json(a: &Attribute) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(a.name));
    out.insert("type".into(), json!(a.ty.as_str()));
    out.insert("multiValued".into(), json!(a.multi_valued));
    out.insert("description".into(), json!(description(a)));
    out.insert("required".into(), json!(a.required));
    if !a.is_complex() {
        out.insert("caseExact".into(), json!(a.case_exact));
    }
    if !a.canonical_values.is_empty() {
        out.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    if !a.reference_types.is_empty() {
        out.insert("referenceTypes".into(), json!(a.reference_types));
    }
    out.insert("mutability".into(), json!(a.mutability.as_str()));
    out.insert("returned".into(), json!(a.returned.as_str()));
    out.insert("uniqueness".into(), json!(a.uniqueness.as_str()));
    if a.is_complex() {
        let subs: Vec<Value> = a.sub_attributes.iter().map(attribute_json).collect();
        out.insert("subAttributes".into(), Value::Array(subs));
    }
    Value::Object(out)
}

/// A resource's schema says the cap on the whole resource (its extensions
/// count towards it).
fn schema_description(s: &'static schema::Schema) -> String {
    if RESOURCE_TYPES.iter().any(|rt| std::ptr::eq(rt.schema, s)) {
        format!(
            "{} At most {} bytes as stored (its canonical JSON, extensions included).",
            s.description,
            schema::MAX_RESOURCE_BYTES
        )
    } else {
        s.description.to_owned()
    }
}

fn schema_json(base_url: &str, s: &'static schema::Schema) -> Value {
    json!({
        "schemas": [schema::SCHEMA],
        "id": s.id,
        "name": s.name,
        "description": schema_description(s),
        "attributes": s.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base_url}/Schemas/{}", s.id),
        },
    })
}

pub async fn schemas(state: web::Data<ScimState>) -> HttpResponse {
    let resources = SCHEMAS
        .iter()
        .map(|s| schema_json(&state.base_url, s))
        .collect();
    let body = list_response(
        SCHEMAS.len() as u64,
        resources,
        &Pagination::Index { start_index: 1 },
    );
    json_response(StatusCode::OK, &body)
}

pub async fn schema(
    state: web::Data<ScimState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let s = SCHEMAS
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| {
            ScimError::not_found(format!("no schema {}", crate::domain::text::quoted(&id)))
        })?;
    Ok(json_response(
        StatusCode::OK,
        &schema_json(&state.base_url, s),
    ))
}

/// `POST /.search` (RFC 7644 §3.4.3): users then groups, one index-paged
/// list (`page::search_root`).
pub async fn search_root(
    state: web::Data<ScimState>,
    caller: Caller,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let params = ListParams::from_search(&body.0)?;
    if params.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "cursor paging is not available on the root /.search; use startIndex",
        ));
    }
    let start_index = params.start_index.unwrap_or(1).max(1) as u64;
    let count = params
        .count
        .map(|c| c.max(0) as u64)
        .unwrap_or(state.settings.default_page_size)
        .min(state.settings.max_page_size);
    page::search_root(state, caller, params, start_index, count).await
}
