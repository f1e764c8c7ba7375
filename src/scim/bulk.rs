//! `/Bulk` (RFC 7644 §3.7): many operations in one request, each in its own
//! transaction, with `bulkId` references resolved in dependency order (forward
//! references work; circular ones are refused), `failOnErrors`, and the
//! advertised `maxOperations` / `maxPayloadSize` enforced.

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};
use tracing::instrument;

use super::auth::Caller;
use super::body::ScimBody;
use super::endpoint::{self, Endpoint};
use super::error::ScimError;
use super::etag::etag;
use super::groups::Groups;
use super::users::Users;
use super::{ScimState, json_response, parse_id, render, schema};
use crate::domain::text;

const BULK_ID_PREFIX: &str = "bulkId:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
}

/// One parsed operation, or the reason it cannot run.
#[derive(Debug)]
struct Operation {
    method: Option<Method>,
    method_text: String,
    bulk_id: Option<String>,
    version: Option<String>,
    path: String,
    data: Value,
    /// bulkIds this operation refers to (in `path` or anywhere in `data`).
    refs: HashSet<String>,
    invalid: Option<ScimError>,
}

fn key<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn collect_refs(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX) {
                out.insert(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn replace_refs(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX).and_then(|b| ids.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_refs(v, ids)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_refs(v, ids)),
        _ => {}
    }
}

/// `path` with a trailing `bulkId:…` segment replaced by the id it created.
fn resolve_path(path: &str, ids: &HashMap<String, String>) -> String {
    match path.rsplit_once('/') {
        Some((head, tail)) => {
            let mut last = Value::String(tail.to_owned());
            replace_refs(&mut last, ids);
            format!("{head}/{}", last.as_str().unwrap_or_default())
        }
        None => path.to_owned(),
    }
}

