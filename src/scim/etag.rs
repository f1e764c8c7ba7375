//! Resource versions (RFC 7644 §3.14): `meta.version` and the `ETag` header are
//! the same weak validator; `If-Match` and `If-None-Match` are checked here.

use actix_web::HttpRequest;
use actix_web::http::header;

use super::error::ScimError;

/// The weak ETag of a resource version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn matches(list: &str, version: i64) -> bool {
    let current = etag(version);
    let strong = format!("\"{version}\"");
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == current || tag == strong)
}

/// The `If-Match` header of a request, if any.
pub fn if_match(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
}

/// `If-Match` on a write: a mismatch is 412 and nothing is written.
pub fn check_if_match(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    let Some(value) = if_match else {
        return Ok(());
    };
    if matches(value, version) {
        Ok(())
    } else {
        Err(ScimError::precondition_failed(format!(
            "If-Match {value} does not match the current version {}",
            etag(version)
        )))
    }
}

/// `If-None-Match` on a read: true when the client's copy is current (304).
pub fn not_modified(req: &HttpRequest, version: i64) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches(v, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_strong_and_star_all_match() {
        assert!(matches("W/\"3\"", 3));
        assert!(matches("\"3\"", 3));
        assert!(matches("W/\"1\", W/\"3\"", 3));
        assert!(matches("*", 3));
        assert!(!matches("W/\"2\"", 3));
    }
}
