//! Attribute mapping: a directory's rules `source → target` that read an
//! attribute in the directory's own terms (a SCIM attribute path, a
//! Microsoft Graph user property, a Google Directory user field, an Okta
//! profile property) and give a standard field of the application user, its
//! role, or a named custom attribute. Rules are compiled once per policy
//! ([`Mapping::compile`], which refuses a bad rule with a reason an admin can
//! act on) and evaluated against each user's document ([`Mapping::evaluate`]),
//! the same way for SCIM push and for every pull connector.
//!
//! Pure: a document in, values out. It imports no HTTP, SQL, HTTP-client or
//! SCIM wire crate and neither `scim` nor `pull` (which hand it documents);
//! of the crate, only `domain` (the text caps and the control-character
//! rule).
//!
//! One path grammar serves every source kind: segments separated by `.`,
//! each an attribute name with at most one value filter
//! `[sub eq VALUE]` (the `valuePath` of RFC 7644 §3.10, limited to `eq`),
//! and for SCIM only a schema URN prefix (RFC 7644 §3.10: "the attribute
//! name is prefixed by the schema URI"). Names and string comparisons match
//! without regard to case: SCIM says so (RFC 7643 §2.1, §2.3.1
//! `caseExact` false by default), Graph's OData property names are
//! case-insensitive, and Google and Okta never send two properties that
//! differ only by case.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use utoipa::ToSchema;

use crate::domain::limits::{REFERENCE_BYTES, TEXT_BYTES};
use crate::domain::text::{self, ControlCharacter, quoted};

/// At most this many rules in one directory's mapping: enough for every
/// standard field with a fallback or two and a few dozen custom attributes,
/// and a bound on the work each user's evaluation costs.
pub const MAX_RULES: usize = 64;

/// At most this many entries in one rule's value map.
pub const MAX_MAP_ENTRIES: usize = 256;

/// The longest source path, in bytes.
pub const MAX_SOURCE_BYTES: usize = 512;

/// At most this many values of one rule reach a custom attribute (the cap
/// the SCIM edge keeps on a multi-valued attribute's elements, kept here
/// without importing `scim`).
pub const MAX_VALUES: usize = 100;

/// Array nesting deeper than this is not followed: no directory nests arrays
/// in arrays, and the bound keeps evaluation's recursion shallow whatever
/// document it is given.
const MAX_DEPTH: usize = 64;

/// The core User schema (RFC 7643 §8.7.1): as a prefix it names the top level
/// of the resource, where the core attributes are (SCIM clients write it,
/// e.g. `urn:ietf:params:scim:schemas:core:2.0:User:userName`).
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension (RFC 7643 §4.3), the key its attributes are
/// kept under in a stored SCIM user.
const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// OneLogin's SCIM 1.1 URNs (docs/vendor-quirks.md L2), which the SCIM edge
/// stores as the 2.0 schemas they stand for; a rule may name either.
const CORE_USER_1_1: &str = "urn:scim:schemas:core:1.0";
const ENTERPRISE_USER_1_1: &str = "urn:scim:schemas:extension:enterprise:1.0";

/// How a directory's users are read: decides how a rule's source path is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// A SCIM User resource as stored: core attributes at the top, extension
    /// attributes under their schema URN key.
    Scim,
    /// A Microsoft Graph `user` object.
    Graph,
    /// A Google Directory API `User` resource.
    Google,
    /// An Okta `User` object; rules read its `profile`.
    Okta,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Scim => "SCIM",
            SourceKind::Graph => "Microsoft Graph",
            SourceKind::Google => "Google",
            SourceKind::Okta => "Okta",
        })
    }
}

impl SourceKind {
    /// How a directory of this stored kind (`directories.kind`: `scim`, or
    /// the pull provider's name) is read.
    pub fn of_directory(kind: &str) -> Option<SourceKind> {
        match kind {
            "scim" => Some(SourceKind::Scim),
            "entra" => Some(SourceKind::Graph),
            "google" => Some(SourceKind::Google),
            "okta" => Some(SourceKind::Okta),
            _ => None,
        }
    }
}

/// One rule of a directory's attribute mapping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The attribute to read, in the directory's own terms: a SCIM attribute
    /// path (`title`, `emails[type eq "work"].value`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter`),
    /// a Microsoft Graph user property
    /// (`onPremisesExtensionAttributes.extensionAttribute3`,
    /// `extension_<appid>_<name>`), a Google user field
    /// (`customSchemas.<schema>.<field>`,
    /// `organizations[primary eq true].costCenter`) or an Okta profile
    /// property (`costCenter`). Names match in any case.
    #[schema(example = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter")]
    pub source: String,
    /// What the value becomes: `department`, `title`, `given_name`,
    /// `family_name`, `display_name`, `avatar_url`, `employee_number`,
    /// `manager`, `email`, `role`, or `custom.<name>` (a custom attribute;
    /// the name is `[a-z][a-z0-9_]{0,62}`).
    #[schema(example = "custom.cost_center")]
    pub target: String,
    /// Lowercase each value (after `trim`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub lowercase: bool,
    /// Remove leading and trailing whitespace from each value.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trim: bool,
    /// Keep only the first value the source gives.
    #[serde(default, skip_serializing_if = "is_false")]
    pub first: bool,
    /// A fixed map of values, matched exactly after `trim` and `lowercase`:
    /// a value found is replaced, one not found is kept as it is, except for
    /// a `role` rule, which needs a map and gives only the roles it maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<BTreeMap<String, String>>,
    /// The value when the source gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A profile field of the application user that a rule may set in place of
/// its default source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StandardField {
    GivenName,
    FamilyName,
    DisplayName,
    AvatarUrl,
    Department,
    Title,
    EmployeeNumber,
    Manager,
    Email,
}

impl StandardField {
    pub const ALL: [StandardField; 9] = [
        StandardField::Department,
        StandardField::Title,
        StandardField::GivenName,
        StandardField::FamilyName,
        StandardField::DisplayName,
        StandardField::AvatarUrl,
        StandardField::EmployeeNumber,
        StandardField::Manager,
        StandardField::Email,
    ];

    /// The field's name as a rule's target writes it.
    pub fn name(self) -> &'static str {
        match self {
            StandardField::GivenName => "given_name",
            StandardField::FamilyName => "family_name",
            StandardField::DisplayName => "display_name",
            StandardField::AvatarUrl => "avatar_url",
            StandardField::Department => "department",
            StandardField::Title => "title",
            StandardField::EmployeeNumber => "employee_number",
            StandardField::Manager => "manager",
            StandardField::Email => "email",
        }
    }

    /// The longest value the field keeps: the caps the edges enforce on the
    /// same attributes (`domain::limits`), a URL's for the avatar.
    fn cap(self) -> usize {
        match self {
            StandardField::AvatarUrl => REFERENCE_BYTES,
            _ => TEXT_BYTES,
        }
    }
}

/// What a rule sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Field(StandardField),
    Role,
    /// A custom attribute, by its name (without `custom.`).
    Custom(String),
}

impl Target {
    /// A rule's `target` as written; the reason names the valid ones.
    pub fn parse(s: &str) -> Result<Target, Reason> {
        if let Some(name) = s.strip_prefix("custom.") {
            return if is_custom_name(name) {
                Ok(Target::Custom(name.to_owned()))
            } else {
                Err(Reason::CustomName {
                    name: name.to_owned(),
                })
            };
        }
        if s == "role" {
            return Ok(Target::Role);
        }
        StandardField::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .map(Target::Field)
            .ok_or_else(|| Reason::UnknownTarget { target: s.into() })
    }

    fn cap(&self) -> usize {
        match self {
            Target::Field(f) => f.cap(),
            Target::Role | Target::Custom(_) => TEXT_BYTES,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Field(field) => f.write_str(field.name()),
            Target::Role => f.write_str("role"),
            Target::Custom(name) => write!(f, "custom.{name}"),
        }
    }
}

/// `[a-z][a-z0-9_]{0,62}`: a key every consumer (JSON, SQL JSON paths, the
/// host application's code) takes as it is.
fn is_custom_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A mapping refused: which rule and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("a mapping holds at most {max} rules; this one has {count}")]
    TooMany { count: usize, max: usize },
    /// `rule` counts from 1, as an admin counts the rules they wrote.
    #[error("rule {rule}: {reason}")]
    Rule { rule: usize, reason: Reason },
}

/// Why one rule is refused, in words for the admin who wrote it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Reason {
    #[error(
        "{} is not a target; a target is one of department, title, given_name, family_name, \
         display_name, avatar_url, employee_number, manager, email, role, or custom.<name> \
         for a custom attribute",
        quoted(.target)
    )]
    UnknownTarget { target: String },
    #[error(
        "{} is not a custom attribute's name: a lowercase letter, then at most 62 lowercase \
         letters, digits or underscores (for example custom.cost_center)",
        quoted(.name)
    )]
    CustomName { name: String },
    #[error("the source is empty; name the attribute to read")]
    EmptySource,
    #[error("the source is {bytes} bytes long; at most {MAX_SOURCE_BYTES}")]
    SourceTooLong { bytes: usize },
    #[error("the source {} does not parse at character {at}: expected {expected}", quoted(.path))]
    SourceSyntax {
        path: String,
        /// Counted in characters from 1.
        at: usize,
        expected: &'static str,
    },
    #[error(
        "the source {} starts with a schema URN, which only a SCIM directory's sources have; \
         {}",
        quoted(.path),
        urn_hint(*.kind)
    )]
    UrnOutsideScim { path: String, kind: SourceKind },
    #[error(
        "the source {} names no field: a Google custom schema field is read as \
         customSchemas.<schema>.<field>",
        quoted(.path)
    )]
    CustomSchemaField { path: String },
    #[error(
        "a role rule needs a map from the directory's values to the application's roles; \
         a role is never taken from directory text as it is"
    )]
    RoleWithoutMap,
    #[error("the map has {entries} entries; at most {MAX_MAP_ENTRIES}")]
    MapTooLarge { entries: usize },
    #[error("the map's {place} {} is {bytes} bytes long; at most {max}", quoted(.text))]
    MapEntryTooLong {
        /// "key" or "value".
        place: &'static str,
        text: String,
        bytes: usize,
        max: usize,
    },
    #[error(
        "the map's key {} can never match: the rule {because} each value before the map \
         compares it",
        quoted(.key)
    )]
    UnreachableMapKey { key: String, because: &'static str },
    #[error("the default is empty; leave the default out for no value")]
    EmptyDefault,
    #[error("the default is {bytes} bytes long; at most {max}")]
    DefaultTooLong { bytes: usize, max: usize },
    #[error("{place} {found}")]
    ControlCharacter {
        /// "the default", "a map key", "a map value".
        place: &'static str,
        found: ControlCharacter,
    },
}

