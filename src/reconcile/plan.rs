//! The user rules (docs/reconciliation.md) as one pure function: what the
//! directory says, what the application has, the policy and `now` in; an
//! outcome and the writes it implies out. Nothing here reads or writes
//! storage; applying a plan (and its event) in one transaction belongs to the
//! caller.

use super::model::{Change, Field, Outcome, Profile, Snapshot};
use super::policy::{OnDelete, OnMissing, Policy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Active,
    Deactivated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeactivatedBy {
    Admin,
    Directory,
}

/// The host application's user, as far as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUser {
    pub id: String,
    /// Folded; unique per tenant.
    pub email: String,
    pub status: Status,
    pub deactivated_by: Option<DeactivatedBy>,
    pub deactivated_at: Option<i64>,
    pub role: String,
    pub profile: Profile,
    /// Whether the host application ever reported a sign-in (restores ACTIVE,
    /// not PENDING, when a directory reactivates the user).
    pub has_signed_in: bool,
}

/// What the store found for one change.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The app user this directory user is linked to (match by external id).
    pub linked: Option<AppUser>,
    /// For a directory user not linked yet: the app user holding the
    /// snapshot's email in the tenant that it may adopt (a first match by
    /// email; never a user this directory already links, whose address is
    /// judged with the rest of the set in `addresses`).
    pub by_email: Option<AppUser>,
    /// Another directory is linked to the same app user.
    pub other_links: bool,
    /// Another linked directory still says the user is active.
    pub other_directory_active: bool,
    /// This directory linked the user first, so its profile is the one kept.
    pub owns_profile: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Create(AppUser),
    Update(AppUser),
    Delete {
        app_user_id: String,
    },
    /// Link this directory user to the app user.
    Link {
        app_user_id: String,
    },
    /// Drop this directory's link (another directory still holds the user).
    Unlink {
        app_user_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
    pub writes: Vec<Write>,
}

impl Plan {
    fn nothing(outcome: Outcome) -> Plan {
        Plan {
            outcome,
            writes: Vec::new(),
        }
    }
}

/// Decide what one change means for the application's user.
pub fn plan_user(
    current: &Current,
    change: &Change,
    policy: &Policy,
    now: i64,
    new_id: impl FnOnce() -> String,
) -> Plan {
    match change {
        Change::Upsert(snapshot) => upsert(current, snapshot, policy, now, new_id),
        Change::Removed => match policy.on_delete {
            OnDelete::Deactivate => removal_deactivates(current, now),
            OnDelete::Delete => delete(current),
        },
        Change::Missing => match policy.on_missing {
            OnMissing::Ignore => Plan::nothing(Outcome::Unchanged),
            OnMissing::Deactivate => removal_deactivates(current, now),
        },
    }
}

fn upsert(
    current: &Current,
    s: &Snapshot,
    policy: &Policy,
    now: i64,
    new_id: impl FnOnce() -> String,
) -> Plan {
    if let Some(email) = &s.email
        && !policy.allows_email(email)
    {
        return Plan::nothing(Outcome::Skipped(format!(
            "{email} is outside the tenant's allowed email domains"
        )));
    }
    // Uniqueness of the address is not judged here but on the whole set of
    // changes that arrive together (`addresses::settle`): a plan says what
    // the change would do if its address is free at the end of the set.
    match (&current.linked, &current.by_email) {
        (Some(user), _) => refresh(current, user, s, policy, now, Vec::new()),
        (None, Some(user)) => {
            // Match by email: the same person, known from elsewhere. Link, then
            // apply the same refresh rules.
            let link = Write::Link {
                app_user_id: user.id.clone(),
            };
            refresh(current, user, s, policy, now, vec![link])
        }
        (None, None) => create(s, policy, now, new_id),
    }
}

fn directory_says_active(s: &Snapshot, policy: &Policy) -> bool {
    s.active && policy.membership_satisfied(&s.groups)
}

