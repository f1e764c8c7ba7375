//! The SCIM schemas dirsync serves (RFC 7643 §4, §8.7.1), as one static registry.
//!
//! Everything that needs attribute metadata reads it from here: request
//! canonicalisation (names, types, mutability), PATCH paths, filters (caseExact,
//! multi-valued), projection (`returned`) and the `/Schemas` discovery endpoint, so
//! what `/Schemas` claims is exactly what the server enforces.
//!
//! Differences from the RFC 7643 §8.7.1 text, each a published erratum or a
//! vendor fact: `Group.members` has `display`, immutable as RFC 7643 §2.4 makes
//! every multi-valued `display` (§4.2 lists it, §8.7.1 omits it); `addresses` has `primary` (§4.1.2); `manager.displayName` is readOnly as in
//! §4.3 but clients send it, so it is accepted and ignored.

use std::fmt;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
pub const SERVICE_PROVIDER_CONFIG: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Reference,
    Complex,
    Binary,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
            AttrType::Binary => "binary",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, PartialEq)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
    pub description: &'static str,
    /// The longest value accepted, in bytes of UTF-8, for a `string`,
    /// `reference` or `binary` attribute (400 `invalidValue` beyond); see
    /// [`TEXT_BYTES`] and the caps beside it.
    pub max_bytes: usize,
    /// The most elements a multi-valued attribute takes in one value (400
    /// `invalidValue` beyond); 0 for a single-valued one.
    pub max_items: usize,
}

// Caps on what one resource may hold. SCIM sets none (RFC 7643 §7 has no
// length); without them a client with a valid token could store megabytes
// per attribute, each kept several times (see `domain::limits`). Generous
// for real directories: a real user's whole representation is a few
// kilobytes. README "Limits" lists them.
pub use crate::domain::limits::{REFERENCE_BYTES, TEXT_BYTES};
/// The longest mailing-address text (`formatted`, `streetAddress`), which
/// may run to several lines.
pub const ADDRESS_BYTES: usize = 2048;
/// The longest `x509Certificates.value`: base64 DER; a 4,096-bit RSA
/// certificate with its extensions is under 3 kB.
pub const CERTIFICATE_BYTES: usize = 16_384;
/// The most elements of a multi-valued attribute unless it says otherwise.
pub const MAX_ITEMS: usize = 100;
/// The most `roles` and `entitlements`, which some applications hand out by
/// the hundred.
pub const MAX_GRANTS: usize = 1000;
/// The most `members` one request names (in a POST or PUT body, or in all of
/// a PATCH's operations together); a group may hold more, added over several
/// requests.
pub const MAX_MEMBERS_PER_REQUEST: usize = 10_000;
/// The largest resource: its canonical JSON as stored (every attribute,
/// extensions included; a group's members are rows and do not count).
pub const MAX_RESOURCE_BYTES: usize = 65_536;

impl Attribute {
    /// A sub-attribute by name, compared case-insensitively (RFC 7643 §2.1).
    pub fn sub_attribute(&self, name: &str) -> Option<&'static Attribute>
    where
        Self: 'static,
    {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }
}

/// A schema: a URN and its attributes.
#[derive(Debug, PartialEq)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

impl Schema {
    pub fn attribute(&'static self, name: &str) -> Option<&'static Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A resource type (RFC 7643 §6): its core schema and its extensions.
#[derive(Debug, PartialEq)]
pub struct ResourceType {
    pub id: &'static str,
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    pub extensions: &'static [Extension],
    /// Whether a resource of this type keeps extensions no schema here
    /// describes (`scim::custom`): a user's do, for the directory's
    /// attribute mapping; a group's are dropped like unknown attributes.
    pub custom_extensions: bool,
}

#[derive(Debug, PartialEq)]
pub struct Extension {
    pub schema: &'static Schema,
    pub required: bool,
}

/// Where an attribute path points, once resolved against a resource type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    /// `None` for the core schema and the common attributes; the extension URN
    /// otherwise (the canonical JSON keeps extension attributes under that key).
    pub extension: Option<&'static str>,
    pub attribute: &'static Attribute,
    pub sub_attribute: Option<&'static Attribute>,
}

impl Resolved {
    /// The attribute the path finally names (the sub-attribute when there is one).
    pub fn target(&self) -> &'static Attribute {
        self.sub_attribute.unwrap_or(self.attribute)
    }
}

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = self.extension {
            write!(f, "{urn}:")?;
        }
        write!(f, "{}", self.attribute.name)?;
        if let Some(sub) = self.sub_attribute {
            write!(f, ".{}", sub.name)?;
        }
        Ok(())
    }
}

