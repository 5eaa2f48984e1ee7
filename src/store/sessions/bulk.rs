//! Bulk inserts of sessions for seeding large stores (the benchmark).
//! Postgres takes rows through `COPY`; SQLite row by row inside one
//! transaction, which is its fast path.

use diesel::prelude::*;

use crate::db::schema::sessions;
use crate::db::{AnyConnection, Conn, DbResult, IntoDbResult};
use crate::store::sessions::NewSession;

pub fn insert_sessions(conn: &mut Conn, rows: &[NewSession]) -> DbResult<usize> {
    match conn {
        AnyConnection::Postgresql(pg) => diesel::copy_from(sessions::table)
            .from_insertable(rows)
            .execute(pg)
            .db(),
        AnyConnection::Sqlite(sqlite) => sqlite
            .immediate_transaction(|sqlite| {
                for row in rows {
                    diesel::insert_into(sessions::table)
                        .values(row)
                        .execute(sqlite)?;
                }
                Ok(rows.len())
            })
            .db(),
    }
}
