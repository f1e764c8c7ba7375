//! A PatchOp body applied to a stored resource, as `PATCH /Users/{id}` and
//! `PATCH /Groups/{id}` do: `scim::patch::parse` (with OneLogin's SCIM 1.1 form
//! and URN spellings rewritten by `scim::quirks`), then `scim::patch::apply` to
//! the canonical JSON of a user or group. The first input byte picks the
//! resource type; the rest is the body.
//!
//! Fails on a panic, and when an applied PATCH leaves data that is not
//! canonical (canonicalising it again must give the same data: the next GET,
//! PUT or PATCH reads it as stored).
#![no_main]

use dirsync::scim::patch::{apply, parse};
use dirsync::scim::resource::{Mode, canonicalize};
use dirsync::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const ID: &str = "0190f5d2-0000-7000-8000-000000000001";

fn stored(users: bool) -> serde_json::Map<String, Value> {
    let body = if users {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "userName": "alice@example.com",
            "externalId": "a-1",
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "displayName": "Alice Smith",
            "active": true,
            "emails": [
                {"value": "alice@example.com", "type": "work", "primary": true},
                {"value": "alice@home.example", "type": "home"}
            ],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            "addresses": [{"streetAddress": "1 Main St", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "42",
                "manager": {"value": "0190f5d2-0000-7000-8000-000000000002"}
            }
        })
    } else {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "externalId": "g-1"
        })
    };
    let rt = if users {
        &USER_RESOURCE
    } else {
        &GROUP_RESOURCE
    };
    match canonicalize(rt, &body, Mode::Create) {
        Ok(canonical) => canonical.data,
        Err(err) => panic!("the fixture is not a valid resource: {err}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let users = which & 1 == 0;
    let rt = if users {
        &USER_RESOURCE
    } else {
        &GROUP_RESOURCE
    };
    let Ok(ops) = parse(rt, &body) else {
        return;
    };
    let mut resource = stored(users);
    if apply(rt, ID, &mut resource, &ops).is_err() {
        return;
    }
    match canonicalize(rt, &Value::Object(resource.clone()), Mode::Replace) {
        Ok(again) => assert_eq!(
            again.data, resource,
            "a PATCH left data that canonicalises differently"
        ),
        Err(err) => panic!("a PATCH left data that is no longer a valid resource: {err}"),
    }
});