/// SCIM 1.1 URNs and the 2.0 schemas they stand for. OneLogin's own templates
/// send `urn:scim:schemas:core:1.0` and `urn:scim:schemas:extension:enterprise:1.0`
/// (L2); SCIM 1.1 had one core URN for Users and Groups alike.
const SCIM11_CORE: &str = "urn:scim:schemas:core:1.0";
const SCIM11_ENTERPRISE: &str = "urn:scim:schemas:extension:enterprise:1.0";

impl ResourceType {
    pub fn schema_urns(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.schema.id).chain(self.extensions.iter().map(|e| e.schema.id))
    }

    /// Every spelling of a URN this resource type answers to, with the 2.0 URN it
    /// means: its own URNs and their SCIM 1.1 aliases (L2).
    pub fn urn_spellings(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        let aliases = std::iter::once((SCIM11_CORE, self.schema.id)).chain(
            self.extensions
                .iter()
                .filter(|e| e.schema.id == ENTERPRISE_USER)
                .map(|e| (SCIM11_ENTERPRISE, e.schema.id)),
        );
        self.schema_urns().map(|urn| (urn, urn)).chain(aliases)
    }

    /// The 2.0 URN `urn` names for this resource type, compared case-insensitively
    /// (RFC 8141 §3, X9) and with SCIM 1.1 aliases (L2).
    fn canonical_urn(&self, urn: &str) -> Option<&'static str> {
        self.urn_spellings()
            .find(|(spelled, _)| spelled.eq_ignore_ascii_case(urn))
            .map(|(_, canonical)| canonical)
    }

    /// The extension schema with this URN, compared case-insensitively (RFC 8141 §3)
    /// and with its SCIM 1.1 alias (L2).
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        let urn = self.canonical_urn(urn)?;
        self.extensions
            .iter()
            .map(|e| e.schema)
            .find(|s| s.id == urn)
    }

    /// Resolve `[urn:]name[.sub]` as parsed by a filter or PATCH path.
    ///
    /// Names compare case-insensitively (RFC 7643 §2.1). A URN that is the core
    /// schema's resolves like no URN; an extension URN resolves inside it.
    pub fn resolve(&self, urn: Option<&str>, name: &str, sub: Option<&str>) -> Option<Resolved> {
        let (extension, attribute) = match urn {
            Some(urn) if self.canonical_urn(urn) == Some(self.schema.id) => {
                (None, self.core_attribute(name)?)
            }
            Some(urn) => {
                let schema = self.extension(urn)?;
                (Some(schema.id), schema.attribute(name)?)
            }
            None => (None, self.core_attribute(name)?),
        };
        let sub_attribute = match sub {
            Some(sub) => Some(attribute.sub_attribute(sub)?),
            None => None,
        };
        Some(Resolved {
            extension,
            attribute,
            sub_attribute,
        })
    }

    /// Resolve a dotted path string as Entra writes it in a path-less PATCH value
    /// (`name.givenName`, `urn:…:User:employeeNumber`, `urn:…:User.manager`).
    pub fn resolve_path_str(&self, path: &str) -> Option<Resolved> {
        match self.split_urn(path) {
            Some((urn, rest)) => {
                let (name, sub) = split_sub(rest);
                self.resolve(Some(urn), name, sub)
            }
            None => {
                let (name, sub) = split_sub(path);
                self.resolve(None, name, sub)
            }
        }
    }

    /// `URN:rest` or `URN.rest` (E28) for a URN of this resource type → the 2.0
    /// URN and `rest`. The longest spelling wins (the core 2.0 User URN is a
    /// prefix of nothing else, but an extension URN may be).
    pub fn split_urn<'p>(&self, path: &'p str) -> Option<(&'static str, &'p str)> {
        self.urn_spellings()
            .filter(|(spelled, _)| {
                path.len() > spelled.len()
                    && path.is_char_boundary(spelled.len())
                    && path[..spelled.len()].eq_ignore_ascii_case(spelled)
                    && matches!(path.as_bytes()[spelled.len()], b':' | b'.')
            })
            .max_by_key(|(spelled, _)| spelled.len())
            .map(|(spelled, canonical)| (canonical, &path[spelled.len() + 1..]))
    }

    /// Whether `path` is one of this resource type's URNs (in any spelling)
    /// or lies under one (`URN:attr`, `URN.attr`).
    pub fn owns_urn(&self, path: &str) -> bool {
        self.canonical_urn(path).is_some() || self.split_urn(path).is_some()
    }

    fn core_attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.schema
            .attribute(name)
            .or_else(|| COMMON.iter().find(|a| a.name.eq_ignore_ascii_case(name)))
    }
}

