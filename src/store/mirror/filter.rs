//! `domain::filter::Filter` → a SQL condition, on SQLite and PostgreSQL.
//!
//! Attributes with a column (userName, externalId, active, meta dates, …) compare
//! on the column and its index; every other attribute compares inside the
//! canonical JSON (`json_extract` / `#>>`), and a multi-valued attribute becomes an
//! `EXISTS` over its elements (`json_each` / `jsonb_array_elements`); a
//! membership is a subquery on `directory_memberships` and its indexes. Attribute
//! names here come from the static schema registry, never from the client; client
//! values are always bound parameters.
//!
//! `and` / `or` chains become balanced trees, and `eq` alternatives of one
//! attribute one `IN (…)`: SQLite refuses an expression nested deeper than
//! 1,000 (SQLITE_MAX_EXPR_DEPTH), and a chain of 1,024 terms (the most the
//! SCIM layer accepts) written `a OR b OR …` parses as one 1,024 deep.

use sea_orm::DbBackend;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Query};

use crate::domain::filter::{AttrRef, Filter, Op, Related, Value, ValueKind};

/// How a canonical attribute is stored in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Text as sent; case-insensitive attributes compare through `LOWER`.
    Text,
    /// Text already folded by dirsync (`domain::names::fold`: userName, group displayName).
    Folded,
    Bool,
    /// Milliseconds since the epoch (meta.created, meta.lastModified).
    Millis,
}

/// A table the filter runs against: its name, its JSON column, the canonical
/// paths that have a column of their own, and how its rows take part in
/// memberships.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub data: Option<&'static str>,
    pub columns: &'static [(&'static [&'static str], &'static str, ColumnKind)],
    pub membership: Option<MembershipSide>,
}

/// A row's side of `directory_memberships`: the column holding the row's own
/// id, and the column holding the related resource's. Both directions have an
/// index: the primary key (group_id, member_id) and `directory_memberships_member`.
#[derive(Debug)]
pub struct MembershipSide {
    pub own: &'static str,
    pub related: &'static str,
}

const MEMBERSHIP_TABLE: &str = "directory_memberships";

pub const USERS: Table = Table {
    name: "directory_users",
    data: Some("data"),
    columns: &[
        (&["id"], "id", ColumnKind::Text),
        (&["userName"], "user_name_folded", ColumnKind::Folded),
        (&["externalId"], "external_id", ColumnKind::Text),
        (&["active"], "active", ColumnKind::Bool),
        (&["meta", "created"], "created_at", ColumnKind::Millis),
        (&["meta", "lastModified"], "updated_at", ColumnKind::Millis),
    ],
    membership: Some(MembershipSide {
        own: "member_id",
        related: "group_id",
    }),
};

pub const GROUPS: Table = Table {
    name: "directory_groups",
    data: Some("data"),
    columns: &[
        (&["id"], "id", ColumnKind::Text),
        (&["displayName"], "display_name_folded", ColumnKind::Folded),
        (&["externalId"], "external_id", ColumnKind::Text),
        (&["meta", "created"], "created_at", ColumnKind::Millis),
        (&["meta", "lastModified"], "updated_at", ColumnKind::Millis),
    ],
    membership: Some(MembershipSide {
        own: "group_id",
        related: "member_id",
    }),
};

/// Group members as rows: `value` is the member id, `type` User/Group.
pub const MEMBERSHIPS: Table = Table {
    name: "directory_memberships",
    data: None,
    columns: &[
        (&["value"], "member_id", ColumnKind::Text),
        (&["type"], "member_type", ColumnKind::Text),
    ],
    membership: None,
};

/// Where an attribute's value is read from.
enum Source {
    Column(&'static str, ColumnKind),
    /// A JSON text accessor expression (already rendered SQL, no parameters).
    Json(String),
    Missing,
}

pub struct Translator<'a> {
    backend: DbBackend,
    table: &'a Table,
}

impl<'a> Translator<'a> {
    pub fn new(backend: DbBackend, table: &'a Table) -> Self {
        Self { backend, table }
    }

