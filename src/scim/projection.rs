//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) applied to a full
//! resource representation, honouring each attribute's `returned` (RFC 7643 §7).
//! Pure: serde_json in, serde_json out; no I/O, HTTP or SQL.

use serde_json::{Map, Value};

use super::custom;
use super::error::ScimError;
use super::resource;
use super::schema::{Attribute, Resolved, ResourceType, Returned};

/// Which attributes a response carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    rt: &'static ResourceType,
    /// `attributes`: `None` when absent, or when none of its names is known.
    include: Option<Vec<Selection>>,
    /// `excludedAttributes`.
    exclude: Vec<Selection>,
}

#[derive(Debug, Clone, PartialEq)]
enum Selection {
    /// A bare extension URN: the whole extension object.
    Extension(&'static str),
    Attribute(Resolved),
    /// A user's unregistered extension (`urn:…:User`) or an attribute in one
    /// (`urn:…:User:costCenter`, `…:manager.value`) as written, matched against
    /// the URNs the resource holds (E14).
    Custom(String),
}

/// What survives of one top-level attribute.
struct Plan {
    /// `Some`: only these sub-attributes (`attributes=name.givenName`).
    only: Option<Vec<&'static Attribute>>,
    /// Sub-attributes named in `excludedAttributes`.
    minus: Vec<&'static Attribute>,
}

impl Projection {
    /// Parse the two query parameters: comma-separated, case-insensitive names,
    /// `name.givenName`, `urn:…:User:employeeNumber`, or a bare extension URN.
    /// Unknown names are ignored, including M8's `emails[type eq "work"]`; an
    /// `attributes` list with no known name is treated as absent. When both lists
    /// are given, `attributes` selects and `excludedAttributes` then removes.
    pub fn parse(
        rt: &'static ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        let include = attributes
            .map(|list| selections(rt, list))
            .filter(|s| !s.is_empty());
        let exclude = excluded
            .map(|list| selections(rt, list))
            .unwrap_or_default();
        Ok(Projection {
            rt,
            include,
            exclude,
        })
    }

    /// Whether the response carries any of the top-level attribute `top_level_attr`
    /// (`members`, `groups`), so the caller can skip loading memberships (E15).
    pub fn wants(&self, top_level_attr: &str) -> bool {
        match resource::resolve_path(self.rt, top_level_attr) {
            Some(resolved) => self.plan(resolved.extension, resolved.attribute).is_some(),
            None => self.include.is_none(),
        }
    }

    /// Project `resource` (schemas, id, externalId, meta, attributes, extension
    /// objects, members/groups) in place. An extension object left empty is dropped
    /// and its URN removed from `schemas`.
    pub fn apply(&self, rt: &'static ResourceType, resource: &mut Map<String, Value>) {
        let keys: Vec<String> = resource.keys().cloned().collect();
        for key in keys {
            // `schemas` is always returned (RFC 7643 §3).
            if key == "schemas" {
                continue;
            }
            if let Some(extension) = rt.extension(&key) {
                if let Some(Value::Object(object)) = resource.get_mut(&key) {
                    let inner: Vec<String> = object.keys().cloned().collect();
                    for name in inner {
                        let attr = rt
                            .resolve(Some(extension.id), &name, None)
                            .map(|r| r.attribute);
                        self.project(Some(extension.id), attr, object, &name);
                    }
                }
                if resource
                    .get(&key)
                    .and_then(Value::as_object)
                    .is_none_or(Map::is_empty)
                {
                    resource.shift_remove(&key);
                }
                continue;
            }
            if custom::is_custom(rt, &key) {
                if let Some(Value::Object(attributes)) = resource.get_mut(&key) {
                    self.project_custom(&key, attributes);
                }
                if resource
                    .get(&key)
                    .and_then(Value::as_object)
                    .is_none_or(Map::is_empty)
                {
                    resource.shift_remove(&key);
                }
                continue;
            }
            let attr = rt.resolve(None, &key, None).map(|r| r.attribute);
            self.project(None, attr, resource, &key);
        }
        let present: Vec<&'static str> = rt
            .extensions
            .iter()
            .map(|e| e.schema.id)
            .filter(|urn| resource.contains_key(*urn))
            .collect();
        let present_custom: Vec<String> = custom::present(rt, resource);
        if let Some(Value::Array(schemas)) = resource.get_mut("schemas") {
            schemas.retain(|urn| {
                let Some(urn) = urn.as_str() else {
                    return true;
                };
                match rt.extension(urn) {
                    Some(extension) => present.contains(&extension.id),
                    None if custom::is_custom(rt, urn) => present_custom.iter().any(|p| p == urn),
                    None => true,
                }
            });
        }
    }

