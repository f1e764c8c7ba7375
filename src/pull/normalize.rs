//! Each provider's user object as the engine's `Snapshot`: its stable id (the
//! directory's id for the user), email, names, avatar, department, title,
//! employee number, manager, and whether the provider says the account is
//! active (docs/pull-apis.md §1B, §2B/2E, §3B/3D); and, for an
//! item that may leave properties out (a Graph incremental delta round), which
//! attributes it carries. Pure: JSON in, snapshots out.

use serde_json::Value;

use crate::domain::limits::{REFERENCE_BYTES, TEXT_BYTES};
use crate::domain::names::{self, fold};
use crate::reconcile::model::{Profile, Snapshot, SnapshotField};

/// A provider's string property, trimmed, without the control characters no
/// stored text may hold (`domain::text`): stripped rather than refused, as a
/// provider cannot be answered 400, and a user skipped for a stray NUL in a
/// title would count as missing from a complete listing. Absent when empty
/// or longer than `domain::limits::TEXT_BYTES` (the cap the SCIM edge
/// enforces on the same attributes).
fn text(v: &Value, path: &[&str]) -> Option<String> {
    capped(v, path, TEXT_BYTES)
}

/// Like [`text`] for a URL, with the cap on URIs.
fn url(v: &Value, path: &[&str]) -> Option<String> {
    capped(v, path, REFERENCE_BYTES)
}

/// A value past the cap is dropped, not cut: a truncated id, address or
/// name would be a different one, silently. The drop is logged and counted
/// (`dirsync_pull_values_dropped_total`); a user whose id is dropped is no
/// snapshot at all, so the provider cannot make the run hold more than the
/// caps allow.
fn capped(v: &Value, path: &[&str], max: usize) -> Option<String> {
    let mut at = v;
    for key in path {
        at = at.get(*key)?;
    }
    let value = at.as_str().and_then(provider_text)?;
    if value.len() > max {
        let property = path.join(".");
        tracing::warn!(
            property,
            bytes = value.len(),
            max,
            "a provider's value is longer than dirsync keeps; dropped"
        );
        crate::metrics::pull_value_dropped(&property);
        return None;
    }
    Some(value)
}

/// A provider's text, trimmed and without control characters (see [`text`]);
/// for the connectors' group names too.
pub fn provider_text(raw: &str) -> Option<String> {
    let kept = crate::domain::text::strip_controls(raw);
    let trimmed = kept.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A provider's address as the application keys it: without invisible or
/// direction characters (which a SCIM client is refused), folded.
fn address(raw: &str) -> String {
    fold(&names::without_invisible(raw))
}

/// The element flagged `primary`, else the first (Google's repeated fields).
fn primary<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    let items = v.get(field)?.as_array()?;
    items
        .iter()
        .find(|i| i.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| items.first())
}

/// The first element whose `type` is `kind`.
fn of_type<'a>(v: &'a Value, field: &str, kind: &str) -> Option<&'a Value> {
    v.get(field)?
        .as_array()?
        .iter()
        .find(|i| i.get("type").and_then(Value::as_str) == Some(kind))
}

/// A Google Workspace Directory API user (`admin#directory#user`). Suspended
/// or archived accounts are inactive.
pub fn google_user(user: &Value) -> Option<(String, Snapshot)> {
    let id = text(user, &["id"])?;
    let org = primary(user, "organizations");
    let flag = |name: &str| user.get(name).and_then(Value::as_bool) == Some(true);
    Some((
        id.clone(),
        Snapshot {
            external_id: Some(id),
            email: text(user, &["primaryEmail"]).map(|e| address(&e)),
            profile: Profile {
                given_name: text(user, &["name", "givenName"]),
                family_name: text(user, &["name", "familyName"]),
                display_name: text(user, &["name", "fullName"]),
                avatar_url: url(user, &["thumbnailPhotoUrl"]),
                department: org.and_then(|o| text(o, &["department"])),
                title: org.and_then(|o| text(o, &["title"])),
                employee_number: of_type(user, "externalIds", "organization")
                    .and_then(|e| text(e, &["value"])),
                manager: of_type(user, "relations", "manager").and_then(|r| text(r, &["value"])),
                custom: Default::default(),
            },
            active: !(flag("suspended") || flag("archived")),
            groups: Vec::new(),
            ..Default::default()
        },
    ))
}