fn create(s: &Snapshot, policy: &Policy, now: i64, new_id: impl FnOnce() -> String) -> Plan {
    let Some(email) = s.email.clone() else {
        return Plan::nothing(Outcome::Skipped(
            "the directory user has no email; app users are matched by email".into(),
        ));
    };
    let active = directory_says_active(s, policy);
    let user = AppUser {
        id: new_id(),
        email,
        status: if active {
            match policy.new_user_status {
                super::policy::NewUserStatus::Pending => Status::Pending,
                super::policy::NewUserStatus::Active => Status::Active,
            }
        } else {
            Status::Deactivated
        },
        deactivated_by: (!active).then_some(DeactivatedBy::Directory),
        deactivated_at: (!active).then_some(now),
        role: policy
            .synced_role(s.role.as_deref(), &s.groups)
            .unwrap_or(&policy.default_role)
            .to_owned(),
        profile: s.profile.clone(),
        has_signed_in: false,
    };
    let id = user.id.clone();
    Plan {
        outcome: Outcome::Created,
        writes: vec![Write::Create(user), Write::Link { app_user_id: id }],
    }
}

fn changed_fields(before: &AppUser, after: &AppUser) -> Vec<Field> {
    let (a, b) = (&before.profile, &after.profile);
    let mut out = Vec::new();
    let pairs = [
        (before.email != after.email, Field::Email),
        (before.role != after.role, Field::Role),
        (before.status != after.status, Field::Status),
    ];
    for (changed, field) in pairs {
        if changed {
            out.push(field);
        }
    }
    out.extend(profile_differences(a, b));
    out
}

/// The profile fields, custom attributes by name, that differ.
pub fn profile_differences(a: &Profile, b: &Profile) -> Vec<Field> {
    let pairs = [
        (a.given_name != b.given_name, Field::GivenName),
        (a.family_name != b.family_name, Field::FamilyName),
        (a.display_name != b.display_name, Field::DisplayName),
        (a.avatar_url != b.avatar_url, Field::AvatarUrl),
        (a.department != b.department, Field::Department),
        (a.title != b.title, Field::Title),
        (
            a.employee_number != b.employee_number,
            Field::EmployeeNumber,
        ),
        (a.manager != b.manager, Field::Manager),
    ];
    let mut out: Vec<Field> = pairs
        .into_iter()
        .filter(|(changed, _)| *changed)
        .map(|(_, field)| field)
        .collect();
    let names: std::collections::BTreeSet<&String> =
        a.custom.keys().chain(b.custom.keys()).collect();
    for name in names {
        if a.custom.get(name) != b.custom.get(name) {
            out.push(Field::Custom(name.clone()));
        }
    }
    out
}

/// The refresh rules for a matched user: profile (from the owning directory),
/// email, role only under group mapping, status only as the directory's own
/// deactivation allows. Invitation status is never touched.
fn refresh(
    current: &Current,
    user: &AppUser,
    s: &Snapshot,
    policy: &Policy,
    now: i64,
    mut writes: Vec<Write>,
) -> Plan {
    let mut next = user.clone();
    // The profile follows the directory that linked the user first
    // (docs/reconciliation.md, rule 16); a user nobody else links is ours.
    if current.owns_profile || (current.linked.is_none() && !current.other_links) {
        next.profile = s.profile.clone();
        if let Some(email) = &s.email {
            next.email = email.clone();
        }
    }
    if let Some(role) = policy.synced_role(s.role.as_deref(), &s.groups) {
        next.role = role.to_owned();
    }
    let mut outcome = None;
    if directory_says_active(s, policy) {
        // Restore only what a directory deactivated; an admin's stands.
        if user.status == Status::Deactivated
            && user.deactivated_by == Some(DeactivatedBy::Directory)
        {
            next.status = if user.has_signed_in {
                Status::Active
            } else {
                Status::Pending
            };
            next.deactivated_by = None;
            next.deactivated_at = None;
            outcome = Some(Outcome::Reactivated);
        }
    } else if user.status != Status::Deactivated && !current.other_directory_active {
        next.status = Status::Deactivated;
        next.deactivated_by = Some(DeactivatedBy::Directory);
        next.deactivated_at = Some(now);
        outcome = Some(Outcome::Deactivated);
    }
    if next == *user {
        return Plan {
            outcome: if writes.is_empty() {
                Outcome::Unchanged
            } else {
                Outcome::Updated(vec![Field::Directories])
            },
            writes,
        };
    }
    let fields = changed_fields(user, &next);
    writes.push(Write::Update(next));
    Plan {
        outcome: outcome.unwrap_or(Outcome::Updated(fields)),
        writes,
    }
}

