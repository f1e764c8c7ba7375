//! List and search parameters (RFC 7644 §3.4.2, §3.4.3) and cursor paging
//! (RFC 9865): from a query string or a SearchRequest body to a store query.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::error::{ScimError, ScimType};
use super::schema::{self, ResourceType};
use crate::config::ServerSettings;
use crate::domain::filter::Filter;
use crate::domain::text;
use crate::store::mirror::list::{ListQuery, SortKey, Tally, Window};

/// The raw parameters, whichever way they arrived.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub cursor: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// `attributes` / `excludedAttributes` from a query string, for single-resource
/// reads and writes.
#[derive(Debug, Default, Clone)]
pub struct ProjectionParams {
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// Query-string pairs, `+` decoded as space (E19, M2), names matched
/// case-insensitively (E28 sends `startindex`).
fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
}

fn parse_int(name: &str, value: &str) -> Result<i64, ScimError> {
    value.trim().parse::<i64>().map_err(|_| {
        ScimError::invalid_value(format!(
            "{name} must be an integer, got {}",
            text::quoted(value)
        ))
    })
}

impl ProjectionParams {
    pub fn from_query(query: &str) -> Self {
        let mut out = ProjectionParams::default();
        for (k, v) in pairs(query) {
            match k.as_str() {
                "attributes" => out.attributes = Some(v),
                "excludedattributes" => out.excluded_attributes = Some(v),
                _ => {}
            }
        }
        out
    }
}

impl ListParams {
    pub fn from_query(query: &str) -> Result<Self, ScimError> {
        let mut out = ListParams::default();
        for (k, v) in pairs(query) {
            match k.as_str() {
                "filter" => out.filter = Some(v),
                "sortby" => out.sort_by = Some(v),
                "sortorder" => out.sort_order = Some(v),
                "startindex" => out.start_index = Some(parse_int("startIndex", &v)?),
                "count" => out.count = Some(parse_int("count", &v)?),
                "cursor" => out.cursor = Some(v),
                "attributes" => out.attributes = Some(v),
                "excludedattributes" => out.excluded_attributes = Some(v),
                _ => {}
            }
        }
        Ok(out)
    }

