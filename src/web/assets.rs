//! The dashboard's static files, embedded in the binary: one stylesheet,
//! an icon, and htmx 2.0.11 (`assets/htmx.min.js`, from the npm package `htmx.org`
//! 2.0.11, `npm pack htmx.org@2.0.11`; licence 0BSD, `assets/htmx.LICENSE`).
//! Served under `/admin/assets/NAME` with an ETag and a day's caching.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "admin.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/admin.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/htmx.min.js"),
    },
];

/// Each asset's ETag (a prefix of its SHA-256), computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.body))[..16]))
            .collect()
    })
}

pub async fn asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some((i, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.name == *name) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such asset");
    };
    let etag = &etags()[i];
    let cache = (header::CACHE_CONTROL, "public, max-age=86400");
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return HttpResponse::NotModified()
            .insert_header(cache)
            .insert_header((header::ETAG, etag.as_str()))
            .finish();
    }
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header(cache)
        .insert_header((header::ETAG, etag.as_str()))
        .body(asset.body)
}