/// A complete Microsoft Graph user (an initial delta round's item, a group's
/// member). `accountEnabled: false` is inactive; the email is `mail`, or the
/// `userPrincipalName` when the user has no mailbox; the manager is there
/// when the listing expanded it.
pub fn graph_user(user: &Value) -> Option<(String, Snapshot)> {
    let id = text(user, &["id"])?;
    let email = text(user, &["mail"]).or_else(|| text(user, &["userPrincipalName"]));
    Some((
        id.clone(),
        Snapshot {
            external_id: Some(id),
            email: email.map(|e| address(&e)),
            profile: Profile {
                given_name: text(user, &["givenName"]),
                family_name: text(user, &["surname"]),
                display_name: text(user, &["displayName"]),
                avatar_url: None,
                department: text(user, &["department"]),
                title: text(user, &["jobTitle"]),
                employee_number: text(user, &["employeeId"]),
                manager: text(user, &["manager", "id"]),
                custom: Default::default(),
            },
            active: user.get("accountEnabled").and_then(Value::as_bool) != Some(false),
            groups: Vec::new(),
            ..Default::default()
        },
    ))
}

/// The Graph properties that carry one attribute each whenever they are in
/// an item, `null` included (Graph's form for a cleared property).
const GRAPH_CARRIERS: &[(&str, SnapshotField)] = &[
    ("givenName", SnapshotField::GivenName),
    ("surname", SnapshotField::FamilyName),
    ("displayName", SnapshotField::DisplayName),
    ("department", SnapshotField::Department),
    ("jobTitle", SnapshotField::Title),
    ("employeeId", SnapshotField::EmployeeNumber),
    ("manager", SnapshotField::Manager),
];

/// A Microsoft Graph user from an incremental delta round. Graph promises
/// such an item only "at least the updated properties" (§2C), so the
/// snapshot is partial: it carries the attributes whose properties are in
/// the item (present as `null`: carried, with no value), and the engine
/// keeps the stored value of the others.
pub fn graph_changed_user(user: &Value) -> Option<(String, Snapshot)> {
    let (id, mut snapshot) = graph_user(user)?;
    let carried = graph_carried(user);
    // A UPN the item cannot vouch for as the email is no value at all, so
    // nothing downstream mistakes it for one.
    if !carried.contains(&SnapshotField::Email) {
        snapshot.email = None;
    }
    snapshot.carried = Some(carried);
    Some((id, snapshot))
}

/// Which attributes a partial Graph item carries, in `SnapshotField` order.
fn graph_carried(user: &Value) -> Vec<SnapshotField> {
    let present = |key: &str| user.get(key).is_some();
    let mut carried: Vec<SnapshotField> = GRAPH_CARRIERS
        .iter()
        .filter(|(key, _)| present(key))
        .map(|(_, attribute)| *attribute)
        .collect();
    // `accountEnabled` has no "no value": only a boolean says anything.
    if user.get("accountEnabled").is_some_and(Value::is_boolean) {
        carried.push(SnapshotField::Active);
    }
    // The email is `mail`, else the UPN. A mail address decides it; a
    // cleared mail with the UPN beside it decides it too (the UPN). With
    // `mail` absent the item cannot say whether the user still has a
    // mailbox, so a UPN alone (an unmailboxed user's rename, or a mailboxed
    // user's UPN change that does not touch the address) is not the email:
    // an unmailboxed user's rename arrives with the next full run.
    let email = match user.get("mail") {
        Some(_) if text(user, &["mail"]).is_some() => true,
        Some(_) => present("userPrincipalName"),
        None => false,
    };
    if email {
        carried.push(SnapshotField::Email);
    }
    carried.sort();
    carried
}