fn split_sub(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (path, None),
    }
}

/// The URN namespaces SCIM keeps for its own schemas and messages (RFC 7643
/// §10.2, and SCIM 1.1's core, L2).
const RESERVED_URN_PREFIXES: &[&str] = &[
    "urn:ietf:params:scim:schemas:core:",
    "urn:ietf:params:scim:api:",
    "urn:scim:schemas:core:",
];

/// Whether `path` is, or lies under, a URN of the registry or of a namespace
/// SCIM reserves: never a client's own extension (`scim::custom`).
pub fn is_reserved_urn(path: &str) -> bool {
    RESERVED_URN_PREFIXES.iter().any(|prefix| {
        path.len() >= prefix.len()
            && path.is_char_boundary(prefix.len())
            && path[..prefix.len()].eq_ignore_ascii_case(prefix)
    }) || RESOURCE_TYPES.iter().any(|rt| rt.owns_urn(path))
}

/// All resource types dirsync serves.
pub const RESOURCE_TYPES: &[&ResourceType] = &[&USER_RESOURCE, &GROUP_RESOURCE];

/// All schemas dirsync serves under `/Schemas`.
pub const SCHEMAS: &[&Schema] = &[&USER_SCHEMA, &GROUP_SCHEMA, &ENTERPRISE_USER_SCHEMA];

pub static USER_RESOURCE: ResourceType = ResourceType {
    id: "User",
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER_SCHEMA,
    extensions: &[Extension {
        schema: &ENTERPRISE_USER_SCHEMA,
        required: false,
    }],
    custom_extensions: true,
};

pub static GROUP_RESOURCE: ResourceType = ResourceType {
    id: "Group",
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP_SCHEMA,
    extensions: &[],
    custom_extensions: false,
};

const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> Attribute {
    Attribute {
        name,
        ty,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
        description,
        max_bytes: match ty {
            AttrType::Reference => REFERENCE_BYTES,
            _ => TEXT_BYTES,
        },
        max_items: 0,
    }
}

const fn string(name: &'static str, description: &'static str) -> Attribute {
    attr(name, AttrType::String, description)
}

const fn multi(
    name: &'static str,
    sub: &'static [Attribute],
    description: &'static str,
) -> Attribute {
    Attribute {
        multi_valued: true,
        sub_attributes: sub,
        max_items: MAX_ITEMS,
        ..attr(name, AttrType::Complex, description)
    }
}

const fn typed(
    name: &'static str,
    canonical_values: &'static [&'static str],
    description: &'static str,
) -> Attribute {
    Attribute {
        canonical_values,
        ..attr(name, AttrType::String, description)
    }
}

const PRIMARY: Attribute = attr(
    "primary",
    AttrType::Boolean,
    "A Boolean value indicating the 'primary' or preferred attribute value for this attribute.",
);
const DISPLAY: Attribute = string(
    "display",
    "A human-readable name, primarily used for display purposes.",
);