fn parse_operation(value: &Value) -> Operation {
    let mut op = Operation {
        method: None,
        method_text: String::new(),
        bulk_id: None,
        version: None,
        path: String::new(),
        data: Value::Null,
        refs: HashSet::new(),
        invalid: None,
    };
    let Some(obj) = value.as_object() else {
        op.invalid = Some(ScimError::invalid_syntax(
            "each operation must be a JSON object",
        ));
        return op;
    };
    op.method_text = key(obj, "method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_uppercase();
    op.method = match op.method_text.as_str() {
        "POST" => Some(Method::Post),
        "PUT" => Some(Method::Put),
        "PATCH" => Some(Method::Patch),
        "DELETE" => Some(Method::Delete),
        _ => None,
    };
    op.bulk_id = key(obj, "bulkId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    op.version = key(obj, "version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    op.path = key(obj, "path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    op.data = key(obj, "data").cloned().unwrap_or(Value::Null);
    if op.method.is_none() {
        op.invalid = Some(ScimError::invalid_syntax(format!(
            "method must be POST, PUT, PATCH or DELETE, got {}",
            text::quoted(&op.method_text)
        )));
    } else if op.method == Some(Method::Post) && op.bulk_id.is_none() {
        // RFC 7644 §3.7: "bulkId ... REQUIRED when "method" is "POST"".
        op.invalid = Some(ScimError::invalid_syntax("a POST operation needs a bulkId"));
    } else if op.path.is_empty() {
        op.invalid = Some(ScimError::invalid_path("each operation needs a path"));
    }
    if let Some(rest) = op.path.rsplit('/').next() {
        collect_refs(&Value::String(rest.to_owned()), &mut op.refs);
    }
    collect_refs(&op.data, &mut op.refs);
    op
}

/// `/Users`, `/Users/{id}`, `/Groups`, `/Groups/{id}`.
fn target(path: &str) -> Result<(Kind, Option<String>), ScimError> {
    let trimmed = path.trim_start_matches('/');
    let (collection, id) = match trimmed.split_once('/') {
        Some((c, id)) => (c, Some(id)),
        None => (trimmed, None),
    };
    let kind = if collection.eq_ignore_ascii_case("Users") {
        Kind::User
    } else if collection.eq_ignore_ascii_case("Groups") {
        Kind::Group
    } else {
        return Err(ScimError::invalid_path(format!(
            "no resource collection at {}",
            text::quoted(path)
        )));
    };
    Ok((kind, id.map(str::to_owned)))
}

/// What a successful operation reports.
struct Done {
    status: StatusCode,
    /// The resource's version after a POST, PUT or PATCH.
    version: Option<i64>,
    /// The id a POST created, for later bulkId references.
    new_id: Option<String>,
    /// A POST's new resource (other methods name theirs in `path`).
    location: Option<String>,
}

/// The URL of the resource an operation's (resolved) path names, when it names
/// one: `location` is REQUIRED in every entry except a failed POST (RFC 7644
/// §3.7), so PUT, PATCH and DELETE report it whether they succeeded or not.
fn path_location(base_url: &str, path: &str) -> Option<String> {
    match target(path) {
        Ok((Kind::User, Some(id))) => Some(render::user_location(base_url, &id)),
        Ok((Kind::Group, Some(id))) => Some(render::group_location(base_url, &id)),
        _ => None,
    }
}

/// The outcome of one operation, as a BulkResponse entry.
fn entry(op: &Operation, location: Option<String>, result: Result<Done, ScimError>) -> Value {
    let mut out = Map::new();
    let method = op
        .method
        .map_or_else(|| op.method_text.clone(), |m| m.as_str().to_owned());
    out.insert("method".into(), json!(method));
    if let Some(bulk_id) = &op.bulk_id {
        out.insert("bulkId".into(), json!(bulk_id));
    }
    match result {
        Ok(done) => {
            if let Some(location) = done.location.or(location) {
                out.insert("location".into(), json!(location));
            }
            if let Some(version) = done.version {
                out.insert("version".into(), json!(etag(version)));
            }
            out.insert("status".into(), json!(done.status.as_u16().to_string()));
        }
        Err(err) => {
            if let Some(location) = location.filter(|_| op.method != Some(Method::Post)) {
                out.insert("location".into(), json!(location));
            }
            out.insert("status".into(), json!(err.status.as_u16().to_string()));
            out.insert("response".into(), err.body());
        }
    }
    Value::Object(out)
}

/// Run one operation.
async fn execute(
    state: &ScimState,
    caller: &Caller,
    op: &Operation,
    data: &Value,
    path: &str,
) -> Result<Done, ScimError> {
    let (kind, id) = target(path)?;
    let method = op
        .method
        .ok_or_else(|| ScimError::invalid_syntax("unknown method"))?;
    let id = match (method, id) {
        (Method::Post, None) => None,
        (Method::Post, Some(_)) => {
            return Err(ScimError::invalid_path("POST goes to /Users or /Groups"));
        }
        (_, Some(id)) => Some(parse_id(&id)?),
        (_, None) => {
            return Err(ScimError::invalid_path(format!(
                "{} names no resource",
                text::quoted(path)
            )));
        }
    };
    let if_match = op.version.as_deref();
    let id = id.as_deref().unwrap_or_default();
    match kind {
        Kind::User => run::<Users>(state, caller, method, id, data, if_match).await,
        Kind::Group => run::<Groups>(state, caller, method, id, data, if_match).await,
    }
}

/// Run one operation on a resource of type `E`.
async fn run<E: Endpoint>(
    state: &ScimState,
    caller: &Caller,
    method: Method,
    id: &str,
    data: &Value,
    if_match: Option<&str>,
) -> Result<Done, ScimError> {
    let changed = |version: i64| Done {
        status: StatusCode::OK,
        version: Some(version),
        new_id: None,
        location: None,
    };
    Ok(match method {
        Method::Post => {
            let row = endpoint::create::<E>(state, caller, data).await?;
            Done {
                status: StatusCode::CREATED,
                version: Some(E::version(&row)),
                location: Some(E::location(&state.base_url, E::id(&row))),
                new_id: Some(E::id(&row).to_owned()),
            }
        }
        Method::Put => {
            let row = endpoint::replace::<E>(state, caller, id, data, if_match).await?;
            changed(E::version(&row))
        }
        Method::Patch => {
            let row = endpoint::patch::<E>(state, caller, id, data, if_match).await?;
            changed(E::version(&row))
        }
        Method::Delete => {
            endpoint::delete::<E>(state, caller, id, if_match).await?;
            Done {
                status: StatusCode::NO_CONTENT,
                version: None,
                new_id: None,
                location: None,
            }
        }
    })
}

#[instrument(skip_all, fields(directory_id = %caller.directory_id))]
pub async fn bulk(
    state: web::Data<ScimState>,
    caller: Caller,
    body: ScimBody,
) -> Result<HttpResponse, ScimError> {
    let obj = body
        .0
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest must be a JSON object"))?;
    let operations = key(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest needs an Operations array"))?;
    let max = state.settings.bulk_max_operations;
    if operations.len() > max {
        // RFC 7644 §3.7.4: exceeding maxOperations is 413.
        return Err(ScimError::payload_too_large(format!(
            "{} operations exceed maxOperations {max}",
            operations.len()
        )));
    }
    let fail_on_errors =
        match key(obj, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                ScimError::invalid_value("failOnErrors must be a positive integer")
            })?),
        };
    let ops: Vec<Operation> = operations.iter().map(parse_operation).collect();
    let defined: HashMap<&str, usize> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| op.bulk_id.as_deref().map(|b| (b, i)))
        .collect();

    let mut results: Vec<Option<Value>> = (0..ops.len()).map(|_| None).collect();
    let mut created: HashMap<String, String> = HashMap::new();
    let mut failed_ids: HashSet<String> = HashSet::new();
    let mut errors = 0u64;
    let mut order = Vec::with_capacity(ops.len());
    // Run in request order, deferring an operation until every bulkId it
    // refers to exists; a pass that makes no progress leaves only operations
    // whose references are unknown, failed or circular.
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    'passes: loop {
        let mut progressed = false;
        let mut still = Vec::new();
        for i in pending {
            let op = &ops[i];
            let ready = op.invalid.is_some()
                || op.refs.iter().all(|r| {
                    created.contains_key(r)
                        || failed_ids.contains(r)
                        || !defined.contains_key(r.as_str())
                });
            if !ready {
                still.push(i);
                continue;
            }
            progressed = true;
            let path = resolve_path(&op.path, &created);
            let location =
                path_location(&state.base_url, &path).filter(|l| !l.contains(BULK_ID_PREFIX));
            let outcome = if let Some(err) = &op.invalid {
                Err(err.clone())
            } else if let Some(r) = op.refs.iter().find(|r| !defined.contains_key(r.as_str())) {
                Err(ScimError::invalid_value(format!(
                    "bulkId {} is not defined in this request",
                    text::quoted(r)
                )))
            } else if let Some(r) = op.refs.iter().find(|r| failed_ids.contains(*r)) {
                Err(ScimError::invalid_value(format!(
                    "bulkId {} refers to an operation that failed",
                    text::quoted(r)
                )))
            } else {
                let mut data = op.data.clone();
                replace_refs(&mut data, &created);
                let caller = Caller {
                    trail: caller.trail.operation(i),
                    ..caller.clone()
                };
                execute(&state, &caller, op, &data, &path).await
            };
            match outcome {
                Ok(mut done) => {
                    if let (Some(bulk_id), Some(new_id)) = (&op.bulk_id, done.new_id.take()) {
                        created.insert(bulk_id.clone(), new_id);
                    }
                    results[i] = Some(entry(op, location, Ok(done)));
                }
                Err(err) => {
                    caller.trail.operation(i).refused(&err);
                    errors += 1;
                    if let Some(bulk_id) = &op.bulk_id {
                        failed_ids.insert(bulk_id.clone());
                    }
                    results[i] = Some(entry(op, location, Err(err)));
                }
            }
            order.push(i);
            if fail_on_errors.is_some_and(|n| errors >= n) {
                // RFC 7644 §3.7.3: stop after failOnErrors errors; the rest
                // are not performed and not reported.
                break 'passes;
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if !progressed {
            // Every remaining operation waits on another remaining one: circular.
            for i in pending.drain(..) {
                let op = &ops[i];
                results[i] = Some(entry(
                    op,
                    None,
                    Err(ScimError::new(
                        StatusCode::CONFLICT,
                        None,
                        "circular bulkId reference: these operations refer to each other",
                    )),
                ));
                order.push(i);
            }
            break;
        }
    }
    // Report in request order, as clients expect (RFC 7644 §3.7.3 examples).
    order.sort_unstable();
    let operations: Vec<Value> = order
        .into_iter()
        .filter_map(|i| results[i].take())
        .collect();
    let body = json!({
        "schemas": [schema::BULK_RESPONSE],
        "Operations": operations,
    });
    Ok(json_response(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_data_and_path() {
        let op = parse_operation(&json!({
            "method": "PATCH",
            "path": "/Groups/bulkId:g1",
            "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:u1"}]}]}
        }));
        assert_eq!(op.refs, HashSet::from(["g1".to_owned(), "u1".to_owned()]));
    }

    #[test]
    fn post_without_bulk_id_is_invalid() {
        let op = parse_operation(&json!({"method": "POST", "path": "/Users", "data": {}}));
        assert!(op.invalid.is_some());
    }

    #[test]
    fn locations_come_from_resolved_paths_that_name_a_resource() {
        let ids = HashMap::from([("g1".to_owned(), "abc".to_owned())]);
        assert_eq!(resolve_path("/Groups/bulkId:g1", &ids), "/Groups/abc");
        assert_eq!(resolve_path("/Groups/bulkId:zz", &ids), "/Groups/bulkId:zz");
        assert_eq!(
            path_location("https://h/scim/v2", "/Groups/abc").as_deref(),
            Some("https://h/scim/v2/Groups/abc")
        );
        assert_eq!(path_location("https://h/scim/v2", "/Users"), None);
        assert_eq!(path_location("https://h/scim/v2", "/Printers/x"), None);
    }

    #[test]
    fn targets_parse_case_insensitively() {
        assert!(matches!(target("/users"), Ok((Kind::User, None))));
        assert!(matches!(target("/Groups/abc"), Ok((Kind::Group, Some(_)))));
        assert!(target("/Nope").is_err());
    }
}
