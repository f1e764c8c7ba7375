//! The directory mirror: what each directory asserted, verbatim enough to
//! answer SCIM reads (`directory_users`, `directory_groups`,
//! `directory_memberships`), the word on a user that waits for an address
//! (`deferred_changes`), and SCIM filters made SQL over it. Nothing here
//! reads or writes the application's identity (`store::app`).

pub mod deferred;
pub mod filter;
pub mod groups;
pub mod list;
pub mod users;
