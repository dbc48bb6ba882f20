//! What the store's SQL needs to run on either engine: the engine, bound
//! parameters that both drivers take, Postgres's placeholders, and the few
//! fragments that differ between SQLite and Postgres.
//!
//! Store modules write one statement for both engines, with SQLite's `?` or
//! `?N` placeholders and portable SQL (`COALESCE`, `ON CONFLICT`, row values,
//! `RETURNING`); [`postgres_placeholders`] turns the placeholders into
//! `$N` for Postgres. What cannot be portable (a list bound as one
//! parameter, the response log's last `seq`) is a method of [`Engine`].

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `gorp.db` in the data directory (the default).
    Sqlite,
    /// A Postgres server (`store_url = "postgres://…"`).
    Postgres,
}

impl Engine {
    /// SQL for "is in the list of integers bound as one parameter" (bind [`json_list`] of the list).
    pub(super) fn in_integer_list(self) -> &'static str {
        match self {
            Self::Sqlite => "IN (SELECT value FROM json_each(?))",
            Self::Postgres => "IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(? AS JSON)))",
        }
    }

    /// SQL for "is in the list of texts bound as one parameter" (bind [`json_list`] of the list).
    pub(super) fn in_text_list(self) -> &'static str {
        match self {
            Self::Sqlite => "IN (SELECT value FROM json_each(?))",
            Self::Postgres => "IN (SELECT json_array_elements_text(CAST(? AS JSON)))",
        }
    }

    /// A query for the last `seq` ever given to a response (0 before the
    /// first), which compaction never lowers.
    pub(super) fn last_response_seq(self) -> &'static str {
        match self {
            Self::Sqlite => "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'responses'), 0) AS seq",
            Self::Postgres => "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS seq FROM responses_seq_seq",
        }
    }

    /// A query for every channel binding packed into one text value `packed`
    /// (fields split by U+001F, records by U+001E; NULL when there are none).
    pub(super) fn packed_bindings(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT group_concat(platform_id || char(31) || channel_id || char(31) || session_name, char(30)) AS packed
                 FROM channel_bindings"
            }
            Self::Postgres => {
                "SELECT string_agg(platform_id || chr(31) || channel_id || chr(31) || session_name, chr(30)) AS packed
                 FROM channel_bindings"
            }
        }
    }

    /// The statements that open a group commit's transaction. SQLite takes
    /// the write lock at once, so no statement in it waits for the lock.
    /// Postgres takes the replicas' write lock ([`WRITE_LOCK`]): the group
    /// commits of several gorpd on one database take turns, so `id`s and
    /// `seq`s are given in commit order and a reader that sees one sees
    /// every smaller one (the response log is read as a gapless sequence).
    pub(super) fn begin(self) -> &'static [&'static str] {
        match self {
            Self::Sqlite => &["BEGIN IMMEDIATE"],
            Self::Postgres => &["BEGIN", WRITE_LOCK],
        }
    }

    /// The name shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Takes the Postgres advisory lock every group commit holds until it ends
/// (the key is "gorp" in ASCII, shared by every replica).
const WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(1735357040)";

/// The parameter for [`Engine::in_integer_list`] / [`Engine::in_text_list`]: the values as a JSON array.
pub(super) fn json_list<T: serde::Serialize>(values: &[T]) -> String {
    serde_json::to_string(values).expect("ids and names serialise")
}

/// A parameter's value as both drivers bind it: the store keeps integers
/// and text (timestamps are RFC 3339 text, flags are 0 or 1). A NULL keeps
/// its type, which Postgres needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// An integer (Postgres: BIGINT).
    Integer(Option<i64>),
    /// Text.
    Text(Option<&'a str>),
}

/// A value that can be bound to a statement of either engine.
pub(crate) trait Param: Sync {
    /// The value to bind.
    fn value(&self) -> Value<'_>;
}

/// The type of a NULL of a parameter type (for `Option<T>`).
pub(crate) trait Typed {
    /// This type's NULL.
    const NULL: Value<'static>;
}

macro_rules! integer_params {
    ($($integer:ty),*) => {$(
        impl Param for $integer {
            fn value(&self) -> Value<'_> {
                // Counts, ids and limits: all far below i64::MAX.
                Value::Integer(Some(*self as i64))
            }
        }
        impl Typed for $integer {
            const NULL: Value<'static> = Value::Integer(None);
        }
    )*};
}
integer_params!(i64, i32, u32, u64, usize);

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Integer(Some(i64::from(*self)))
    }
}

impl Typed for bool {
    const NULL: Value<'static> = Value::Integer(None);
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(Some(self))
    }
}

impl Typed for str {
    const NULL: Value<'static> = Value::Text(None);
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(Some(self))
    }
}

impl Typed for String {
    const NULL: Value<'static> = Value::Text(None);
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Typed + ?Sized> Typed for &T {
    const NULL: Value<'static> = T::NULL;
}

impl<T: Param + Typed> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(T::NULL, Param::value)
    }
}

/// Parameters for a store statement: `params![a, b]`.
macro_rules! params {
    ($($param:expr),* $(,)?) => {
        &[$(&$param as &dyn $crate::store::sql::Param),*] as &[&dyn $crate::store::sql::Param]
    };
}
pub(crate) use params;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match *self {
            Value::Integer(Some(integer)) => ToSqlOutput::Borrowed(ValueRef::Integer(integer)),
            Value::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Integer(None) | Value::Text(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// Binds `params` to an sqlx query, in order.
pub(super) fn bind<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    params: &[&dyn Param],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<&'t str>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    for param in params {
        query = match param.value() {
            Value::Integer(integer) => query.bind(integer),
            Value::Text(text) => query.bind(text),
        };
    }
    query
}

/// `sql` with SQLite's placeholders (`?`, `?N`) as Postgres's (`$N`); a
/// bare `?` takes the number after the last one. Quoted text and
/// identifiers are left alone.
pub(super) fn postgres_placeholders(sql: &str) -> String {
    let mut rewritten = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut quote = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(open), _) => {
                rewritten.push(c);
                if c == open {
                    quote = None;
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                rewritten.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(digit) = chars.next_if(char::is_ascii_digit) {
                    digits.push(digit);
                }
                let number = digits.parse().unwrap_or(next);
                next = number + 1;
                rewritten.push('$');
                rewritten.push_str(&number.to_string());
            }
            (None, _) => rewritten.push(c),
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_and_quoted_text_is_left_alone() {
        assert_eq!(postgres_placeholders("SELECT ? , ?"), "SELECT $1 , $2");
        assert_eq!(
            postgres_placeholders("a = ?1 OR (?1 IS NULL AND b = ?2) LIMIT ?4"),
            "a = $1 OR ($1 IS NULL AND b = $2) LIMIT $4"
        );
        assert_eq!(postgres_placeholders("x = '?' AND \"a?\" = ?"), "x = '?' AND \"a?\" = $1");
        assert_eq!(postgres_placeholders("no parameters"), "no parameters");
    }

    #[test]
    fn nulls_keep_their_type() {
        let text: Option<String> = None;
        let integer: Option<i64> = None;
        let params = params![text, integer, "x", 3_u32, true];
        let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
        assert_eq!(
            values,
            [
                Value::Text(None),
                Value::Integer(None),
                Value::Text(Some("x")),
                Value::Integer(Some(3)),
                Value::Integer(Some(1))
            ]
        );
    }
}
