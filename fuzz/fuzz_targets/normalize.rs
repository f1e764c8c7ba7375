//! The vendor normalisation of `scim::quirks` and the canonical form of a
//! POST/PUT body (`scim::resource::canonicalize`). The first input byte picks
//! the function and the resource type; the rest is its input:
//!   0: `lenient_filter` (unquoted values, Entra's `attr[f].sub op v`); what it
//!      returns is parsed again by the RFC grammar, as `scim::filter` does;
//!   1: `urn_dot_to_colon` (URN spellings in PATCH paths, E28 and L2);
//!   2: `scim11_operations` (OneLogin's SCIM 1.1 PATCH without `Operations`);
//!   3: `canonicalize` of a body, on create and on replace; the result must be
//!      canonical (canonicalising it again gives the same data).
//! Fails on a panic or a broken invariant.
#![no_main]

use dirsync::scim::quirks::{lenient_filter, scim11_operations, urn_dot_to_colon};
use dirsync::scim::resource::{Mode, canonicalize};
use dirsync::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let rt = if which & 0x10 == 0 {
        &USER_RESOURCE
    } else {
        &GROUP_RESOURCE
    };
    match which & 0x03 {
        0 => {
            let Ok(raw) = std::str::from_utf8(rest) else {
                return;
            };
            if let Some(rewritten) = lenient_filter(raw) {
                let _ = rewritten.parse::<scim_v2::filter::Filter>();
            }
        }
        1 => {
            let Ok(raw) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = urn_dot_to_colon(rt, raw);
        }
        2 => {
            let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let _ = scim11_operations(rt, &object);
        }
        _ => {
            let Ok(body) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            for mode in [Mode::Create, Mode::Replace] {
                let Ok(canonical) = canonicalize(rt, &body, mode) else {
                    continue;
                };
                match canonicalize(rt, &Value::Object(canonical.data.clone()), Mode::Replace) {
                    Ok(again) => assert_eq!(
                        again.data, canonical.data,
                        "canonical data canonicalises differently"
                    ),
                    Err(err) => panic!("canonical data is not a valid resource: {err}"),
                }
            }
        }
    }
});