    /// A SearchRequest body (RFC 7644 §3.4.3); keys case-insensitive, and
    /// `attributes` as an array of strings or a comma-separated string.
    pub fn from_search(body: &Value) -> Result<Self, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
        let mut out = ListParams::default();
        for (key, value) in obj {
            let k = key.to_ascii_lowercase();
            let text = |v: &Value| -> Result<Option<String>, ScimError> {
                match v {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    Value::Array(items) => {
                        let parts: Result<Vec<&str>, ScimError> = items
                            .iter()
                            .map(|i| {
                                i.as_str().ok_or_else(|| {
                                    ScimError::invalid_value(format!("{key} must list strings"))
                                })
                            })
                            .collect();
                        Ok(Some(parts?.join(",")))
                    }
                    _ => Err(ScimError::invalid_value(format!("{key} must be a string"))),
                }
            };
            let int = |v: &Value| -> Result<Option<i64>, ScimError> {
                match v {
                    Value::Null => Ok(None),
                    Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| {
                        ScimError::invalid_value(format!("{key} must be an integer"))
                    }),
                    Value::String(s) => parse_int(key, s).map(Some),
                    _ => Err(ScimError::invalid_value(format!(
                        "{key} must be an integer"
                    ))),
                }
            };
            match k.as_str() {
                "filter" => out.filter = text(value)?,
                "sortby" => out.sort_by = text(value)?,
                "sortorder" => out.sort_order = text(value)?,
                "startindex" => out.start_index = int(value)?,
                "count" => out.count = int(value)?,
                "cursor" => out.cursor = text(value)?,
                "attributes" => out.attributes = text(value)?,
                "excludedattributes" => out.excluded_attributes = text(value)?,
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn projection(&self) -> ProjectionParams {
        ProjectionParams {
            attributes: self.attributes.clone(),
            excluded_attributes: self.excluded_attributes.clone(),
        }
    }
}

/// How the response pages: by index (echo `startIndex`) or by cursor.
#[derive(Debug, Clone, PartialEq)]
pub enum Pagination {
    Index { start_index: u64 },
    Cursor,
}

/// What a cursor remembers. Opaque to clients (base64url of a short tag).
#[derive(Debug, Clone, PartialEq)]
enum Cursor {
    /// Keyset: the last id of the previous page (default id order).
    After(String),
    /// Offset: for sorted listings, where keyset over arbitrary JSON sort keys
    /// is not worth its complexity.
    Offset(u64),
}

impl Cursor {
    fn encode(&self) -> String {
        let raw = match self {
            Cursor::After(id) => format!("a:{id}"),
            Cursor::Offset(n) => format!("o:{n}"),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(s: &str) -> Result<Self, ScimError> {
        let invalid = || invalid_cursor(s);
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| invalid())?;
        let raw = String::from_utf8(bytes).map_err(|_| invalid())?;
        match raw.split_once(':') {
            Some(("a", id)) if uuid::Uuid::parse_str(id).is_ok() => {
                Ok(Cursor::After(id.to_owned()))
            }
            Some(("o", n)) => n.parse().map(Cursor::Offset).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

fn invalid_cursor(s: &str) -> ScimError {
    ScimError::bad_request(
        ScimType::InvalidCursor,
        format!(
            "cursor {} is not one this server issued for this query",
            text::quoted(s)
        ),
    )
}

/// A store query planned from the parameters.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub query: ListQuery,
    pub paging: Pagination,
    /// For cursor paging: the offset of this page when sorted (else None).
    offset: Option<u64>,
}

pub fn plan(
    rt: &'static ResourceType,
    params: &ListParams,
    settings: &ServerSettings,
) -> Result<QueryPlan, ScimError> {
    let filter = match params.filter.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => super::filter::parse(rt, raw)?,
        _ => Filter::True,
    };
    let sort = match params.sort_by.as_deref().map(str::trim) {
        Some(raw) if !raw.is_empty() => Some(sort_key(rt, raw, params.sort_order.as_deref())?),
        _ => None,
    };
    // RFC 7644 §3.4.2.4: a negative count is read as 0; the server caps it.
    let count = params
        .count
        .map(|c| c.max(0) as u64)
        .unwrap_or(settings.default_page_size)
        .min(settings.max_page_size);
    if let Some(cursor) = &params.cursor {
        if params.start_index.is_some() {
            return Err(ScimError::invalid_value(
                "use either cursor or startIndex paging, not both (RFC 9865 §2)",
            ));
        }
        let decoded = if cursor.trim().is_empty() {
            None
        } else {
            Some(Cursor::decode(cursor)?)
        };
        let (page, offset) = match (&sort, decoded) {
            (None, None) => (
                Window::After {
                    after: None,
                    limit: count + 1,
                },
                None,
            ),
            (None, Some(Cursor::After(id))) => (
                Window::After {
                    after: Some(id),
                    limit: count + 1,
                },
                None,
            ),
            (_, Some(Cursor::Offset(n))) => (
                Window::Offset {
                    offset: n,
                    limit: count + 1,
                },
                Some(n),
            ),
            (Some(_), None) => (
                Window::Offset {
                    offset: 0,
                    limit: count + 1,
                },
                Some(0),
            ),
            // A keyset cursor from an unsorted listing, replayed with sortBy.
            (Some(_), Some(Cursor::After(_))) => return Err(invalid_cursor(cursor)),
        };
        return Ok(QueryPlan {
            query: ListQuery {
                filter,
                sort,
                page,
                tally: Tally::Count,
            },
            paging: Pagination::Cursor,
            offset,
        });
    }
    // startIndex < 1 is read as 1 (RFC 7644 §3.4.2.4).
    let start_index = params.start_index.unwrap_or(1).max(1) as u64;
    Ok(QueryPlan {
        query: ListQuery {
            filter,
            sort,
            page: Window::Offset {
                offset: start_index - 1,
                limit: count,
            },
            tally: Tally::Count,
        },
        paging: Pagination::Index { start_index },
        offset: None,
    })
}

fn sort_key(
    rt: &'static ResourceType,
    raw: &str,
    order: Option<&str>,
) -> Result<SortKey, ScimError> {
    let resolved = rt.resolve_path_str(raw).ok_or_else(|| {
        ScimError::invalid_value(format!(
            "sortBy: unknown attribute {} for {}",
            text::quoted(raw),
            rt.name
        ))
    })?;
    let descending = match order.map(str::trim) {
        None | Some("") => false,
        Some(o) if o.eq_ignore_ascii_case("ascending") => false,
        Some(o) if o.eq_ignore_ascii_case("descending") => true,
        Some(o) => {
            return Err(ScimError::invalid_value(format!(
                "sortOrder must be ascending or descending, got {}",
                text::quoted(o)
            )));
        }
    };
    let attribute = resolved.attribute;
    if matches!(attribute.name, "members" | "groups") {
        return Err(ScimError::invalid_value(format!(
            "cannot sort by {resolved}"
        )));
    }
    let mut path: Vec<&str> = Vec::new();
    if let Some(urn) = resolved.extension {
        path.push(urn);
    }
    path.push(attribute.name);
    let element_at = attribute.multi_valued.then_some(path.len());
    let target = match resolved.sub_attribute {
        Some(sub) => sub,
        // A complex attribute sorts by its `value` (multi-valued) or cannot sort.
        None if attribute.is_complex() => attribute.sub_attribute("value").ok_or_else(|| {
            ScimError::invalid_value(format!("cannot sort by complex attribute {resolved}"))
        })?,
        None => attribute,
    };
    if target.name != attribute.name {
        path.push(target.name);
    }
    let kind = match target.ty {
        schema::AttrType::Boolean => crate::domain::filter::ValueKind::Boolean,
        schema::AttrType::Integer | schema::AttrType::Decimal => {
            crate::domain::filter::ValueKind::Number
        }
        schema::AttrType::DateTime => crate::domain::filter::ValueKind::DateTime,
        schema::AttrType::String => crate::domain::filter::ValueKind::String,
        _ => crate::domain::filter::ValueKind::Opaque,
    };
    Ok(SortKey {
        attr: crate::domain::filter::AttrRef::new(&path, kind, target.case_exact),
        element_at,
        descending,
    })
}

impl QueryPlan {
    /// How many resources the page may hold (`count`, without a cursor
    /// page's look-ahead row).
    pub fn count(&self) -> u64 {
        match self.paging {
            Pagination::Cursor => self.query.page.limit().saturating_sub(1),
            Pagination::Index { .. } => self.query.page.limit(),
        }
    }

    /// The cursor to the page after one that answered `answered` resources,
    /// the last of them `last_id` (RFC 9865 §2: `nextCursor`).
    pub fn cursor_after(&self, answered: u64, last_id: Option<&str>) -> Option<String> {
        let cursor = match self.offset {
            Some(offset) => Cursor::Offset(offset + answered),
            None => Cursor::After(last_id?.to_owned()),
        };
        Some(cursor.encode())
    }
}

/// The RFC 7644 §3.4.2 ListResponse up to its `Resources` array, written
/// before the resources so they can follow as they are rendered; what only
/// the end of the page knows comes after them ([`list_tail`]). JSON members
/// have no order (RFC 8259 §4).
pub fn list_head(total: u64, paging: &Pagination) -> String {
    let mut head = format!(
        "{{\"schemas\":[\"{}\"],\"totalResults\":{total},",
        schema::LIST_RESPONSE
    );
    if let Pagination::Index { start_index } = paging {
        head.push_str(&format!("\"startIndex\":{start_index},"));
    }
    head.push_str("\"Resources\":[");
    head
}

/// The end of a ListResponse [`list_head`] began: `itemsPerPage` (what the
/// page answered) and, when another page follows, `nextCursor`.
pub fn list_tail(answered: u64, next: Option<&str>) -> String {
    let mut tail = format!("],\"itemsPerPage\":{answered}");
    if let Some(next) = next {
        tail.push_str(&format!(",\"nextCursor\":{}", Value::from(next)));
    }
    tail.push('}');
    tail
}

/// The RFC 7644 §3.4.2 ListResponse body, whole (the root `/.search`).
pub fn list_response(total: u64, resources: Vec<Value>, paging: &Pagination) -> Value {
    let mut body = Map::new();
    body.insert("schemas".into(), json!([schema::LIST_RESPONSE]));
    body.insert("totalResults".into(), json!(total));
    body.insert("itemsPerPage".into(), json!(resources.len()));
    if let Pagination::Index { start_index } = paging {
        body.insert("startIndex".into(), json!(start_index));
    }
    body.insert("Resources".into(), Value::Array(resources));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER_RESOURCE;

    #[test]
    fn plus_is_a_space_and_names_are_case_insensitive() {
        let p =
            ListParams::from_query("filter=externalId+eq+%22a%22&startindex=0&COUNT=5").unwrap();
        assert_eq!(p.filter.as_deref(), Some("externalId eq \"a\""));
        assert_eq!(p.start_index, Some(0));
        assert_eq!(p.count, Some(5));
    }

    #[test]
    fn start_index_below_one_reads_as_one_and_count_is_capped() {
        let settings = ServerSettings::for_tests();
        let p = ListParams::from_query("startIndex=-4&count=100000").unwrap();
        let plan = plan(&USER_RESOURCE, &p, &settings).unwrap();
        assert_eq!(plan.paging, Pagination::Index { start_index: 1 });
        assert_eq!(
            plan.query.page,
            Window::Offset {
                offset: 0,
                limit: settings.max_page_size
            }
        );
    }

    #[test]
    fn a_filter_with_a_nul_character_is_invalid_filter() {
        let p = ListParams::from_query("filter=userName+eq+%22a%00b%22").unwrap();
        let err = plan(&USER_RESOURCE, &p, &ServerSettings::for_tests()).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
    }

    #[test]
    fn non_numeric_count_is_invalid_value() {
        let err = ListParams::from_query("count=ten").unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_invalid_cursor() {
        let c = Cursor::After("0192f000-0000-7000-8000-000000000000".into());
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert_eq!(
            Cursor::decode(&Cursor::Offset(7).encode()).unwrap(),
            Cursor::Offset(7)
        );
        let err = Cursor::decode("!!").unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidCursor));
    }

    #[test]
    fn sort_by_multi_valued_sorts_by_first_value() {
        let key = sort_key(&USER_RESOURCE, "emails", None).unwrap();
        assert!(key.attr.is(&["emails", "value"]));
        assert_eq!(key.element_at, Some(1));
        assert!(
            sort_key(&USER_RESOURCE, "name.familyName", Some("descending"))
                .unwrap()
                .descending
        );
        assert!(sort_key(&USER_RESOURCE, "nope", None).is_err());
    }
}
