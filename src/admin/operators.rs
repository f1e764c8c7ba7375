//! Operator accounts (`dirsync operator create|list|delete`) and their
//! sessions in the dashboard: sign-in checks the password (argon2id) and
//! opens a session whose cookie value is returned once and stored only as
//! its SHA-256; each session carries the CSRF token its forms send back.
//! The same table holds the setup portal's sessions (`SessionKind::Portal`,
//! one tenant). No actix_web.

use serde::Serialize;

use super::{AdminError, new_id, now};
use crate::crypto::{self, Secret};
use crate::domain::time::rfc3339;
use crate::store::operators::{self as rows, Operator, Session};
use crate::store::{Store, StoreError};

/// How long a dashboard session lasts from sign-in, whatever happens.
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

/// Shortest password `operator create` accepts (NIST SP 800-63B asks for
/// at least 8; an operator's account reaches every tenant).
pub const MIN_PASSWORD: usize = 12;
/// Longest: argon2 reads every byte.
pub const MAX_PASSWORD: usize = 1024;

/// Whose a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// An operator's, in the dashboard.
    Operator,
    /// A customer's IT admin's, in the setup portal (one tenant).
    Portal,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Operator => "operator",
            SessionKind::Portal => "portal",
        }
    }

    fn parse(raw: &str) -> Option<SessionKind> {
        match raw {
            "operator" => Some(SessionKind::Operator),
            "portal" => Some(SessionKind::Portal),
            _ => None,
        }
    }
}

/// An operator as listed: never the hash.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub id: String,
    pub email: String,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
}

impl From<&Operator> for OperatorView {
    fn from(o: &Operator) -> OperatorView {
        OperatorView {
            id: o.id.clone(),
            email: o.email.clone(),
            created_at: rfc3339(o.created_at),
            last_sign_in_at: o.last_sign_in_at.map(rfc3339),
        }
    }
}

/// An email as an operator's name: trimmed, one `@` with text both sides,
/// no space or control character, at most 254 bytes (RFC 5321 §4.5.3.1.3).
fn valid_email(raw: &str) -> Result<String, AdminError> {
    let email = raw.trim();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !ok {
        return Err(AdminError::Invalid(format!(
            "{} is not an email address",
            crate::domain::text::quoted(email)
        )));
    }
    Ok(email.to_owned())
}

fn fold(email: &str) -> String {
    email.to_lowercase()
}

/// Hash on a blocking thread: argon2id takes tens of milliseconds of CPU
/// by design, which must not stall the server's workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AdminError::Store(StoreError::Invalid(format!("password hashing: {e}"))))
}