    /// Project one element of the multi-valued top-level attribute `name`
    /// (a group's member), as [`Projection::apply`] projects it in its
    /// resource: `None` when nothing of it is returned. Elements written one
    /// at a time (`scim::representation`) come out as a whole array would.
    pub fn apply_to_element(&self, name: &str, element: Value) -> Option<Value> {
        let attr = self.rt.resolve(None, name, None).map(|r| r.attribute);
        let mut holder = Map::new();
        holder.insert(name.to_owned(), Value::Array(vec![element]));
        self.project(None, attr, &mut holder, name);
        match holder.shift_remove(name) {
            Some(Value::Array(mut one)) => one.pop(),
            _ => None,
        }
    }

    /// The attributes of the unregistered extension `urn` that the lists
    /// keep; every one is `returned: default` (no schema says otherwise).
    fn project_custom(&self, urn: &str, attributes: &mut Map<String, Value>) {
        let names: Vec<String> = attributes.keys().cloned().collect();
        for name in names {
            // `Some(None)`: the whole attribute; `Some(Some(subs))`: only these.
            let included = match &self.include {
                None => Some(None),
                Some(include) => match custom_named(include, urn, &name) {
                    (true, _) => Some(None),
                    (false, subs) if !subs.is_empty() => Some(Some(subs)),
                    (false, _) => None,
                },
            };
            let (excluded_whole, excluded_subs) = custom_named(&self.exclude, urn, &name);
            let Some(only) = included.filter(|_| !excluded_whole) else {
                attributes.shift_remove(&name);
                continue;
            };
            if let Some(Value::Object(subs)) = attributes.get_mut(&name) {
                subs.retain(|sub, _| {
                    let wanted = only
                        .as_ref()
                        .is_none_or(|only| only.iter().any(|o| o.eq_ignore_ascii_case(sub)));
                    wanted && !excluded_subs.iter().any(|x| x.eq_ignore_ascii_case(sub))
                });
                if subs.is_empty() {
                    attributes.shift_remove(&name);
                }
            }
        }
    }

    /// Apply the plan for one top-level attribute stored at `container[key]`.
    fn project(
        &self,
        extension: Option<&'static str>,
        attr: Option<&'static Attribute>,
        container: &mut Map<String, Value>,
        key: &str,
    ) {
        let Some(attr) = attr else {
            // Not in the schema: only an unrestricted response carries it.
            if self.include.is_some() {
                container.shift_remove(key);
            }
            return;
        };
        let Some(plan) = self.plan(extension, attr) else {
            container.shift_remove(key);
            return;
        };
        if !attr.is_complex() {
            return;
        }
        let emptied = match container.get_mut(key) {
            Some(Value::Object(object)) => {
                trim_sub_attributes(attr, object, &plan);
                object.is_empty()
            }
            Some(Value::Array(elements)) => {
                for element in elements.iter_mut() {
                    if let Value::Object(object) = element {
                        trim_sub_attributes(attr, object, &plan);
                    }
                }
                elements.retain(|e| e.as_object().is_none_or(|o| !o.is_empty()));
                elements.is_empty()
            }
            _ => false,
        };
        if emptied {
            container.shift_remove(key);
        }
    }