/// The common attributes of every resource (RFC 7643 §3.1). Not listed under
/// `/Schemas` (§8.7.1 does not list them either) but resolvable in filters.
pub static COMMON: &[Attribute] = &[
    Attribute {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        returned: Returned::Always,
        uniqueness: Uniqueness::Server,
        ..string(
            "id",
            "Unique identifier for the SCIM resource as defined by the service provider.",
        )
    },
    Attribute {
        case_exact: true,
        ..string(
            "externalId",
            "An identifier for the resource as defined by the provisioning client.",
        )
    },
    Attribute {
        mutability: Mutability::ReadOnly,
        sub_attributes: &[
            Attribute {
                case_exact: true,
                mutability: Mutability::ReadOnly,
                ..string(
                    "resourceType",
                    "The name of the resource type of the resource.",
                )
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                ..attr(
                    "created",
                    AttrType::DateTime,
                    "The DateTime that the resource was added to the service provider.",
                )
            },
            Attribute {
                mutability: Mutability::ReadOnly,
                ..attr(
                    "lastModified",
                    AttrType::DateTime,
                    "The most recent DateTime that the details of this resource were updated at the service provider.",
                )
            },
            Attribute {
                case_exact: true,
                mutability: Mutability::ReadOnly,
                ..attr(
                    "location",
                    AttrType::Reference,
                    "The URI of the resource being returned.",
                )
            },
            Attribute {
                case_exact: true,
                mutability: Mutability::ReadOnly,
                ..string("version", "The version of the resource being returned.")
            },
        ],
        ..attr(
            "meta",
            AttrType::Complex,
            "A complex attribute containing resource metadata.",
        )
    },
];

