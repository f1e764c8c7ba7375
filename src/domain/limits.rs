//! The longest text dirsync keeps of one attribute, whoever sends it: the
//! SCIM edge refuses more (its schema registry, `scim::schema`, holds every
//! attribute's cap, built on these), and the pull side drops a provider's
//! value that passes them. SCIM and the providers' APIs set no length; an
//! attribute's value is kept several times (the mirror, the link's snapshot,
//! the application's user, the event), so a bound here bounds them all.

/// The longest value of most string attributes, in bytes of UTF-8: names,
/// titles, departments, identifiers, email addresses (at most 254
/// characters, RFC 5321 §4.5.3.1). PostgreSQL's B-tree refuses index
/// entries over about 2.7 kB, so the indexed ones (userName, externalId, a
/// group's displayName, the primary email) stay well below that too.
pub const TEXT_BYTES: usize = 1024;

/// The longest URI (`reference` attributes, `$ref`, an avatar's URL), a
/// length every browser and proxy carries.
pub const REFERENCE_BYTES: usize = 2048;

/// The most an app user's custom attributes hold together, in bytes of
/// their JSON: what a SCIM resource may hold (`scim::schema`'s cap on a
/// whole resource), so a provider's user gives no more than a SCIM client's.
/// Each is kept as often as a profile value is (the link's snapshot, the
/// app user, the event).
pub const CUSTOM_ATTRIBUTES_BYTES: usize = 65_536;
