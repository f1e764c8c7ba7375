//! Setup links of the customer's setup portal: the host application (API,
//! CLI) or an operator (dashboard) creates one for a tenant and hands its
//! URL to the tenant's IT admin. Only the secret's SHA-256 is stored (as
//! for SCIM tokens, `crypto`); the URL is shown once. A link opens one
//! short-lived `portal` session (`redeem`: the link is marked used in the
//! transaction that opens the session); an unused link expires, and may be
//! revoked. What a link allows (SCIM, pull, or both) is what its session
//! may set up. No actix_web.

use std::time::Duration;

use serde::Serialize;

use super::operators::{self, Opened, SessionKind};
use super::{AdminError, new_id, now, store_err};
use crate::crypto;
use crate::domain::time::rfc3339;
use crate::store::setup_links::{self as rows, SetupLink};
use crate::store::{Store, StoreError};

/// How long an unused link lives unless its creator says otherwise.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The shortest and longest a link may live unused.
pub const MIN_EXPIRY: Duration = Duration::from_secs(60);
pub const MAX_EXPIRY: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// How long a portal session lives from the link's use, unless the server
/// says otherwise (`--portal-session-ttl`).
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(60 * 60);

/// Where a link points, under the server's public URL.
pub const PORTAL_PATH: &str = "/portal/setup/";

/// What a link lets its portal session set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allows {
    /// A SCIM directory the IdP pushes to, with its token.
    pub scim: bool,
    /// A pull connection (credentials, scope, mapping, schedule).
    pub pull: bool,
}

impl Default for Allows {
    fn default() -> Allows {
        Allows {
            scim: true,
            pull: true,
        }
    }
}

impl Allows {
    /// `scim`, `pull`, or both comma-separated (`scim,pull`).
    pub fn parse(raw: &str) -> Result<Allows, AdminError> {
        let mut allows = Allows {
            scim: false,
            pull: false,
        };
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "scim" => allows.scim = true,
                "pull" => allows.pull = true,
                _ => {
                    return Err(AdminError::Invalid(format!(
                        "{} is not something a setup link allows (scim, pull)",
                        crate::domain::text::quoted(part)
                    )));
                }
            }
        }
        if !allows.scim && !allows.pull {
            return Err(AdminError::Invalid(
                "a setup link allows scim, pull, or both".into(),
            ));
        }
        Ok(allows)
    }

    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        if self.scim {
            names.push("scim".to_owned());
        }
        if self.pull {
            names.push("pull".to_owned());
        }
        names
    }

    fn stored(self) -> String {
        self.names().join(",")
    }
}

/// A link as listed: never its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SetupLinkView {
    pub id: String,
    pub tenant_id: String,
    /// `scim`, `pull`, or both.
    pub allows: Vec<String>,
    /// `unused`, `used`, `expired` or `revoked`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
    pub used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// An operator's email, `api` or `cli`.
    pub created_by: String,
}

impl SetupLinkView {
    fn of(link: &SetupLink, at: i64) -> SetupLinkView {
        let status = if link.revoked_at.is_some() {
            "revoked"
        } else if link.used_at.is_some() {
            "used"
        } else if link.expires_at <= at {
            "expired"
        } else {
            "unused"
        };
        SetupLinkView {
            id: link.id.clone(),
            tenant_id: link.tenant_id.clone(),
            allows: Allows::parse(&link.allows).unwrap_or_default().names(),
            status: status.to_owned(),
            created_at: rfc3339(link.created_at),
            expires_at: rfc3339(link.expires_at),
            used_at: link.used_at.map(rfc3339),
            revoked_at: link.revoked_at.map(rfc3339),
            created_by: link.created_by.clone(),
        }
    }
}

/// A link just created: the only time its URL (with the secret) is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewSetupLinkView {
    #[serde(flatten)]
    pub link: SetupLinkView,
    /// What the IT admin opens; it works once.
    pub url: String,
}