pub static USER_SCHEMA: Schema = Schema {
    id: USER,
    name: "User",
    description: "User Account",
    attributes: &[
        Attribute {
            required: true,
            uniqueness: Uniqueness::Server,
            ..string(
                "userName",
                "Unique identifier for the User, typically used by the user to directly authenticate to the service provider. REQUIRED.",
            )
        },
        Attribute {
            sub_attributes: &[
                string(
                    "formatted",
                    "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display.",
                ),
                string(
                    "familyName",
                    "The family name of the User, or last name in most Western languages.",
                ),
                string(
                    "givenName",
                    "The given name of the User, or first name in most Western languages.",
                ),
                string("middleName", "The middle name(s) of the User."),
                string(
                    "honorificPrefix",
                    "The honorific prefix(es) of the User, or title in most Western languages.",
                ),
                string(
                    "honorificSuffix",
                    "The honorific suffix(es) of the User, or suffix in most Western languages.",
                ),
            ],
            ..attr(
                "name",
                AttrType::Complex,
                "The components of the user's real name.",
            )
        },
        string(
            "displayName",
            "The name of the User, suitable for display to end-users.",
        ),
        string(
            "nickName",
            "The casual way to address the user in real life.",
        ),
        Attribute {
            reference_types: &["external"],
            ..attr(
                "profileUrl",
                AttrType::Reference,
                "A fully qualified URL pointing to a page representing the User's online profile.",
            )
        },
        string("title", "The user's title, such as \"Vice President.\""),
        string(
            "userType",
            "Used to identify the relationship between the organization and the user.",
        ),
        string(
            "preferredLanguage",
            "Indicates the User's preferred written or spoken language.",
        ),
        string(
            "locale",
            "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations.",
        ),
        string(
            "timezone",
            "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'.",
        ),
        attr(
            "active",
            AttrType::Boolean,
            "A Boolean value indicating the User's administrative status.",
        ),
        Attribute {
            mutability: Mutability::WriteOnly,
            returned: Returned::Never,
            ..string(
                "password",
                "The User's cleartext password. Accepted and never stored or returned by dirsync.",
            )
        },
        multi(
            "emails",
            &[
                string("value", "Email addresses for the user."),
                DISPLAY,
                typed(
                    "type",
                    &["work", "home", "other"],
                    "A label indicating the attribute's function.",
                ),
                PRIMARY,
            ],
            "Email addresses for the user.",
        ),
        multi(
            "phoneNumbers",
            &[
                string("value", "Phone number of the User."),
                DISPLAY,
                typed(
                    "type",
                    &["work", "home", "mobile", "fax", "pager", "other"],
                    "A label indicating the attribute's function.",
                ),
                PRIMARY,
            ],
            "Phone numbers for the User.",
        ),
        multi(
            "ims",
            &[
                string("value", "Instant messaging address for the User."),
                DISPLAY,
                typed(
                    "type",
                    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
                    "A label indicating the attribute's function.",
                ),
                PRIMARY,
            ],
            "Instant messaging addresses for the User.",
        ),
        multi(
            "photos",
            &[
                Attribute {
                    reference_types: &["external"],
                    ..attr("value", AttrType::Reference, "URL of a photo of the User.")
                },
                DISPLAY,
                typed(
                    "type",
                    &["photo", "thumbnail"],
                    "A label indicating the attribute's function.",
                ),
                PRIMARY,
            ],
            "URLs of photos of the User.",
        ),
        multi(
            "addresses",
            &[
                Attribute {
                    max_bytes: ADDRESS_BYTES,
                    ..string(
                        "formatted",
                        "The full mailing address, formatted for display or use with a mailing label.",
                    )
                },
                Attribute {
                    max_bytes: ADDRESS_BYTES,
                    ..string("streetAddress", "The full street address component.")
                },
                string("locality", "The city or locality component."),
                string("region", "The state or region component."),
                string("postalCode", "The zip code or postal code component."),
                string("country", "The country name component."),
                typed(
                    "type",
                    &["work", "home", "other"],
                    "A label indicating the attribute's function.",
                ),
                PRIMARY,
            ],
            "A physical mailing address for this User.",
        ),
        Attribute {
            mutability: Mutability::ReadOnly,
            ..multi(
                "groups",
                &[
                    Attribute {
                        mutability: Mutability::ReadOnly,
                        case_exact: true,
                        ..string("value", "The identifier of the User's group.")
                    },
                    Attribute {
                        mutability: Mutability::ReadOnly,
                        reference_types: &["User", "Group"],
                        case_exact: true,
                        ..attr(
                            "$ref",
                            AttrType::Reference,
                            "The URI of the corresponding 'Group' resource to which the user belongs.",
                        )
                    },
                    Attribute {
                        mutability: Mutability::ReadOnly,
                        ..DISPLAY
                    },
                    Attribute {
                        mutability: Mutability::ReadOnly,
                        canonical_values: &["direct", "indirect"],
                        ..string(
                            "type",
                            "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
                        )
                    },
                ],
                "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.",
            )
        },
        Attribute {
            max_items: MAX_GRANTS,
            ..multi(
                "entitlements",
                &[
                    string("value", "The value of an entitlement."),
                    DISPLAY,
                    string("type", "A label indicating the attribute's function."),
                    PRIMARY,
                ],
                "A list of entitlements for the User that represent a thing the User has.",
            )
        },
        Attribute {
            max_items: MAX_GRANTS,
            ..multi(
                "roles",
                &[
                    string("value", "The value of a role."),
                    DISPLAY,
                    string("type", "A label indicating the attribute's function."),
                    PRIMARY,
                ],
                "A list of roles for the User that collectively represent who the User is.",
            )
        },
        multi(
            "x509Certificates",
            &[
                Attribute {
                    case_exact: true,
                    max_bytes: CERTIFICATE_BYTES,
                    ..attr(
                        "value",
                        AttrType::Binary,
                        "The value of an X.509 certificate.",
                    )
                },
                DISPLAY,
                string("type", "A label indicating the attribute's function."),
                PRIMARY,
            ],
            "A list of certificates issued to the User.",
        ),
    ],
};

pub static ENTERPRISE_USER_SCHEMA: Schema = Schema {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization.",
        ),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        Attribute {
            sub_attributes: &[
                Attribute {
                    case_exact: true,
                    ..string(
                        "value",
                        "The id of the SCIM resource representing the User's manager.",
                    )
                },
                Attribute {
                    reference_types: &["User"],
                    case_exact: true,
                    ..attr(
                        "$ref",
                        AttrType::Reference,
                        "The URI of the SCIM resource representing the User's manager.",
                    )
                },
                Attribute {
                    mutability: Mutability::ReadOnly,
                    ..string("displayName", "The displayName of the User's manager.")
                },
            ],
            ..attr("manager", AttrType::Complex, "The User's manager.")
        },
    ],
};