    pub fn condition(&self, filter: &Filter) -> Expr {
        self.translate(filter, None)
    }

    /// The expression to `ORDER BY` for an attribute (lower-cased when the
    /// attribute is case-insensitive, so sorting agrees with comparison).
    ///
    /// `element_at` is the position in `attr.path` just after a multi-valued
    /// attribute: RFC 7644 §3.4.2.3 sorts those by their primary (or first)
    /// value, and dirsync keeps the primary element first.
    pub fn sort_key(&self, attr: &AttrRef, element_at: Option<usize>) -> Expr {
        let source = if let Some(at) = element_at {
            let mut path = attr.path.clone();
            path.insert(at.min(path.len()), "0".to_owned());
            self.json_source(&path, None)
        } else {
            self.source(attr, None)
        };
        match source {
            Source::Column(col, _) => self.column(col),
            Source::Json(sql) if attr.kind == ValueKind::String && !attr.case_exact => {
                Func::lower(Expr::cust(sql)).into()
            }
            Source::Json(sql) => Expr::cust(sql),
            Source::Missing => Expr::cust("NULL"),
        }
    }

    fn translate(&self, filter: &Filter, element: Option<&str>) -> Expr {
        match filter {
            Filter::True => Expr::cust("1 = 1"),
            Filter::False => Expr::cust("1 = 0"),
            Filter::And(items) => balanced(
                items.iter().map(|f| self.translate(f, element)).collect(),
                ExprTrait::and,
            )
            .unwrap_or_else(|| Expr::cust("1 = 1")),
            Filter::Or(items) => self.any_of(items, element),
            // RFC 7644 §3.4.2.2: `not` matches what the inner filter does not.
            // A comparison with an absent value is unknown in SQL, and NOT of
            // unknown is unknown, which would drop the resource: unknown counts
            // as false first.
            Filter::Not(inner) => {
                let inner = self.translate(inner, element);
                match self.backend {
                    DbBackend::Postgres => {
                        Expr::cust_with_exprs("NOT COALESCE($1, FALSE)", [inner])
                    }
                    _ => Expr::cust_with_exprs("NOT COALESCE(?, FALSE)", [inner]),
                }
            }
            Filter::Present(attr) => match self.source(attr, element) {
                Source::Column(col, _) => self.column(col).is_not_null(),
                Source::Json(sql) => Expr::cust(sql).is_not_null(),
                Source::Missing => Expr::cust("1 = 0"),
            },
            Filter::Compare(attr, op, value) => self.compare(attr, *op, value, element),
            Filter::Any(attr, inner) => self.any(attr, inner),
            Filter::Membership(related) => self.membership(related),
        }
    }

    /// An `or` of the items: the `eq` comparisons of one attribute with a
    /// string become one `IN (…)` (an index lookup on a column), the rest a
    /// balanced tree.
    fn any_of(&self, items: &[Filter], element: Option<&str>) -> Expr {
        let mut lists: Vec<(&AttrRef, Vec<&str>)> = Vec::new();
        let mut exprs = Vec::new();
        for item in items {
            match item {
                Filter::Compare(attr, Op::Eq, Value::Str(s)) => {
                    match lists.iter_mut().find(|(a, _)| *a == attr) {
                        Some((_, values)) => values.push(s),
                        None => lists.push((attr, vec![s])),
                    }
                }
                other => exprs.push(self.translate(other, element)),
            }
        }
        for (attr, values) in lists {
            exprs.push(match self.text_operand(attr, element) {
                Some((lhs, fold)) if values.len() > 1 => {
                    let values = values
                        .into_iter()
                        .map(|v| if fold { v.to_lowercase() } else { v.to_owned() });
                    lhs.is_in(values.collect::<Vec<_>>())
                }
                _ => balanced(
                    values
                        .into_iter()
                        .map(|v| self.compare(attr, Op::Eq, &Value::Str(v.to_owned()), element))
                        .collect(),
                    ExprTrait::or,
                )
                .unwrap_or_else(|| Expr::cust("1 = 0")),
            });
        }
        balanced(exprs, ExprTrait::or).unwrap_or_else(|| Expr::cust("1 = 0"))
    }