fn removal_deactivates(current: &Current, now: i64) -> Plan {
    let Some(user) = &current.linked else {
        return Plan::nothing(Outcome::Unchanged);
    };
    if user.status == Status::Deactivated || current.other_directory_active {
        return Plan::nothing(Outcome::Unchanged);
    }
    let mut next = user.clone();
    next.status = Status::Deactivated;
    next.deactivated_by = Some(DeactivatedBy::Directory);
    next.deactivated_at = Some(now);
    Plan {
        outcome: Outcome::Deactivated,
        writes: vec![Write::Update(next)],
    }
}

fn delete(current: &Current) -> Plan {
    let Some(user) = &current.linked else {
        return Plan::nothing(Outcome::Unchanged);
    };
    if current.other_links {
        // Another directory still vouches for the person: drop only this link.
        return Plan {
            outcome: Outcome::Updated(vec![Field::Directories]),
            writes: vec![Write::Unlink {
                app_user_id: user.id.clone(),
            }],
        };
    }
    Plan {
        outcome: Outcome::Deleted,
        writes: vec![Write::Delete {
            app_user_id: user.id.clone(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::policy::{GroupRole, NewUserStatus};
    use rstest::rstest;

    const NOW: i64 = 1_700_000_000_000;

    fn snapshot(email: &str, given: &str, active: bool) -> Snapshot {
        Snapshot {
            external_id: Some("ext-1".into()),
            email: Some(email.into()),
            profile: Profile {
                given_name: Some(given.into()),
                ..Profile::default()
            },
            active,
            groups: Vec::new(),
            ..Default::default()
        }
    }

    fn user(status: Status, by: Option<DeactivatedBy>) -> AppUser {
        AppUser {
            id: "u1".into(),
            email: "ann@example.com".into(),
            status,
            deactivated_by: by,
            deactivated_at: by.map(|_| NOW - 1),
            role: "admin".into(),
            profile: Profile {
                given_name: Some("Ann".into()),
                ..Profile::default()
            },
            has_signed_in: status == Status::Active,
        }
    }

    fn linked(u: AppUser) -> Current {
        Current {
            linked: Some(u),
            owns_profile: true,
            ..Current::default()
        }
    }

    fn plan(current: &Current, change: Change, policy: &Policy) -> Plan {
        plan_user(current, &change, policy, NOW, || "new-id".into())
    }

    #[rstest]
    #[case(NewUserStatus::Pending, Status::Pending)]
    #[case(NewUserStatus::Active, Status::Active)]
    fn a_new_user_is_created_with_the_policy_status_and_default_role(
        #[case] configured: NewUserStatus,
        #[case] expected: Status,
    ) {
        let policy = Policy {
            new_user_status: configured,
            ..Policy::default()
        };
        let p = plan(
            &Current::default(),
            Change::upsert(snapshot("ann@example.com", "Ann", true)),
            &policy,
        );
        assert_eq!(p.outcome, Outcome::Created);
        let Write::Create(created) = &p.writes[0] else {
            panic!("{p:?}")
        };
        assert_eq!(created.status, expected);
        assert_eq!(created.role, "member");
        assert_eq!(
            p.writes[1],
            Write::Link {
                app_user_id: "new-id".into()
            }
        );
    }

    #[test]
    fn re_import_refreshes_the_profile_but_never_role_or_invitation_status() {
        let current = linked(user(Status::Pending, None));
        let p = plan(
            &current,
            Change::upsert(snapshot("ann@example.com", "Annie", true)),
            &Policy::default(),
        );
        assert_eq!(p.outcome, Outcome::Updated(vec![Field::GivenName]));
        let Write::Update(next) = &p.writes[0] else {
            panic!()
        };
        assert_eq!(next.role, "admin");
        assert_eq!(next.status, Status::Pending);
    }

    #[test]
    fn an_identical_snapshot_is_unchanged_and_writes_nothing() {
        let current = linked(user(Status::Active, None));
        let p = plan(
            &current,
            Change::upsert(snapshot("ann@example.com", "Ann", true)),
            &Policy::default(),
        );
        assert_eq!(p, Plan::nothing(Outcome::Unchanged));
    }

    #[rstest]
    #[case(true, Status::Active)]
    #[case(false, Status::Pending)]
    fn a_directory_deactivated_user_comes_back_as_they_were(
        #[case] signed_in: bool,
        #[case] restored: Status,
    ) {
        let mut u = user(Status::Deactivated, Some(DeactivatedBy::Directory));
        u.has_signed_in = signed_in;
        let p = plan(
            &linked(u),
            Change::upsert(snapshot("ann@example.com", "Ann", true)),
            &Policy::default(),
        );
        assert_eq!(p.outcome, Outcome::Reactivated);
        let Write::Update(next) = &p.writes[0] else {
            panic!()
        };
        assert_eq!(next.status, restored);
        assert_eq!(next.deactivated_by, None);
    }

    #[test]
    fn an_admin_deactivation_is_never_undone_by_sync() {
        let current = linked(user(Status::Deactivated, Some(DeactivatedBy::Admin)));
        let p = plan(
            &current,
            Change::upsert(snapshot("ann@example.com", "Ann", true)),
            &Policy::default(),
        );
        assert_eq!(p, Plan::nothing(Outcome::Unchanged));
    }

    #[test]
    fn directory_inactive_deactivates_by_directory() {
        let p = plan(
            &linked(user(Status::Active, None)),
            Change::upsert(snapshot("ann@example.com", "Ann", false)),
            &Policy::default(),
        );
        assert_eq!(p.outcome, Outcome::Deactivated);
        let Write::Update(next) = &p.writes[0] else {
            panic!()
        };
        assert_eq!(next.deactivated_by, Some(DeactivatedBy::Directory));
        assert_eq!(next.deactivated_at, Some(NOW));
    }

    #[test]
    fn an_email_change_with_a_stable_external_id_updates_in_place() {
        let p = plan(
            &linked(user(Status::Active, None)),
            Change::upsert(snapshot("ann.new@example.com", "Ann", true)),
            &Policy::default(),
        );
        assert_eq!(p.outcome, Outcome::Updated(vec![Field::Email]));
        assert!(
            matches!(&p.writes[0], Write::Update(u) if u.id == "u1" && u.email == "ann.new@example.com")
        );
    }

    #[test]
    fn a_user_outside_the_allowed_domains_is_skipped_with_a_reason() {
        let policy = Policy {
            allowed_domains: vec!["example.com".into()],
            ..Policy::default()
        };
        let p = plan(
            &Current::default(),
            Change::upsert(snapshot("eve@evil.com", "Eve", true)),
            &policy,
        );
        assert!(matches!(p.outcome, Outcome::Skipped(ref r) if r.contains("evil.com")));
        assert!(p.writes.is_empty());
    }

    #[test]
    fn matching_by_email_links_the_existing_person() {
        let current = Current {
            by_email: Some(user(Status::Active, None)),
            ..Current::default()
        };
        let p = plan(
            &current,
            Change::upsert(snapshot("ann@example.com", "Ann", true)),
            &Policy::default(),
        );
        assert_eq!(
            p.writes[0],
            Write::Link {
                app_user_id: "u1".into()
            }
        );
        assert!(matches!(p.outcome, Outcome::Updated(_)));
    }

    #[test]
    fn group_role_mapping_sets_the_role_only_when_on() {
        let mut policy = Policy {
            group_roles: vec![GroupRole {
                group: "Admins".into(),
                role: "owner".into(),
            }],
            ..Policy::default()
        };
        let mut s = snapshot("ann@example.com", "Ann", true);
        s.groups = vec!["admins".into()];
        let off = plan(
            &linked(user(Status::Active, None)),
            Change::upsert(s.clone()),
            &policy,
        );
        assert_eq!(off.outcome, Outcome::Unchanged);
        policy.group_roles_enabled = true;
        let on = plan(
            &linked(user(Status::Active, None)),
            Change::upsert(s),
            &policy,
        );
        assert_eq!(on.outcome, Outcome::Updated(vec![Field::Role]));
    }

    #[test]
    fn the_membership_requirement_deactivates_users_in_no_mapped_group() {
        let policy = Policy {
            require_group_membership: true,
            group_roles: vec![GroupRole {
                group: "App Users".into(),
                role: "member".into(),
            }],
            ..Policy::default()
        };
        let p = plan(
            &linked(user(Status::Active, None)),
            Change::upsert(snapshot("ann@example.com", "Ann", true)),
            &policy,
        );
        assert_eq!(p.outcome, Outcome::Deactivated);
    }

    #[rstest]
    #[case(OnDelete::Deactivate, Outcome::Deactivated)]
    #[case(OnDelete::Delete, Outcome::Deleted)]
    fn removal_follows_on_delete(#[case] on_delete: OnDelete, #[case] expected: Outcome) {
        let policy = Policy {
            on_delete,
            ..Policy::default()
        };
        let p = plan(
            &linked(user(Status::Active, None)),
            Change::Removed,
            &policy,
        );
        assert_eq!(p.outcome, expected);
    }

    #[rstest]
    #[case(OnMissing::Deactivate, Outcome::Deactivated)]
    #[case(OnMissing::Ignore, Outcome::Unchanged)]
    fn missing_from_a_listing_follows_on_missing(
        #[case] on_missing: OnMissing,
        #[case] expected: Outcome,
    ) {
        let policy = Policy {
            on_missing,
            ..Policy::default()
        };
        let p = plan(
            &linked(user(Status::Active, None)),
            Change::Missing,
            &policy,
        );
        assert_eq!(p.outcome, expected);
    }

    #[test]
    fn two_directories_deactivate_only_when_both_say_inactive() {
        let current = Current {
            other_links: true,
            other_directory_active: true,
            ..linked(user(Status::Active, None))
        };
        let p = plan(
            &current,
            Change::upsert(snapshot("ann@example.com", "Ann", false)),
            &Policy::default(),
        );
        assert_eq!(p.outcome, Outcome::Unchanged);
        let deleted = plan(
            &current,
            Change::Removed,
            &Policy {
                on_delete: OnDelete::Delete,
                ..Policy::default()
            },
        );
        assert_eq!(
            deleted.writes,
            vec![Write::Unlink {
                app_user_id: "u1".into()
            }]
        );
    }

    #[test]
    fn the_profile_follows_the_directory_that_linked_first() {
        let current = Current {
            owns_profile: false,
            other_links: true,
            ..linked(user(Status::Active, None))
        };
        let p = plan(
            &current,
            Change::upsert(snapshot("ann@example.com", "Someone Else", true)),
            &Policy::default(),
        );
        assert_eq!(p.outcome, Outcome::Unchanged);
    }
}

/// Properties over arbitrary sequences of directory changes, applied to an
/// in-memory application state the way the store will apply them.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::reconcile::policy::{OnDelete, OnMissing};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Directory(Change),
        /// The host application's admin deactivates the user.
        AdminDeactivates,
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        (
            prop::sample::select(vec!["ann@example.com", "ann@new.example.com"]),
            prop::sample::select(vec!["Ann", "Annie"]),
            any::<bool>(),
        )
            .prop_map(|(email, given, active)| Snapshot {
                external_id: Some("ext-1".into()),
                email: Some(email.into()),
                profile: Profile {
                    given_name: Some(given.into()),
                    ..Profile::default()
                },
                active,
                groups: Vec::new(),
                ..Default::default()
            })
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            4 => snapshot().prop_map(Change::upsert),
            1 => Just(Change::Removed),
            1 => Just(Change::Missing),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => change().prop_map(Step::Directory),
            1 => Just(Step::AdminDeactivates),
        ]
    }

    fn policy() -> impl Strategy<Value = Policy> {
        (any::<bool>(), any::<bool>()).prop_map(|(delete, ignore)| Policy {
            on_delete: if delete {
                OnDelete::Delete
            } else {
                OnDelete::Deactivate
            },
            on_missing: if ignore {
                OnMissing::Ignore
            } else {
                OnMissing::Deactivate
            },
            ..Policy::default()
        })
    }

    /// The application state for one directory user, and the id counter.
    #[derive(Debug, Clone, PartialEq, Default)]
    struct World {
        user: Option<AppUser>,
        next_id: u32,
    }

    impl World {
        fn current(&self) -> Current {
            Current {
                linked: self.user.clone(),
                owns_profile: true,
                ..Current::default()
            }
        }

        /// Apply one change; returns the plan it made.
        fn apply(&mut self, change: &Change, policy: &Policy) -> Plan {
            let id = format!("u{}", self.next_id);
            let mut used = false;
            let plan = plan_user(&self.current(), change, policy, 1, || {
                used = true;
                id.clone()
            });
            if used {
                self.next_id += 1;
            }
            for write in &plan.writes {
                match write {
                    Write::Create(u) | Write::Update(u) => self.user = Some(u.clone()),
                    Write::Delete { .. } => self.user = None,
                    Write::Link { .. } | Write::Unlink { .. } => {}
                }
            }
            plan
        }

        fn admin_deactivates(&mut self) {
            if let Some(u) = &mut self.user {
                u.status = Status::Deactivated;
                u.deactivated_by = Some(DeactivatedBy::Admin);
            }
        }
    }

    proptest! {
        #[test]
        fn applying_every_change_twice_equals_applying_it_once(
            changes in prop::collection::vec(change(), 1..30),
            policy in policy(),
        ) {
            let (mut once, mut twice) = (World::default(), World::default());
            for change in &changes {
                once.apply(change, &policy);
                twice.apply(change, &policy);
                let again = twice.apply(change, &policy);
                prop_assert_eq!(again.outcome, Outcome::Unchanged);
                prop_assert!(again.writes.is_empty());
                prop_assert_eq!(&once.user, &twice.user);
            }
        }

        #[test]
        fn no_directory_event_reactivates_an_admin_deactivated_user(
            steps in prop::collection::vec(step(), 1..40),
        ) {
            // Under on_delete = delete a later upsert is a new person; the
            // property is about the same app user, so keep deactivation.
            let policy = Policy::default();
            let mut world = World::default();
            for step in &steps {
                let admin_before = world.user.as_ref().is_some_and(|u| {
                    u.deactivated_by == Some(DeactivatedBy::Admin)
                });
                match step {
                    Step::AdminDeactivates => world.admin_deactivates(),
                    Step::Directory(change) => {
                        world.apply(change, &policy);
                    }
                }
                if admin_before {
                    let u = world.user.as_ref().expect("deactivation never deletes");
                    prop_assert_eq!(u.status, Status::Deactivated);
                    prop_assert_eq!(u.deactivated_by, Some(DeactivatedBy::Admin));
                }
            }
        }

        #[test]
        fn a_plan_writes_exactly_when_its_outcome_is_a_change(
            changes in prop::collection::vec(change(), 1..30),
            policy in policy(),
        ) {
            let mut world = World::default();
            for change in &changes {
                let before = world.clone();
                let plan = world.apply(change, &policy);
                let changed = before.user != world.user || plan.writes.iter().any(|w| matches!(w, Write::Link { .. } | Write::Unlink { .. }));
                match plan.outcome {
                    Outcome::Unchanged | Outcome::Skipped(_) | Outcome::Conflict(_) | Outcome::Deferred(_) => {
                        prop_assert!(plan.writes.is_empty());
                        prop_assert!(!changed);
                    }
                    _ => prop_assert!(changed, "{:?} changed nothing", plan.outcome),
                }
            }
        }
    }
}
