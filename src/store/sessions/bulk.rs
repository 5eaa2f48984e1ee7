//! Bulk work on sessions for seeding large stores (the benchmark).
//! Postgres takes rows through `COPY`; SQLite row by row inside one
//! transaction, which is its fast path.

use diesel::prelude::*;

use crate::db::schema::sessions;
use crate::db::{AnyConnection, Conn, DbResult, IntoDbResult};
use crate::domain::token::TokenHash;
use crate::store::sessions::NewSession;
use crate::store::{insert_many, ID_CHUNK};

pub fn insert_sessions(conn: &mut Conn, rows: &[NewSession]) -> DbResult<usize> {
    insert_many!(conn, sessions::table, rows)
}

/// Sessions of any state owned by these users.
pub fn count_for_users(conn: &mut Conn, user_ids: &[i64]) -> DbResult<i64> {
    let mut total = 0;
    for ids in user_ids.chunks(ID_CHUNK) {
        let counted: i64 = sessions::table
            .filter(sessions::user_id.eq_any(ids))
            .count()
            .get_result(conn)
            .db()?;
        total += counted;
    }
    Ok(total)
}

/// Deletes every session, of any state, owned by these users.
pub fn delete_for_users(conn: &mut Conn, user_ids: &[i64]) -> DbResult<usize> {
    let mut deleted = 0;
    for ids in user_ids.chunks(ID_CHUNK) {
        deleted += diesel::delete(sessions::table.filter(sessions::user_id.eq_any(ids)))
            .execute(conn)
            .db()?;
    }
    Ok(deleted)
}

/// Every row, ended sessions included.
pub fn count_all(conn: &mut Conn) -> DbResult<i64> {
    sessions::table.count().get_result(conn).db()
}

/// The `sessionId` of the session holding this token, of any state.
pub fn session_id_of_token(conn: &mut Conn, token_hash: &TokenHash) -> DbResult<String> {
    sessions::table
        .filter(sessions::token_hash.eq(token_hash.as_str()))
        .select(sessions::session_id)
        .first(conn)
        .db()
}

/// Drops the secondary indexes of `sessions` before a large load and
/// returns their definitions, to be rebuilt after it: building an index
/// once is much faster than maintaining it row by row. Postgres only;
/// SQLite keeps its indexes (and gets an empty list).
pub fn drop_secondary_indexes(conn: &mut Conn) -> DbResult<Vec<String>> {
    match conn {
        #[cfg(feature = "postgres")]
        AnyConnection::Postgresql(pg) => {
            #[derive(QueryableByName)]
            struct Index {
                #[diesel(sql_type = diesel::sql_types::Text)]
                name: String,
                #[diesel(sql_type = diesel::sql_types::Text)]
                definition: String,
            }
            let indexes: Vec<Index> = diesel::sql_query(
                "SELECT i.indexname AS name, i.indexdef AS definition FROM pg_indexes i \
                 WHERE i.tablename = 'sessions' AND i.indexdef NOT LIKE 'CREATE UNIQUE%'",
            )
            .load(pg)
            .db()?;
            for index in &indexes {
                diesel::sql_query(format!("DROP INDEX {}", index.name))
                    .execute(pg)
                    .db()?;
            }
            Ok(indexes.into_iter().map(|i| i.definition).collect())
        }
        AnyConnection::Sqlite(_) => Ok(Vec::new()),
    }
}

/// Runs the definitions `drop_secondary_indexes` returned, with enough
/// memory for Postgres to sort a large table in one pass.
pub fn rebuild_indexes(conn: &mut Conn, definitions: &[String]) -> DbResult<()> {
    #[cfg(feature = "postgres")]
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SET maintenance_work_mem = '1GB'")
            .execute(pg)
            .db()?;
    }
    for definition in definitions {
        diesel::sql_query(definition).execute(conn).db()?;
    }
    Ok(())
}

/// `VACUUM ANALYZE` on Postgres after a load, so the planner and the
/// visibility map see the new rows before anything is measured. SQLite
/// needs nothing.
pub fn vacuum_analyze(conn: &mut Conn) -> DbResult<()> {
    match conn {
        #[cfg(feature = "postgres")]
        AnyConnection::Postgresql(pg) => {
            diesel::sql_query("VACUUM ANALYZE").execute(pg).db()?;
            Ok(())
        }
        AnyConnection::Sqlite(_) => Ok(()),
    }
}