    /// What a string comparison on `attr` reads, and whether the value must be
    /// folded to lower case to compare with it (the attribute ignores case:
    /// its folded column, or `LOWER` of the text).
    fn text_operand(&self, attr: &AttrRef, element: Option<&str>) -> Option<(Expr, bool)> {
        let (lhs, case_exact) = match self.source(attr, element) {
            Source::Column(col, ColumnKind::Folded) => return Some((self.column(col), true)),
            Source::Column(col, ColumnKind::Text) => (self.column(col), attr.case_exact),
            Source::Json(sql) => (Expr::cust(sql), attr.case_exact),
            _ => return None,
        };
        Some(if case_exact {
            (lhs, false)
        } else {
            (Func::lower(lhs).into(), true)
        })
    }

    /// A membership through `directory_memberships`. Listed ids drive the
    /// lookup (`id IN (SELECT own … WHERE related IN (…))`, the related
    /// column's index); "any" probes the row's own id (`EXISTS`, the own
    /// column's index). The outer query is scoped to one directory and a
    /// membership never crosses directories (`groups::resolve_members`), so
    /// the subquery needs no scope of its own.
    fn membership(&self, related: &Related) -> Expr {
        let Some(side) = &self.table.membership else {
            return Expr::cust("1 = 0");
        };
        let own = Expr::col((Alias::new(MEMBERSHIP_TABLE), Alias::new(side.own)));
        match related {
            Related::Ids(ids) if ids.is_empty() => Expr::cust("1 = 0"),
            Related::Ids(ids) => self.column("id").in_subquery(
                Query::select()
                    .expr(own)
                    .from(Alias::new(MEMBERSHIP_TABLE))
                    .and_where(
                        Expr::col((Alias::new(MEMBERSHIP_TABLE), Alias::new(side.related)))
                            .is_in(ids.iter().cloned()),
                    )
                    .to_owned(),
            ),
            Related::Any => Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(Alias::new(MEMBERSHIP_TABLE))
                    .and_where(own.eq(self.column("id")))
                    .to_owned(),
            ),
        }
    }

    fn any(&self, attr: &AttrRef, inner: &Filter) -> Expr {
        let Some(data) = self.table.data else {
            return Expr::cust("1 = 0");
        };
        let inner = self.translate(inner, Some("je"));
        let column = format!("\"{}\".\"{}\"", self.table.name, data);
        match self.backend {
            DbBackend::Postgres => Expr::cust_with_exprs(
                format!(
                    "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({column} #> '{}') = 'array' THEN {column} #> '{}' ELSE '[]'::jsonb END) AS je WHERE $1)",
                    pg_path(&attr.path),
                    pg_path(&attr.path)
                ),
                [inner],
            ),
            _ => Expr::cust_with_exprs(
                format!(
                    "EXISTS (SELECT 1 FROM json_each({column}, '{}') AS je WHERE ?)",
                    sqlite_path(&attr.path)
                ),
                [inner],
            ),
        }
    }

    fn source(&self, attr: &AttrRef, element: Option<&str>) -> Source {
        if element.is_none()
            && let Some((_, col, kind)) = self.table.columns.iter().find(|(p, _, _)| attr.is(p))
        {
            return Source::Column(col, *kind);
        }
        self.json_source(&attr.path, element)
    }

    fn json_source(&self, path: &[String], element: Option<&str>) -> Source {
        let base = match (element, self.table.data) {
            (Some(alias), _) => format!("{alias}.value"),
            (None, Some(data)) => format!("\"{}\".\"{}\"", self.table.name, data),
            (None, None) => return Source::Missing,
        };
        // A multi-valued attribute of simple values puts its element at path [""].
        let path: Vec<&str> = path
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .collect();
        if path.is_empty() {
            return Source::Json(match self.backend {
                DbBackend::Postgres => format!("({base} #>> '{{}}')"),
                _ => base,
            });
        }
        Source::Json(match self.backend {
            DbBackend::Postgres => format!("({base} #>> '{}')", pg_path(&path)),
            _ => format!("json_extract({base}, '{}')", sqlite_path(&path)),
        })
    }

    fn column(&self, col: &'static str) -> Expr {
        Expr::col((Alias::new(self.table.name), Alias::new(col)))
    }

    fn compare(&self, attr: &AttrRef, op: Op, value: &Value, element: Option<&str>) -> Expr {
        let source = self.source(attr, element);
        if matches!(source, Source::Missing) {
            return Expr::cust(if op == Op::Ne { "1 = 1" } else { "1 = 0" });
        }
        if *value == Value::Null {
            // `attr eq null` asks for absence; `ne null` for presence.
            let present = self.translate(&Filter::Present(attr.clone()), element);
            return if op == Op::Ne { present } else { present.not() };
        }
        let (lhs, rhs): (Expr, Expr) = match (&source, value) {
            (Source::Column(col, ColumnKind::Millis), Value::DateTime(ms)) => {
                (self.column(col), Expr::val(*ms))
            }
            (Source::Column(col, ColumnKind::Bool), Value::Bool(b)) => {
                (self.column(col), Expr::val(*b))
            }
            (Source::Column(col, ColumnKind::Folded), Value::Str(s)) => {
                return self.compare_text(
                    self.column(col),
                    op,
                    &crate::domain::names::fold(s),
                    true,
                );
            }
            (Source::Column(col, ColumnKind::Text), Value::Str(s)) => {
                return self.compare_text(self.column(col), op, s, attr.case_exact);
            }
            (Source::Json(sql), Value::Str(s)) => {
                return self.compare_text(Expr::cust(sql.clone()), op, s, attr.case_exact);
            }
            (Source::Json(sql), Value::Bool(b)) => match self.backend {
                DbBackend::Postgres => (Expr::cust(sql.clone()), Expr::val(b.to_string())),
                _ => (Expr::cust(sql.clone()), Expr::val(i64::from(*b))),
            },
            (Source::Json(sql), Value::Number(n)) => match self.backend {
                DbBackend::Postgres => (
                    Expr::cust(format!("CAST({sql} AS DOUBLE PRECISION)")),
                    Expr::val(*n),
                ),
                _ => (Expr::cust(sql.clone()), Expr::val(*n)),
            },
            (Source::Json(sql), Value::DateTime(ms)) => {
                // dateTime values inside the JSON are RFC 3339 strings in UTC with
                // milliseconds, which sort lexically in time order.
                let text = chrono::DateTime::from_timestamp_millis(*ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default();
                return self.compare_text(Expr::cust(sql.clone()), op, &text, true);
            }
            // The SCIM layer checks value kinds against the schema; a mismatch
            // that still reaches here matches nothing rather than erroring.
            _ => return Expr::cust(if op == Op::Ne { "1 = 1" } else { "1 = 0" }),
        };
        match op {
            Op::Eq => lhs.eq(rhs),
            Op::Ne => lhs.clone().ne(rhs).or(lhs.is_null()),
            Op::Gt => lhs.gt(rhs),
            Op::Ge => lhs.gte(rhs),
            Op::Lt => lhs.lt(rhs),
            Op::Le => lhs.lte(rhs),
            // co/sw/ew on non-strings: compare as equality is meaningless; match none.
            Op::Co | Op::Sw | Op::Ew => Expr::cust("1 = 0"),
        }
    }

    fn compare_text(&self, lhs: Expr, op: Op, value: &str, case_exact: bool) -> Expr {
        let (lhs, value) = if case_exact {
            (lhs, value.to_owned())
        } else {
            (Expr::from(Func::lower(lhs)), value.to_lowercase())
        };
        match op {
            Op::Eq => lhs.eq(value),
            Op::Ne => lhs.clone().ne(value).or(lhs.is_null()),
            Op::Gt => lhs.gt(value),
            Op::Ge => lhs.gte(value),
            Op::Lt => lhs.lt(value),
            Op::Le => lhs.lte(value),
            Op::Co | Op::Sw | Op::Ew => {
                if case_exact && self.backend != DbBackend::Postgres {
                    // SQLite's LIKE ignores ASCII case, so exact matching uses
                    // instr/substr instead.
                    let len = value.chars().count() as i64;
                    return match op {
                        Op::Co => Expr::cust_with_exprs("instr(?, ?) > 0", [lhs, Expr::val(value)]),
                        Op::Sw => Expr::cust_with_exprs(
                            "substr(?, 1, ?) = ?",
                            [lhs, Expr::val(len), Expr::val(value)],
                        ),
                        _ => Expr::cust_with_exprs(
                            "substr(?, -?) = ?",
                            [lhs, Expr::val(len), Expr::val(value)],
                        ),
                    };
                }
                let escaped = escape_like(&value);
                let pattern = match op {
                    Op::Co => format!("%{escaped}%"),
                    Op::Sw => format!("{escaped}%"),
                    _ => format!("%{escaped}"),
                };
                lhs.like(LikeExpr::new(pattern).escape('\\'))
            }
        }
    }
}