    /// `None` when the attribute is not returned at all.
    fn plan(&self, extension: Option<&'static str>, attr: &'static Attribute) -> Option<Plan> {
        match attr.returned {
            Returned::Never => return None,
            Returned::Always => {
                return Some(Plan {
                    only: None,
                    minus: Vec::new(),
                });
            }
            Returned::Default | Returned::Request => {}
        }
        let only = match &self.include {
            Some(include) => {
                let (whole, subs) = named(include, extension, attr);
                if whole {
                    None
                } else if subs.is_empty() {
                    return None;
                } else {
                    Some(subs)
                }
            }
            // RFC 7643 §7: `request` attributes only when named in `attributes`.
            None if attr.returned == Returned::Request => return None,
            None => None,
        };
        let (excluded_whole, minus) = named(&self.exclude, extension, attr);
        if excluded_whole {
            return None;
        }
        Some(Plan { only, minus })
    }
}

fn selections(rt: &'static ResourceType, list: &str) -> Vec<Selection> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty() && !name.contains('['))
        .filter_map(|name| match rt.extension(name) {
            Some(extension) => Some(Selection::Extension(extension.id)),
            None if custom::is_custom(rt, name) => Some(Selection::Custom(name.to_owned())),
            None => resource::resolve_path(rt, name).map(Selection::Attribute),
        })
        .collect()
}

/// Whether `selections` name the attribute `name` of the unregistered
/// extension `urn` whole (or the extension), and which of its sub-attributes
/// they name.
fn custom_named<'s>(selections: &'s [Selection], urn: &str, name: &str) -> (bool, Vec<&'s str>) {
    let mut whole = false;
    let mut subs = Vec::new();
    for selection in selections {
        let Selection::Custom(raw) = selection else {
            continue;
        };
        if raw.eq_ignore_ascii_case(urn) {
            whole = true;
        } else if let Some((named, sub)) = custom::attribute_in(raw, urn)
            && named.eq_ignore_ascii_case(name)
        {
            match sub {
                Some(sub) => subs.push(sub),
                None => whole = true,
            }
        }
    }
    (whole, subs)
}

/// Whether `selections` name `attr` whole, and which of its sub-attributes they name.
fn named(
    selections: &[Selection],
    extension: Option<&'static str>,
    attr: &'static Attribute,
) -> (bool, Vec<&'static Attribute>) {
    let mut whole = false;
    let mut subs = Vec::new();
    for selection in selections {
        match selection {
            Selection::Extension(urn) => whole |= extension == Some(*urn),
            Selection::Attribute(r)
                if r.extension == extension && std::ptr::eq(r.attribute, attr) =>
            {
                match r.sub_attribute {
                    Some(sub) => subs.push(sub),
                    None => whole = true,
                }
            }
            Selection::Attribute(_) | Selection::Custom(_) => {}
        }
    }
    (whole, subs)
}

fn trim_sub_attributes(attr: &'static Attribute, object: &mut Map<String, Value>, plan: &Plan) {
    object.retain(|key, _| match attr.sub_attribute(key) {
        Some(sub) => {
            let selected = match &plan.only {
                Some(only) => {
                    sub.returned == Returned::Always || only.iter().any(|s| std::ptr::eq(*s, sub))
                }
                None => true,
            };
            selected
                && sub.returned != Returned::Never
                && !plan.minus.iter().any(|s| std::ptr::eq(*s, sub))
        }
        None => plan.only.is_none(),
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::schema::{ENTERPRISE_USER, GROUP, GROUP_RESOURCE, USER, USER_RESOURCE};
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn full_user() -> Map<String, Value> {
        let value = json!({
            "schemas": [USER, ENTERPRISE_USER],
            "id": "u1",
            "externalId": "e1",
            "meta": {"resourceType": "User", "location": "https://h/Users/u1"},
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "password": "never-here",
            "emails": [{"value": "w@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home"}],
            "groups": [{"value": "g1", "display": "Sales"}],
            ENTERPRISE_USER: {"employeeNumber": "42", "department": "D", "manager": {"value": "m1"}}
        });
        value.as_object().unwrap().clone()
    }

    fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let mut user = full_user();
        Projection::parse(&USER_RESOURCE, attributes, excluded)
            .unwrap()
            .apply(&USER_RESOURCE, &mut user);
        Value::Object(user)
    }

    #[test]
    fn without_parameters_everything_but_never_attributes_is_returned() {
        let mut expected = full_user();
        expected.shift_remove("password");
        assert_eq!(project(None, None), Value::Object(expected));
    }

    #[rstest]
    #[case("userName", json!({"schemas": [USER], "id": "u1", "userName": "bjensen"}))]
    #[case("USERNAME, Name.GivenName", json!({"schemas": [USER], "id": "u1", "userName": "bjensen", "name": {"givenName": "Barbara"}}))]
    #[case("emails.value", json!({"schemas": [USER], "id": "u1", "emails": [{"value": "w@x"}, {"value": "h@x"}]}))]
    #[case("emails.type,emails.value", json!({"schemas": [USER], "id": "u1", "emails": [{"value": "w@x", "type": "work"}, {"value": "h@x", "type": "home"}]}))]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
           json!({"schemas": [USER, ENTERPRISE_USER], "id": "u1", ENTERPRISE_USER: {"employeeNumber": "42"}}))]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value",
           json!({"schemas": [USER, ENTERPRISE_USER], "id": "u1", ENTERPRISE_USER: {"manager": {"value": "m1"}}}))]
    #[case("URN:ietf:params:scim:schemas:extension:enterprise:2.0:User",
           json!({"schemas": [USER, ENTERPRISE_USER], "id": "u1", ENTERPRISE_USER: {"employeeNumber": "42", "department": "D", "manager": {"value": "m1"}}}))]
    #[case("department,meta", json!({"schemas": [USER, ENTERPRISE_USER], "id": "u1", "meta": {"resourceType": "User", "location": "https://h/Users/u1"}, ENTERPRISE_USER: {"department": "D"}}))]
    #[case("password,id", json!({"schemas": [USER], "id": "u1"}))]
    fn attributes_returns_only_the_named_ones_plus_always_ones(
        #[case] attributes: &str,
        #[case] expected: Value,
    ) {
        assert_eq!(project(Some(attributes), None), expected);
    }

    #[rstest]
    #[case("emails[type eq \"work\"]")]
    #[case("nosuch, emails[type eq \"work\"].value")]
    #[case(" , ")]
    fn an_attributes_list_without_known_names_is_ignored(#[case] attributes: &str) {
        // M8: Microsoft's collection sends a value filter; it must not fail.
        assert_eq!(project(Some(attributes), None), project(None, None));
    }

    #[test]
    fn unknown_names_beside_known_ones_are_ignored() {
        assert_eq!(
            project(Some("userName,emails[type eq \"work\"],nosuch"), None),
            json!({"schemas": [USER], "id": "u1", "userName": "bjensen"})
        );
    }

    #[rstest]
    #[case("emails,groups,name.givenName,meta,externalId,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
           json!({"schemas": [USER], "id": "u1", "userName": "bjensen", "name": {"familyName": "Jensen"}}))]
    #[case("id,schemas,userName,name,emails,groups,meta,externalId,employeeNumber,department,manager",
           json!({"schemas": [USER], "id": "u1"}))]
    #[case("department,manager,employeeNumber",
           json!({"schemas": [USER], "id": "u1", "externalId": "e1", "meta": {"resourceType": "User", "location": "https://h/Users/u1"},
                  "userName": "bjensen", "name": {"givenName": "Barbara", "familyName": "Jensen"},
                  "emails": [{"value": "w@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home"}],
                  "groups": [{"value": "g1", "display": "Sales"}]}))]
    fn excluded_attributes_removes_them_but_never_id_or_schemas(
        #[case] excluded: &str,
        #[case] expected: Value,
    ) {
        assert_eq!(project(None, Some(excluded)), expected);
    }

    #[test]
    fn excluding_a_sub_attribute_keeps_the_rest_of_each_element() {
        let out = project(None, Some("emails.type,emails.primary"));
        assert_eq!(out["emails"], json!([{"value": "w@x"}, {"value": "h@x"}]));
    }

    #[test]
    fn both_lists_select_then_exclude() {
        assert_eq!(
            project(Some("userName,emails"), Some("emails")),
            json!({"schemas": [USER], "id": "u1", "userName": "bjensen"})
        );
    }

    #[test]
    fn excluded_members_are_not_wanted_and_not_returned() {
        // E15: Entra always reads groups with excludedAttributes=members.
        let projection = Projection::parse(&GROUP_RESOURCE, None, Some("members")).unwrap();
        assert!(!projection.wants("members"));
        assert!(projection.wants("displayName"));
        let mut group = json!({"schemas": [GROUP], "id": "g1", "displayName": "S", "members": [{"value": "u1"}]})
            .as_object()
            .unwrap()
            .clone();
        projection.apply(&GROUP_RESOURCE, &mut group);
        assert_eq!(
            Value::Object(group),
            json!({"schemas": [GROUP], "id": "g1", "displayName": "S"})
        );
    }

    #[rstest]
    #[case(None, None, "members", true)]
    #[case(Some("displayName"), None, "members", false)]
    #[case(Some("members.value"), None, "members", true)]
    #[case(Some("MEMBERS"), None, "members", true)]
    #[case(None, Some("members.display"), "members", true)]
    #[case(None, Some("Members"), "members", false)]
    #[case(Some("nosuch"), None, "members", true)]
    fn wants_tells_whether_memberships_are_needed(
        #[case] attributes: Option<&str>,
        #[case] excluded: Option<&str>,
        #[case] name: &str,
        #[case] expected: bool,
    ) {
        let projection = Projection::parse(&GROUP_RESOURCE, attributes, excluded).unwrap();
        assert_eq!(projection.wants(name), expected);
    }

    #[rstest]
    #[case(None, None, "groups", true)]
    #[case(None, Some("groups"), "groups", false)]
    #[case(Some("userName"), None, "groups", false)]
    #[case(None, None, "password", false)]
    #[case(Some("userName"), None, "id", true)]
    #[case(Some("userName"), None, "manager", false)]
    #[case(Some("manager"), None, "manager", true)]
    fn wants_follows_returned_and_both_lists_for_users(
        #[case] attributes: Option<&str>,
        #[case] excluded: Option<&str>,
        #[case] name: &str,
        #[case] expected: bool,
    ) {
        let projection = Projection::parse(&USER_RESOURCE, attributes, excluded).unwrap();
        assert_eq!(projection.wants(name), expected, "{name}");
    }

    // --- extensions no schema describes (E14) ----------------------------------

    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User";

    fn custom_user() -> Map<String, Value> {
        let mut user = full_user();
        user.insert(
            "schemas".into(),
            json!([USER, ENTERPRISE_USER, CUSTOM, "urn:example:other"]),
        );
        user.insert(
            CUSTOM.into(),
            json!({"costCenter": "42", "manager": {"value": "m1", "$ref": "r"}}),
        );
        user.insert("urn:example:other".into(), json!({"a": 1}));
        user
    }

    fn project_custom(attributes: Option<&str>, excluded: Option<&str>) -> Value {
        let mut user = custom_user();
        Projection::parse(&USER_RESOURCE, attributes, excluded)
            .unwrap()
            .apply(&USER_RESOURCE, &mut user);
        Value::Object(user)
    }

    #[rstest]
    #[case("urn:ietf:params:scim:schemas:extension:Contoso:2.0:User:costCenter",
           json!({"schemas": [USER, CUSTOM], "id": "u1", CUSTOM: {"costCenter": "42"}}))]
    #[case("urn:ietf:params:scim:schemas:extension:contoso:2.0:user.MANAGER.value,userName",
           json!({"schemas": [USER, CUSTOM], "id": "u1", "userName": "bjensen", CUSTOM: {"manager": {"value": "m1"}}}))]
    #[case("URN:IETF:params:scim:schemas:extension:Contoso:2.0:User",
           json!({"schemas": [USER, CUSTOM], "id": "u1", CUSTOM: {"costCenter": "42", "manager": {"value": "m1", "$ref": "r"}}}))]
    #[case("urn:example:other:a",
           json!({"schemas": [USER, "urn:example:other"], "id": "u1", "urn:example:other": {"a": 1}}))]
    #[case("urn:example:nosuch:x",
           json!({"schemas": [USER], "id": "u1"}))]
    fn attributes_select_unregistered_extensions_and_their_attributes(
        #[case] attributes: &str,
        #[case] expected: Value,
    ) {
        assert_eq!(project_custom(Some(attributes), None), expected);
    }

    #[test]
    fn excluded_attributes_remove_unregistered_ones() {
        let out = project_custom(
            None,
            Some(
                "urn:ietf:params:scim:schemas:extension:Contoso:2.0:User:manager.$ref,urn:example:other",
            ),
        );
        assert_eq!(
            out[CUSTOM],
            json!({"costCenter": "42", "manager": {"value": "m1"}})
        );
        assert_eq!(out.get("urn:example:other"), None);
        assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER, CUSTOM]));
        let out = project_custom(None, Some(CUSTOM));
        assert_eq!(out.get(CUSTOM), None);
        assert_eq!(
            out["schemas"],
            json!([USER, ENTERPRISE_USER, "urn:example:other"])
        );
    }

    #[test]
    fn without_parameters_unregistered_extensions_are_returned_whole() {
        assert_eq!(project_custom(None, None)[CUSTOM], custom_user()[CUSTOM]);
        // A registered selection alone leaves them out, as any attribute not named.
        assert_eq!(project_custom(Some("userName"), None).get(CUSTOM), None);
    }
}
