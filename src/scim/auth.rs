//! Bearer-token authentication: a token resolves to exactly one directory, and
//! every handler receives that directory as its scope.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::ScimState;
use super::error::ScimError;
use crate::crypto;
use crate::store::StoreError;

/// The directory a request acts for, from its bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub directory_id: String,
    pub tenant_id: String,
    pub vendor: String,
}

impl Caller {
    /// OneLogin wants every response labelled `application/json` (L10) while
    /// Entra wants `application/scim+json` (E23): the one genuine conflict, so
    /// the directory's vendor decides (and, for a generic directory, the
    /// client's User-Agent).
    pub fn wants_plain_json(&self, user_agent: Option<&str>) -> bool {
        match self.vendor.as_str() {
            "onelogin" => true,
            "generic" => user_agent.is_some_and(|ua| ua.to_ascii_lowercase().contains("onelogin")),
            _ => false,
        }
    }
}

impl FromRequest for Caller {
    type Error = ScimError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ScimState>>().cloned();
        let token = bearer_token(req);
        let req = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ScimError::internal("server state missing"))?;
            let token = token?;
            let caller = authenticate(&state, &token).await?;
            // The response middleware reads the directory's vendor from here
            // (render::answer_in_accepted_media_type).
            req.extensions_mut().insert(caller.clone());
            Ok(caller)
        })
    }
}

fn bearer_token(req: &HttpRequest) -> Result<String, ScimError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ScimError::unauthorized("missing Authorization header; send Authorization: Bearer <token>")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ScimError::unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        ScimError::unauthorized("malformed Authorization header; expected Bearer <token>")
    })?;
    // RFC 7235 §2.1: the auth-scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ScimError::unauthorized(
            "unsupported authorization scheme; expected Bearer <token>",
        ));
    }
    Ok(token.trim().to_owned())
}

async fn authenticate(state: &ScimState, token: &str) -> Result<Caller, ScimError> {
    let hash = crypto::hash_token(token);
    let found = state.store.active_token_by_hash(&hash).await;
    let token = match found {
        Ok(token) => token,
        Err(StoreError::NotFound) => {
            return Err(ScimError::unauthorized("invalid or revoked token"));
        }
        Err(err) => return Err(err.into()),
    };
    // The lookup went through an index on the hash; the final comparison is
    // constant-time so no timing difference depends on the secret.
    if !crypto::hashes_equal(&token.secret_hash, &hash) {
        return Err(ScimError::unauthorized("invalid or revoked token"));
    }
    if let Some(caller) = state
        .directories
        .read()
        .ok()
        .and_then(|cache| cache.get(&token.directory_id).cloned())
    {
        return Ok(caller);
    }
    // A directory's id, tenant and vendor never change once created, so the
    // cache cannot go stale; the token itself is checked on every request.
    let directory = state.store.directory(&token.directory_id).await?;
    let caller = Caller {
        directory_id: directory.id,
        tenant_id: directory.tenant_id,
        vendor: directory.vendor,
    };
    if let Ok(mut cache) = state.directories.write() {
        cache.insert(caller.directory_id.clone(), caller.clone());
    }
    Ok(caller)
}