fn urn_hint(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Scim => "",
        SourceKind::Graph => {
            "name the Graph user property itself (for example \
             onPremisesExtensionAttributes.extensionAttribute3)"
        }
        SourceKind::Google => {
            "name the Google user field itself (for example customSchemas.HR.costCenter)"
        }
        SourceKind::Okta => "name the Okta profile property itself (for example costCenter)",
    }
}

/// Rules compiled for one source kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    kind: SourceKind,
    rules: Vec<Compiled>,
    /// How many rules target a custom attribute (the most a user can get).
    custom_rules: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct Compiled {
    target: Target,
    path: Path,
    lowercase: bool,
    trim: bool,
    first: bool,
    map: Option<BTreeMap<String, String>>,
    default: Option<String>,
    /// Whether an earlier rule names the same target (a fallback chain:
    /// only then can the target have a value already).
    is_fallback: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    root: Root,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Root {
    /// The document's top level (for Okta, its `profile`).
    Top,
    /// A SCIM extension: the document's key named by this schema URN.
    Extension(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Step {
    name: String,
    filter: Option<ValueFilter>,
}

/// `[attr eq VALUE]`: keeps the elements whose `attr` equals VALUE.
#[derive(Debug, Clone, PartialEq)]
struct ValueFilter {
    attr: String,
    value: Literal,
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    Num(Number),
}

/// What the rules give for one user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mapped {
    /// Standard fields a rule targets: Some(value) or None (the rule's
    /// source gave nothing and it has no default — the rule overrides the
    /// field's default source, so the field is then empty).
    pub fields: BTreeMap<StandardField, Option<String>>,
    /// Custom attributes with a value: a single value as a JSON string,
    /// several as a JSON array of strings.
    pub custom: BTreeMap<String, Value>,
    /// The role the rules give, if a `role` rule matched a value in its map
    /// (or has a default).
    pub role: Option<String>,
}

impl Mapping {
    /// Compile and validate; the error names the rule (counted from 1) and
    /// the reason.
    pub fn compile(kind: SourceKind, rules: &[Rule]) -> Result<Mapping, RuleError> {
        if rules.len() > MAX_RULES {
            return Err(RuleError::TooMany {
                count: rules.len(),
                max: MAX_RULES,
            });
        }
        let mut rules: Vec<Compiled> = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                Compiled::compile(kind, rule).map_err(|reason| RuleError::Rule {
                    rule: i + 1,
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        for i in 1..rules.len() {
            let (earlier, rest) = rules.split_at_mut(i);
            rest[0].is_fallback = earlier.iter().any(|r| r.target == rest[0].target);
        }
        let custom_rules = rules
            .iter()
            .filter(|r| matches!(r.target, Target::Custom(_)))
            .count();
        Ok(Mapping {
            kind,
            rules,
            custom_rules,
        })
    }

    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The top-level property names the rules read, as the first rule
    /// reading each writes it, without a name twice in any case (Graph adds
    /// them to `$select`, whose names are case-insensitive; for Okta, the
    /// profile properties). A SCIM extension attribute's is its schema URN.
    pub fn top_level_properties(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for rule in &self.rules {
            let name = rule.path.top_level();
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.to_owned());
            }
        }
        names
    }

    /// Google: the custom schemas the rules read (`customSchemas.<schema>.…`),
    /// for `projection=custom&customFieldMask=…` (docs/pull-apis.md §1B), as
    /// written (the mask names a schema exactly). Empty for other kinds.
    pub fn custom_schemas(&self) -> Vec<String> {
        if self.kind != SourceKind::Google {
            return Vec::new();
        }
        let mut names: Vec<String> = Vec::new();
        for rule in &self.rules {
            if let Some(schema) = rule.path.custom_schema()
                && !names.iter().any(|n| n == schema)
            {
                names.push(schema.to_owned());
            }
        }
        names
    }

    /// The targets of the rules that read this top-level property (any
    /// case), each once, in rule order.
    pub fn targets_reading(&self, top_level_property: &str) -> Vec<Target> {
        self.targets_where(|rules| {
            rules
                .iter()
                .any(|r| r.path.top_level().eq_ignore_ascii_case(top_level_property))
        })
    }

    /// The targets whose every rule reads a top-level property `carries`
    /// says a partial item carries (a Graph delta round under
    /// `Prefer: return=minimal` sends only the changed properties,
    /// docs/pull-apis.md §2C): evaluating the item alone
    /// gives these targets' values. A target with a rule reading a property
    /// the item lacks (a fallback further down its chain) is known only from
    /// the item merged over what the directory said before.
    pub fn targets_carried(&self, carries: impl Fn(&str) -> bool) -> Vec<Target> {
        self.targets_where(|rules| rules.iter().all(|r| carries(r.path.top_level())))
    }

    /// Each target once, in the order of its first rule, whose chain of
    /// rules `keep` accepts.
    fn targets_where(&self, keep: impl Fn(&[&Compiled]) -> bool) -> Vec<Target> {
        let mut targets: Vec<Target> = Vec::new();
        for rule in &self.rules {
            if targets.contains(&rule.target) {
                continue;
            }
            let chain: Vec<&Compiled> = self
                .rules
                .iter()
                .filter(|r| r.target == rule.target)
                .collect();
            if keep(&chain) {
                targets.push(rule.target.clone());
            }
        }
        targets
    }

    /// Evaluate against one user document: a SCIM User resource (core
    /// attributes at the top, extension attributes under their schema URN
    /// key), a Graph user object, a Google Directory user object, or an Okta
    /// user object (rules read its `profile`). Several rules naming one
    /// target are a fallback chain: the first that gives a value wins.
    pub fn evaluate(&self, doc: &Value) -> Mapped {
        let base = match self.kind {
            // Okta's custom and standard attributes alike live in `profile`
            // (docs/pull-apis.md §3B, OKSPEC `User`).
            SourceKind::Okta => child(doc, "profile"),
            SourceKind::Scim | SourceKind::Graph | SourceKind::Google => Some(doc),
        };
        let mut mapped = Mapped::default();
        // Each extension the rules read is looked up once per document, not
        // once per rule (ten rules under one URN are the common case).
        let mut extensions: Vec<(&str, Option<&Value>)> = Vec::new();
        // The values a path reaches, one buffer for every rule of the
        // document rather than one per rule.
        let mut reached: Vec<&Value> = Vec::new();
        // Custom attributes in the order the rules give them, sorted into
        // the map once at the end: cheaper than a map insert for each.
        let mut custom: Vec<(String, Value)> = Vec::with_capacity(self.custom_rules);
        for rule in &self.rules {
            let start = match (&rule.path.root, base) {
                (_, None) => None,
                (Root::Top, Some(base)) => Some(base),
                (Root::Extension(urn), Some(base)) => {
                    match extensions.iter().find(|(seen, _)| *seen == urn.as_str()) {
                        Some((_, found)) => *found,
                        None => {
                            let found = child(base, urn);
                            extensions.push((urn, found));
                            found
                        }
                    }
                }
            };
            match &rule.target {
                Target::Field(field) => {
                    if mapped.fields.get(field).is_some_and(Option::is_some) {
                        continue;
                    }
                    let value = rule.values(start, 1, &mut reached).first();
                    mapped.fields.insert(*field, value);
                }
                Target::Role => {
                    if mapped.role.is_none() {
                        mapped.role = rule.values(start, 1, &mut reached).first();
                    }
                }
                Target::Custom(name) => {
                    if rule.is_fallback && custom.iter().any(|(given, _)| given == name) {
                        continue;
                    }
                    let value = match rule.values(start, MAX_VALUES, &mut reached) {
                        Values::None => continue,
                        Values::One(value) => Value::String(value),
                        Values::Many(values) => {
                            Value::Array(values.into_iter().map(Value::String).collect())
                        }
                    };
                    custom.push((name.clone(), value));
                }
            }
        }
        mapped.custom = custom.into_iter().collect();
        mapped
    }
}

/// What one rule gives: most rules give one value, which then costs no list.
enum Values {
    None,
    One(String),
    Many(Vec<String>),
}

impl Values {
    fn push(&mut self, value: String) {
        *self = match std::mem::replace(self, Values::None) {
            Values::None => Values::One(value),
            Values::One(first) => Values::Many(vec![first, value]),
            Values::Many(mut values) => {
                values.push(value);
                Values::Many(values)
            }
        };
    }

    fn len(&self) -> usize {
        match self {
            Values::None => 0,
            Values::One(_) => 1,
            Values::Many(values) => values.len(),
        }
    }

    fn first(self) -> Option<String> {
        match self {
            Values::None => None,
            Values::One(value) => Some(value),
            Values::Many(values) => values.into_iter().next(),
        }
    }
}

impl Compiled {
    fn compile(kind: SourceKind, rule: &Rule) -> Result<Compiled, Reason> {
        let target = Target::parse(&rule.target)?;
        let path = Path::parse(kind, &rule.source)?;
        if kind == SourceKind::Google
            && path.is_custom_schemas()
            && path.custom_schema_field().is_none()
        {
            // `customSchemas.HR` is an object: it never gives a value.
            return Err(Reason::CustomSchemaField {
                path: rule.source.clone(),
            });
        }
        let cap = target.cap();
        if let Some(map) = &rule.map {
            check_map(map, rule, cap)?;
        } else if target == Target::Role {
            return Err(Reason::RoleWithoutMap);
        }
        if let Some(default) = &rule.default {
            if default.is_empty() {
                return Err(Reason::EmptyDefault);
            }
            text::check(default).map_err(|found| Reason::ControlCharacter {
                place: "the default",
                found,
            })?;
            if default.len() > cap {
                return Err(Reason::DefaultTooLong {
                    bytes: default.len(),
                    max: cap,
                });
            }
        }
        Ok(Compiled {
            target,
            path,
            lowercase: rule.lowercase,
            trim: rule.trim,
            first: rule.first,
            map: rule.map.clone(),
            default: rule.default.clone(),
            is_fallback: false,
        })
    }

    /// At most `limit` values of this rule for the document: the scalars the
    /// path reaches, transformed in the fixed order `first`, `trim`,
    /// `lowercase`, `map`, then empty and overlong values dropped; the
    /// default when none remains.
    /// The values the rule gives, read from `start` (the document's level
    /// its root names: the top, or an extension's object).
    fn values<'a>(
        &self,
        start: Option<&'a Value>,
        limit: usize,
        reached: &mut Vec<&'a Value>,
    ) -> Values {
        reached.clear();
        if let Some(start) = start {
            collect(start, &self.path.steps, 0, reached);
        }
        let taken = if self.first { 1 } else { usize::MAX };
        let limit = limit.min(MAX_VALUES);
        let mut values = Values::None;
        for raw in reached.iter().take(taken) {
            if values.len() >= limit {
                break;
            }
            if let Some(value) = scalar_text(raw).and_then(|text| self.transform(&text)) {
                values.push(value);
            }
        }
        if let (Values::None, Some(default)) = (&values, &self.default) {
            values = Values::One(default.clone());
        }
        values
    }

    fn transform(&self, raw: &str) -> Option<String> {
        // A provider's value may hold control characters no stored text may
        // (domain::text; PostgreSQL refuses NUL in text and jsonb), and the
        // pull side strips them rather than refuse a provider; SCIM values
        // were refused at the edge already.
        let kept = text::strip_controls(raw);
        let trimmed = if self.trim { kept.trim() } else { &kept };
        let cased: Cow<'_, str> = if self.lowercase {
            // ASCII lowercases alike either way, without the Unicode tables.
            Cow::Owned(if trimmed.is_ascii() {
                trimmed.to_ascii_lowercase()
            } else {
                trimmed.to_lowercase()
            })
        } else {
            Cow::Borrowed(trimmed)
        };
        let value = match (&self.map, &self.target) {
            (Some(map), target) => match map.get(cased.as_ref()) {
                Some(mapped) => mapped.clone(),
                // A role only ever comes from the map: directory text never
                // becomes an application role as it is.
                None if *target == Target::Role => return None,
                None => cased.into_owned(),
            },
            (None, Target::Role) => return None,
            (None, _) => cased.into_owned(),
        };
        // Dropped, not cut, past the cap (as the pull side's normalize
        // does): a cut identifier or address would be another one.
        (!value.is_empty() && value.len() <= self.target.cap()).then_some(value)
    }
}

