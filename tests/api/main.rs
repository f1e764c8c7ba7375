//! The integration suite: the real server on port 0, on SQLite by default and
//! on PostgreSQL when `DIRSYNC_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod bulk;
mod cli;
mod concurrency;
mod discovery;
mod edge_text;
mod errors;
mod etag;
mod fast_path;
mod filters;
mod groups;
mod helpers;
mod host_api;
mod host_api_directories;
mod host_api_keys;
mod identities;
mod listing;
mod migrations;
mod ops;
mod paging;
mod patch;
mod projection;
mod pull;
mod pull_identities;
mod readme;
mod reconcile;
mod retention;
mod runs;
mod smoke;
mod tenancy;
mod tokens;
mod users;
mod vendors;
mod webhooks;
