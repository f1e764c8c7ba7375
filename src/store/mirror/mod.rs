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

/// Which rows of a one-to-many read to answer (a group's members, a user's
/// groups), so that any number of them is read a chunk at a time in keyset
/// order: the rows of `owners`, in (owner, key) order, of owners after
/// `after_owner` and with keys after `after_key` when given (one owner's rows
/// continued), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// A few hundred ids at most (one statement's bind parameters).
    pub owners: &'a [String],
    pub after_owner: Option<&'a str>,
    pub after_key: Option<&'a str>,
    pub limit: u64,
}
