//! One way to read a stored row, whichever connection returned it: reads
//! come from sqlx's pool (SQLite or Postgres), writes that return rows
//! (`RETURNING *`) from the writer's connection (rusqlite, or sqlx's
//! Postgres connection), and the same mapping functions turn all of them
//! into domain types.
//!
//! A column that is missing or of another type is a bug in gorp's own SQL,
//! so these accessors panic with the column's name, as sqlx's `Row::get` does.

/// A result row of either connection.
pub(crate) trait StoredRow {
    /// An integer column.
    fn integer(&self, column: &str) -> i64;
    /// An integer column that may be NULL.
    fn optional_integer(&self, column: &str) -> Option<i64>;
    /// A text column.
    fn text(&self, column: &str) -> String;
    /// A text column that may be NULL.
    fn optional_text(&self, column: &str) -> Option<String>;
}

impl StoredRow for sqlx::sqlite::SqliteRow {
    fn integer(&self, column: &str) -> i64 {
        sqlx::Row::get(self, column)
    }

    fn optional_integer(&self, column: &str) -> Option<i64> {
        sqlx::Row::get(self, column)
    }

    fn text(&self, column: &str) -> String {
        sqlx::Row::get(self, column)
    }

    fn optional_text(&self, column: &str) -> Option<String> {
        sqlx::Row::get(self, column)
    }
}

impl StoredRow for sqlx::postgres::PgRow {
    /// BIGINT columns, and INTEGER or BOOLEAN results of expressions (`length()`, `EXISTS`).
    fn integer(&self, column: &str) -> i64 {
        self.optional_integer(column).unwrap_or_else(|| panic!("column {column} is NULL"))
    }

    fn optional_integer(&self, column: &str) -> Option<i64> {
        use sqlx::Row;
        if let Ok(value) = self.try_get::<Option<i64>, _>(column) {
            return value;
        }
        if let Ok(value) = self.try_get::<Option<i32>, _>(column) {
            return value.map(i64::from);
        }
        self.get::<Option<bool>, _>(column).map(i64::from)
    }

    fn text(&self, column: &str) -> String {
        sqlx::Row::get(self, column)
    }

    fn optional_text(&self, column: &str) -> Option<String> {
        sqlx::Row::get(self, column)
    }
}

impl StoredRow for rusqlite::Row<'_> {
    fn integer(&self, column: &str) -> i64 {
        written(self.get(column), column)
    }

    fn optional_integer(&self, column: &str) -> Option<i64> {
        written(self.get(column), column)
    }

    fn text(&self, column: &str) -> String {
        written(self.get(column), column)
    }

    fn optional_text(&self, column: &str) -> Option<String> {
        written(self.get(column), column)
    }
}

fn written<T>(value: rusqlite::Result<T>, column: &str) -> T {
    value.unwrap_or_else(|error| panic!("column {column} of a returned row: {error}"))
}