/// A tenant by name or id.
async fn tenant_id(store: &Store, tenant: &str) -> Result<String, AdminError> {
    match store.tenant_by_name(tenant).await {
        Ok(t) => return Ok(t.id),
        Err(StoreError::NotFound) => {}
        Err(other) => return Err(AdminError::Store(other)),
    }
    Ok(store
        .tenant(tenant)
        .await
        .map_err(store_err(format!(
            "tenant {}",
            crate::domain::text::quoted(tenant)
        )))?
        .id)
}

/// Create a link for the tenant (name or id) that lives `expires_in`
/// unused (1 minute to 30 days); `public_url` is the server's, which the
/// URL is built on.
pub async fn create(
    store: &Store,
    tenant: &str,
    allows: Allows,
    expires_in: Duration,
    created_by: &str,
    public_url: &str,
) -> Result<NewSetupLinkView, AdminError> {
    let expires_in = check_expiry(expires_in)?;
    let tenant_id = tenant_id(store, tenant).await?;
    let secret = crypto::random_token();
    let at = now();
    let lifetime = i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX);
    let link = rows::insert(
        store.connection(),
        SetupLink {
            id: new_id(),
            tenant_id,
            secret_hash: crypto::hash_token(&secret),
            allows: allows.stored(),
            created_at: at,
            expires_at: at.saturating_add(lifetime),
            used_at: None,
            revoked_at: None,
            session_hash: None,
            created_by: created_by.to_owned(),
        },
    )
    .await
    .map_err(AdminError::Store)?;
    Ok(NewSetupLinkView {
        link: SetupLinkView::of(&link, at),
        url: format!("{}{PORTAL_PATH}{secret}", public_url.trim_end_matches('/')),
    })
}

/// The tenant's links, newest first (never their secrets).
pub async fn list(store: &Store, tenant: &str) -> Result<Vec<SetupLinkView>, AdminError> {
    let tenant_id = tenant_id(store, tenant).await?;
    let at = now();
    Ok(rows::of_tenant(store.connection(), &tenant_id)
        .await
        .map_err(AdminError::Store)?
        .iter()
        .map(|l| SetupLinkView::of(l, at))
        .collect())
}

/// Revoke the tenant's link: unused, it no longer opens; a session it
/// opened ends too.
pub async fn revoke(store: &Store, tenant: &str, id: &str) -> Result<SetupLinkView, AdminError> {
    let tenant_id = tenant_id(store, tenant).await?;
    let at = now();
    let link = rows::revoke(store.connection(), &tenant_id, id, at)
        .await
        .map_err(store_err(format!(
            "setup link {}",
            crate::domain::text::quoted(id)
        )))?;
    if let Some(hash) = &link.session_hash {
        crate::store::operators::delete_session(store.connection(), hash)
            .await
            .map_err(AdminError::Store)?;
    }
    Ok(SetupLinkView::of(&link, at))
}

/// Why a link did not open a session: each its own answer, so the IT
/// admin learns what to ask for.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("this setup link is not known")]
    Unknown,
    #[error("this setup link was already used; a link opens the portal once")]
    Used,
    #[error("this setup link expired")]
    Expired,
    #[error("this setup link was revoked")]
    Revoked,
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// The link a secret names, if it may still open a session.
async fn usable<C: crate::store::Conn>(
    conn: &C,
    hash: &str,
    at: i64,
) -> Result<SetupLink, Refused> {
    let link = match rows::by_hash(conn, hash).await {
        Ok(link) => link,
        Err(StoreError::NotFound) => return Err(Refused::Unknown),
        Err(other) => return Err(AdminError::Store(other).into()),
    };
    if link.revoked_at.is_some() {
        return Err(Refused::Revoked);
    }
    if link.used_at.is_some() {
        return Err(Refused::Used);
    }
    if link.expires_at <= at {
        return Err(Refused::Expired);
    }
    Ok(link)
}

/// What a link would open, read without using it: its tenant's name and
/// what it allows, or why it opens nothing. Opening a link is a second
/// step (`redeem`, a POST): a mail scanner or a chat's link preview that
/// fetches the address does not use the link up.
pub async fn peek(store: &Store, secret: &str) -> Result<(String, Allows), Refused> {
    let link = usable(store.connection(), &crypto::hash_token(secret), now()).await?;
    let tenant = store
        .tenant(&link.tenant_id)
        .await
        .map_err(AdminError::Store)?;
    Ok((tenant.name, Allows::parse(&link.allows)?))
}