/// Create an operator who signs in with `email` and `password`.
pub async fn create_operator(
    store: &Store,
    email: &str,
    password: &Secret,
) -> Result<OperatorView, AdminError> {
    let email = valid_email(email)?;
    let length = password.expose().chars().count();
    if length < MIN_PASSWORD || password.expose().len() > MAX_PASSWORD {
        return Err(AdminError::Invalid(format!(
            "a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    let password = password.clone();
    let hash = blocking(move || crypto::hash_password(password.expose()))
        .await?
        .map_err(AdminError::Invalid)?;
    let operator = rows::insert_operator(
        store.connection(),
        Operator {
            id: new_id(),
            email_folded: fold(&email),
            email: email.clone(),
            password_hash: hash,
            created_at: now(),
            last_sign_in_at: None,
        },
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(_) => AdminError::Exists(format!("operator {email:?}")),
        other => AdminError::Store(other),
    })?;
    Ok(OperatorView::from(&operator))
}

/// Every operator, by email.
pub async fn list_operators(store: &Store) -> Result<Vec<OperatorView>, AdminError> {
    Ok(rows::operators(store.connection())
        .await
        .map_err(AdminError::Store)?
        .iter()
        .map(OperatorView::from)
        .collect())
}

/// Delete an operator, named by email or id; their sessions end with them.
pub async fn delete_operator(store: &Store, who: &str) -> Result<OperatorView, AdminError> {
    let conn = store.connection();
    let operator = match rows::operator_by_email(conn, &fold(who.trim())).await {
        Ok(o) => o,
        Err(StoreError::NotFound) => rows::operator(conn, who.trim())
            .await
            .map_err(super::store_err(format!("operator {who:?}")))?,
        Err(other) => return Err(AdminError::Store(other)),
    };
    rows::delete_operator(conn, &operator.id)
        .await
        .map_err(super::store_err(format!("operator {who:?}")))?;
    Ok(OperatorView::from(&operator))
}

/// A session just opened: the cookie's value, shown to the browser once.
#[derive(Debug)]
pub struct Opened {
    pub cookie: Secret,
    pub session: SessionView,
}

/// A live session as the pages see it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub kind: SessionKind,
    pub operator: Option<OperatorView>,
    pub tenant_id: Option<String>,
    /// What every form of the session sends back.
    pub csrf_token: String,
    pub expires_at: i64,
}

/// Why a sign-in was refused: one answer whether the email is unknown or
/// the password wrong.
pub const WRONG_CREDENTIALS: &str = "wrong email or password";

/// Check an operator's password and open a session. The password is
/// checked against a decoy hash when no operator has the email, so both
/// refusals take the same time.
pub async fn sign_in(store: &Store, email: &str, password: &Secret) -> Result<Opened, AdminError> {
    let found = match rows::operator_by_email(store.connection(), &fold(email.trim())).await {
        Ok(o) => Some(o),
        Err(StoreError::NotFound) => None,
        Err(other) => return Err(AdminError::Store(other)),
    };
    let phc = found.as_ref().map_or_else(
        || crypto::decoy_password_hash().to_owned(),
        |o| o.password_hash.clone(),
    );
    let password = password.clone();
    let matches = blocking(move || crypto::verify_password(password.expose(), &phc)).await?;
    let operator = match (found, matches) {
        (Some(o), true) => o,
        _ => return Err(AdminError::Invalid(WRONG_CREDENTIALS.into())),
    };
    let at = now();
    rows::set_last_sign_in(store.connection(), &operator.id, at)
        .await
        .map_err(AdminError::Store)?;
    open(
        store,
        SessionKind::Operator,
        Some(&operator),
        None,
        at + SESSION_TTL_MS,
    )
    .await
}

async fn open(
    store: &Store,
    kind: SessionKind,
    operator: Option<&Operator>,
    tenant_id: Option<&str>,
    expires_at: i64,
) -> Result<Opened, AdminError> {
    open_on(store.connection(), kind, operator, tenant_id, expires_at).await
}

/// Open a session on `conn` (a portal session opens in the transaction
/// that marks its setup link used).
pub(super) async fn open_on<C: crate::store::Conn>(
    conn: &C,
    kind: SessionKind,
    operator: Option<&Operator>,
    tenant_id: Option<&str>,
    expires_at: i64,
) -> Result<Opened, AdminError> {
    let cookie = crypto::random_token();
    let session = rows::insert_session(
        conn,
        Session {
            id_hash: crypto::hash_token(&cookie),
            kind: kind.as_str().to_owned(),
            operator_id: operator.map(|o| o.id.clone()),
            tenant_id: tenant_id.map(str::to_owned),
            csrf_token: crypto::random_token(),
            created_at: now(),
            expires_at,
        },
    )
    .await
    .map_err(AdminError::Store)?;
    Ok(Opened {
        cookie: Secret::new(cookie),
        session: SessionView {
            kind,
            operator: operator.map(OperatorView::from),
            tenant_id: session.tenant_id,
            csrf_token: session.csrf_token,
            expires_at: session.expires_at,
        },
    })
}

/// The live session a cookie names, if any. Expired sessions are deleted
/// as they are met.
pub async fn session(store: &Store, cookie: &str) -> Result<Option<SessionView>, AdminError> {
    let conn = store.connection();
    let hash = crypto::hash_token(cookie);
    let row = match rows::live_session(conn, &hash, now()).await {
        Ok(row) => row,
        Err(StoreError::NotFound) => return Ok(None),
        Err(other) => return Err(AdminError::Store(other)),
    };
    let Some(kind) = SessionKind::parse(&row.kind) else {
        return Ok(None);
    };
    let operator = match &row.operator_id {
        Some(id) => match rows::operator(conn, id).await {
            Ok(o) => Some(OperatorView::from(&o)),
            // Deleted since: the session ended with them.
            Err(StoreError::NotFound) => return Ok(None),
            Err(other) => return Err(AdminError::Store(other)),
        },
        None => None,
    };
    Ok(Some(SessionView {
        kind,
        operator,
        tenant_id: row.tenant_id,
        csrf_token: row.csrf_token,
        expires_at: row.expires_at,
    }))
}

/// End the session a cookie names (and any that expired meanwhile).
pub async fn sign_out(store: &Store, cookie: &str) -> Result<(), AdminError> {
    let conn = store.connection();
    rows::delete_session(conn, &crypto::hash_token(cookie))
        .await
        .map_err(AdminError::Store)?;
    rows::delete_expired_sessions(conn, now())
        .await
        .map_err(AdminError::Store)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_one_at_with_text_both_sides() {
        assert_eq!(valid_email(" Ops@Example.com ").unwrap(), "Ops@Example.com");
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(valid_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn session_kinds_are_stored_by_name() {
        for kind in [SessionKind::Operator, SessionKind::Portal] {
            assert_eq!(SessionKind::parse(kind.as_str()), Some(kind));
        }
    }
}
