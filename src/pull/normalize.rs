//! Each provider's user object as the engine's `Snapshot`: its stable id (the
//! directory's id for the user), email, names, avatar, department, title,
//! employee number, manager, and whether the provider says the account is
//! active (docs/pull-apis.md §1B, §2B/2E, §3B/3D); and, for an
//! item that may leave properties out (a Graph incremental delta round), which
//! attributes it carries. Pure but for the WARN line and the metric a drop
//! also makes: JSON in, snapshots and the number of values dropped at the
//! caps out (`Normalized`), for the caller to count.

use std::sync::Arc;

use serde_json::Value;

use crate::domain::limits::{REFERENCE_BYTES, TEXT_BYTES};
use crate::domain::names::{self, fold};
use crate::reconcile::model::{Profile, Snapshot, SnapshotField};

/// A provider's user as this module makes it, and what it left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The directory's id for the user and its snapshot; None when the item
    /// has no id dirsync keeps (none, or one past its cap).
    pub user: Option<(String, Snapshot)>,
    /// How many of the item's values were past their caps and dropped
    /// (the id too, when it was): reported, not kept in a global, so a run
    /// counts those of the users it takes in (its `values_dropped`).
    pub dropped: u64,
}

/// Reads one provider item's string properties within their caps and
/// counts what it drops.
#[derive(Default)]
struct Reader {
    dropped: u64,
}

impl Reader {
    /// A provider's string property, trimmed, without the control
    /// characters no stored text may hold (`domain::text`): stripped rather
    /// than refused, as a provider cannot be answered 400, and a user
    /// skipped for a stray NUL in a title would count as missing from a
    /// complete listing. Absent when empty or longer than
    /// `domain::limits::TEXT_BYTES` (the cap the SCIM edge enforces on the
    /// same attributes).
    fn text(&mut self, v: &Value, path: &[&str]) -> Option<String> {
        self.capped(v, path, TEXT_BYTES)
    }

    /// Like [`Reader::text`] for a URL, with the cap on URIs.
    fn url(&mut self, v: &Value, path: &[&str]) -> Option<String> {
        self.capped(v, path, REFERENCE_BYTES)
    }

    /// A value past the cap is dropped, not cut: a truncated id, address
    /// or name would be a different one, silently. The drop is logged,
    /// counted in `dirsync_pull_values_dropped_total` and in what this
    /// reader reports; a user whose id is dropped is no snapshot at all, so
    /// the provider cannot make the run hold more than the caps allow.
    fn capped(&mut self, v: &Value, path: &[&str], max: usize) -> Option<String> {
        match within(v, path, max) {
            Ok(value) => value,
            Err(bytes) => {
                let property = path.join(".");
                tracing::warn!(
                    property,
                    bytes,
                    max,
                    "a provider's value is longer than dirsync keeps; dropped"
                );
                crate::metrics::pull_value_dropped(&property);
                self.dropped += 1;
                None
            }
        }
    }

    fn normalized(self, user: Option<(String, Snapshot)>) -> Normalized {
        Normalized {
            user,
            dropped: self.dropped,
        }
    }
}

