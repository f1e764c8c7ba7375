//! Pure types shared by every layer. Imports no HTTP, SQL, HTTP-client or SCIM
//! wire crate, and nothing else of this crate.

pub mod custom;
pub mod event;
pub mod filter;
pub mod limits;
pub mod names;
pub mod run;
pub mod text;
pub mod time;