fn check_map(map: &BTreeMap<String, String>, rule: &Rule, cap: usize) -> Result<(), Reason> {
    if map.len() > MAX_MAP_ENTRIES {
        return Err(Reason::MapTooLarge { entries: map.len() });
    }
    for (key, value) in map {
        text::check(key).map_err(|found| Reason::ControlCharacter {
            place: "a map key",
            found,
        })?;
        text::check(value).map_err(|found| Reason::ControlCharacter {
            place: "a map value",
            found,
        })?;
        for (place, text, max) in [("key", key, TEXT_BYTES), ("value", value, cap)] {
            if text.len() > max {
                return Err(Reason::MapEntryTooLong {
                    place,
                    text: text.clone(),
                    bytes: text.len(),
                    max,
                });
            }
        }
        // The map compares after the transforms: a key they could never
        // produce is an admin's mistake, not a rule that silently never
        // matches.
        let because = if rule.lowercase && *key != key.to_lowercase() {
            Some("lowercases")
        } else if rule.trim && key.trim() != key {
            Some("trims")
        } else {
            None
        };
        if let Some(because) = because {
            return Err(Reason::UnreachableMapKey {
                key: key.clone(),
                because,
            });
        }
    }
    Ok(())
}

/// A scalar's text: strings as they are, numbers and booleans as their JSON
/// text; null, objects and arrays have none.
fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// An object's member by name in any case. A member spelt exactly as asked
/// wins; among members differing only by case the least in byte order is
/// taken, so the answer never depends on the order of the members.
fn child<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let object = v.as_object()?;
    // A user's objects are small: comparing a few names costs less than
    // hashing the one asked for.
    let exact = if object.len() <= 16 {
        object
            .iter()
            .find(|(key, _)| same_name(key, name))
            .map(|(_, v)| v)
    } else {
        object.get(name)
    };
    if exact.is_some() {
        return exact;
    }
    object
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .min_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, value)| value)
}

/// `a == b`, told apart sooner: the members of one object often share a
/// length and a prefix (`attr1`, `attr2`; Entra's `extensionAttribute1` to
/// `15`), so their last bytes differ without a call to compare the rest.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
}

/// The scalars `steps` reach from `at`: an object steps to its member, an
/// array to every element (a multi-valued attribute), a value filter keeps
/// the elements it matches (RFC 7644 §3.10 `valuePath`).
fn collect<'a>(at: &'a Value, steps: &[Step], depth: usize, out: &mut Vec<&'a Value>) {
    if depth > MAX_DEPTH {
        return;
    }
    match at {
        Value::Array(items) => {
            for item in items {
                collect(item, steps, depth + 1, out);
            }
        }
        Value::Object(_) => {
            let Some((step, rest)) = steps.split_first() else {
                return;
            };
            let Some(next) = child(at, &step.name) else {
                return;
            };
            match &step.filter {
                None => collect(next, rest, depth + 1, out),
                Some(filter) => keep(next, filter, rest, depth + 1, out),
            }
        }
        Value::Null => {}
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            if steps.is_empty() {
                out.push(at);
            }
        }
    }
}

fn keep<'a>(
    at: &'a Value,
    filter: &ValueFilter,
    rest: &[Step],
    depth: usize,
    out: &mut Vec<&'a Value>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match at {
        Value::Array(items) => {
            for item in items {
                keep(item, filter, rest, depth + 1, out);
            }
        }
        // A lone object is a one-element list (OneLogin sends `emails` as an
        // object, docs/vendor-quirks.md L3; a provider may too).
        Value::Object(_) if filter.matches(at) => collect(at, rest, depth + 1, out),
        _ => {}
    }
}

impl ValueFilter {
    fn matches(&self, element: &Value) -> bool {
        match child(element, &self.attr) {
            // A multi-valued sub-attribute matches when any value does
            // (RFC 7644 §3.4.2.2, multi-valued attributes in filters).
            Some(Value::Array(values)) => values.iter().any(|v| self.value.matches(v)),
            Some(value) => self.value.matches(value),
            None => false,
        }
    }
}

impl Literal {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            // String comparison ignores case (RFC 7644 §3.4.2.2 with
            // RFC 7643 §2.3.1's caseExact false; Google's `type` values and
            // Graph's are compared the same way).
            (Literal::Str(want), _) => {
                scalar_text(v).is_some_and(|text| same_without_case(&text, want))
            }
            (Literal::Bool(want), Value::Bool(b)) => want == b,
            // Entra sends booleans as strings (docs/vendor-quirks.md E2).
            (Literal::Bool(want), Value::String(s)) => {
                s.eq_ignore_ascii_case(if *want { "true" } else { "false" })
            }
            (Literal::Num(want), Value::Number(n)) => {
                want == n || want.as_f64().is_some_and(|w| n.as_f64() == Some(w))
            }
            (Literal::Num(want), Value::String(s)) => *s == want.to_string(),
            _ => false,
        }
    }
}

fn same_without_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

impl Path {
    fn parse(kind: SourceKind, source: &str) -> Result<Path, Reason> {
        if source.is_empty() {
            return Err(Reason::EmptySource);
        }
        if source.len() > MAX_SOURCE_BYTES {
            return Err(Reason::SourceTooLong {
                bytes: source.len(),
            });
        }
        let is_urn = source
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        if !is_urn {
            return Ok(Path {
                root: Root::Top,
                steps: Parser::new(source, 0).steps()?,
            });
        }
        if kind != SourceKind::Scim {
            return Err(Reason::UrnOutsideScim {
                path: source.into(),
                kind,
            });
        }
        // RFC 7644 §3.10: the URN is everything before the last `:` that
        // precedes the attribute (a filter's value may hold a `:` itself).
        let head = source.find('[').map_or(source, |i| &source[..i]);
        let colon = head.rfind(':').unwrap_or(3);
        let urn = &source[..colon];
        if let Some(at) = bad_urn(urn) {
            return Err(Reason::SourceSyntax {
                path: source.into(),
                at: source[..at].chars().count() + 1,
                expected: "a schema URN (urn:<namespace>:<name>, e.g. \
                           urn:ietf:params:scim:schemas:extension:enterprise:2.0:User), \
                           then `:` and the attribute",
            });
        }
        let root = if urn.eq_ignore_ascii_case(CORE_USER) || urn.eq_ignore_ascii_case(CORE_USER_1_1)
        {
            Root::Top
        } else if urn.eq_ignore_ascii_case(ENTERPRISE_USER_1_1) {
            Root::Extension(ENTERPRISE_USER.into())
        } else {
            Root::Extension(urn.into())
        };
        Ok(Path {
            root,
            steps: Parser::new(source, colon + 1).steps()?,
        })
    }