/// The items joined pairwise, then the pairs, and so on: a tree `log2(n)`
/// deep rather than `n`, the same in three-valued logic because `AND` and `OR`
/// are associative.
fn balanced(mut exprs: Vec<Expr>, join: fn(Expr, Expr) -> Expr) -> Option<Expr> {
    while exprs.len() > 1 {
        let mut joined = Vec::with_capacity(exprs.len().div_ceil(2));
        let mut items = exprs.into_iter();
        while let Some(left) = items.next() {
            joined.push(match items.next() {
                Some(right) => join(left, right),
                None => left,
            });
        }
        exprs = joined;
    }
    exprs.pop()
}

fn escape_like(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `$."a"."b"` — keys quoted so URN keys with `:` are one segment; numeric
/// segments become array indexes.
fn sqlite_path<S: AsRef<str>>(path: &[S]) -> String {
    let mut out = String::from("$");
    for seg in path {
        let seg = seg.as_ref();
        if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            out.push_str(&format!(".\"{seg}\""));
        }
    }
    out
}

/// `{"a","b"}` — a PostgreSQL text array literal for `#>` / `#>>`.
fn pg_path<S: AsRef<str>>(path: &[S]) -> String {
    let segs: Vec<String> = path.iter().map(|s| format!("\"{}\"", s.as_ref())).collect();
    format!("{{{}}}", segs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::{PostgresQueryBuilder, Query, SqliteQueryBuilder};

    fn sql(backend: DbBackend, filter: &Filter) -> String {
        let t = Translator::new(backend, &USERS);
        let q = Query::select()
            .expr(Expr::val(1))
            .from(sea_orm::sea_query::Alias::new("directory_users"))
            .and_where(t.condition(filter))
            .to_owned();
        match backend {
            DbBackend::Postgres => q.to_string(PostgresQueryBuilder),
            _ => q.to_string(SqliteQueryBuilder),
        }
    }

    #[test]
    fn user_name_uses_the_folded_column() {
        let f = Filter::Compare(
            AttrRef::new(&["userName"], ValueKind::String, false),
            Op::Eq,
            Value::Str("BJensen".into()),
        );
        let s = sql(DbBackend::Sqlite, &f);
        assert!(
            s.contains("\"directory_users\".\"user_name_folded\" = 'bjensen'"),
            "{s}"
        );
    }

    #[test]
    fn multi_valued_sub_attribute_becomes_exists() {
        let f = Filter::Any(
            AttrRef::new(&["emails"], ValueKind::String, false),
            Box::new(Filter::Compare(
                AttrRef::new(&["value"], ValueKind::String, false),
                Op::Co,
                Value::Str("@Example.com".into()),
            )),
        );
        let s = sql(DbBackend::Sqlite, &f);
        assert!(
            s.contains("json_each(\"directory_users\".\"data\", '$.\"emails\"')"),
            "{s}"
        );
        assert!(s.contains("LIKE '%@example.com%'"), "{s}");
        let p = sql(DbBackend::Postgres, &f);
        assert!(p.contains("jsonb_array_elements"), "{p}");
        assert!(p.contains("(je.value #>> '{\"value\"}')"), "{p}");
    }

    fn user_name_eq(v: &str) -> Filter {
        Filter::Compare(
            AttrRef::new(&["userName"], ValueKind::String, false),
            Op::Eq,
            Value::Str(v.into()),
        )
    }

    fn title_eq(v: &str) -> Filter {
        Filter::Compare(
            AttrRef::new(&["title"], ValueKind::String, false),
            Op::Eq,
            Value::Str(v.into()),
        )
    }

    /// How deeply the SQL nests parentheses: SQLite's expression depth follows it.
    fn nesting(sql: &str) -> usize {
        let (mut depth, mut max) = (0usize, 0usize);
        for c in sql.chars() {
            match c {
                '(' => {
                    depth += 1;
                    max = max.max(depth);
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        max
    }

    #[test]
    fn an_or_of_eq_on_one_attribute_is_one_in_list() {
        let f = Filter::Or(vec![
            user_name_eq("Ann"),
            title_eq("Lead"),
            user_name_eq("BOB"),
            title_eq("Dev"),
        ]);
        let s = sql(DbBackend::Sqlite, &f);
        assert!(
            s.contains("\"directory_users\".\"user_name_folded\" IN ('ann', 'bob')"),
            "{s}"
        );
        assert!(
            s.contains("LOWER(json_extract(\"directory_users\".\"data\", '$.\"title\"')) IN ('lead', 'dev')"),
            "{s}"
        );
        let p = sql(DbBackend::Postgres, &f);
        assert!(p.contains("IN ('lead', 'dev')"), "{p}");
    }

    #[rstest::rstest]
    #[case::or(Filter::Or as fn(Vec<Filter>) -> Filter)]
    #[case::and(Filter::And as fn(Vec<Filter>) -> Filter)]
    fn long_chains_nest_logarithmically(#[case] chain: fn(Vec<Filter>) -> Filter) {
        // Alternating attributes and operators, so no IN list absorbs them.
        let items: Vec<Filter> = (0..1024)
            .map(|i| match i % 2 {
                0 => Filter::Compare(
                    AttrRef::new(&["title"], ValueKind::String, false),
                    Op::Co,
                    Value::Str(format!("t{i}")),
                ),
                _ => Filter::Present(AttrRef::new(&["nickName"], ValueKind::String, false)),
            })
            .collect();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let s = sql(backend, &chain(items.clone()));
            assert!(nesting(&s) <= 16, "{backend:?}: {}", nesting(&s));
        }
    }

    #[test]
    fn membership_is_an_indexed_subquery_on_the_membership_rows() {
        let ids = Filter::Membership(Related::Ids(vec!["g1".into(), "g2".into()]));
        let s = sql(DbBackend::Sqlite, &ids);
        assert!(
            s.contains("\"directory_users\".\"id\" IN (SELECT \"directory_memberships\".\"member_id\" FROM \"directory_memberships\" WHERE \"directory_memberships\".\"group_id\" IN ('g1', 'g2'))"),
            "{s}"
        );
        let any = sql(DbBackend::Postgres, &Filter::Membership(Related::Any));
        assert!(
            any.contains("EXISTS(SELECT 1 FROM \"directory_memberships\" WHERE \"directory_memberships\".\"member_id\" = \"directory_users\".\"id\")"),
            "{any}"
        );
    }

    #[test]
    fn like_wildcards_in_values_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[test]
    fn extension_paths_quote_the_urn() {
        let path = [
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "manager",
            "value",
        ];
        assert_eq!(
            sqlite_path(&path),
            "$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\""
        );
        assert_eq!(
            pg_path(&path),
            "{\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"manager\",\"value\"}"
        );
    }
}