/// The string property at `path` as dirsync would keep it (see
/// [`Reader::text`]): None when absent or empty, its length in bytes when
/// past `max`. Reads only: the caller says what a drop means.
fn within(v: &Value, path: &[&str], max: usize) -> Result<Option<String>, usize> {
    let mut at = v;
    for key in path {
        match at.get(*key) {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
    match at.as_str().and_then(provider_text) {
        Some(value) if value.len() > max => Err(value.len()),
        value => Ok(value),
    }
}

/// A provider's text, trimmed and without control characters (see
/// [`Reader::text`]);
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
pub fn google_user(user: &Value) -> Normalized {
    let mut read = Reader::default();
    let snapshot = google_snapshot(user, &mut read);
    read.normalized(snapshot)
}

fn google_snapshot(user: &Value, read: &mut Reader) -> Option<(String, Snapshot)> {
    let id = read.text(user, &["id"])?;
    let org = primary(user, "organizations");
    let flag = |name: &str| user.get(name).and_then(Value::as_bool) == Some(true);
    Some((
        id.clone(),
        Snapshot {
            external_id: Some(id),
            email: read.text(user, &["primaryEmail"]).map(|e| address(&e)),
            profile: Profile {
                given_name: read.text(user, &["name", "givenName"]),
                family_name: read.text(user, &["name", "familyName"]),
                display_name: read.text(user, &["name", "fullName"]),
                avatar_url: read.url(user, &["thumbnailPhotoUrl"]),
                department: org.and_then(|o| read.text(o, &["department"])),
                title: org.and_then(|o| read.text(o, &["title"])),
                employee_number: of_type(user, "externalIds", "organization")
                    .and_then(|e| read.text(e, &["value"])),
                manager: of_type(user, "relations", "manager")
                    .and_then(|r| read.text(r, &["value"])),
                custom: Default::default(),
            },
            active: !(flag("suspended") || flag("archived")),
            groups: Vec::new(),
            // The user as the provider wrote it, for the directory's
            // attribute mapping to read (`reconcile::apply::Origin::map`).
            document: Some(Arc::new(user.clone())),
            ..Default::default()
        },
    ))
}

/// A complete Microsoft Graph user (an initial delta round's item, a group's
/// member). `accountEnabled: false` is inactive; the email is `mail`, or the
/// `userPrincipalName` when the user has no mailbox; the manager is there
/// when the listing expanded it.
pub fn graph_user(user: &Value) -> Normalized {
    let mut read = Reader::default();
    let snapshot = graph_snapshot(user, &mut read);
    read.normalized(snapshot)
}

fn graph_snapshot(user: &Value, read: &mut Reader) -> Option<(String, Snapshot)> {
    let id = read.text(user, &["id"])?;
    let email = read
        .text(user, &["mail"])
        .or_else(|| read.text(user, &["userPrincipalName"]));
    Some((
        id.clone(),
        Snapshot {
            external_id: Some(id),
            email: email.map(|e| address(&e)),
            profile: Profile {
                given_name: read.text(user, &["givenName"]),
                family_name: read.text(user, &["surname"]),
                display_name: read.text(user, &["displayName"]),
                avatar_url: None,
                department: read.text(user, &["department"]),
                title: read.text(user, &["jobTitle"]),
                employee_number: read.text(user, &["employeeId"]),
                manager: read.text(user, &["manager", "id"]),
                custom: Default::default(),
            },
            active: user.get("accountEnabled").and_then(Value::as_bool) != Some(false),
            groups: Vec::new(),
            // The user as the provider wrote it, for the directory's
            // attribute mapping to read (`reconcile::apply::Origin::map`).
            document: Some(Arc::new(user.clone())),
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
pub fn graph_changed_user(user: &Value) -> Normalized {
    let mut normalized = graph_user(user);
    if let Some((_, snapshot)) = &mut normalized.user {
        let carried = graph_carried(user);
        // A UPN the item cannot vouch for as the email is no value at all,
        // so nothing downstream mistakes it for one.
        if !carried.contains(&SnapshotField::Email) {
            snapshot.email = None;
        }
        snapshot.carried = Some(carried);
    }
    normalized
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
    // an unmailboxed user's rename arrives with the next full run. (A mail
    // past its cap is read as cleared, as `graph_user` read it; it was
    // counted there, once.)
    let email = match user.get("mail") {
        Some(_) if matches!(within(user, &["mail"], TEXT_BYTES), Ok(Some(_))) => true,
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
pub fn okta_user(user: &Value) -> Normalized {
    let mut read = Reader::default();
    let snapshot = okta_snapshot(user, &mut read);
    read.normalized(snapshot)
}

fn okta_snapshot(user: &Value, read: &mut Reader) -> Option<(String, Snapshot)> {
    let id = read.text(user, &["id"])?;
    let profile = user.get("profile").unwrap_or(&Value::Null);
    let email = read
        .text(profile, &["email"])
        .or_else(|| read.text(profile, &["login"]));
    let status = read.text(user, &["status"]).unwrap_or_default();
    Some((
        id.clone(),
        Snapshot {
            external_id: Some(id),
            email: email.map(|e| address(&e)),
            profile: Profile {
                given_name: read.text(profile, &["firstName"]),
                family_name: read.text(profile, &["lastName"]),
                display_name: read.text(profile, &["displayName"]),
                avatar_url: None,
                department: read.text(profile, &["department"]),
                title: read.text(profile, &["title"]),
                employee_number: read.text(profile, &["employeeNumber"]),
                manager: read
                    .text(profile, &["managerId"])
                    .or_else(|| read.text(profile, &["manager"])),
                custom: Default::default(),
            },
            active: !matches!(status.as_str(), "SUSPENDED" | "DEPROVISIONED"),
            groups: Vec::new(),
            // The user as the provider wrote it, for the directory's
            // attribute mapping to read (`reconcile::apply::Origin::map`).
            document: Some(Arc::new(user.clone())),
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
        .user
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
        .user
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
        assert_eq!(google_user(&user).user.unwrap().1.active, active);
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
        assert_eq!(graph_user(&user).user.unwrap().1.active, active);
    }

    #[test]
    fn a_graph_user_without_a_mailbox_is_matched_by_its_user_principal_name() {
        let (_, s) = graph_user(&json!({
            "id": "u1", "mail": null, "userPrincipalName": "Ada@Contoso.onmicrosoft.com",
            "givenName": "Ada", "surname": "Lovelace", "jobTitle": "Analyst", "employeeId": "7",
            "manager": {"id": "u0"}
        }))
        .user
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
        let (_, s) = graph_changed_user(&graph_item(extra)).user.unwrap();
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
        let (_, s) = graph_changed_user(&graph_item(extra)).user.unwrap();
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
        let (_, s) = graph_changed_user(&graph_item(extra)).user.unwrap();
        assert_eq!(s.carries(SnapshotField::Department), carried);
        assert_eq!(s.profile.department.as_deref(), department);
    }

    #[test]
    fn a_complete_graph_user_carries_everything() {
        let (_, s) = graph_user(&graph_item(json!({"mail": "a@example.com"})))
            .user
            .unwrap();
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
        assert_eq!(okta_user(&user).user.unwrap().1.active, active);
    }

    #[test]
    fn an_okta_user_maps_its_profile() {
        let (id, s) = okta_user(&json!({
            "id": "00ub0oNGTSWTBKOLGLNR", "status": "ACTIVE",
            "profile": {"login": "ada@example.com", "email": "Ada@Example.com", "firstName": "Ada",
                        "lastName": "Lovelace", "department": "R&D", "title": "Analyst",
                        "employeeNumber": "7", "managerId": "00u0"}
        }))
        .user
        .unwrap();
        assert_eq!(id, "00ub0oNGTSWTBKOLGLNR");
        assert_eq!(s.external_id.as_deref(), Some("00ub0oNGTSWTBKOLGLNR"));
        assert_eq!(s.email.as_deref(), Some("ada@example.com"));
        assert_eq!(s.profile.manager.as_deref(), Some("00u0"));
    }

    #[test]
    fn a_user_without_an_id_is_not_a_snapshot() {
        assert!(
            google_user(&json!({"primaryEmail": "a@example.com"}))
                .user
                .is_none()
        );
        assert!(graph_user(&json!({"mail": "a@example.com"})).user.is_none());
        assert!(
            okta_user(&json!({"profile": {"login": "a@example.com"}}))
                .user
                .is_none()
        );
    }

    #[test]
    fn a_value_past_its_cap_is_dropped_reported_and_one_at_the_cap_is_kept() {
        let at = "d".repeat(TEXT_BYTES);
        let past = "d".repeat(TEXT_BYTES + 1);
        let user = |department: &str| {
            okta_user(&json!({
                "id": "00u1",
                "profile": {"login": "a@example.com", "department": department, "title": "T"}
            }))
        };
        let kept = user(&at);
        assert_eq!(kept.dropped, 0);
        let kept = kept.user.unwrap().1;
        assert_eq!(kept.profile.department.as_deref(), Some(at.as_str()));
        let dropped = user(&past);
        assert_eq!(dropped.dropped, 1, "the drop is reported to the caller");
        let (_, dropped) = dropped.user.unwrap();
        assert_eq!(dropped.profile.department, None);
        assert_eq!(dropped.profile.title.as_deref(), Some("T"));
        let photo = format!("https://x/{}", "p".repeat(REFERENCE_BYTES));
        let google = google_user(&json!({"id": "1", "thumbnailPhotoUrl": photo}));
        assert_eq!(google.dropped, 1);
        assert_eq!(google.user.unwrap().1.profile.avatar_url, None);
    }

    #[rstest]
    #[case::google(google_user(&json!({
        "id": "1", "primaryEmail": "a@example.com",
        "name": {"givenName": "A", "familyName": "f".repeat(TEXT_BYTES + 1)},
        "organizations": [{"primary": true, "title": "t".repeat(TEXT_BYTES + 1), "department": "D"}],
        "relations": [{"type": "manager", "value": "m".repeat(TEXT_BYTES + 1)}],
    })))]
    #[case::graph(graph_user(&json!({
        "id": "u1", "mail": "a@example.com", "givenName": "A",
        "surname": "f".repeat(TEXT_BYTES + 1), "jobTitle": "t".repeat(TEXT_BYTES + 1),
        "department": "D", "manager": {"id": "m".repeat(TEXT_BYTES + 1)},
    })))]
    #[case::okta(okta_user(&json!({
        "id": "00u1", "status": "ACTIVE",
        "profile": {"login": "a@example.com", "firstName": "A", "lastName": "f".repeat(TEXT_BYTES + 1),
                    "title": "t".repeat(TEXT_BYTES + 1), "department": "D",
                    "managerId": "m".repeat(TEXT_BYTES + 1)},
    })))]
    fn every_value_dropped_from_a_user_is_reported_once_and_the_rest_is_kept(
        #[case] normalized: Normalized,
    ) {
        assert_eq!(normalized.dropped, 3, "family name, title and manager");
        let (_, s) = normalized.user.unwrap();
        assert_eq!(
            (
                s.profile.family_name,
                s.profile.title,
                s.profile.manager.as_deref(),
            ),
            (None, None, None)
        );
        assert_eq!(s.profile.given_name.as_deref(), Some("A"));
        assert_eq!(s.profile.department.as_deref(), Some("D"));
        assert_eq!(s.email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn a_user_without_a_value_past_a_cap_reports_no_drop() {
        let user = json!({"id": "u1", "mail": "a@example.com", "jobTitle": "Analyst"});
        assert_eq!(graph_user(&user).dropped, 0);
        assert_eq!(graph_changed_user(&user).dropped, 0);
    }

    #[test]
    fn a_partial_graph_items_mail_past_its_cap_is_reported_once_and_read_as_cleared() {
        let long = format!("{}@example.com", "a".repeat(TEXT_BYTES));
        let item = graph_item(json!({"mail": long, "userPrincipalName": "ada@contoso.example"}));
        let normalized = graph_changed_user(&item);
        assert_eq!(
            normalized.dropped, 1,
            "read for the email and for what is carried"
        );
        let (_, s) = normalized.user.unwrap();
        assert!(s.carries(SnapshotField::Email));
        assert_eq!(s.email.as_deref(), Some("ada@contoso.example"));
    }

    #[test]
    fn a_user_whose_id_is_past_the_cap_is_not_a_snapshot_and_its_id_is_reported_dropped() {
        let id = "9".repeat(TEXT_BYTES + 1);
        let normalized = graph_user(&json!({"id": id, "mail": "a@example.com"}));
        assert_eq!(normalized.user, None);
        assert_eq!(normalized.dropped, 1);
    }
}