    /// The document's key this path starts from: the schema URN of an
    /// extension attribute, else the first attribute's name.
    fn top_level(&self) -> &str {
        match &self.root {
            Root::Extension(urn) => urn,
            Root::Top => self.steps.first().map_or("", |s| s.name.as_str()),
        }
    }

    /// Whether the path starts at Google's `customSchemas`.
    fn is_custom_schemas(&self) -> bool {
        self.root == Root::Top
            && self
                .steps
                .first()
                .is_some_and(|s| s.name.eq_ignore_ascii_case("customSchemas"))
    }

    /// `customSchemas.<schema>.<field>…`: the field's step, if the path names one.
    fn custom_schema_field(&self) -> Option<&Step> {
        self.steps.get(2)
    }

    fn custom_schema(&self) -> Option<&str> {
        (self.is_custom_schemas() && self.custom_schema_field().is_some())
            .then(|| self.steps.get(1).map(|s| s.name.as_str()))
            .flatten()
    }
}

/// Where a URN is not `urn:<nid>:<nss>` (RFC 8141 §2, in the characters a
/// SCIM schema URI uses): the byte offset of the fault.
fn bad_urn(urn: &str) -> Option<usize> {
    let mut offset = 0;
    let mut parts = 0;
    for part in urn.split(':') {
        if part.is_empty() {
            return Some(offset);
        }
        if let Some(i) = part
            .char_indices()
            .find(|(_, c)| !c.is_ascii_graphic() || matches!(c, '[' | ']' | '"' | '\\'))
            .map(|(i, _)| i)
        {
            return Some(offset + i);
        }
        offset += part.len() + 1;
        parts += 1;
    }
    (parts < 3).then_some(urn.len())
}

/// The path grammar after any URN prefix:
/// `name [ "[" name SP "eq" SP value "]" ] *( "." name [ filter ] )`.
struct Parser<'a> {
    source: &'a str,
    at: usize,
}

const EXPECT_NAME: &str =
    "an attribute name (a letter, `_` or `$`, then letters, digits, `_`, `$` or `-`)";

impl<'a> Parser<'a> {
    fn new(source: &'a str, at: usize) -> Self {
        Parser { source, at }
    }

