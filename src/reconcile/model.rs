//! The engine's vocabulary, in one place: what a directory says about a user
//! or a group (`Snapshot`, `GroupSnapshot`), the change an edge hands over
//! (`Change`, `GroupChange`, `MemberChanges`), what the rules made of it
//! (`Outcome`, `GroupOutcome`, the `Field`s an update changed), and the
//! closed sets the engine writes: `EventType` and `RunStatus` (defined in
//! `domain`, so `store` can name them too; stored as their names). Pure data.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

pub use crate::domain::custom::Custom;
pub use crate::domain::event::EventType;
pub use crate::domain::run::RunStatus;

/// The profile fields sync refreshes (never role, never invitation status).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub employee_number: Option<String>,
    pub manager: Option<String>,
    /// Custom attributes the directory's attribute mapping gives: name →
    /// string or list of strings (`reconcile::mapping`). Left out of the
    /// JSON when empty, so a snapshot taken before mappings existed hashes
    /// the same. Shared with the app user's row and event (`Custom`).
    #[serde(skip_serializing_if = "Custom::is_empty")]
    pub custom: Custom,
}

/// What one directory says about one user, normalised at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub external_id: Option<String>,
    /// The primary email, folded.
    pub email: Option<String>,
    pub profile: Profile,
    /// The directory-side active flag (SCIM active, Graph accountEnabled, …).
    pub active: bool,
    /// The role a `role` rule of the attribute mapping gives (applied only
    /// when the policy lets sync set roles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The user as the directory wrote it (a SCIM resource, a provider's
    /// user object), which the engine reads the attribute mapping from
    /// before it plans (`apply::Origin::map`); gone once mapped, never
    /// stored.
    #[serde(skip)]
    pub document: Option<Arc<Value>>,
    /// Names or external ids of the directory groups the user is in (filled
    /// by the engine from the store; never stored with the snapshot).
    #[serde(skip)]
    pub groups: Vec<String>,
    /// None: a complete snapshot, where an absent value means no value (every
    /// full listing, every SCIM write). Some: a partial item that carries only
    /// these attributes (a Microsoft Graph delta round sends "at least the
    /// updated properties"); the others keep what the directory said before
    /// (`merged_over`). Never stored: the engine stores the merged snapshot.
    #[serde(skip)]
    pub carried: Option<Vec<SnapshotField>>,
    /// For a partial item: the custom attributes it carries (those whose
    /// mapped source it holds); the others keep what was said before.
    #[serde(skip)]
    pub carried_custom: Vec<String>,
}

/// What a directory's snapshot of a user can carry (the external id always
/// comes with it: it names the user). Not a SCIM schema attribute, nor a
/// `Field` (what an update of the app user changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SnapshotField {
    Email,
    Active,
    GivenName,
    FamilyName,
    DisplayName,
    AvatarUrl,
    Department,
    Title,
    EmployeeNumber,
    Manager,
    /// The role a mapping rule gives.
    Role,
}

impl Snapshot {
    /// Whether the snapshot carries this attribute (a complete one carries all).
    pub fn carries(&self, attribute: SnapshotField) -> bool {
        self.carried
            .as_ref()
            .is_none_or(|carried| carried.contains(&attribute))
    }

    /// The complete snapshot this one means, given what the directory said
    /// before (`None` when it said nothing yet: an attribute the item does
    /// not carry has no value then). A complete snapshot is itself.
    pub fn merged_over(self, before: Option<&Snapshot>) -> Snapshot {
        let Some(before) = before.filter(|_| self.carried.is_some()) else {
            return Snapshot {
                carried: None,
                ..self
            };
        };
        let pick = |attribute: SnapshotField, now: &Option<String>, was: &Option<String>| {
            if self.carries(attribute) { now } else { was }.clone()
        };
        let (p, b) = (&self.profile, &before.profile);
        let mut custom = b.custom.clone();
        for name in &self.carried_custom {
            match p.custom.get(name) {
                Some(value) => {
                    custom.to_mut().insert(name.clone(), value.clone());
                }
                None => custom.remove(name),
            }
        }
        Snapshot {
            external_id: self.external_id.clone().or(before.external_id.clone()),
            email: pick(SnapshotField::Email, &self.email, &before.email),
            profile: Profile {
                given_name: pick(SnapshotField::GivenName, &p.given_name, &b.given_name),
                family_name: pick(SnapshotField::FamilyName, &p.family_name, &b.family_name),
                display_name: pick(SnapshotField::DisplayName, &p.display_name, &b.display_name),
                avatar_url: pick(SnapshotField::AvatarUrl, &p.avatar_url, &b.avatar_url),
                department: pick(SnapshotField::Department, &p.department, &b.department),
                title: pick(SnapshotField::Title, &p.title, &b.title),
                employee_number: pick(
                    SnapshotField::EmployeeNumber,
                    &p.employee_number,
                    &b.employee_number,
                ),
                manager: pick(SnapshotField::Manager, &p.manager, &b.manager),
                custom,
            },
            active: if self.carries(SnapshotField::Active) {
                self.active
            } else {
                before.active
            },
            role: pick(SnapshotField::Role, &self.role, &before.role),
            document: None,
            groups: self.groups,
            carried: None,
            carried_custom: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(Box<Snapshot>),
    /// The directory removed the user (SCIM DELETE).
    Removed,
    /// Missing from a complete pull listing.
    Missing,
}

impl Change {
    pub fn upsert(snapshot: Snapshot) -> Change {
        Change::Upsert(Box::new(snapshot))
    }
}

/// What an update changed (named in the event's `changed` list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The set of directories linked to the user.
    Directories,
    Email,
    Role,
    Status,
    GivenName,
    FamilyName,
    DisplayName,
    AvatarUrl,
    Department,
    Title,
    EmployeeNumber,
    Manager,
    /// A custom attribute, by name: `custom_attributes.NAME` in `changed`.
    Custom(String),
}

impl Field {
    /// The name `changed` lists.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        let name = match self {
            Field::Directories => "directories",
            Field::Email => "email",
            Field::Role => "role",
            Field::Status => "status",
            Field::GivenName => "given_name",
            Field::FamilyName => "family_name",
            Field::DisplayName => "display_name",
            Field::AvatarUrl => "avatar_url",
            Field::Department => "department",
            Field::Title => "title",
            Field::EmployeeNumber => "employee_number",
            Field::Manager => "manager",
            Field::Custom(name) => return format!("custom_attributes.{name}").into(),
        };
        name.into()
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated(Vec<Field>),
    Unchanged,
    Deactivated,
    Reactivated,
    Deleted,
    Skipped(String),
    /// The address the change asks for belongs to a person this directory
    /// does not link: nothing changes (docs/reconciliation.md, rule 5).
    Conflict(String),
    /// The address the change asks for is still held by another user of
    /// this directory at the end of its set: nothing changes yet, and the
    /// change waits (stored) until the address is released.
    Deferred(String),
}

impl Outcome {
    /// The outcome's name without its detail (a metric's label).
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated(_) => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Deactivated => "deactivated",
            Outcome::Reactivated => "reactivated",
            Outcome::Deleted => "deleted",
            Outcome::Skipped(_) => "skipped",
            Outcome::Conflict(_) => "conflict",
            Outcome::Deferred(_) => "deferred",
        }
    }
}

/// What one directory says about one group, normalised at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupSnapshot {
    pub name: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupChange {
    Upsert(GroupSnapshot),
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupOutcome {
    Created,
    Updated,
    Unchanged,
    Deleted,
}

/// Membership changes of one directory group, as directory user ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}
