//! The queries, one module per table. Synchronous functions taking `&mut Conn`;
//! no HTTP here.

pub mod backup_codes;
pub mod events;
pub mod failures;
pub mod session_counters;
pub mod sessions;
pub mod settings;
pub mod users;
pub mod webhooks;

/// Ids per `IN (…)` list: below SQLite's limit on bound parameters.
pub(crate) const ID_CHUNK: usize = 10_000;

/// Inserts many rows into one table for seeding: `COPY` on Postgres, one
/// immediate transaction of single-row inserts on SQLite (its fast path).
/// A macro because the table's insertable bounds differ per table.
macro_rules! insert_many {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let rows = $rows;
        match $conn {
            #[cfg(feature = "postgres")]
            crate::db::AnyConnection::Postgresql(pg) => diesel::copy_from($table)
                .from_insertable(rows)
                .execute(pg)
                .db(),
            crate::db::AnyConnection::Sqlite(sqlite) => sqlite
                .immediate_transaction(|sqlite| {
                    for row in rows {
                        diesel::insert_into($table).values(row).execute(sqlite)?;
                    }
                    Ok(rows.len())
                })
                .db(),
        }
    }};
}
pub(crate) use insert_many;

/// True for a unique-constraint violation (a username or id already taken).
pub fn is_unique_violation(error: &crate::db::DbError) -> bool {
    matches!(
        error,
        crate::db::DbError::Query(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}