    fn fail(&self, expected: &'static str) -> Reason {
        Reason::SourceSyntax {
            path: self.source.into(),
            at: self.source[..self.at].chars().count() + 1,
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.source.as_bytes().get(self.at).copied()
    }

    fn steps(mut self) -> Result<Vec<Step>, Reason> {
        let mut steps = Vec::new();
        loop {
            let name = self.name()?;
            let filter = if self.peek() == Some(b'[') {
                self.at += 1;
                Some(self.filter()?)
            } else {
                None
            };
            steps.push(Step { name, filter });
            match self.peek() {
                None => return Ok(steps),
                Some(b'.') => self.at += 1,
                Some(_) => {
                    return Err(
                        self.fail("`.` and the next attribute, `[` and a value filter, or the end")
                    );
                }
            }
        }
    }

    fn name(&mut self) -> Result<String, Reason> {
        let start = self.at;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => self.at += 1,
            _ => return Err(self.fail(EXPECT_NAME)),
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'-') {
                self.at += 1;
            } else {
                break;
            }
        }
        Ok(self.source[start..self.at].to_owned())
    }

    fn spaces(&mut self) -> usize {
        let start = self.at;
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
        self.at - start
    }

    /// After `[`: `attr eq VALUE]`.
    fn filter(&mut self) -> Result<ValueFilter, Reason> {
        self.spaces();
        let attr = self.name()?;
        if self.spaces() == 0 {
            return Err(self.fail("a space, then `eq`"));
        }
        let op = self.source.get(self.at..self.at + 2);
        if !op.is_some_and(|op| op.eq_ignore_ascii_case("eq")) {
            return Err(self.fail("`eq` (a value filter here compares with eq only)"));
        }
        self.at += 2;
        if self.spaces() == 0 {
            return Err(self.fail("a space after `eq`, then the value"));
        }
        let value = self.literal()?;
        self.spaces();
        if self.peek() != Some(b']') {
            return Err(self.fail("`]` closing the value filter"));
        }
        self.at += 1;
        Ok(ValueFilter { attr, value })
    }

    /// A JSON string, `true`, `false` or a JSON number (RFC 7644 §3.4.2.2
    /// compValue, without `null`: `eq null` is what `pr` negated says).
    fn literal(&mut self) -> Result<Literal, Reason> {
        const EXPECT_VALUE: &str = "a value to compare with: a \"double-quoted string\", \
                                    true, false or a number";
        let start = self.at;
        let bytes = self.source.as_bytes();
        match self.peek() {
            Some(b'"') => {
                let mut i = start + 1;
                let end = loop {
                    match bytes.get(i) {
                        None => {
                            return Err(self.fail("a closing `\"` ending the string"));
                        }
                        Some(b'\\') => i += 2,
                        Some(b'"') => break i + 1,
                        Some(_) => i += 1,
                    }
                };
                let s: String = serde_json::from_str(&self.source[start..end])
                    .map_err(|_| self.fail("a string with JSON escapes only"))?;
                self.at = end;
                Ok(Literal::Str(s))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    self.at += 1;
                }
                let word = &self.source[start..self.at];
                if word.eq_ignore_ascii_case("true") {
                    Ok(Literal::Bool(true))
                } else if word.eq_ignore_ascii_case("false") {
                    Ok(Literal::Bool(false))
                } else {
                    self.at = start;
                    Err(self.fail(EXPECT_VALUE))
                }
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| {
                    c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')
                }) {
                    self.at += 1;
                }
                let n: Number =
                    serde_json::from_str(&self.source[start..self.at]).map_err(|_| {
                        self.at = start;
                        self.fail("a number as JSON writes it (e.g. 42, -1.5)")
                    })?;
                Ok(Literal::Num(n))
            }
            _ => Err(self.fail(EXPECT_VALUE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;
    use serde_json::json;

    fn rule(source: &str, target: &str) -> Rule {
        Rule {
            source: source.into(),
            target: target.into(),
            ..Rule::default()
        }
    }

    fn mapping(kind: SourceKind, rules: &[Rule]) -> Mapping {
        match Mapping::compile(kind, rules) {
            Ok(m) => m,
            Err(e) => panic!("the rules compile: {e}"),
        }
    }

    /// What one rule reading `source` into a custom attribute gives.
    fn read(kind: SourceKind, source: &str, doc: &Value) -> Vec<String> {
        let m = mapping(kind, &[rule(source, "custom.x")]);
        as_list(m.evaluate(doc).custom.get("x"))
    }

    fn as_list(v: Option<&Value>) -> Vec<String> {
        match v {
            None => vec![],
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().expect("custom values are strings").to_owned())
                .collect(),
            Some(other) => panic!("a custom attribute is a string or a list: {other}"),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// An Entra ID SCIM user as dirsync stores it: core attributes at the
    /// top, the enterprise extension and a custom extension under their URNs.
    fn entra_scim_user() -> Value {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:acme:2.0:User"
            ],
            "id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "externalId": "8a3e3c6e-7f4b-4d2e-9b1a-2c5d6e7f8a9b",
            "userName": "ada@contoso.com",
            "active": true,
            "displayName": "Ada Lovelace",
            "title": "Principal Engineer",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
            "emails": [
                {"value": "ada@contoso.com", "type": "work", "primary": true},
                {"value": "ada@home.example", "type": "home"}
            ],
            "roles": [
                {"value": "Admin", "primary": true},
                {"value": "Auditor"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "organization": "Contoso",
                "division": "Research",
                "department": "Engineering",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "urn:acme:2.0:User": {"badge": "B-7", "clearance": 3}
        })
    }

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[rstest]
    #[case::core_attribute("title", &["Principal Engineer"])]
    #[case::sub_attribute("name.givenName", &["Ada"])]
    #[case::names_in_any_case("NAME.GIVENNAME", &["Ada"])]
    #[case::value_filter(r#"emails[type eq "work"].value"#, &["ada@contoso.com"])]
    #[case::filter_in_any_case(r#"emails[TYPE EQ "WORK"].value"#, &["ada@contoso.com"])]
    #[case::filter_with_spaces(r#"emails[ type  eq  "home" ].value"#, &["ada@home.example"])]
    #[case::every_element("emails.value", &["ada@contoso.com", "ada@home.example"])]
    #[case::roles("roles.value", &["Admin", "Auditor"])]
    #[case::boolean_filter("roles[primary eq true].value", &["Admin"])]
    #[case::enterprise_attribute(&format!("{ENT}:costCenter"), &["4130"])]
    #[case::enterprise_manager(&format!("{ENT}:manager.value"), &["26118915-6090-4610-87e4-49d8ca9f808d"])]
    #[case::urn_in_any_case("URN:IETF:params:scim:schemas:extension:ENTERPRISE:2.0:user:costcenter", &["4130"])]
    #[case::custom_extension("urn:acme:2.0:User:badge", &["B-7"])]
    #[case::number_as_its_json_text("urn:acme:2.0:User:clearance", &["3"])]
    #[case::core_urn_is_the_top_level("urn:ietf:params:scim:schemas:core:2.0:User:userName", &["ada@contoso.com"])]
    #[case::core_urn_sub_attribute("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", &["Lovelace"])]
    #[case::scim_1_1_enterprise_urn("urn:scim:schemas:extension:enterprise:1.0:division", &["Research"])]
    #[case::boolean_as_its_json_text("active", &["true"])]
    #[case::an_object_gives_nothing("name", &[])]
    #[case::a_complex_manager_gives_nothing(&format!("{ENT}:manager"), &[])]
    #[case::absent("nickName", &[])]
    #[case::unknown_extension("urn:other:2.0:User:badge", &[])]
    #[case::core_attribute_is_not_read_in_the_extension(&format!("{ENT}:title"), &[])]
    fn scim_sources_read_the_stored_user(#[case] source: &str, #[case] want: &[&str]) {
        assert_eq!(read(SourceKind::Scim, source, &entra_scim_user()), want);
    }

    /// A Microsoft Graph user with on-premises extension attributes, a
    /// directory extension and employeeOrgData selected.
    fn graph_user() -> Value {
        json!({
            "id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",
            "userPrincipalName": "ada@contoso.onmicrosoft.com",
            "displayName": "Ada Lovelace",
            "givenName": "Ada",
            "surname": "Lovelace",
            "mail": "ada@contoso.com",
            "jobTitle": "Principal Engineer",
            "department": "Engineering",
            "officeLocation": "Building 40",
            "employeeId": "701984",
            "accountEnabled": true,
            "businessPhones": ["+1 425 555 0100", "+1 425 555 0101"],
            "onPremisesExtensionAttributes": {
                "extensionAttribute1": null,
                "extensionAttribute2": "",
                "extensionAttribute3": "CC-4130",
                "extensionAttribute15": null
            },
            "extension_3f1c0a_costCenter": "4130",
            "employeeOrgData": {"costCenter": "4130-R", "division": "Research"}
        })
    }

    #[rstest]
    #[case::extension_attribute("onPremisesExtensionAttributes.extensionAttribute3", &["CC-4130"])]
    #[case::extension_attribute_in_any_case("onpremisesextensionattributes.EXTENSIONATTRIBUTE3", &["CC-4130"])]
    #[case::null_extension_attribute("onPremisesExtensionAttributes.extensionAttribute1", &[])]
    #[case::empty_extension_attribute("onPremisesExtensionAttributes.extensionAttribute2", &[])]
    #[case::directory_extension("extension_3f1c0a_costCenter", &["4130"])]
    #[case::employee_org_data("employeeOrgData.costCenter", &["4130-R"])]
    #[case::office_location("officeLocation", &["Building 40"])]
    #[case::a_list_of_strings("businessPhones", &["+1 425 555 0100", "+1 425 555 0101"])]
    #[case::absent("companyName", &[])]
    fn graph_sources_read_the_user_object(#[case] source: &str, #[case] want: &[&str]) {
        assert_eq!(read(SourceKind::Graph, source, &graph_user()), want);
    }

    /// A Google Directory user read with `projection=custom`.
    fn google_user() -> Value {
        json!({
            "kind": "admin#directory#user",
            "id": "103487362547893245017",
            "primaryEmail": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace", "fullName": "Ada Lovelace"},
            "suspended": false,
            "orgUnitPath": "/Engineering",
            "organizations": [
                {"name": "Example", "title": "Engineer", "department": "R&D", "costCenter": "3100", "primary": false},
                {"name": "Example", "title": "Principal Engineer", "department": "Engineering", "costCenter": "4130", "primary": true, "type": "work"}
            ],
            "relations": [
                {"value": "grace@example.com", "type": "manager"},
                {"value": "bob@example.com", "type": "assistant"}
            ],
            "externalIds": [
                {"value": "701984", "type": "organization"},
                {"value": "B-7", "type": "custom", "customType": "badge"}
            ],
            "customSchemas": {
                "HR": {
                    "costCenter": "4130",
                    "level": 7,
                    "skills": [{"type": "work", "value": "rust"}, {"type": "work", "value": "sql"}]
                }
            }
        })
    }

    #[rstest]
    #[case::custom_schema_field("customSchemas.HR.costCenter", &["4130"])]
    #[case::custom_schema_in_any_case("customschemas.hr.COSTCENTER", &["4130"])]
    #[case::custom_schema_number("customSchemas.HR.level", &["7"])]
    #[case::multi_valued_custom_field("customSchemas.HR.skills.value", &["rust", "sql"])]
    #[case::primary_organization("organizations[primary eq true].costCenter", &["4130"])]
    #[case::every_organization("organizations.costCenter", &["3100", "4130"])]
    #[case::manager_relation(r#"relations[type eq "manager"].value"#, &["grace@example.com"])]
    #[case::organization_external_id(r#"externalIds[type eq "organization"].value"#, &["701984"])]
    #[case::no_match(r#"relations[type eq "spouse"].value"#, &[])]
    #[case::unknown_schema("customSchemas.Payroll.grade", &[])]
    fn google_sources_read_the_user_resource(#[case] source: &str, #[case] want: &[&str]) {
        assert_eq!(read(SourceKind::Google, source, &google_user()), want);
    }

    /// An Okta user with standard and custom profile properties.
    fn okta_user() -> Value {
        json!({
            "id": "00ub0oNGTSWTBKOLGLNR",
            "status": "ACTIVE",
            "created": "2013-06-24T16:39:18.000Z",
            "profile": {
                "login": "ada@example.com",
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "department": "Engineering",
                "costCenter": "4130",
                "division": "Research",
                "employeeNumber": "701984",
                "isContractor": false,
                "level": 7,
                "appRoles": ["Admin", "Billing"]
            },
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": "https://example.okta.com/api/v1/users/00ub0oNGTSWTBKOLGLNR"}}
        })
    }

    #[rstest]
    #[case::profile_property("costCenter", &["4130"])]
    #[case::another_property("division", &["Research"])]
    #[case::in_any_case("COSTCENTER", &["4130"])]
    #[case::boolean("isContractor", &["false"])]
    #[case::number("level", &["7"])]
    #[case::array_property("appRoles", &["Admin", "Billing"])]
    #[case::not_the_user_object("status", &[])]
    #[case::not_the_user_id("id", &[])]
    fn okta_sources_read_the_profile(#[case] source: &str, #[case] want: &[&str]) {
        assert_eq!(read(SourceKind::Okta, source, &okta_user()), want);
    }

    #[test]
    fn an_okta_user_without_a_profile_gives_only_defaults() {
        let m = mapping(
            SourceKind::Okta,
            &[Rule {
                default: Some("none".into()),
                ..rule("costCenter", "custom.cost_center")
            }],
        );
        let got = m.evaluate(&json!({"id": "00u1", "costCenter": "top-level"}));
        assert_eq!(got.custom["cost_center"], json!("none"));
    }

    #[rstest]
    #[case::string_matches_number(r#"items[k eq "1"].v"#, &["num"])]
    #[case::number_matches_number("items[k eq 1].v", &["num"])]
    #[case::number_matches_float("items[k eq 1.0].v", &["num"])]
    #[case::number_matches_its_text("items[k eq 2].v", &["text"])]
    #[case::bool_matches_a_boolean_string("items[b eq true].v", &["num", "text"])]
    #[case::false_matches("items[b eq false].v", &["bool"])]
    #[case::unicode_without_case(r#"items[k eq "ÉTÉ"].v"#, &["accent"])]
    #[case::escaped_string(r#"items[k eq "a\"b"].v"#, &["quote"])]
    #[case::colon_and_dot_in_a_value(r#"items[k eq "a:b.c"].v"#, &["colon"])]
    #[case::multi_valued_sub_attribute(r#"items[tags eq "red"].v"#, &["bool"])]
    #[case::lone_object_is_one_element(r#"single[k eq "x"].v"#, &["lone"])]
    #[case::filter_on_a_scalar_gives_nothing(r#"scalar[k eq "x"].v"#, &[])]
    fn value_filters_compare_as_scim_does(#[case] source: &str, #[case] want: &[&str]) {
        let doc = json!({
            "items": [
                {"k": 1, "b": true, "v": "num"},
                {"k": "2", "b": "TRUE", "v": "text"},
                {"k": null, "b": false, "tags": ["blue", "Red"], "v": "bool"},
                {"k": "été", "v": "accent"},
                {"k": "a\"b", "v": "quote"},
                {"k": "a:b.c", "v": "colon"}
            ],
            "single": {"k": "X", "v": "lone"},
            "scalar": "x"
        });
        assert_eq!(read(SourceKind::Graph, source, &doc), want);
    }

    #[test]
    fn an_exact_name_wins_over_one_differing_by_case() {
        let doc = json!({"costcenter": "lower", "costCenter": "exact", "COSTCENTER": "upper"});
        assert_eq!(read(SourceKind::Graph, "costCenter", &doc), ["exact"]);
        // Without an exact one, the least name in byte order: "COSTCENTER".
        assert_eq!(read(SourceKind::Graph, "CostCenter", &doc), ["upper"]);
    }

    struct Flags {
        trim: bool,
        lowercase: bool,
        first: bool,
    }
    const NONE: Flags = Flags {
        trim: false,
        lowercase: false,
        first: false,
    };

    #[rstest]
    #[case::as_they_are(NONE, None, None, &["  Eng  ", "SALES", "Eng"])]
    #[case::trim(Flags { trim: true, ..NONE }, None, None, &["Eng", "SALES", "Eng"])]
    #[case::lowercase(Flags { lowercase: true, ..NONE }, None, None, &["  eng  ", "sales", "eng"])]
    #[case::trim_then_lowercase(Flags { trim: true, lowercase: true, ..NONE }, None, None, &["eng", "sales", "eng"])]
    #[case::first(Flags { first: true, ..NONE }, None, None, &["  Eng  "])]
    #[case::first_then_trim(Flags { first: true, trim: true, ..NONE }, None, None, &["Eng"])]
    #[case::map_after_trim_and_lowercase(
        Flags { trim: true, lowercase: true, ..NONE },
        map(&[("eng", "engineering")]), None, &["engineering", "sales", "engineering"]
    )]
    #[case::map_is_exact(NONE, map(&[("Eng", "engineering")]), None, &["  Eng  ", "SALES", "engineering"])]
    #[case::unmapped_values_pass(Flags { trim: true, ..NONE }, map(&[("SALES", "sales")]), None, &["Eng", "sales", "Eng"])]
    #[case::mapping_to_empty_drops(Flags { trim: true, ..NONE }, map(&[("Eng", "")]), None, &["SALES"])]
    #[case::default_unused_when_a_value_remains(NONE, None, Some("none"), &["  Eng  ", "SALES", "Eng"])]
    #[case::default_when_every_value_is_dropped(
        Flags { trim: true, ..NONE }, map(&[("Eng", ""), ("SALES", "")]), Some("none"), &["none"]
    )]
    fn transforms_apply_in_a_fixed_order(
        #[case] flags: Flags,
        #[case] map: Option<BTreeMap<String, String>>,
        #[case] default: Option<&str>,
        #[case] want: &[&str],
    ) {
        let doc = json!({"dept": ["  Eng  ", "SALES", "Eng"]});
        let m = mapping(
            SourceKind::Graph,
            &[Rule {
                trim: flags.trim,
                lowercase: flags.lowercase,
                first: flags.first,
                map,
                default: default.map(Into::into),
                ..rule("dept", "custom.dept")
            }],
        );
        assert_eq!(as_list(m.evaluate(&doc).custom.get("dept")), want);
    }

    #[test]
    fn first_keeps_the_first_value_even_when_the_transforms_then_drop_it() {
        let m = mapping(
            SourceKind::Graph,
            &[Rule {
                first: true,
                trim: true,
                default: Some("unknown".into()),
                ..rule("dept", "department")
            }],
        );
        let got = m.evaluate(&json!({"dept": ["   ", "Sales"]}));
        assert_eq!(
            got.fields[&StandardField::Department].as_deref(),
            Some("unknown")
        );
    }

    #[test]
    fn empty_strings_nulls_and_objects_give_no_value() {
        let doc = json!({"v": ["", null, {"a": "b"}, [], "kept"]});
        assert_eq!(read(SourceKind::Graph, "v", &doc), ["kept"]);
    }

    #[test]
    fn a_value_past_the_cap_is_dropped_not_cut() {
        let at = "a".repeat(TEXT_BYTES);
        let past = "b".repeat(TEXT_BYTES + 1);
        let doc = json!({"v": [past, at]});
        assert_eq!(read(SourceKind::Graph, "v", &doc), [at]);

        // An avatar's URL keeps the URI cap.
        let url = format!("https://example.com/{}", "p".repeat(TEXT_BYTES));
        let m = mapping(SourceKind::Graph, &[rule("photo", "avatar_url")]);
        let got = m.evaluate(&json!({"photo": url}));
        assert_eq!(
            got.fields[&StandardField::AvatarUrl].as_deref(),
            Some(url.as_str())
        );
        let too_long = format!("https://example.com/{}", "p".repeat(REFERENCE_BYTES));
        let got = m.evaluate(&json!({"photo": too_long}));
        assert_eq!(got.fields[&StandardField::AvatarUrl], None);
    }

    #[test]
    fn at_most_a_hundred_values_are_kept() {
        let many: Vec<String> = (0..150).map(|i| format!("v{i}")).collect();
        let got = read(SourceKind::Graph, "v", &json!({ "v": many }));
        assert_eq!(got.len(), MAX_VALUES);
        assert_eq!(got[..], many[..MAX_VALUES]);
    }

    #[test]
    fn control_characters_a_provider_sends_are_stripped() {
        let doc = json!({"v": "Eng\u{0}ineer\u{1b}ing\tdept"});
        assert_eq!(read(SourceKind::Google, "v", &doc), ["Engineering\tdept"]);
    }

    #[test]
    fn one_value_is_a_string_and_several_a_list() {
        let m = mapping(
            SourceKind::Scim,
            &[
                rule("title", "custom.one"),
                rule("emails.value", "custom.several"),
                rule("nickName", "custom.absent"),
            ],
        );
        let got = m.evaluate(&entra_scim_user());
        assert_eq!(got.custom["one"], json!("Principal Engineer"));
        assert_eq!(
            got.custom["several"],
            json!(["ada@contoso.com", "ada@home.example"])
        );
        assert!(!got.custom.contains_key("absent"), "no value: no attribute");
    }

    #[test]
    fn a_standard_field_takes_the_first_value_and_is_empty_without_one() {
        let m = mapping(
            SourceKind::Scim,
            &[
                rule("emails.value", "email"),
                rule("nickName", "display_name"),
                rule(&format!("{ENT}:costCenter"), "department"),
            ],
        );
        let got = m.evaluate(&entra_scim_user());
        assert_eq!(
            got.fields,
            BTreeMap::from([
                (StandardField::Email, Some("ada@contoso.com".into())),
                (StandardField::DisplayName, None),
                (StandardField::Department, Some("4130".into())),
            ])
        );
        assert_eq!(got.role, None);
    }

    #[rstest]
    #[case::the_first_rule_wins(json!({"a": "A", "b": "B"}), Some("A"))]
    #[case::the_next_when_the_first_gives_nothing(json!({"b": "B", "c": "C"}), Some("B"))]
    #[case::an_empty_value_falls_through(json!({"a": "  ", "b": "B"}), Some("B"))]
    #[case::a_default_ends_the_chain(json!({"c": "C"}), Some("fallback"))]
    fn rules_naming_one_target_are_a_fallback_chain(
        #[case] doc: Value,
        #[case] want: Option<&str>,
    ) {
        let rules = [
            Rule {
                trim: true,
                ..rule("a", "department")
            },
            rule("b", "department"),
            Rule {
                default: Some("fallback".into()),
                ..rule("missing", "department")
            },
            rule("c", "department"),
        ];
        let got = mapping(SourceKind::Okta, &rules).evaluate(&json!({ "profile": doc }));
        assert_eq!(got.fields[&StandardField::Department].as_deref(), want);
    }

    #[test]
    fn a_chain_with_nothing_leaves_a_field_empty_and_a_custom_attribute_absent() {
        let rules = [
            rule("a", "title"),
            rule("b", "title"),
            rule("a", "custom.grade"),
            rule("b", "custom.grade"),
        ];
        let got = mapping(SourceKind::Graph, &rules).evaluate(&json!({"c": "C"}));
        assert_eq!(got.fields, BTreeMap::from([(StandardField::Title, None)]));
        assert!(got.custom.is_empty());

        let got = mapping(SourceKind::Graph, &rules).evaluate(&json!({"b": ["x", "y"]}));
        assert_eq!(
            got.custom["grade"],
            json!(["x", "y"]),
            "the second rule's whole value"
        );
    }

    #[rstest]
    #[case::the_first_mapped_value(json!(["Admin", "Auditor"]), None, Some("admin"))]
    #[case::an_unmapped_value_is_skipped(json!(["Owner", "Auditor"]), None, Some("viewer"))]
    #[case::never_directory_text(json!(["Owner"]), None, None)]
    #[case::the_default_when_nothing_maps(json!(["Owner"]), Some("member"), Some("member"))]
    #[case::absent_source(json!([]), None, None)]
    fn a_role_comes_only_through_the_map(
        #[case] roles: Value,
        #[case] default: Option<&str>,
        #[case] want: Option<&str>,
    ) {
        let m = mapping(
            SourceKind::Scim,
            &[Rule {
                lowercase: true,
                map: map(&[("admin", "admin"), ("auditor", "viewer")]),
                default: default.map(Into::into),
                ..rule("roles.value", "role")
            }],
        );
        let doc = json!({
            "roles": roles.as_array().unwrap().iter().map(|r| json!({"value": r})).collect::<Vec<_>>()
        });
        let got = m.evaluate(&doc);
        assert_eq!(got.role.as_deref(), want);
        assert!(got.fields.is_empty() && got.custom.is_empty());
    }

    #[test]
    fn an_okta_profile_property_gives_a_role_with_a_fallback() {
        let m = mapping(
            SourceKind::Okta,
            &[
                Rule {
                    map: map(&[("Billing", "finance")]),
                    ..rule("appRoles", "role")
                },
                Rule {
                    map: map(&[("Research", "researcher")]),
                    ..rule("division", "role")
                },
            ],
        );
        assert_eq!(m.evaluate(&okta_user()).role.as_deref(), Some("finance"));
    }

    #[test]
    fn each_kind_maps_a_realistic_user() {
        let scim = mapping(
            SourceKind::Scim,
            &[
                rule(&format!("{ENT}:costCenter"), "custom.cost_center"),
                rule("urn:acme:2.0:User:badge", "custom.badge"),
                rule(r#"emails[type eq "work"].value"#, "email"),
                rule(&format!("{ENT}:manager.value"), "manager"),
            ],
        )
        .evaluate(&entra_scim_user());
        assert_eq!(scim.custom["cost_center"], json!("4130"));
        assert_eq!(scim.custom["badge"], json!("B-7"));
        assert_eq!(
            scim.fields[&StandardField::Email].as_deref(),
            Some("ada@contoso.com")
        );

        let graph = mapping(
            SourceKind::Graph,
            &[
                rule(
                    "onPremisesExtensionAttributes.extensionAttribute3",
                    "custom.cost_center",
                ),
                rule("officeLocation", "custom.office"),
                rule("employeeOrgData.division", "department"),
            ],
        )
        .evaluate(&graph_user());
        assert_eq!(graph.custom["cost_center"], json!("CC-4130"));
        assert_eq!(graph.custom["office"], json!("Building 40"));
        assert_eq!(
            graph.fields[&StandardField::Department].as_deref(),
            Some("Research")
        );

        let google = mapping(
            SourceKind::Google,
            &[
                rule("customSchemas.HR.costCenter", "custom.cost_center"),
                rule("organizations[primary eq true].title", "title"),
                rule(r#"relations[type eq "manager"].value"#, "manager"),
            ],
        )
        .evaluate(&google_user());
        assert_eq!(google.custom["cost_center"], json!("4130"));
        assert_eq!(
            google.fields[&StandardField::Title].as_deref(),
            Some("Principal Engineer")
        );
        assert_eq!(
            google.fields[&StandardField::Manager].as_deref(),
            Some("grace@example.com")
        );

        let okta = mapping(
            SourceKind::Okta,
            &[
                rule("costCenter", "custom.cost_center"),
                Rule {
                    lowercase: true,
                    ..rule("division", "custom.division")
                },
            ],
        )
        .evaluate(&okta_user());
        assert_eq!(okta.custom["cost_center"], json!("4130"));
        assert_eq!(okta.custom["division"], json!("research"));
    }

    #[test]
    fn no_rules_give_nothing() {
        let m = mapping(SourceKind::Scim, &[]);
        assert!(m.is_empty());
        assert_eq!(m.evaluate(&entra_scim_user()), Mapped::default());
        assert!(!mapping(SourceKind::Scim, &[rule("title", "title")]).is_empty());
    }

    #[test]
    fn graph_selects_each_top_level_property_once() {
        let m = mapping(
            SourceKind::Graph,
            &[
                rule(
                    "onPremisesExtensionAttributes.extensionAttribute3",
                    "custom.a",
                ),
                rule("extension_3f1c0a_costCenter", "custom.b"),
                rule("employeeOrgData.costCenter", "custom.c"),
                rule("officeLocation", "custom.d"),
                rule(
                    "onpremisesextensionattributes.extensionAttribute4",
                    "custom.e",
                ),
                rule("OfficeLocation", "title"),
            ],
        );
        assert_eq!(
            m.top_level_properties(),
            [
                "onPremisesExtensionAttributes",
                "extension_3f1c0a_costCenter",
                "employeeOrgData",
                "officeLocation"
            ]
        );
        assert!(
            m.custom_schemas().is_empty(),
            "only Google has custom schemas"
        );
    }

    #[test]
    fn a_scim_extension_attribute_reads_its_urn_key() {
        let m = mapping(
            SourceKind::Scim,
            &[
                rule(&format!("{ENT}:costCenter"), "custom.a"),
                rule(&format!("{ENT}:division"), "custom.b"),
                rule("urn:ietf:params:scim:schemas:core:2.0:User:title", "title"),
                rule("name.givenName", "given_name"),
            ],
        );
        assert_eq!(m.top_level_properties(), [ENT, "title", "name"]);
        assert_eq!(
            m.targets_reading(&ENT.to_uppercase()),
            [Target::Custom("a".into()), Target::Custom("b".into())]
        );
    }

    #[test]
    fn google_names_the_custom_schemas_the_rules_read() {
        let m = mapping(
            SourceKind::Google,
            &[
                rule("customSchemas.HR.costCenter", "custom.a"),
                rule("organizations[primary eq true].costCenter", "custom.b"),
                rule("customSchemas.Payroll.grade", "custom.c"),
                rule("customSchemas.HR.level", "custom.d"),
            ],
        );
        assert_eq!(m.custom_schemas(), ["HR", "Payroll"]);
        assert_eq!(m.top_level_properties(), ["customSchemas", "organizations"]);
    }

    #[test]
    fn okta_names_the_profile_properties_the_rules_read() {
        let m = mapping(
            SourceKind::Okta,
            &[
                rule("costCenter", "custom.a"),
                rule("division", "department"),
            ],
        );
        assert_eq!(m.top_level_properties(), ["costCenter", "division"]);
    }

    #[test]
    fn targets_reading_and_carried_say_what_a_partial_item_decides() {
        let m = mapping(
            SourceKind::Graph,
            &[
                rule("employeeOrgData.costCenter", "department"),
                rule("department", "department"),
                rule("employeeOrgData.division", "custom.division"),
                rule("jobTitle", "title"),
                Rule {
                    map: map(&[("x", "admin")]),
                    ..rule("extension_3f1c0a_role", "role")
                },
            ],
        );
        assert_eq!(
            m.targets_reading("EmployeeOrgData"),
            [
                Target::Field(StandardField::Department),
                Target::Custom("division".into())
            ]
        );
        assert!(m.targets_reading("mail").is_empty());
        let carried = m.targets_carried(|p| ["employeeOrgData", "jobTitle"].contains(&p));
        assert_eq!(
            carried,
            [
                Target::Custom("division".into()),
                Target::Field(StandardField::Title)
            ],
            "department also reads `department`, which the item lacks"
        );
        assert_eq!(
            m.targets_carried(|_| true),
            [
                Target::Field(StandardField::Department),
                Target::Custom("division".into()),
                Target::Field(StandardField::Title),
                Target::Role
            ]
        );
    }

    #[test]
    fn targets_parse_and_print_as_written() {
        for field in StandardField::ALL {
            let target = Target::parse(field.name()).unwrap();
            assert_eq!(target, Target::Field(field));
            assert_eq!(target.to_string(), field.name());
        }
        assert_eq!(Target::parse("role").unwrap().to_string(), "role");
        let custom = Target::parse("custom.cost_center_2").unwrap();
        assert_eq!(custom, Target::Custom("cost_center_2".into()));
        assert_eq!(custom.to_string(), "custom.cost_center_2");
    }

    fn refusal(kind: SourceKind, rules: &[Rule]) -> RuleError {
        match Mapping::compile(kind, rules) {
            Ok(_) => panic!("refused: {rules:?}"),
            Err(e) => e,
        }
    }

    #[rstest]
    #[case::unknown_target(
        rule("title", "job_title"),
        "rule 2: \"job_title\" is not a target; a target is one of department, title, given_name, \
         family_name, display_name, avatar_url, employee_number, manager, email, role, or \
         custom.<name> for a custom attribute"
    )]
    #[case::target_in_the_wrong_case(rule("title", "Title"), "rule 2: \"Title\" is not a target")]
    #[case::custom_name_with_capitals(
        rule("title", "custom.CostCenter"),
        "rule 2: \"CostCenter\" is not a custom attribute's name: a lowercase letter, then at most \
         62 lowercase letters, digits or underscores (for example custom.cost_center)"
    )]
    #[case::custom_name_with_a_dash(
        rule("title", "custom.cost-center"),
        "\"cost-center\" is not a custom attribute's name"
    )]
    #[case::custom_name_starting_with_a_digit(
        rule("title", "custom.1st"),
        "\"1st\" is not a custom"
    )]
    #[case::custom_name_empty(rule("title", "custom."), "\"\" is not a custom attribute's name")]
    #[case::custom_name_too_long(rule("title", &format!("custom.{}", "a".repeat(64))), "is not a custom attribute's name")]
    #[case::empty_source(
        rule("", "title"),
        "rule 2: the source is empty; name the attribute to read"
    )]
    #[case::source_too_long(
        rule(&"a".repeat(513), "title"),
        "rule 2: the source is 513 bytes long; at most 512"
    )]
    #[case::unquoted_filter_value(
        rule("emails[type eq work].value", "email"),
        "rule 2: the source \"emails[type eq work].value\" does not parse at character 16: \
         expected a value to compare with: a \"double-quoted string\", true, false or a number"
    )]
    #[case::operator_other_than_eq(
        rule(r#"emails[type co "w"].value"#, "email"),
        "does not parse at character 13: expected `eq` (a value filter here compares with eq only)"
    )]
    #[case::unclosed_filter(
        rule(r#"emails[type eq "w".value"#, "email"),
        "does not parse at character 19: expected `]` closing the value filter"
    )]
    #[case::unterminated_string(
        rule(r#"emails[type eq "w].value"#, "email"),
        "does not parse at character 16: expected a closing `\"` ending the string"
    )]
    #[case::bad_escape(
        rule(r#"emails[type eq "\q"].value"#, "email"),
        "at character 16: expected a string with JSON escapes only"
    )]
    #[case::bad_number(
        rule("emails[n eq 1.2.3].value", "email"),
        "at character 13: expected a number as JSON writes it"
    )]
    #[case::two_filters(
        rule(r#"emails[type eq "w"][primary eq true].value"#, "email"),
        "at character 20: expected `.` and the next attribute, `[` and a value filter, or the end"
    )]
    #[case::trailing_dot(
        rule("name.", "given_name"),
        "at character 6: expected an attribute name"
    )]
    #[case::leading_digit(
        rule("1name", "given_name"),
        "at character 1: expected an attribute name"
    )]
    #[case::space_in_a_name(rule("given name", "given_name"), "at character 6: expected `.`")]
    #[case::non_ascii_name(rule("prénom", "given_name"), "at character 3: expected `.`")]
    #[case::urn_without_attribute(
        rule("urn:acme:2.0:User:", "custom.badge"),
        "at character 19: expected an attribute name"
    )]
    #[case::urn_too_short(
        rule("urn:badge", "custom.badge"),
        "at character 4: expected a schema URN"
    )]
    #[case::urn_with_an_empty_part(
        rule("urn::x:badge", "custom.badge"),
        "at character 5: expected a schema URN"
    )]
    #[case::urn_with_a_space(
        rule("urn:ac me:2.0:User:badge", "custom.badge"),
        "at character 7: expected a schema URN"
    )]
    #[case::role_without_map(
        rule("roles.value", "role"),
        "rule 2: a role rule needs a map from the directory's values to the application's roles; \
         a role is never taken from directory text as it is"
    )]
    #[case::map_too_large(
        Rule { map: Some((0..257).map(|i| (i.to_string(), "x".to_string())).collect()), ..rule("title", "title") },
        "rule 2: the map has 257 entries; at most 256"
    )]
    #[case::map_value_too_long(
        Rule { map: map(&[("a", &"v".repeat(TEXT_BYTES + 1))]), ..rule("title", "title") },
        "rule 2: the map's value \"vvvv"
    )]
    #[case::map_key_never_matching_lowercase(
        Rule { lowercase: true, map: map(&[("Eng", "engineering")]), ..rule("title", "department") },
        "rule 2: the map's key \"Eng\" can never match: the rule lowercases each value before the map compares it"
    )]
    #[case::map_key_never_matching_trim(
        Rule { trim: true, map: map(&[(" eng", "engineering")]), ..rule("title", "department") },
        "the map's key \" eng\" can never match: the rule trims each value"
    )]
    #[case::control_in_a_map_value(
        Rule { map: map(&[("a", "b\u{0}")]), ..rule("title", "title") },
        "rule 2: a map value holds the control character U+0000 (at character 1)"
    )]
    #[case::empty_default(
        Rule { default: Some(String::new()), ..rule("title", "title") },
        "rule 2: the default is empty; leave the default out for no value"
    )]
    #[case::default_too_long(
        Rule { default: Some("d".repeat(TEXT_BYTES + 1)), ..rule("title", "title") },
        "rule 2: the default is 1025 bytes long; at most 1024"
    )]
    #[case::control_in_the_default(
        Rule { default: Some("\u{7}".into()), ..rule("title", "title") },
        "rule 2: the default holds the control character U+0007"
    )]
    fn bad_rules_are_refused_with_a_reason(#[case] bad: Rule, #[case] message: &str) {
        let err = refusal(SourceKind::Scim, &[rule("title", "title"), bad]);
        let text = err.to_string();
        assert!(
            text.contains(message),
            "{text}\n  does not contain\n{message}"
        );
        assert!(matches!(err, RuleError::Rule { rule: 2, .. }), "{err:?}");
    }

    #[rstest]
    #[case::graph(
        SourceKind::Graph,
        "only a SCIM directory's sources have; name the Graph user property itself"
    )]
    #[case::google(SourceKind::Google, "name the Google user field itself")]
    #[case::okta(SourceKind::Okta, "name the Okta profile property itself")]
    fn a_urn_prefix_is_refused_outside_scim(#[case] kind: SourceKind, #[case] message: &str) {
        let source = format!("{ENT}:costCenter");
        let err = refusal(kind, &[rule(&source, "custom.cost_center")]);
        assert!(
            matches!(
                err,
                RuleError::Rule {
                    rule: 1,
                    reason: Reason::UrnOutsideScim { .. }
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(message), "{err}");
    }

    #[rstest]
    #[case::schema_only("customSchemas.HR")]
    #[case::nothing("customSchemas")]
    fn a_google_custom_schema_without_a_field_is_refused(#[case] source: &str) {
        let err = refusal(SourceKind::Google, &[rule(source, "custom.hr")]);
        assert!(
            err.to_string()
                .contains("a Google custom schema field is read as customSchemas.<schema>.<field>"),
            "{err}"
        );
        // Elsewhere `customSchemas` is an ordinary name.
        assert!(Mapping::compile(SourceKind::Okta, &[rule(source, "custom.hr")]).is_ok());
    }

    #[test]
    fn more_than_sixty_four_rules_are_refused() {
        let rules: Vec<Rule> = (0..65)
            .map(|i| rule("title", &format!("custom.a{i}")))
            .collect();
        let err = refusal(SourceKind::Scim, &rules);
        assert_eq!(err, RuleError::TooMany { count: 65, max: 64 });
        assert_eq!(
            err.to_string(),
            "a mapping holds at most 64 rules; this one has 65"
        );
        assert!(Mapping::compile(SourceKind::Scim, &rules[..64]).is_ok());
    }

    #[test]
    fn limits_are_inclusive() {
        let ok = [
            rule(&"a".repeat(MAX_SOURCE_BYTES), "title"),
            rule("title", &format!("custom.{}", "a".repeat(63))),
            Rule {
                map: Some((0..256).map(|i| (i.to_string(), "x".to_string())).collect()),
                default: Some("d".repeat(TEXT_BYTES)),
                ..rule("title", "title")
            },
            Rule {
                default: Some("u".repeat(REFERENCE_BYTES)),
                ..rule("photo", "avatar_url")
            },
        ];
        if let Err(e) = Mapping::compile(SourceKind::Graph, &ok) {
            panic!("{e}");
        }
    }

    #[test]
    fn rules_read_and_write_as_the_policy_stores_them() {
        let raw = r#"{"source":"title","target":"custom.t"}"#;
        let r: Rule = serde_json::from_str(raw).unwrap();
        assert_eq!(r, rule("title", "custom.t"));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            raw,
            "defaults are left out"
        );

        let full = json!({
            "source": "roles.value", "target": "role", "lowercase": true, "trim": true,
            "first": true, "map": {"admin": "admin"}, "default": "member"
        });
        let r: Rule = serde_json::from_value(full.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), full);

        let err =
            serde_json::from_value::<Rule>(json!({"source": "a", "target": "b", "upper": true}))
                .unwrap_err();
        assert!(err.to_string().contains("unknown field `upper`"), "{err}");
    }

    #[rstest]
    #[case::a_string(json!("Eng=engineering"))]
    #[case::a_list(json!([["Eng", "engineering"]]))]
    #[case::a_number(json!(3))]
    fn a_map_that_is_not_a_map_is_refused_when_the_policy_is_read(#[case] value: Value) {
        let raw = json!({"source": "a", "target": "department", "map": value});
        let err = serde_json::from_value::<Rule>(raw).unwrap_err();
        assert!(err.to_string().contains("expected a map"), "{err}");
    }

    #[test]
    fn a_map_value_that_is_not_a_string_is_refused_when_the_policy_is_read() {
        let raw = json!({"source": "a", "target": "department", "map": {"Eng": 1}});
        assert!(serde_json::from_value::<Rule>(raw).is_err());
    }

    // Property tests: documents drawn from names that differ only by case
    // (`ab`, `Ab`, `aB`, which sources spell `AB`), so that member order
    // would decide which one a rule reads if the lookup let it.
    const NAMES: &[&str] = &[
        "a",
        "A",
        "b",
        "ab",
        "Ab",
        "aB",
        "type",
        "Type",
        "tYpe",
        "value",
        "primary",
        "profile",
        "urn:x:User",
        "customSchemas",
        "hr",
    ];

    fn json_doc() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop::num::f64::NORMAL.prop_map(|f| json!(f)),
            "[ aAbB\u{0}\t:é]{0,6}".prop_map(Value::String),
            prop::sample::select(NAMES).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(5, 96, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(NAMES), inner), 0..6).prop_map(
                    |members| Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect()
                    )
                ),
            ]
        })
    }

    const SOURCES: &[&str] = &[
        "a",
        "A.b",
        "a.B.value",
        "a[type eq \"a\"].value",
        "a[TYPE eq \"B\"].b",
        "b[primary eq true].a",
        "b[primary eq 1].value",
        "urn:x:User:a",
        "urn:x:User:a[type eq \"A\"].b",
        "urn:ietf:params:scim:schemas:core:2.0:User:a.b",
        "customSchemas.hr.a",
        "profile.a",
        "value",
        "AB",
        "AB.AB",
        "ab[TYPE eq \"ab\"].AB",
        "AB[TYPE eq \"aB\"].value",
    ];
    const TARGETS: &[&str] = &[
        "department",
        "title",
        "email",
        "role",
        "custom.x",
        "custom.y",
    ];

    fn arbitrary_rule() -> impl Strategy<Value = Rule> {
        (
            prop::sample::select(SOURCES),
            prop::sample::select(TARGETS),
            any::<(bool, bool, bool)>(),
            any::<bool>(),
            prop::option::of(prop::sample::select(&["d", "e"][..])),
        )
            .prop_map(
                |(source, target, (lowercase, trim, first), with_map, default)| {
                    let map = (with_map || target == "role")
                        .then(|| map(&[("a", "admin"), ("b", "")]))
                        .flatten();
                    Rule {
                        source: source.into(),
                        target: target.into(),
                        lowercase,
                        trim,
                        first,
                        map,
                        default: default.map(Into::into),
                    }
                },
            )
    }

    fn kind() -> impl Strategy<Value = SourceKind> {
        prop::sample::select(
            &[
                SourceKind::Scim,
                SourceKind::Graph,
                SourceKind::Google,
                SourceKind::Okta,
            ][..],
        )
    }

    /// The same document with every object's members in reverse order.
    fn reversed(v: &Value) -> Value {
        match v {
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn evaluation_never_depends_on_the_order_of_object_members(
            kind in kind(),
            rules in prop::collection::vec(arbitrary_rule(), 1..8),
            doc in json_doc(),
        ) {
            let m = match Mapping::compile(kind, &rules) {
                Ok(m) => m,
                Err(e) => {
                    // Only the URN sources outside SCIM are refused.
                    prop_assert!(
                        matches!(e, RuleError::Rule { reason: Reason::UrnOutsideScim { .. }, .. }),
                        "{}", e
                    );
                    return Ok(());
                }
            };
            let wrapped = json!({"profile": doc.clone(), "a": doc.clone()});
            for doc in [doc, wrapped] {
                let got = m.evaluate(&doc);
                prop_assert_eq!(&got, &m.evaluate(&reversed(&doc)));
                for value in got.custom.values() {
                    let n = as_list(Some(value)).len();
                    prop_assert!((1..=MAX_VALUES).contains(&n));
                }
                if let Some(role) = &got.role {
                    prop_assert!(["admin", "d", "e"].contains(&role.as_str()), "role {}", role);
                }
            }
        }

        #[test]
        fn compiling_and_evaluating_any_source_never_panics(
            kind in kind(),
            source in "(urn:|URN:)?[a-zA-Z0-9_$.:\\[\\]\" =\\\\-]{0,40}",
            doc in json_doc(),
        ) {
            if let Ok(m) = Mapping::compile(kind, &[rule(&source, "custom.x")]) {
                let _ = m.evaluate(&doc);
                let _ = m.top_level_properties();
                let _ = m.custom_schemas();
            }
        }

        #[test]
        fn any_text_is_refused_or_compiled_without_panicking(
            kind in kind(),
            source in any::<String>(),
            target in any::<String>(),
        ) {
            let _ = Mapping::compile(kind, &[rule(&source, &target)]);
        }
    }

    #[test]
    fn deeply_nested_arrays_are_not_followed_past_the_bound() {
        let mut doc = json!("deep");
        for _ in 0..200 {
            doc = json!([doc]);
        }
        assert!(read(SourceKind::Graph, "v", &json!({ "v": doc })).is_empty());
        let mut shallow = json!("kept");
        for _ in 0..10 {
            shallow = json!([shallow]);
        }
        assert_eq!(
            read(SourceKind::Graph, "v", &json!({ "v": shallow })),
            ["kept"]
        );
    }
}
