//! Multi-row inserts built from whole rows, with each JSON value bound once
//! as its text. sea-query copies a statement's values while it builds it, and
//! a `Value::Json` is a tree (a user event, a link's snapshot, a user's
//! custom attributes): copied twice, then written out by the driver. Text
//! costs one write and two flat copies. Imports nothing outside `store`.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, InsertStatement, Query};
use sea_orm::{ActiveModelTrait, DbBackend, EntityTrait, IdenStatic, Iterable, Value};

/// An `INSERT` of every column of `rows` into their table, where a row may
/// come with the value of the JSON column `text_column` already written out
/// as text (bound in place of the row's own value).
pub(crate) fn insert_with_text<A: ActiveModelTrait>(
    backend: DbBackend,
    text_column: Option<<A::Entity as EntityTrait>::Column>,
    rows: impl IntoIterator<Item = (A, Option<String>)>,
) -> InsertStatement {
    let mut statement = Query::insert();
    statement
        .into_table(A::Entity::default())
        .columns(<A::Entity as EntityTrait>::Column::iter());
    let text_column = text_column.map(|c| c.as_str());
    for (mut row, mut text) in rows {
        let values: Vec<Expr> = <A::Entity as EntityTrait>::Column::iter()
            .map(
                |column| match text.take_if(|_| Some(column.as_str()) == text_column) {
                    Some(text) => json_text(backend, text),
                    None => bind(backend, row.take(column).into_value()),
                },
            )
            .collect();
        statement.values_panic(values);
    }
    statement
}

/// A column's value as the statement binds it: JSON as its text, which
/// SQLite stores as it is (what the driver would write for the tree) and
/// PostgreSQL reads into `jsonb` through the cast (a text parameter is not
/// assigned to a `jsonb` column by itself).
fn bind(backend: DbBackend, value: Option<Value>) -> Expr {
    match value {
        Some(Value::Json(Some(json))) => match serde_json::to_string(&*json) {
            Ok(text) => json_text(backend, text),
            Err(_) => Expr::val(Value::Json(Some(json))),
        },
        Some(value) => Expr::val(value),
        // Every column of a row taken whole is set.
        None => Expr::val(Value::String(None)),
    }
}

fn json_text(backend: DbBackend, text: String) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::val(text).cast_as(Alias::new("jsonb")),
        _ => Expr::val(text),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use sea_orm::ActiveValue::Set;
    use serde_json::json;

    use super::*;
    use crate::store::entities::events;

    fn event(data: serde_json::Value) -> events::ActiveModel {
        events::ActiveModel {
            tenant_id: Set("t".into()),
            seq: Set(1),
            r#type: Set("user.created".into()),
            resource_type: Set("user".into()),
            resource_id: Set("u".into()),
            data: Set(data),
            created_at: Set(0),
        }
    }

    #[rstest]
    #[case::sqlite(DbBackend::Sqlite, "?")]
    #[case::postgres(DbBackend::Postgres, "CAST($6 AS jsonb)")]
    fn json_is_bound_as_its_text(#[case] backend: DbBackend, #[case] placeholder: &str) {
        let data = json!({"user": {"id": "u", "custom_attributes": {"a": ["x", "y"]}}});
        let statement = backend.build(&insert_with_text(
            backend,
            None,
            [(event(data.clone()), None)],
        ));
        assert!(statement.sql.contains(placeholder), "{}", statement.sql);
        let values = statement.values.expect("bound values").0;
        assert_eq!(values[5], Value::String(Some(data.to_string())));
    }

    #[test]
    fn text_given_with_a_row_stands_in_for_its_json_value() {
        let rows = [
            (event(json!(null)), Some(r#"{"a":1}"#.to_owned())),
            (event(json!({"b": 2})), None),
        ];
        let statement = DbBackend::Sqlite.build(&insert_with_text(
            DbBackend::Sqlite,
            Some(events::Column::Data),
            rows,
        ));
        let values = statement.values.expect("bound values").0;
        assert_eq!(values[5], Value::String(Some(r#"{"a":1}"#.to_owned())));
        assert_eq!(values[12], Value::String(Some(r#"{"b":2}"#.to_owned())));
    }
}
