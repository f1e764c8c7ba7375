//! A PATCH `path` (RFC 7644 §3.5.2: `attr[.sub]`, `attr[filter][.sub]`,
//! `URN:attr`, and the vendor spellings `scim::quirks` rewrites) through
//! `scim::patch::parse_path`, as a PATCH request parses it. The first input
//! byte picks the resource type. Fails on a panic.
#![no_main]

use dirsync::scim::patch::parse_path;
use dirsync::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    let rt = if which & 1 == 0 {
        &USER_RESOURCE
    } else {
        &GROUP_RESOURCE
    };
    let _ = parse_path(rt, path);
});