pub static GROUP_SCHEMA: Schema = Schema {
    id: GROUP,
    name: "Group",
    description: "Group",
    attributes: &[
        Attribute {
            required: true,
            uniqueness: Uniqueness::Server,
            ..string(
                "displayName",
                "A human-readable name for the Group. REQUIRED. Unique within a directory.",
            )
        },
        Attribute {
            max_items: MAX_MEMBERS_PER_REQUEST,
            ..multi(
                "members",
                &[
                    Attribute {
                        mutability: Mutability::Immutable,
                        case_exact: true,
                        ..string("value", "Identifier of the member of this Group.")
                    },
                    Attribute {
                        mutability: Mutability::Immutable,
                        reference_types: &["User", "Group"],
                        case_exact: true,
                        ..attr(
                            "$ref",
                            AttrType::Reference,
                            "The URI corresponding to a SCIM resource that is a member of this Group.",
                        )
                    },
                    // RFC 7643 §2.4: `display` of a multi-valued attribute is
                    // immutable: the client names the member when it adds it.
                    Attribute {
                        mutability: Mutability::Immutable,
                        ..DISPLAY
                    },
                    Attribute {
                        mutability: Mutability::Immutable,
                        canonical_values: &["User", "Group"],
                        ..string(
                            "type",
                            "A label indicating the type of resource, e.g., 'User' or 'Group'.",
                        )
                    },
                ],
                "A list of members of the Group.",
            )
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn attribute_names_resolve_case_insensitively() {
        let r = USER_RESOURCE.resolve(None, "USERNAME", None);
        assert_eq!(r.map(|r| r.attribute.name), Some("userName"));
        let r = USER_RESOURCE.resolve(None, "emails", Some("VALUE"));
        assert_eq!(r.map(|r| r.target().name), Some("value"));
    }

    #[test]
    fn extension_paths_resolve_with_colon_or_dot() {
        let colon = USER_RESOURCE
            .resolve_path_str("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager");
        let dot = USER_RESOURCE
            .resolve_path_str("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager");
        assert_eq!(colon, dot);
        assert_eq!(colon.and_then(|r| r.extension), Some(ENTERPRISE_USER));
    }

    #[test]
    fn core_urn_prefix_resolves_like_no_prefix() {
        let r = USER_RESOURCE
            .resolve_path_str("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName");
        assert_eq!(r.map(|r| r.target().name), Some("givenName"));
    }

    #[test]
    fn unknown_attributes_do_not_resolve() {
        assert!(USER_RESOURCE.resolve(None, "adreses", None).is_none());
        assert!(GROUP_RESOURCE.resolve(None, "userName", None).is_none());
    }

    #[rstest]
    #[case(
        "urn:scim:schemas:extension:enterprise:1.0:department",
        Some(ENTERPRISE_USER)
    )]
    #[case(
        "urn:scim:schemas:extension:enterprise:1.0.department",
        Some(ENTERPRISE_USER)
    )]
    #[case(
        "URN:SCIM:schemas:extension:ENTERPRISE:1.0:department",
        Some(ENTERPRISE_USER)
    )]
    #[case(
        "urn:IETF:params:scim:schemas:extension:enterprise:2.0:User:department",
        Some(ENTERPRISE_USER)
    )]
    #[case("urn:scim:schemas:core:1.0:title", None)]
    #[case("urn:ietf:params:scim:schemas:core:2.0:user:title", None)]
    fn scim_1_1_urns_and_any_urn_casing_resolve_like_the_2_0_urn(
        #[case] path: &str,
        #[case] extension: Option<&str>,
    ) {
        // L2 (OneLogin's SCIM 1.1 templates), X9 (RFC 8141 §3).
        let r = USER_RESOURCE.resolve_path_str(path).unwrap();
        assert_eq!(r.extension, extension);
        assert!(matches!(r.attribute.name, "department" | "title"));
    }

    #[test]
    fn the_scim_1_1_enterprise_urn_names_the_enterprise_extension() {
        // L2.
        let ext = USER_RESOURCE.extension("urn:scim:schemas:extension:enterprise:1.0");
        assert_eq!(ext.map(|s| s.id), Some(ENTERPRISE_USER));
        assert!(
            GROUP_RESOURCE
                .extension("urn:scim:schemas:extension:enterprise:1.0")
                .is_none()
        );
        let r = GROUP_RESOURCE.resolve(Some("urn:scim:schemas:core:1.0"), "displayName", None);
        assert_eq!(r.map(|r| r.attribute.name), Some("displayName"));
    }
}
