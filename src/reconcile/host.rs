//! The host application's side of the rules (docs/reconciliation.md, rules 3,
//! 6 and 9): a first sign-in turns PENDING into ACTIVE; an admin deactivates
//! (and that stands against every sync) or reactivates; an admin sets a role
//! (sync never changes it unless the policy maps groups to roles). Each action
//! is one transaction with its event.

use serde_json::json;
use tracing::instrument;

use super::apply::{to_plan, to_row, user_view};
use super::model::{EventType, Field};
use super::plan::{AppUser, DeactivatedBy, Status};
use super::unit::Unit;
use crate::store::app::users as app_users;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SignedIn,
    Deactivate,
    Reactivate,
    SetRole(String),
}

/// The user after the action, and the event it is, or None when it changes
/// nothing (signing in twice, deactivating a deactivated user).
pub fn plan(user: &AppUser, action: &Action, now: i64) -> Option<(AppUser, EventType, Vec<Field>)> {
    let mut next = user.clone();
    let event = match action {
        Action::SignedIn => {
            next.has_signed_in = true;
            if next.status == Status::Pending {
                next.status = Status::Active;
            }
            (EventType::UserUpdated, vec![Field::Status])
        }
        Action::Deactivate => {
            // An admin's deactivation replaces a directory's: it must now
            // outlast the directory saying active again.
            next.status = Status::Deactivated;
            next.deactivated_by = Some(DeactivatedBy::Admin);
            if user.status != Status::Deactivated {
                next.deactivated_at = Some(now);
            }
            (EventType::UserDeactivated, vec![Field::Status])
        }
        Action::Reactivate => {
            if user.status != Status::Deactivated {
                return None;
            }
            next.status = if user.has_signed_in {
                Status::Active
            } else {
                Status::Pending
            };
            next.deactivated_by = None;
            next.deactivated_at = None;
            (EventType::UserReactivated, vec![Field::Status])
        }
        Action::SetRole(role) => {
            next.role = role.clone();
            (EventType::UserUpdated, vec![Field::Role])
        }
    };
    (next != *user).then_some((next, event.0, event.1))
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("no user with that email in the tenant")]
    NotFound,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for HostError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => HostError::NotFound,
            other => HostError::Store(other),
        }
    }
}

/// How the host application names one of its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    Id(String),
    Email(String),
}

/// Apply an action to the tenant's user; returns the user's view after it
/// (unchanged when the action changes nothing).
#[instrument(skip_all, fields(tenant_id, ?action))]
pub async fn act(
    store: &Store,
    tenant_id: &str,
    user: &UserKey,
    action: Action,
    now: i64,
) -> Result<serde_json::Value, HostError> {
    let mut unit = Unit::begin(store, now).await?;
    let row = match user {
        UserKey::Email(email) => {
            app_users::user_by_email(unit.conn(), tenant_id, &crate::domain::names::fold(email))
                .await?
        }
        UserKey::Id(id) => app_users::users_by_id(unit.conn(), std::slice::from_ref(id))
            .await?
            .into_iter()
            .find(|u| u.tenant_id == tenant_id)
            .ok_or(HostError::NotFound)?,
    };
    let Some((next, kind, changed)) = plan(&to_plan(&row), &action, now) else {
        return Ok(user_view(&row));
    };
    let next = to_row(next, Some(&row), tenant_id, now);
    app_users::update_user(unit.conn(), &next).await?;
    unit.event(
        tenant_id,
        kind,
        "user",
        &next.id,
        json!({ "user": user_view(&next), "changed": changed, "by": "host" }),
    )?;
    unit.commit().await?;
    Ok(user_view(&next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::model::Profile;
    use rstest::rstest;

    fn user(status: Status, by: Option<DeactivatedBy>, signed_in: bool) -> AppUser {
        AppUser {
            id: "u1".into(),
            email: "ann@example.com".into(),
            status,
            deactivated_by: by,
            deactivated_at: by.map(|_| 1),
            role: "member".into(),
            profile: Profile::default(),
            has_signed_in: signed_in,
        }
    }

    #[test]
    fn a_first_sign_in_turns_pending_into_active() {
        let (next, kind, _) =
            plan(&user(Status::Pending, None, false), &Action::SignedIn, 5).unwrap();
        assert_eq!(
            (next.status, next.has_signed_in, kind),
            (Status::Active, true, EventType::UserUpdated)
        );
        assert!(
            plan(&next, &Action::SignedIn, 6).is_none(),
            "signing in twice changes nothing"
        );
    }

    #[test]
    fn signing_in_never_lifts_a_deactivation() {
        let (next, _, _) = plan(
            &user(Status::Deactivated, Some(DeactivatedBy::Directory), false),
            &Action::SignedIn,
            5,
        )
        .unwrap();
        assert_eq!(next.status, Status::Deactivated);
        assert!(next.has_signed_in);
    }

    #[rstest]
    #[case(Status::Active, None)]
    #[case(Status::Deactivated, Some(DeactivatedBy::Directory))]
    fn an_admin_deactivation_is_the_admins_even_over_a_directorys(
        #[case] status: Status,
        #[case] by: Option<DeactivatedBy>,
    ) {
        let (next, kind, _) = plan(&user(status, by, true), &Action::Deactivate, 5).unwrap();
        assert_eq!(next.deactivated_by, Some(DeactivatedBy::Admin));
        assert_eq!(kind, EventType::UserDeactivated);
    }

    #[rstest]
    #[case(true, Status::Active)]
    #[case(false, Status::Pending)]
    fn reactivation_restores_the_invitation_status(
        #[case] signed_in: bool,
        #[case] expected: Status,
    ) {
        let (next, kind, _) = plan(
            &user(Status::Deactivated, Some(DeactivatedBy::Admin), signed_in),
            &Action::Reactivate,
            5,
        )
        .unwrap();
        assert_eq!(
            (next.status, next.deactivated_by, kind),
            (expected, None, EventType::UserReactivated)
        );
        assert!(plan(&next, &Action::Reactivate, 6).is_none());
    }

    #[test]
    fn a_role_change_is_an_update_of_the_role() {
        let (next, _, changed) = plan(
            &user(Status::Active, None, true),
            &Action::SetRole("admin".into()),
            5,
        )
        .unwrap();
        assert_eq!((next.role.as_str(), changed), ("admin", vec![Field::Role]));
    }
}