/// An Okta user. SUSPENDED and DEPROVISIONED are inactive; every other status
/// (ACTIVE, STAGED, PROVISIONED, LOCKED_OUT, PASSWORD_EXPIRED, RECOVERY) keeps
/// the account (docs/pull-apis.md §3D).
pub fn okta_user(user: &Value) -> Option<(String, Snapshot)> {
    let id = text(user, &["id"])?;
    let profile = user.get("profile").unwrap_or(&Value::Null);
    let email = text(profile, &["email"]).or_else(|| text(profile, &["login"]));
    let status = text(user, &["status"]).unwrap_or_default();
    Some((
        id.clone(),
        Snapshot {
            external_id: Some(id),
            email: email.map(|e| address(&e)),
            profile: Profile {
                given_name: text(profile, &["firstName"]),
                family_name: text(profile, &["lastName"]),
                display_name: text(profile, &["displayName"]),
                avatar_url: None,
                department: text(profile, &["department"]),
                title: text(profile, &["title"]),
                employee_number: text(profile, &["employeeNumber"]),
                manager: text(profile, &["managerId"]).or_else(|| text(profile, &["manager"])),
                custom: Default::default(),
            },
            active: !matches!(status.as_str(), "SUSPENDED" | "DEPROVISIONED"),
            groups: Vec::new(),
            ..Default::default()
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[test]
    fn a_providers_control_characters_are_stripped_and_its_address_keyed_visibly() {
        // PostgreSQL would refuse the NUL and fail the run's transaction.
        let (_, s) = okta_user(&json!({
            "id": "00u1",
            "status": "ACTIVE",
            "profile": {
                "email": "Ａnn\u{200b}@Example.com",
                "firstName": "A\u{0}nn",
                "title": "\u{7}\u{0}",
            },
        }))
        .unwrap();
        assert_eq!(s.email.as_deref(), Some("ann@example.com"));
        assert_eq!(s.profile.given_name.as_deref(), Some("Ann"));
        assert_eq!(s.profile.title, None);
        assert_eq!(
            provider_text("Sales\u{0}\tEMEA "),
            Some("Sales\tEMEA".into())
        );
    }

    #[test]
    fn a_google_user_maps_its_fields_and_folds_the_email() {
        let (id, s) = google_user(&json!({
            "kind": "admin#directory#user", "id": "1045", "primaryEmail": "Ada@Example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "fullName": "Ada Lovelace"},
            "thumbnailPhotoUrl": "https://lh3.example/photo",
            "organizations": [{"title": "Analyst", "department": "R&D"}, {"title": "Other", "primary": true, "department": "Math"}],
            "externalIds": [{"type": "custom", "value": "x"}, {"type": "organization", "value": "E-7"}],
            "relations": [{"type": "manager", "value": "boss@example.com"}],
            "suspended": false
        }))
        .unwrap();
        assert_eq!(id, "1045");
        assert_eq!(s.email.as_deref(), Some("ada@example.com"));
        assert_eq!(s.profile.display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            s.profile.department.as_deref(),
            Some("Math"),
            "the primary organization"
        );
        assert_eq!(s.profile.employee_number.as_deref(), Some("E-7"));
        assert_eq!(s.profile.manager.as_deref(), Some("boss@example.com"));
        assert!(s.active);
    }

    #[rstest]
    #[case(json!({"suspended": true}), false)]
    #[case(json!({"archived": true}), false)]
    #[case(json!({"suspended": false, "archived": false}), true)]
    #[case(json!({}), true)]
    fn google_suspended_or_archived_is_inactive(#[case] flags: Value, #[case] active: bool) {
        let mut user = json!({"id": "1", "primaryEmail": "a@example.com"});
        user.as_object_mut()
            .unwrap()
            .extend(flags.as_object().unwrap().clone());
        assert_eq!(google_user(&user).unwrap().1.active, active);
    }

    #[rstest]
    #[case(json!({"accountEnabled": false}), false)]
    #[case(json!({"accountEnabled": true}), true)]
    #[case(json!({}), true)]
    fn graph_account_enabled_decides_activity(#[case] flags: Value, #[case] active: bool) {
        let mut user = json!({"id": "u1", "mail": "a@example.com"});
        user.as_object_mut()
            .unwrap()
            .extend(flags.as_object().unwrap().clone());
        assert_eq!(graph_user(&user).unwrap().1.active, active);
    }

    #[test]
    fn a_graph_user_without_a_mailbox_is_matched_by_its_user_principal_name() {
        let (_, s) = graph_user(&json!({
            "id": "u1", "mail": null, "userPrincipalName": "Ada@Contoso.onmicrosoft.com",
            "givenName": "Ada", "surname": "Lovelace", "jobTitle": "Analyst", "employeeId": "7",
            "manager": {"id": "u0"}
        }))
        .unwrap();
        assert_eq!(s.email.as_deref(), Some("ada@contoso.onmicrosoft.com"));
        assert_eq!(s.profile.family_name.as_deref(), Some("Lovelace"));
        assert_eq!(s.profile.title.as_deref(), Some("Analyst"));
        assert_eq!(s.profile.manager.as_deref(), Some("u0"));
    }

    fn graph_item(extra: Value) -> Value {
        let mut user = json!({"id": "u1"});
        user.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        user
    }

    #[rstest]
    #[case(json!({}), vec![])]
    #[case(json!({"givenName": "Ada"}), vec![SnapshotField::GivenName])]
    #[case(json!({"surname": null}), vec![SnapshotField::FamilyName])]
    #[case(json!({"displayName": "Ada L"}), vec![SnapshotField::DisplayName])]
    #[case(json!({"department": "R&D"}), vec![SnapshotField::Department])]
    #[case(json!({"jobTitle": null}), vec![SnapshotField::Title])]
    #[case(json!({"employeeId": "7"}), vec![SnapshotField::EmployeeNumber])]
    #[case(json!({"manager": {"id": "u0"}}), vec![SnapshotField::Manager])]
    #[case(json!({"manager": null}), vec![SnapshotField::Manager])]
    #[case(json!({"accountEnabled": false}), vec![SnapshotField::Active])]
    #[case(json!({"accountEnabled": null}), vec![])]
    #[case(
        json!({"accountEnabled": true, "surname": "L", "mail": "a@example.com", "jobTitle": "Analyst"}),
        vec![SnapshotField::Email, SnapshotField::Active, SnapshotField::FamilyName, SnapshotField::Title]
    )]
    fn a_partial_graph_item_carries_exactly_the_properties_it_holds(
        #[case] extra: Value,
        #[case] carried: Vec<SnapshotField>,
    ) {
        let (_, s) = graph_changed_user(&graph_item(extra)).unwrap();
        assert_eq!(s.carried, Some(carried));
    }

    #[rstest]
    #[case(json!({"mail": "Ada@Example.com"}), Some("ada@example.com"))]
    #[case(
        json!({"mail": "ada@example.com", "userPrincipalName": "ada@contoso.example"}),
        Some("ada@example.com")
    )]
    #[case(
        json!({"mail": null, "userPrincipalName": "Ada@Contoso.example"}),
        Some("ada@contoso.example")
    )]
    #[case(
        json!({"mail": "", "userPrincipalName": "ada@contoso.example"}),
        Some("ada@contoso.example")
    )]
    #[case(json!({"mail": null}), None)]
    #[case(json!({"userPrincipalName": "ada@contoso.example"}), None)]
    #[case(json!({}), None)]
    fn a_partial_graph_items_email_is_carried_only_when_mail_decides_it(
        #[case] extra: Value,
        #[case] email: Option<&str>,
    ) {
        let (_, s) = graph_changed_user(&graph_item(extra)).unwrap();
        assert_eq!(s.carries(SnapshotField::Email), email.is_some());
        assert_eq!(s.email.as_deref(), email);
    }

    #[rstest]
    #[case(json!({"department": "Sales"}), true, Some("Sales"))]
    #[case(json!({"department": null}), true, None)]
    #[case(json!({"department": ""}), true, None)]
    #[case(json!({}), false, None)]
    fn an_explicit_null_is_carried_without_a_value_and_an_absent_property_is_not_carried(
        #[case] extra: Value,
        #[case] carried: bool,
        #[case] department: Option<&str>,
    ) {
        let (_, s) = graph_changed_user(&graph_item(extra)).unwrap();
        assert_eq!(s.carries(SnapshotField::Department), carried);
        assert_eq!(s.profile.department.as_deref(), department);
    }

    #[test]
    fn a_complete_graph_user_carries_everything() {
        let (_, s) = graph_user(&graph_item(json!({"mail": "a@example.com"}))).unwrap();
        assert_eq!(s.carried, None);
        assert!(
            s.carries(SnapshotField::Department),
            "absent means no value"
        );
    }

    #[rstest]
    #[case("ACTIVE", true)]
    #[case("STAGED", true)]
    #[case("PROVISIONED", true)]
    #[case("LOCKED_OUT", true)]
    #[case("PASSWORD_EXPIRED", true)]
    #[case("RECOVERY", true)]
    #[case("SUSPENDED", false)]
    #[case("DEPROVISIONED", false)]
    fn okta_statuses_map_to_activity(#[case] status: &str, #[case] active: bool) {
        let user = json!({"id": "00u1", "status": status, "profile": {"login": "a@example.com"}});
        assert_eq!(okta_user(&user).unwrap().1.active, active);
    }

    #[test]
    fn an_okta_user_maps_its_profile() {
        let (id, s) = okta_user(&json!({
            "id": "00ub0oNGTSWTBKOLGLNR", "status": "ACTIVE",
            "profile": {"login": "ada@example.com", "email": "Ada@Example.com", "firstName": "Ada",
                        "lastName": "Lovelace", "department": "R&D", "title": "Analyst",
                        "employeeNumber": "7", "managerId": "00u0"}
        }))
        .unwrap();
        assert_eq!(id, "00ub0oNGTSWTBKOLGLNR");
        assert_eq!(s.external_id.as_deref(), Some("00ub0oNGTSWTBKOLGLNR"));
        assert_eq!(s.email.as_deref(), Some("ada@example.com"));
        assert_eq!(s.profile.manager.as_deref(), Some("00u0"));
    }

    #[test]
    fn a_user_without_an_id_is_not_a_snapshot() {
        assert!(google_user(&json!({"primaryEmail": "a@example.com"})).is_none());
        assert!(graph_user(&json!({"mail": "a@example.com"})).is_none());
        assert!(okta_user(&json!({"profile": {"login": "a@example.com"}})).is_none());
    }

    #[test]
    fn a_value_past_its_cap_is_dropped_and_one_at_the_cap_is_kept() {
        let at = "d".repeat(TEXT_BYTES);
        let past = "d".repeat(TEXT_BYTES + 1);
        let user = |department: &str| {
            okta_user(&json!({
                "id": "00u1",
                "profile": {"login": "a@example.com", "department": department, "title": "T"}
            }))
            .unwrap()
            .1
        };
        assert_eq!(user(&at).profile.department.as_deref(), Some(at.as_str()));
        let dropped = user(&past);
        assert_eq!(dropped.profile.department, None);
        assert_eq!(dropped.profile.title.as_deref(), Some("T"));
        let photo = format!("https://x/{}", "p".repeat(REFERENCE_BYTES));
        let google = google_user(&json!({"id": "1", "thumbnailPhotoUrl": photo})).unwrap();
        assert_eq!(google.1.profile.avatar_url, None);
    }

    #[test]
    fn a_user_whose_id_is_past_the_cap_is_not_a_snapshot() {
        let id = "9".repeat(TEXT_BYTES + 1);
        assert!(graph_user(&json!({"id": id, "mail": "a@example.com"})).is_none());
    }
}
