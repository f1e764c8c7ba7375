//! A directory's provisioning policy: the values that make the rules differ per
//! directory (never an `if vendor`). Stored as JSON with the directory; a
//! field it does not know is an error, so a misspelt limit sent to the API
//! is refused rather than silently left at its default.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::mapping::Rule;

/// Status given to a user the directory creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewUserStatus {
    /// Until the host application reports a first sign-in.
    #[default]
    Pending,
    Active,
}

/// What a removal (SCIM DELETE) does to the app user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    #[default]
    Deactivate,
    Delete,
}

/// What being missing from a complete pull listing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    #[default]
    Deactivate,
    Ignore,
}

/// The mass-deactivation guard: a run that would deactivate more than either
/// limit deactivates no one and waits for an operator's approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Threshold {
    /// None (`null`): no limit by count.
    pub max_count: Option<u64>,
    /// A share of the directory's active users, 0 to 100; None (`null`):
    /// no limit by share.
    pub max_percent: Option<f64>,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold {
            max_count: None,
            max_percent: Some(20.0),
        }
    }
}

impl Threshold {
    /// Whether deactivating `count` of `population` users crosses a limit.
    pub fn is_exceeded(&self, count: u64, population: u64) -> bool {
        if count == 0 {
            return false;
        }
        let by_count = self.max_count.is_some_and(|max| count > max);
        let by_percent = self.max_percent.is_some_and(|max| {
            population > 0 && (count as f64) * 100.0 / (population as f64) > max
        });
        by_count || by_percent
    }
}

/// One directory group that grants a role in the host application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRole {
    /// The directory group's external id or display name.
    pub group: String,
    pub role: String,
}

/// A directory's provisioning policy. A field left out takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// The role a new user is given.
    pub default_role: String,
    pub new_user_status: NewUserStatus,
    pub on_delete: OnDelete,
    pub on_missing: OnMissing,
    pub deactivation_threshold: Threshold,
    /// Email domains of the tenant; empty allows every domain.
    pub allowed_domains: Vec<String>,
    /// When on, the first mapping a user's groups match sets their role, and
    /// sync may change it.
    pub group_roles_enabled: bool,
    pub group_roles: Vec<GroupRole>,
    /// When on, a user in none of the mapped groups is deactivated by the
    /// directory (evens out Entra, which keeps users active while in
    /// groups, and JumpCloud, which suspends through group removal).
    pub require_group_membership: bool,
    /// Rules that read the directory's own attributes into the app user's
    /// standard fields, custom attributes or role (`reconcile::mapping`);
    /// empty: the defaults the README's table gives. Left out of the JSON
    /// when empty, so a policy from before mappings keeps its fingerprint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attribute_mapping: Vec<Rule>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default_role: "member".into(),
            new_user_status: NewUserStatus::default(),
            on_delete: OnDelete::default(),
            on_missing: OnMissing::default(),
            deactivation_threshold: Threshold::default(),
            allowed_domains: Vec::new(),
            group_roles_enabled: false,
            group_roles: Vec::new(),
            require_group_membership: false,
            attribute_mapping: Vec::new(),
        }
    }
}

impl Policy {
    /// Whether an email's domain is allowed for the tenant.
    pub fn allows_email(&self, email: &str) -> bool {
        if self.allowed_domains.is_empty() {
            return true;
        }
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        self.allowed_domains
            .iter()
            .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain))
    }

    /// The role the group mapping gives for these groups, if it is on and one matches.
    pub fn mapped_role(&self, groups: &[String]) -> Option<&str> {
        if !self.group_roles_enabled {
            return None;
        }
        self.group_roles
            .iter()
            .find(|m| groups.iter().any(|g| g.eq_ignore_ascii_case(&m.group)))
            .map(|m| m.role.as_str())
    }

    /// The role sync gives a user, only when the policy lets sync set roles
    /// (`group_roles_enabled`, the one switch): the role an attribute rule
    /// mapped (`role`), else the group mapping's.
    pub fn synced_role<'a>(&'a self, role: Option<&'a str>, groups: &[String]) -> Option<&'a str> {
        if !self.group_roles_enabled {
            return None;
        }
        role.or_else(|| self.mapped_role(groups))
    }

    /// Whether the user's groups satisfy the membership requirement.
    pub fn membership_satisfied(&self, groups: &[String]) -> bool {
        !self.require_group_membership
            || self
                .group_roles
                .iter()
                .any(|m| groups.iter().any(|g| g.eq_ignore_ascii_case(&m.group)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pending_member_deactivate_and_twenty_percent() {
        let p: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Policy::default());
        assert_eq!(p.new_user_status, NewUserStatus::Pending);
        assert_eq!(p.default_role, "member");
    }

    #[test]
    fn unknown_fields_are_refused_and_left_out_ones_take_their_defaults() {
        for raw in [
            r#"{"default_rol": "x"}"#,
            r#"{"deactivation_threshold": {"max_percnt": 5}}"#,
            r#"{"group_roles": [{"group": "a", "role": "b", "weight": 1}]}"#,
        ] {
            assert!(serde_json::from_str::<Policy>(raw).is_err(), "{raw}");
        }
        let p: Policy =
            serde_json::from_str(r#"{"deactivation_threshold": {"max_count": 3}}"#).unwrap();
        assert_eq!(p.deactivation_threshold.max_count, Some(3));
        assert_eq!(p.deactivation_threshold.max_percent, Some(20.0));
        let p: Policy =
            serde_json::from_str(r#"{"deactivation_threshold": {"max_percent": null}}"#).unwrap();
        assert_eq!(p.deactivation_threshold.max_percent, None, "null: no limit");
    }

    #[test]
    fn threshold_trips_on_count_or_percent() {
        let t = Threshold {
            max_count: Some(10),
            max_percent: Some(20.0),
        };
        assert!(!t.is_exceeded(10, 1000));
        assert!(t.is_exceeded(11, 1000));
        assert!(t.is_exceeded(3, 10));
        assert!(!t.is_exceeded(0, 0));
    }

    #[test]
    fn allowed_domains_compare_without_case_or_at_sign() {
        let p = Policy {
            allowed_domains: vec!["@Example.com".into()],
            ..Policy::default()
        };
        assert!(p.allows_email("a@example.COM"));
        assert!(!p.allows_email("a@evil.com"));
        assert!(Policy::default().allows_email("anyone@anywhere"));
    }
}