/// Open a portal session with a link's secret, for `session_ttl`: the link
/// is marked used in the transaction that opens the session, by a
/// conditional update, so of two browsers racing only one gets in.
pub async fn redeem(
    store: &Store,
    secret: &str,
    session_ttl: Duration,
) -> Result<(Opened, Allows), Refused> {
    let hash = crypto::hash_token(secret);
    let at = now();
    let tx = store.write().await.map_err(AdminError::Store)?;
    let link = usable(tx.conn(), &hash, at).await?;
    let ttl = i64::try_from(session_ttl.as_millis()).unwrap_or(i64::MAX);
    let opened = operators::open_on(
        tx.conn(),
        SessionKind::Portal,
        None,
        Some(&link.tenant_id),
        at.saturating_add(ttl),
    )
    .await?;
    let session_hash = crypto::hash_token(opened.cookie.expose());
    if !rows::mark_used(tx.conn(), &link.id, &session_hash, at)
        .await
        .map_err(AdminError::Store)?
    {
        // Another browser took it between the read and the update.
        return Err(Refused::Used);
    }
    tx.commit().await.map_err(AdminError::Store)?;
    let allows = Allows::parse(&link.allows)?;
    Ok((opened, allows))
}

/// A live portal session: its tenant and what its link allowed.
#[derive(Debug, Clone)]
pub struct PortalSession {
    pub tenant_id: String,
    pub allows: Allows,
    /// What every form of the session sends back.
    pub csrf_token: String,
    pub expires_at: i64,
}

/// The live portal session a cookie names, if any (an operator's session
/// is none: it has no tenant and no link).
pub async fn session(store: &Store, cookie: &str) -> Result<Option<PortalSession>, AdminError> {
    let Some(session) = operators::session(store, cookie).await? else {
        return Ok(None);
    };
    let (SessionKind::Portal, Some(tenant_id)) = (session.kind, session.tenant_id) else {
        return Ok(None);
    };
    let link = match rows::by_session(store.connection(), &crypto::hash_token(cookie)).await {
        Ok(link) => link,
        Err(StoreError::NotFound) => return Ok(None),
        Err(other) => return Err(AdminError::Store(other)),
    };
    if link.tenant_id != tenant_id || link.revoked_at.is_some() {
        return Ok(None);
    }
    Ok(Some(PortalSession {
        tenant_id,
        allows: Allows::parse(&link.allows)?,
        csrf_token: session.csrf_token,
        expires_at: session.expires_at,
    }))
}

/// An unused link's life, if it is 1 minute to 30 days.
pub fn check_expiry(expires_in: Duration) -> Result<Duration, AdminError> {
    if !(MIN_EXPIRY..=MAX_EXPIRY).contains(&expires_in) {
        return Err(AdminError::Invalid(
            "a setup link expires after 1 minute to 30 days".into(),
        ));
    }
    Ok(expires_in)
}

/// A duration as the CLI and the API take it: `7d`, `12h`, `30m`
/// (humantime).
pub fn parse_expiry(raw: &str) -> Result<Duration, AdminError> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        AdminError::Invalid(format!(
            "{} is not a duration such as 7d or 12h: {e}",
            crate::domain::text::quoted(raw)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("scim", true, false)]
    #[case("pull", false, true)]
    #[case("scim,pull", true, true)]
    #[case(" PULL , scim ", true, true)]
    fn allows_read_as_comma_separated_names(
        #[case] raw: &str,
        #[case] scim: bool,
        #[case] pull: bool,
    ) {
        assert_eq!(Allows::parse(raw).unwrap(), Allows { scim, pull });
    }

    #[rstest]
    #[case("")]
    #[case("ldap")]
    #[case(",")]
    fn anything_else_allows_nothing_and_is_refused(#[case] raw: &str) {
        assert!(Allows::parse(raw).is_err());
    }

    #[test]
    fn expiries_read_as_humantime() {
        assert_eq!(parse_expiry("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_expiry("soon").is_err());
    }
}
